//! The server's view of y-protocols awareness (cursors, names, presence) for
//! one document.
//!
//! y-protocols has no server role: every peer keeps every peer's state and
//! its own 30 s timer. The server needs a little more than a peer: it must
//! know which connection announced which client ids (to announce their
//! removal when the connection closes), it must not trust clients with its
//! memory, and it must be testable without a clock. So [`AwarenessRegistry`]
//! takes the time as an argument, tracks an *owner* (a connection id chosen
//! by the server) per client id, and bounds what one owner can store.
//!
//! Wire format (y-protocols `encodeAwarenessUpdate`): varuint count, then per
//! entry varuint clientID, varuint clock, varString JSON state, where the
//! state `null` means "this client left".
//!
//! Rules, as in y-protocols `applyAwarenessUpdate`: an entry wins if its
//! clock is greater than the known one, or equal with a `null` state that
//! removes a live client. Two deliberate differences: an entry for a client
//! never seen before wins at any clock (y-protocols ignores clock 0 there,
//! which would hide a client that never changed its initial state), and
//! entries a y-protocols peer could not handle are ignored (see
//! [`AwarenessRegistry::apply`]).
//!
//! And one rule y-protocols peers do not need, since each trusts the
//! others: a live client id belongs to the owner that announced it until
//! that owner removes it or leaves (or it expires). An entry from another
//! owner, a new state or a `null`, is ignored, so one connection cannot
//! rewrite or hide another's cursor; the server may let an owner it
//! trusts take an id over ([`AwarenessRegistry::apply_accepted_with`]: the
//! same user reconnecting). A removed id is free again.

use std::collections::{BTreeSet, HashMap, VecDeque};

use crate::encoding::{DecodeError, Reader, write_var_string, write_var_u64};

/// Most live client ids one owner may announce. A browser tab announces one;
/// the rest of the headroom is for tools that multiplex a few documents.
pub const MAX_CLIENTS_PER_OWNER: usize = 64;
/// Largest awareness state kept, in bytes of JSON. A cursor plus a user
/// name is well under 1 KiB; 64 KiB leaves room for avatars as data URLs.
pub const MAX_STATE_BYTES: usize = 64 * 1024;
/// Most removed clients remembered (to make stale entries lose). Oldest are
/// forgotten first; they are also forgotten by [`AwarenessRegistry::expire`].
pub const MAX_TOMBSTONES: usize = 1024;
/// Largest client id or clock accepted: JavaScript's `Number.MAX_SAFE_INTEGER`.
/// lib0 in the browser throws on bigger varuints, so relaying one would break
/// every peer.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;
/// How far the clock of a removed client is advanced in the removal the
/// server announces ([`AwarenessRegistry::remove_owner`], `expire`).
///
/// y-protocols peers already accept a `null` entry at the *same* clock for a
/// live client; the extra step also beats an in-flight renewal at that clock.
/// The cost: a client that reconnects with its old clock stays hidden until
/// its second renewal (up to 30 s) instead of its first (up to 15 s).
pub const REMOVAL_CLOCK_STEP: u64 = 1;
/// The JSON state that means "removed".
const NULL_STATE: &str = "null";

/// One entry of an awareness update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwarenessEntry {
    /// The Yjs client id (`doc.clientID`) the state belongs to.
    pub client_id: u64,
    /// Lamport-style counter; the owner bumps it on every change and every
    /// 15 s renewal.
    pub clock: u64,
    /// The state as JSON text; `"null"` means the client is gone.
    pub state: String,
}

/// A decoded awareness update.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AwarenessUpdate {
    /// The entries in wire order.
    pub entries: Vec<AwarenessEntry>,
}

