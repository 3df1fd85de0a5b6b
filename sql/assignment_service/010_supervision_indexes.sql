-- Supervision reads (GET /regions/{region}/metrics and /history): each filters a time range
-- first, then joins events by primary key for the region.
-- Events of a region by source time (time to assign, per-minute series, breaches).
CREATE INDEX IF NOT EXISTS events_region_created_idx ON events (region, created_at);
-- Decisions and releases by when they happened (time to decide, outcomes, reasons).
CREATE INDEX IF NOT EXISTS assignments_decided_at_idx ON assignments (decided_at)
    WHERE decided_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS assignments_released_at_idx ON assignments (released_at)
    WHERE released_at IS NOT NULL;
-- The audit trail, newest first and paged by (at, id); by operator.
CREATE INDEX IF NOT EXISTS assignment_history_at_id_idx ON assignment_history (at, id);
CREATE INDEX IF NOT EXISTS assignment_history_user_at_idx ON assignment_history (user_id, at, id);
