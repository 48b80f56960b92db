-- Crowdroom schema v10 (PostgreSQL): one owner per room. A process runs a room
-- only while it holds the room's lease: `owner` is the random id the
-- process chose at start, `epoch` grows by one at every take (never
-- reset: a released lease keeps its row, expired), and `expires_at` (ms)
-- is pushed forward by the owner's renewals. Another process may take the
-- lease only once it has expired (rooms/lease.rs).
CREATE TABLE room_leases (
    room_id     TEXT PRIMARY KEY REFERENCES rooms(id) ON DELETE CASCADE,
    owner       TEXT NOT NULL,
    epoch       BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
