-- Supervision reads by region without looking each assignment's event up: the event's
-- region and severity, which never change, are copied onto its assignments when they are
-- written (the router's and a move's INSERT), and filled here for the rows already there.
-- NOT NULL, so a writer that forgets them fails loudly instead of hiding rows from a
-- region's numbers.
ALTER TABLE assignments ADD COLUMN region text, ADD COLUMN severity integer;
UPDATE assignments a SET region = e.region, severity = e.severity
FROM events e WHERE e.event_id = a.event_id;
ALTER TABLE assignments ALTER COLUMN region SET NOT NULL,
                        ALTER COLUMN severity SET NOT NULL;
-- Decisions and releases of a region by when they happened: time to decide, outcomes and
-- per-minute decisions read only the index; rates and releases by reason, a few rows more.
CREATE INDEX assignments_region_decided_idx ON assignments (region, decided_at)
    INCLUDE (severity, status, created_at, decision_reason) WHERE decided_at IS NOT NULL;
CREATE INDEX assignments_region_released_idx ON assignments (region, released_at)
    WHERE released_at IS NOT NULL;
-- A region's live assignments ("now").
CREATE INDEX assignments_live_by_region ON assignments (region)
    WHERE status = 'pending' AND NOT deleted;
