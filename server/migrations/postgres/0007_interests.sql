-- Crowdroom schema v7 (PostgreSQL): topics on tasks and members' interests,
-- a secondary term of matching.
ALTER TABLE tasks ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';

CREATE TABLE member_interests (
    room_id     TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL,
    interest    TEXT NOT NULL,
    PRIMARY KEY (room_id, user_id, interest)
);
