-- Crowdroom schema v14 (SQLite): server operators. An operator token is
-- issued from the command line only (`crowdroom operator issue`); it opens
-- no room by itself, only the operator's API (every room's figures, and a
-- moderator token for any room, which is an ordinary room token).
CREATE TABLE operator_tokens (
    id          TEXT PRIMARY KEY,
    hash        TEXT NOT NULL UNIQUE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked_at  BIGINT
);
