-- Evidence that the assignment consumer dead-lettered a message naming an event: relay-poll
-- reads it and stops re-dispatching an event the service can never store. The digest is of
-- the exact body refused, so a forged message naming a real event (with other contents) is
-- not taken as evidence against the relay's own message (the relay compares digests).
CREATE TABLE rejected_events (
    event_id     uuid NOT NULL,
    body_sha256  bytea NOT NULL,
    reason       text NOT NULL,
    kind         text NOT NULL,
    at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, body_sha256)
);
