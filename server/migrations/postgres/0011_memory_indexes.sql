-- Crowdroom schema v11 (PostgreSQL): the indexes of a work queue kept in the
-- rooms' memory.
--
-- A room loads its work state from two indexes alone (server/src/store/load.rs). The ledger's sums per worker
-- read (state, amount) from ledger_entries_worker, and each worker's
-- answered tasks and lead times read (task_id, lead_time_ms) from
-- answers_worker (index-only scans). Each replaces the narrower index of
-- the same name, so an answer writes no more index entries than before.
DROP INDEX ledger_entries_worker;
CREATE INDEX ledger_entries_worker ON ledger_entries (room_id, worker_id, id) INCLUDE (state, amount);
DROP INDEX answers_worker;
CREATE INDEX answers_worker ON answers (room_id, worker_id) INCLUDE (task_id, lead_time_ms);

-- No statement ranks open tasks by their answers any more (the rooms and
-- batch assignment do it in memory), so tasks_need's answered column only
-- made every answer move its task's entry. The listings by state and the
-- counts by state need (room_id, state) and the id order.
DROP INDEX tasks_need;
CREATE INDEX tasks_state ON tasks (room_id, state, id);
