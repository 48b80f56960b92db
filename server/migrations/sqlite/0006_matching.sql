-- Crowdroom schema v6 (SQLite): an index in the order the matcher reads
-- (nearest to completion first, then oldest), so picking candidates among
-- a million open tasks reads a few index entries instead of sorting them.
CREATE INDEX tasks_need ON tasks (room_id, state, answered DESC, id);
