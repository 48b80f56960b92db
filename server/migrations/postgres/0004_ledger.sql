-- Crowdroom schema v4 (PostgreSQL): the fair-pay ledger.
-- Entries are never deleted and their amounts never change; every state
-- change is an appended event (the audit trail), and `state` on the entry
-- is the latest event's state, kept for queries.
CREATE TABLE ledger_entries (
    id               BIGSERIAL PRIMARY KEY,
    room_id          TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    worker_id        TEXT NOT NULL,
    kind             TEXT NOT NULL,
    answer_id        BIGINT UNIQUE,
    amount           BIGINT NOT NULL CHECK (amount >= 0),
    reason           TEXT,
    idempotency_key  TEXT,
    state            TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    UNIQUE (room_id, idempotency_key)
);
CREATE INDEX ledger_entries_worker ON ledger_entries (room_id, worker_id, id);
CREATE INDEX ledger_entries_state ON ledger_entries (room_id, state, created_at);

CREATE TABLE ledger_events (
    id        BIGSERIAL PRIMARY KEY,
    entry_id  BIGINT NOT NULL REFERENCES ledger_entries(id) ON DELETE CASCADE,
    state     TEXT NOT NULL,
    reason    TEXT,
    actor     TEXT NOT NULL,
    at        BIGINT NOT NULL
);
CREATE INDEX ledger_events_entry ON ledger_events (entry_id, id);
