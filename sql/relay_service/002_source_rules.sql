-- The source refuses what the assignment consumer would refuse (common/domain/events.py
-- MAX_LENGTHS and MIN_LENGTH; tests/integration/test_source_rules.py holds the two to the
-- same verdict). Rule types stay an open set: cameras may report new kinds of detection.
--
-- NOT VALID: an existing database may hold old rows that break these rules; the constraints
-- still refuse every new or updated row, and the migration does not fail on history
-- (relay-poll records the dead letters of such old rows and stops re-dispatching them).
ALTER TABLE events
    ADD CONSTRAINT events_rule_type_length
        CHECK (char_length(rule_type) BETWEEN 1 AND 100) NOT VALID,
    ADD CONSTRAINT events_location_length
        CHECK (char_length(location) BETWEEN 1 AND 100) NOT VALID,
    ADD CONSTRAINT events_device_id_length
        CHECK (char_length(device_id) BETWEEN 1 AND 200) NOT VALID,
    ADD CONSTRAINT events_camera_id_length
        CHECK (char_length(camera_id) BETWEEN 1 AND 200) NOT VALID,
    ADD CONSTRAINT events_frame_reference_length
        CHECK (char_length(frame_reference) BETWEEN 1 AND 500) NOT VALID;

-- Re-dispatch bookkeeping: when relay-poll may next re-publish an event never stored (the
-- wait doubles per dispatch, capped), and the evidence that the assignment consumer
-- dead-lettered it, after which it is never re-dispatched again.
ALTER TABLE events
    ADD COLUMN next_redispatch_at timestamptz,
    ADD COLUMN dead_lettered_at timestamptz,
    ADD COLUMN dead_letter_reason text;

-- Rows dispatched before this migration: due at once, then backed off like the rest.
UPDATE events SET next_redispatch_at = dispatched_at
WHERE state = 'Not Viewed' AND dispatched_at IS NOT NULL AND receipt_confirmed_at IS NULL;

-- relay-poll's re-dispatch claim, index-backed: due, undecided, unconfirmed, not refused.
CREATE INDEX events_redispatch_due_idx ON events (next_redispatch_at)
    WHERE state = 'Not Viewed' AND dispatched_at IS NOT NULL
      AND receipt_confirmed_at IS NULL AND dead_lettered_at IS NULL;
DROP INDEX events_unconfirmed_idx;