impl AwarenessUpdate {
    /// Decodes y-protocols awareness bytes. Bytes after the last entry are
    /// ignored, as y-protocols ignores them. JSON is not checked here.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let count = reader.read_var_u64()?;
        // Each entry takes at least three bytes, so a count claiming more is
        // a lie; checking first keeps the loop and the vector bounded.
        if count > (reader.remaining() / 3) as u64 {
            return Err(DecodeError::Truncated);
        }
        let mut entries = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let client_id = reader.read_var_u64()?;
            let clock = reader.read_var_u64()?;
            let state = reader.read_var_string()?.to_owned();
            entries.push(AwarenessEntry {
                client_id,
                clock,
                state,
            });
        }
        Ok(AwarenessUpdate { entries })
    }

    /// Encodes the update in y-protocols format.
    pub fn encode(&self) -> Vec<u8> {
        let state_bytes: usize = self
            .entries
            .iter()
            .map(|entry| entry.state.len() + 24)
            .sum();
        let mut out = Vec::with_capacity(state_bytes + 10);
        write_var_u64(&mut out, self.entries.len() as u64);
        for entry in &self.entries {
            write_var_u64(&mut out, entry.client_id);
            write_var_u64(&mut out, entry.clock);
            write_var_string(&mut out, &entry.state);
        }
        out
    }
}

/// What the registry knows about one client id.
#[derive(Debug)]
struct ClientRecord {
    /// Highest clock accepted; kept after removal so stale entries lose.
    clock: u64,
    /// The JSON state, or `None` once removed (a tombstone).
    state: Option<String>,
    /// The connection that announced the live state; `None` for tombstones.
    owner: Option<u64>,
    /// When the state was last accepted, or when it was removed.
    last_seen_ms: u64,
}

/// Tracks which connection ("owner", a u64 chosen by the server) announced
/// which awareness client ids, their clocks, states and last-seen times.
#[derive(Debug, Default)]
pub struct AwarenessRegistry {
    /// Every live client and every remembered removal, by client id.
    clients: HashMap<u64, ClientRecord>,
    /// Live client ids per owner; an owner with none has no entry.
    owners: HashMap<u64, BTreeSet<u64>>,
    /// Removed client ids in removal order, to forget the oldest beyond
    /// [`MAX_TOMBSTONES`]. Bounded by that same cap. An id revived since is
    /// skipped when popped; an id removed twice is forgotten at its first
    /// position, which only shortens how long its removal is remembered.
    tombstone_order: VecDeque<u64>,
    /// Latest time passed in, used to stamp removals made without a time.
    latest_ms: u64,
}

