-- Crowdroom schema v2 (SQLite): projects, tasks, reservations, answers.
-- Invariants the queries keep (see server/src/store/work.rs):
--   reserved = live or not-yet-swept reservations of the task,
--   answered = answers of the task,
--   reserved + answered <= overlap_target at every commit.
CREATE TABLE projects (
    room_id             TEXT PRIMARY KEY REFERENCES rooms(id) ON DELETE CASCADE,
    config              TEXT NOT NULL,
    updated_at          BIGINT NOT NULL
);

CREATE TABLE tasks (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id         TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    external_id     TEXT NOT NULL,
    data            TEXT NOT NULL,
    skills          TEXT NOT NULL,
    gold            TEXT,
    overlap_target  BIGINT NOT NULL,
    reserved        BIGINT NOT NULL DEFAULT 0,
    answered        BIGINT NOT NULL DEFAULT 0,
    state           TEXT NOT NULL DEFAULT 'open',
    consensus       TEXT,
    confidence      REAL,
    method          TEXT,
    created_at      BIGINT NOT NULL,
    completed_at    BIGINT,
    UNIQUE (room_id, external_id),
    CHECK (reserved >= 0 AND answered >= 0 AND reserved + answered <= overlap_target)
);
CREATE INDEX tasks_queue ON tasks (room_id, state, answered, id);

CREATE TABLE reservations (
    task_id     BIGINT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    worker_id   TEXT NOT NULL,
    room_id     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    cap_at      BIGINT NOT NULL,
    PRIMARY KEY (task_id, worker_id)
);
CREATE INDEX reservations_expiry ON reservations (expires_at);
CREATE INDEX reservations_worker ON reservations (room_id, worker_id);

CREATE TABLE answers (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id       BIGINT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    room_id       TEXT NOT NULL,
    worker_id     TEXT NOT NULL,
    answer        TEXT NOT NULL,
    lead_time_ms  BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    UNIQUE (task_id, worker_id)
);
CREATE INDEX answers_worker ON answers (room_id, worker_id);

CREATE TABLE skips (
    task_id     BIGINT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    worker_id   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (task_id, worker_id)
);

CREATE TABLE member_skills (
    room_id     TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL,
    skill       TEXT NOT NULL,
    PRIMARY KEY (room_id, user_id, skill)
);
