-- Crowdroom schema v5 (PostgreSQL): reviewers' decisions on tasks, append-only.
-- A task whose method is 'review' carries a reviewer's final answer: no
-- automatic step overwrites it.
CREATE TABLE task_reviews (
    id          BIGSERIAL PRIMARY KEY,
    task_id     BIGINT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    room_id     TEXT NOT NULL,
    reviewer    TEXT NOT NULL,
    decision    TEXT NOT NULL,
    answer      TEXT,
    previous    TEXT,
    reason      TEXT,
    at          BIGINT NOT NULL
);
CREATE INDEX task_reviews_task ON task_reviews (task_id, id);
