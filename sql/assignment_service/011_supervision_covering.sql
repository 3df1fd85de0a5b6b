-- Per-minute events by severity read only the index (region, created_at, severity).
CREATE INDEX IF NOT EXISTS events_region_created_sev_idx ON events (region, created_at)
    INCLUDE (severity);
DROP INDEX IF EXISTS events_region_created_idx;
