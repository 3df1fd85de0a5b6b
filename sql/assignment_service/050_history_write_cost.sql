-- The router writes one history row per assignment, in the same statement as the assignment
-- (docs/decisions.md "Performance, third pass"). Two costs on that insert bought nothing:
--
-- assignment_history_at (at) is the prefix of assignment_history_at_id_idx (at, id), which
-- serves every query by time (the audit trail pages by (at, id); a range on `at` alone
-- reads the same index): one index write per history row for no plan.
DROP INDEX IF EXISTS assignment_history_at;

-- The foreign key assignment_history.assignment_id -> assignments was checked row by row
-- (about 5 ms per 1,000 rows on a quiet machine), yet every history row names an assignment
-- its own transaction has just inserted, updated or locked (router, release and move from
-- the RETURNING of the same statement, a decision under the row lock), and prune-old-data
-- deletes an event's history before its assignments. The column and its index
-- (assignment_history_assignment) stay.
ALTER TABLE assignment_history DROP CONSTRAINT IF EXISTS assignment_history_assignment_id_fkey;
