-- Query plans at a million rows (bench/queries.py, `make bench-queries`; docs/decisions.md
-- "Query plans at a million rows, and memory").
--
-- A live assignment is `status = 'pending' AND NOT deleted`. The two columns depend on each
-- other (a released assignment keeps status 'pending' with deleted = true), but the planner
-- multiplies their selectivities as if they did not: with 5 % of a million rows released it
-- expected 48,000 live rows where there were 212, and the /metrics scrape joined them to the
-- events by a sequential scan of the million (184 ms). Statistics on the pair give it the
-- true share; every query of live work gets the nested loop over the partial indexes.
-- Filled by autovacuum's next analyze, not here: an ANALYZE in this file recorded a new
-- database's assignments as empty, and the router's insert then slowed as the table filled
-- (a 15,000-event backlog at 1,710, then 588, then 339 events/s, against 5,000 without).
CREATE STATISTICS IF NOT EXISTS assignments_status_deleted_stats (mcv, dependencies)
    ON status, deleted FROM assignments;

-- prune-old-data keeps an event while an outbox row of its assignments is not finished
-- (`o.status <> 'finished'`). No index matched that predicate, so each batch read the whole
-- outbox (950,000 rows, 72 ms). This one holds exactly the rows not finished: a handful.
CREATE INDEX IF NOT EXISTS outbox_not_finished_idx ON outbox_assignments (assignment_id)
    WHERE status <> 'finished';
