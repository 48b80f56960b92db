-- Crowdroom schema v3 (PostgreSQL): worker quality (reputation) and pausing.
-- One row per worker and skill; skill '' is the worker's overall record.
CREATE TABLE worker_stats (
    room_id          TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    worker_id        TEXT NOT NULL,
    skill            TEXT NOT NULL,
    gold_correct     BIGINT NOT NULL DEFAULT 0,
    gold_total       BIGINT NOT NULL DEFAULT 0,
    agree            BIGINT NOT NULL DEFAULT 0,
    disagree         BIGINT NOT NULL DEFAULT 0,
    answers          BIGINT NOT NULL DEFAULT 0,
    lead_time_total  BIGINT NOT NULL DEFAULT 0,
    fast_answers     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, worker_id, skill)
);

CREATE TABLE paused_workers (
    room_id     TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    worker_id   TEXT NOT NULL,
    reason      TEXT NOT NULL,
    paused_at   BIGINT NOT NULL,
    PRIMARY KEY (room_id, worker_id)
);

-- 1 or 0 for answers to gold tasks, NULL otherwise.
ALTER TABLE answers ADD COLUMN correct BIGINT;
