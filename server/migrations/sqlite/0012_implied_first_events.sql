-- Crowdroom schema v12 (SQLite): an answer's ledger entry no longer stores
-- its first event (pending, by its creator, at its creation): the entry
-- implies it (Store::ledger_events), which saves every answer a row and
-- an index entry. No move leads back to pending, so the pending events of
-- answers' entries are exactly those first events.
DELETE FROM ledger_events WHERE state = 'pending'
    AND entry_id IN (SELECT id FROM ledger_entries WHERE kind = 'answer');
