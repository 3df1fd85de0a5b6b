-- Supervision reads by region without looking each assignment's event up: the event's
-- region, severity, rule type and camera, which never change, are copied onto its
-- assignments when they are written (the router's and a move's INSERT), and filled here
-- for the rows already there. NOT NULL, so a writer that forgets them fails loudly
-- instead of hiding rows from a region's numbers.
ALTER TABLE assignments ADD COLUMN region text, ADD COLUMN severity integer,
                        ADD COLUMN rule_type text, ADD COLUMN camera_id text;
UPDATE assignments a
SET region = e.region, severity = e.severity, rule_type = e.rule_type, camera_id = e.camera_id
FROM events e WHERE e.event_id = a.event_id;
ALTER TABLE assignments ALTER COLUMN region SET NOT NULL,
                        ALTER COLUMN severity SET NOT NULL,
                        ALTER COLUMN rule_type SET NOT NULL,
                        ALTER COLUMN camera_id SET NOT NULL;
-- Decisions of a region by when they happened: time to decide, outcomes and per-minute
-- decisions read only the index; rates per rule type and camera, a few heap pages more.
CREATE INDEX assignments_region_decided_idx ON assignments (region, decided_at)
    INCLUDE (severity, status, created_at, decision_reason, event_id)
    WHERE decided_at IS NOT NULL;
-- Releases of a region by when they happened (releases by reason).
CREATE INDEX assignments_region_released_idx ON assignments (region, released_at)
    WHERE released_at IS NOT NULL;
-- Assignments of a region by creation (time to assign: each event's first assignment).
CREATE INDEX assignments_region_created_idx ON assignments (region, created_at)
    INCLUDE (event_id);
-- A region's live assignments ("now").
CREATE INDEX assignments_live_by_region ON assignments (region)
    WHERE status = 'pending' AND NOT deleted;
