-- prune-old-data (common/services/retention.py): decided source events by decision time.
CREATE INDEX IF NOT EXISTS events_decided_at_idx ON events (decided_at)
    WHERE state = 'Viewed';
