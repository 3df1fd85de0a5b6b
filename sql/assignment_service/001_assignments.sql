-- assignment_service: users, sessions, the mirror of events with their waiting state,
-- assignments, per-operator load, history and the outbox.

CREATE TABLE users (
    id             integer PRIMARY KEY,
    username       text NOT NULL UNIQUE,
    name           text NOT NULL,
    role           text NOT NULL CHECK (role IN ('operator', 'supervisor')),
    region         text NOT NULL CHECK (region IN ('US', 'EU', 'APAC', 'LATAM')),
    password_hash  text NOT NULL,
    -- Availability for new work (truth; Redis active_users mirrors it).
    available      boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- A login session. Only the SHA-256 of the random token is stored.
CREATE TABLE sessions (
    token_hash     bytea PRIMARY KEY,
    user_id        integer NOT NULL REFERENCES users (id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    ended_at       timestamptz
);
CREATE INDEX sessions_live_idx ON sessions (user_id, expires_at) WHERE ended_at IS NULL;

-- Mirror of relay_service.events, plus the waiting state.
CREATE TABLE events (
    event_id         uuid PRIMARY KEY,
    region           text NOT NULL CHECK (region IN ('NA', 'EU', 'APAC', 'LATAM')),
    rule_type        text NOT NULL,
    location         text NOT NULL,
    severity         integer NOT NULL CHECK (severity BETWEEN 1 AND 5),
    device_id        text NOT NULL,
    camera_id        text NOT NULL,
    frame_reference  text NOT NULL,
    state            text NOT NULL DEFAULT 'Not Viewed',
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    received_at      timestamptz NOT NULL DEFAULT now(),
    -- Non-null while the event waits for an operator: since arrival or its last release.
    waiting_since    timestamptz,
    -- The operator it was last released from: routing prefers someone else.
    released_from    integer
);
-- The waiting set, in routing order: region, most severe, oldest.
CREATE INDEX events_waiting_idx ON events (region, severity DESC, created_at)
    WHERE waiting_since IS NOT NULL;
-- Overflow and global routing: most severe, oldest, across regions.
CREATE INDEX events_waiting_any_idx ON events (severity DESC, created_at)
    WHERE waiting_since IS NOT NULL;

-- "Received", for ever: a late duplicate never re-opens an event.
CREATE TABLE dedup_events (
    event_id    uuid PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE assignments (
    assignment_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         integer NOT NULL REFERENCES users (id),
    event_id        uuid NOT NULL REFERENCES events (event_id),
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'approved', 'rejected')),
    deleted         boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    decided_at      timestamptz,
    decided_by      integer REFERENCES users (id),
    decision_reason text,
    decision_note   text,
    released_at     timestamptz,
    release_reason  text,
    CHECK (NOT (deleted AND status <> 'pending')),
    CHECK ((status = 'pending') = (decided_at IS NULL)),
    CHECK (deleted = (released_at IS NOT NULL))
);
-- Invariant 2: one live assignment per event, one decision per event, ever.
CREATE UNIQUE INDEX assignments_one_live_per_event
    ON assignments (event_id) WHERE status = 'pending' AND NOT deleted;
CREATE UNIQUE INDEX assignments_one_decision_per_event
    ON assignments (event_id) WHERE status <> 'pending';
-- An operator's live work; expiry by age.
CREATE INDEX assignments_live_by_user ON assignments (user_id, created_at)
    WHERE status = 'pending' AND NOT deleted;
CREATE INDEX assignments_live_by_age ON assignments (created_at)
    WHERE status = 'pending' AND NOT deleted;
CREATE INDEX assignments_by_event ON assignments (event_id);

-- Invariant 1: one load row per operator, changed in the same transaction as the
-- assignment with a guarded UPDATE (live < cap); rows are locked in user-id order.
CREATE TABLE operator_load (
    user_id           integer PRIMARY KEY REFERENCES users (id),
    live              integer NOT NULL DEFAULT 0 CHECK (live >= 0),
    last_assigned_at  timestamptz
);

-- Every change of an assignment: enough to reconstruct what happened to an event.
CREATE TABLE assignment_history (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    assignment_id   bigint NOT NULL REFERENCES assignments (assignment_id),
    event_id        uuid NOT NULL,
    user_id         integer NOT NULL,
    actor_id        integer,
    actor           text NOT NULL,
    at              timestamptz NOT NULL DEFAULT now(),
    previous_state  text,
    new_state       text NOT NULL,
    reason          text
);
CREATE INDEX assignment_history_assignment ON assignment_history (assignment_id);
CREATE INDEX assignment_history_event ON assignment_history (event_id);
CREATE INDEX assignment_history_at ON assignment_history (at);

-- One outbox row per decided assignment, relayed to events.inbound.
CREATE TABLE outbox_assignments (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    assignment_id  bigint NOT NULL UNIQUE REFERENCES assignments (assignment_id),
    status         text NOT NULL DEFAULT 'completed' CHECK (status IN ('completed', 'finished')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    published_at   timestamptz,
    attempts       integer NOT NULL DEFAULT 0,
    finished_at    timestamptz
);
CREATE INDEX outbox_unfinished ON outbox_assignments (published_at NULLS FIRST)
    WHERE status = 'completed';
