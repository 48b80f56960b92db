//! A connection's two budgets for what waits to be written: bytes (the
//! byte accounting of the outbound queue, [`OUTBOUND_BUDGET`] besides the
//! largest frame) and time (the [`WriteDeadline`] of a burst being
//! written, kept in keepalive sweeps). The queue and the close signal in
//! `conn.rs` apply them under their lock and atomics; the arithmetic and
//! the limits live here, apart from the plumbing that wakes the writer.

use std::collections::VecDeque;
use std::time::Duration;

use axum::extract::ws::Message;

/// Bytes that may wait for one connection, queued or in the burst being
/// written, besides the largest single frame among them: several seconds
/// of a busy room's traffic for a client on a slow link. (The 600 sync
/// step 1 of a viewer that never read once held 360 MiB for one socket.)
pub const OUTBOUND_BUDGET: u32 = 4 * 1024 * 1024;

/// What `write_sweeps` holds when no write is in progress.
pub(super) const NOT_WRITING: u32 = 0;
/// What `write_sweeps` holds once the write in progress is overdue: the
/// socket abandons it.
pub(super) const ABANDONED: u32 = u32::MAX;

/// How long one burst's write may take before the peer counts as not
/// reading: `base`, plus a second per `bytes_per_second` bytes of the
/// burst (a burst holding a whole large document takes a slow link a
/// while). Counted in keepalive sweeps, so a write is abandoned between
/// the deadline and a second after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteDeadline {
    /// Allowed for any burst: 20 s, more than any healthy client needs for
    /// a burst of small frames, less than the 30 s after which y-websocket
    /// itself gives up on a silent server.
    pub base: Duration,
    /// The slowest link a client is expected to read on: 256 KiB/s
    /// (2 Mbit/s), so a 16 MiB document gets 64 s more.
    pub bytes_per_second: u32,
}

impl Default for WriteDeadline {
    fn default() -> Self {
        WriteDeadline {
            base: Duration::from_secs(20),
            bytes_per_second: 256 * 1024,
        }
    }
}

/// A [`WriteDeadline`] in keepalive sweeps (one a second), as each
/// connection keeps it: 8 bytes rather than a `Duration`'s 16.
#[derive(Debug, Clone, Copy)]
pub(super) struct DeadlineSweeps {
    base: u32,
    bytes_per_second: u32,
}

impl From<WriteDeadline> for DeadlineSweeps {
    fn from(deadline: WriteDeadline) -> Self {
        DeadlineSweeps {
            base: u32::try_from(deadline.base.as_secs()).unwrap_or(u32::MAX),
            bytes_per_second: deadline.bytes_per_second,
        }
    }
}

impl DeadlineSweeps {
    /// Sweeps allowed for a burst of `bytes`; at least one.
    pub(super) fn for_burst(self, bytes: u32) -> u32 {
        let extra = bytes.checked_div(self.bytes_per_second).unwrap_or(0);
        self.base.saturating_add(extra).max(1)
    }
}

/// The frames waiting for one connection, and what they weigh.
#[derive(Default)]
pub(super) struct Queue {
    pub(super) frames: VecDeque<Message>,
    /// Bytes of `frames`.
    pub(super) queued_bytes: u32,
    /// The largest frame in `frames`.
    pub(super) queued_largest: u32,
    /// Bytes of the burst being written (taken, not yet written).
    pub(super) writing_bytes: u32,
    /// The largest frame of that burst.
    pub(super) writing_largest: u32,
    /// Bursts taken for writing so far: a frame pushed when this is `n`
    /// goes out in burst `n + 1`.
    pub(super) taken: u32,
    /// Bursts whose write completed (or failed) so far.
    pub(super) written: u32,
}

impl Queue {
    /// Whether a frame of `len` bytes may join: the bytes waiting (queued
    /// and being written) with it, less the largest single frame among
    /// them, stay within [`OUTBOUND_BUDGET`].
    pub(super) fn fits(&self, len: u32) -> bool {
        let waiting = self
            .queued_bytes
            .saturating_add(self.writing_bytes)
            .saturating_add(len);
        let largest = len.max(self.queued_largest).max(self.writing_largest);
        waiting.saturating_sub(largest) <= OUTBOUND_BUDGET
    }
}

/// What a frame weighs in the budget: its payload.
pub(super) fn frame_len(message: &Message) -> u32 {
    let len = match message {
        Message::Text(text) => text.len(),
        Message::Binary(bytes) | Message::Ping(bytes) | Message::Pong(bytes) => bytes.len(),
        Message::Close(frame) => frame.as_ref().map_or(0, |frame| frame.reason.len()),
    };
    u32::try_from(len).unwrap_or(u32::MAX)
}
