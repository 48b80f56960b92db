-- Crowdroom schema v8 (PostgreSQL): moderation. A room can be locked and carry
-- one announcement; members can be muted until a time; every moderator
-- action is kept in an append-only log.
ALTER TABLE rooms ADD COLUMN locked BIGINT NOT NULL DEFAULT 0;
ALTER TABLE rooms ADD COLUMN lock_reason TEXT;
ALTER TABLE rooms ADD COLUMN announcement TEXT;
ALTER TABLE rooms ADD COLUMN announcement_by TEXT;
ALTER TABLE rooms ADD COLUMN announcement_at BIGINT;

CREATE TABLE mutes (
    room_id     TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL,
    until_ms    BIGINT NOT NULL,
    by_user     TEXT NOT NULL,
    reason      TEXT,
    PRIMARY KEY (room_id, user_id)
);

CREATE TABLE moderation_log (
    id          BIGSERIAL PRIMARY KEY,
    room_id     TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT,
    detail      TEXT,
    at          BIGINT NOT NULL
);
CREATE INDEX moderation_log_room ON moderation_log (room_id, id);
