-- Crowdroom schema v1 (SQLite). Timestamps are milliseconds since the Unix epoch.
CREATE TABLE rooms (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE members (
    room_id     TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    hash        TEXT NOT NULL UNIQUE,
    room_id     TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked_at  BIGINT
);
CREATE INDEX tokens_revoked ON tokens (revoked_at);
CREATE INDEX tokens_room_user ON tokens (room_id, user_id);

CREATE TABLE docs (
    room_id     TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (room_id, name)
);

CREATE TABLE doc_updates (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id  TEXT NOT NULL,
    doc      TEXT NOT NULL,
    data     BLOB NOT NULL
);
CREATE INDEX doc_updates_doc ON doc_updates (room_id, doc, id);

CREATE TABLE doc_snapshots (
    room_id     TEXT NOT NULL,
    doc         TEXT NOT NULL,
    upto_id     BIGINT NOT NULL,
    data        BLOB NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (room_id, doc)
);

CREATE TABLE chat_messages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id     TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    edited_at   BIGINT,
    deleted_at  BIGINT,
    deleted_by  TEXT
);
CREATE INDEX chat_messages_room ON chat_messages (room_id, id);
