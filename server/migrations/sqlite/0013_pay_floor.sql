-- Crowdroom schema v13 (SQLite): the pay floor (server/work/src/floor.rs).
-- Time on reservations that ended without an answer through no fault of
-- their holder (freed by a moderator, or expired at the project's cap):
-- the floor counts it as worked time.
CREATE TABLE no_fault_time (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id    TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    worker_id  TEXT NOT NULL,
    task_id    BIGINT NOT NULL,
    why        TEXT NOT NULL,
    ms         BIGINT NOT NULL CHECK (ms >= 0),
    at         BIGINT NOT NULL
);
CREATE INDEX no_fault_time_room ON no_fault_time (room_id, at);

-- Each floor check of a room (at a payout, or the daily one): the period
-- of the next starts where the last ended.
CREATE TABLE pay_floor_runs (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id  TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    at       BIGINT NOT NULL,
    reason   TEXT NOT NULL,
    actor    TEXT NOT NULL
);
CREATE INDEX pay_floor_runs_room ON pay_floor_runs (room_id, at);

-- 1 when the latest rejection of the entry was not the worker's fault (a
-- broken task, unclear instructions): its time still counts for the floor.
ALTER TABLE ledger_entries ADD COLUMN no_fault BIGINT NOT NULL DEFAULT 0;
