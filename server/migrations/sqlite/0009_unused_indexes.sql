-- Crowdroom schema v9 (SQLite): two indexes no read uses, which every
-- answer (and, for the second, every grant and heartbeat) still wrote.
-- tasks_need (room_id, state, answered DESC, id) serves every read that
-- tasks_queue (room_id, state, answered, id) served, and every answer moved
-- its task in both. Every read of reservations by expiry also names the
-- room or the task (reservations_worker, the primary key), so nothing reads
-- reservations_expiry (expires_at), which every heartbeat moved an entry of.
DROP INDEX tasks_queue;
DROP INDEX reservations_expiry;
