-- Crowdroom schema v9 (PostgreSQL): one index on the queue's order, not two.
-- tasks_need (room_id, state, answered DESC, id) serves every read that
-- tasks_queue (room_id, state, answered, id) served, and every answer moves
-- its task in both: under a crowd that was pages of every commit.
DROP INDEX tasks_queue;