impl AwarenessRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies an update sent by `owner` at `now_ms`, with y-protocols' rules
    /// (an entry wins if its clock is greater, or equal with a null state
    /// removing a live one), for the client ids `owner` may change (new
    /// ones, removed ones, its own: not another owner's live ones). Returns
    /// whether anything changed.
    ///
    /// Entries that lose are ignored. A `"null"` state removes the client but
    /// keeps its clock, so later stale entries still lose. A winning entry
    /// refreshes the client's last-seen time (y-protocols clients renew with
    /// clock + 1 every 15 s, so a renewal is just a normal win) and makes
    /// `owner` its owner.
    ///
    /// Also ignored, to bound memory and protect peers: entries that would
    /// give `owner` more than [`MAX_CLIENTS_PER_OWNER`] live clients, states
    /// over [`MAX_STATE_BYTES`], states that are not valid JSON, and client
    /// ids or clocks above [`MAX_SAFE_INTEGER`].
    pub fn apply(&mut self, owner: u64, update: &AwarenessUpdate, now_ms: u64) -> bool {
        self.apply_accepted(owner, update, now_ms).is_some()
    }

    /// Like [`apply`](Self::apply), but returns the encoded update of the
    /// entries that changed something, or `None`. This is what the server
    /// should broadcast: relaying the sender's raw bytes would also relay the
    /// entries the registry ignored.
    pub fn apply_accepted(
        &mut self,
        owner: u64,
        update: &AwarenessUpdate,
        now_ms: u64,
    ) -> Option<Vec<u8>> {
        self.apply_accepted_with(owner, update, now_ms, |_| false)
    }

    /// Like [`apply_accepted`](Self::apply_accepted), but `owner` may also
    /// change a live client id of another owner `previous` when
    /// `may_take_over(previous)` says so (the server: both connections are
    /// the same user's, a tab reconnecting before its old socket is seen
    /// closed). The id then moves to `owner`.
    pub fn apply_accepted_with(
        &mut self,
        owner: u64,
        update: &AwarenessUpdate,
        now_ms: u64,
        may_take_over: impl Fn(u64) -> bool,
    ) -> Option<Vec<u8>> {
        self.latest_ms = self.latest_ms.max(now_ms);
        let mut accepted = Vec::new();
        for entry in &update.entries {
            if self.apply_entry(owner, entry, now_ms, &may_take_over) {
                accepted.push(entry.clone());
            }
        }
        self.forget_excess_tombstones();
        encode_entries(accepted)
    }

    /// Removes every live client announced by `owner` (its connection closed)
    /// and returns the encoded awareness update announcing their removal
    /// (clock + [`REMOVAL_CLOCK_STEP`], state `null`), or `None` if it had none.
    pub fn remove_owner(&mut self, owner: u64) -> Option<Vec<u8>> {
        let client_ids = self.owners.remove(&owner)?;
        let removed_at = self.latest_ms;
        let removals = client_ids
            .into_iter()
            .filter_map(|client_id| self.tombstone(client_id, removed_at))
            .collect();
        self.forget_excess_tombstones();
        encode_entries(removals)
    }

    /// Removes live clients not seen for more than `timeout_ms` and returns
    /// the encoded removal update, or `None`. Also forgets removals older
    /// than `timeout_ms`: by then no stale entry is still in flight.
    pub fn expire(&mut self, now_ms: u64, timeout_ms: u64) -> Option<Vec<u8>> {
        self.latest_ms = self.latest_ms.max(now_ms);
        let is_old =
            |record: &ClientRecord| now_ms.saturating_sub(record.last_seen_ms) > timeout_ms;
        self.clients
            .retain(|_, record| record.state.is_some() || !is_old(record));
        let mut stale: Vec<u64> = self
            .clients
            .iter()
            .filter(|(_, record)| record.state.is_some() && is_old(record))
            .map(|(client_id, _)| *client_id)
            .collect();
        stale.sort_unstable();
        let removals = stale
            .into_iter()
            .filter_map(|client_id| self.tombstone(client_id, now_ms))
            .collect();
        self.forget_excess_tombstones();
        encode_entries(removals)
    }

    /// The encoded update of every live client's current state, or `None` if
    /// none is live (sent to a newly connected client and in answer to
    /// query-awareness).
    pub fn encode_all(&self) -> Option<Vec<u8>> {
        let mut live: Vec<AwarenessEntry> = self
            .clients
            .iter()
            .filter_map(|(client_id, record)| {
                let state = record.state.as_ref()?;
                Some(AwarenessEntry {
                    client_id: *client_id,
                    clock: record.clock,
                    state: state.clone(),
                })
            })
            .collect();
        live.sort_unstable_by_key(|entry| entry.client_id);
        encode_entries(live)
    }

    /// How many clients have a live state.
    pub fn live_count(&self) -> usize {
        self.owners.values().map(BTreeSet::len).sum()
    }

    /// The live client ids `owner` announced, in ascending order.
    pub fn owned_by(&self, owner: u64) -> Vec<u64> {
        self.owners
            .get(&owner)
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Applies one entry; returns whether it changed something.
    fn apply_entry(
        &mut self,
        owner: u64,
        entry: &AwarenessEntry,
        now_ms: u64,
        may_take_over: &impl Fn(u64) -> bool,
    ) -> bool {
        if entry.client_id > MAX_SAFE_INTEGER
            || entry.clock > MAX_SAFE_INTEGER
            || entry.state.len() > MAX_STATE_BYTES
            || serde_json::from_str::<serde::de::IgnoredAny>(&entry.state).is_err()
        {
            return false;
        }
        let is_null = entry.state.trim() == NULL_STATE;
        let known = self.clients.get(&entry.client_id);
        // Only live ids have an owner; a tombstone is anyone's to revive.
        let held_by_another = known
            .and_then(|record| record.owner)
            .is_some_and(|previous| previous != owner && !may_take_over(previous));
        if held_by_another {
            return false;
        }
        let is_live = known.is_some_and(|record| record.state.is_some());
        let wins = match known {
            None => !is_null,
            Some(record) => {
                record.clock < entry.clock || (record.clock == entry.clock && is_null && is_live)
            }
        };
        if !wins {
            return false;
        }
        if is_null {
            if is_live {
                self.tombstone_at(entry.client_id, entry.clock, now_ms);
                return true;
            }
            // Already removed: remember the newer clock, nothing to announce.
            if let Some(record) = self.clients.get_mut(&entry.client_id) {
                record.clock = entry.clock;
            }
            return false;
        }
        let previous_owner = known.and_then(|record| record.owner);
        if previous_owner != Some(owner) && self.owned_count(owner) >= MAX_CLIENTS_PER_OWNER {
            return false;
        }
        if let Some(previous) = previous_owner.filter(|previous| *previous != owner) {
            self.disown(previous, entry.client_id);
        }
        self.owners
            .entry(owner)
            .or_default()
            .insert(entry.client_id);
        self.clients.insert(
            entry.client_id,
            ClientRecord {
                clock: entry.clock,
                state: Some(entry.state.clone()),
                owner: Some(owner),
                last_seen_ms: now_ms,
            },
        );
        true
    }

    /// Removes a live client with its clock advanced by
    /// [`REMOVAL_CLOCK_STEP`]; returns the removal entry, or `None` if it was
    /// not live.
    fn tombstone(&mut self, client_id: u64, removed_at: u64) -> Option<AwarenessEntry> {
        let record = self
            .clients
            .get(&client_id)
            .filter(|record| record.state.is_some())?;
        let clock = record.clock.saturating_add(REMOVAL_CLOCK_STEP);
        self.tombstone_at(client_id, clock, removed_at);
        Some(AwarenessEntry {
            client_id,
            clock,
            state: NULL_STATE.to_owned(),
        })
    }

    /// Turns a client into a tombstone at `clock`.
    fn tombstone_at(&mut self, client_id: u64, clock: u64, removed_at: u64) {
        let Some(record) = self.clients.get_mut(&client_id) else {
            return;
        };
        let owner = record.owner.take();
        record.clock = clock;
        record.state = None;
        record.last_seen_ms = removed_at;
        if let Some(owner) = owner {
            self.disown(owner, client_id);
        }
        self.tombstone_order.push_back(client_id);
    }

    /// Drops `client_id` from `owner`'s live set.
    fn disown(&mut self, owner: u64, client_id: u64) {
        if let Some(ids) = self.owners.get_mut(&owner) {
            ids.remove(&client_id);
            if ids.is_empty() {
                self.owners.remove(&owner);
            }
        }
    }

    /// How many live clients `owner` has.
    fn owned_count(&self, owner: u64) -> usize {
        self.owners.get(&owner).map_or(0, BTreeSet::len)
    }

    /// Forgets the oldest removals beyond [`MAX_TOMBSTONES`].
    fn forget_excess_tombstones(&mut self) {
        while self.tombstone_order.len() > MAX_TOMBSTONES {
            let Some(client_id) = self.tombstone_order.pop_front() else {
                break;
            };
            if self
                .clients
                .get(&client_id)
                .is_some_and(|record| record.state.is_none())
            {
                self.clients.remove(&client_id);
            }
        }
    }
}

/// Encodes `entries`, or `None` if there are none.
fn encode_entries(entries: Vec<AwarenessEntry>) -> Option<Vec<u8>> {
    if entries.is_empty() {
        return None;
    }
    Some(AwarenessUpdate { entries }.encode())
}

#[cfg(test)]
mod tests;
