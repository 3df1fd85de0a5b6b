-- relay_service: the source of truth for events, as in the original, plus dispatch and
-- decision bookkeeping.

CREATE TABLE events (
    event_id         uuid PRIMARY KEY,
    region           text NOT NULL CHECK (region IN ('NA', 'EU', 'APAC', 'LATAM')),
    rule_type        text NOT NULL,
    location         text NOT NULL,
    severity         integer NOT NULL CHECK (severity BETWEEN 1 AND 5),
    device_id        text NOT NULL,
    camera_id        text NOT NULL,
    frame_reference  text NOT NULL,
    state            text NOT NULL DEFAULT 'Not Viewed' CHECK (state IN ('Not Viewed', 'Viewed')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- Set only after the broker confirmed the publish to events.outbound.
    dispatched_at    timestamptz,
    dispatch_count   integer NOT NULL DEFAULT 0,
    -- Set by relay-poll once the assignment service is known to have stored the event;
    -- until then a long-dispatched event is a candidate for re-dispatch.
    receipt_confirmed_at timestamptz,
    -- The decision, written back by the inbound consumer.
    assignment_id    bigint,
    decision         text CHECK (decision IN ('approved', 'rejected')),
    decision_reason  text,
    decision_note    text,
    decided_by       integer,
    decided_at       timestamptz,
    CHECK ((state = 'Viewed') = (decision IS NOT NULL))
);

-- The relay's claim: undispatched 'Not Viewed' rows, oldest first.
CREATE INDEX events_undispatched_idx ON events (created_at)
    WHERE state = 'Not Viewed' AND dispatched_at IS NULL;

-- relay-poll's re-dispatch check: dispatched, undecided, not yet known to be stored.
CREATE INDEX events_unconfirmed_idx ON events (dispatched_at)
    WHERE state = 'Not Viewed' AND dispatched_at IS NOT NULL AND receipt_confirmed_at IS NULL;

-- One NOTIFY per INSERT statement (not per row): a batch of 10,000 rows wakes the relay once.
CREATE FUNCTION notify_events_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('events_inserted', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_inserted_notify
    AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION notify_events_inserted();
