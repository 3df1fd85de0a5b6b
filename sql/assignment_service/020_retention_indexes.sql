-- prune-old-data (common/services/retention.py) finds what is old through these indexes.
-- Decided assignments by decision time (same definition as the console's 010, so whichever
-- file runs first creates it).
CREATE INDEX IF NOT EXISTS assignments_decided_at_idx ON assignments (decided_at)
    WHERE decided_at IS NOT NULL;
-- Finished outbox rows by when they finished.
CREATE INDEX IF NOT EXISTS outbox_finished_at_idx ON outbox_assignments (finished_at)
    WHERE status = 'finished';
-- Ended or expired sessions by their end.
CREATE INDEX IF NOT EXISTS sessions_expires_at_idx ON sessions (expires_at);
-- Deleting an event's assignments looks up its outbox rows by assignment.
-- (outbox_assignments.assignment_id is UNIQUE, so it already has an index.)
