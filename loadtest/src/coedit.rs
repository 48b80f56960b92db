//! The co-editing client: one y-websocket (or Hocuspocus) socket that syncs, then writes to
//! the room's shared map at `--rate` and times every update it receives.
//!
//! Fan-out is measured without decoding: before sending, the editor puts the
//! update's `(client, clock)` and send time in its room's pending map; a
//! receiver reads the key from the frame header and looks it up. The sender's
//! own receipt is the echo (on Crowdroom: committed), so it is the
//! acknowledgement; every other receipt is a delivery. An entry leaves the
//! map when its last receipt arrives, so what remains at the end is exactly
//! what was never delivered.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crowdroom_crdt::Message;
use futures_util::SinkExt;
use rand::{Rng, SeedableRng};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::metrics::{Hist, add};
use crate::net::read_cause;
use crate::run::{Ctx, EditorResult, Pending};
use crate::ywire::{
    Editor, Framing, Inbound, Incoming, UpdateKey, awareness_frame, next_incoming, open_doc, sync,
    update_key,
};

/// The y-websocket provider renews its awareness state this often.
pub const AWARENESS_RENEWAL: Duration = Duration::from_secs(15);
/// How long closing a socket may take at the end.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Spawns one editor per client of every room; `ordinal_base` and
/// `ordinal_step` place them in the ramp-up next to other sockets (mix).
pub fn spawn_editors(
    ctx: &Arc<Ctx>,
    ordinal_base: usize,
    ordinal_step: usize,
) -> Vec<tokio::task::JoinHandle<EditorResult>> {
    let mut handles = Vec::with_capacity(ctx.rooms.len() * ctx.cli.clients_per_room);
    for slot in 0..ctx.cli.clients_per_room {
        for position in 0..ctx.rooms.len() {
            let ordinal = ordinal_base + (slot * ctx.rooms.len() + position) * ordinal_step;
            handles.push(tokio::spawn(run_editor(
                ctx.clone(),
                position,
                slot,
                ordinal,
            )));
        }
    }
    handles
}

async fn run_editor(ctx: Arc<Ctx>, position: usize, slot: usize, ordinal: usize) -> EditorResult {
    let number = ctx.client_number(position, slot);
    let mut result = EditorResult {
        room_position: position,
        ..EditorResult::default()
    };
    let Some(room) = ctx.rooms.get(position) else {
        return result;
    };
    let client_id = rand::random::<u64>() & ((1 << 53) - 1);
    let mut editor = Editor::new(client_id, number, ctx.cli.value_size);
    let is_replica = slot == 0;

    tokio::time::sleep_until(ctx.connect_at(ordinal)).await;
    if ctx.stopped() {
        return result;
    }
    let counters = &ctx.metrics.counters;
    let (mut ws, framing, permit) = {
        let permit = ctx.connect_slots.acquire().await.ok();
        let framing = room.framing(&ctx.cli);
        let opened = open_doc(&ctx, room, Some(slot), |frame| {
            on_frame(&ctx, position, slot, number, None, &framing, frame);
        })
        .await;
        match opened {
            Ok((ws, framing, connected)) => {
                ctx.metrics.record(number, Hist::Connect, connected);
                (ws, framing, permit)
            }
            Err(cause) => {
                ctx.metrics.error(cause);
                add(&counters.connect_failed, 1);
                return result;
            }
        }
    };
    counters.open.fetch_add(1, Ordering::Relaxed);
    let synced_at = Instant::now();
    let synced = sync(&mut ws, &framing, |frame| {
        on_frame(&ctx, position, slot, number, None, &framing, frame);
    })
    .await;
    drop(permit);
    match synced {
        Ok(update) => {
            ctx.metrics.record(number, Hist::Sync, synced_at.elapsed());
            add(&counters.connected, 1);
            if is_replica && let Err(error) = editor.apply(&update) {
                ctx.metrics.error(format!("replica: {error}"));
            }
        }
        Err(cause) => {
            ctx.metrics.error(cause);
            add(&counters.connect_failed, 1);
            counters.open.fetch_sub(1, Ordering::Relaxed);
            return result;
        }
    }

    // Each client starts at a random phase of its period so the load is smooth.
    let period = Duration::from_secs_f64(1.0 / ctx.cli.rate);
    let mut rng = rand::rngs::StdRng::seed_from_u64(
        ctx.cli.seed ^ (number as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    let first = ctx.window_start.max(Instant::now()) + period.mul_f64(rng.random::<f64>());
    let mut edits = tokio::time::interval_at(first, period);
    // Open loop: a late generator catches up rather than silently lowering the rate.
    edits.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut awareness = tokio::time::interval(AWARENESS_RENEWAL);
    let mut awareness_clock = 0u64;
    let mut stop = ctx.stop.subscribe();
    let mut intact = true;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            scheduled = edits.tick(), if scheduled_before(&ctx) => {
                if scheduled >= ctx.window_end {
                    continue;
                }
                ctx.metrics.record(number, Hist::SendLag, scheduled.elapsed());
                let Some((frame, key)) = editor.next_edit() else {
                    ctx.metrics.error("editor: update without a struct");
                    continue;
                };
                expect_receipts(&ctx, position, slot, key);
                add(&counters.edits_sent, 1);
                if let Err(error) = ws.send(WsMessage::Binary(framing.wrap(frame).into())).await {
                    ctx.metrics.error(format!("send: {}", read_cause(&error)));
                    intact = false;
                    break;
                }
            }
            _ = awareness.tick(), if ctx.cli.awareness => {
                let frame = framing.wrap(awareness_frame(editor.client_id(), awareness_clock));
                awareness_clock += 1;
                if let Err(error) = ws.send(WsMessage::Binary(frame.into())).await {
                    ctx.metrics.error(format!("send: {}", read_cause(&error)));
                    intact = false;
                    break;
                }
            }
            incoming = next_incoming(&mut ws) => match incoming {
                Incoming::Binary(frame) => {
                    on_frame(&ctx, position, slot, number, is_replica.then_some(&editor), &framing, &frame);
                }
                Incoming::Text(_) => ctx.metrics.error("text frame on a y-websocket"),
                Incoming::Closed(cause) => {
                    ctx.metrics.error(cause);
                    add(&counters.dropped, 1);
                    intact = false;
                    break;
                }
            },
        }
    }
    if intact {
        // Closing politely; the run is over either way.
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(None)).await;
    }
    counters.open.fetch_sub(1, Ordering::Relaxed);
    result.own = editor.own_values();
    result.replica = (is_replica && intact).then(|| editor.contents());
    result.intact = intact;
    result
}

/// Editing stops at the end of the window; the tick branch is then disabled.
fn scheduled_before(ctx: &Ctx) -> bool {
    Instant::now() < ctx.window_end
}

/// Registers an update about to be sent: every client of the room should
/// receive it once (the peers as a relay, the sender as its echo).
fn expect_receipts(ctx: &Ctx, position: usize, slot: usize, key: UpdateKey) {
    let receipts = ctx.cli.clients_per_room as u32;
    if let Some(pending) = ctx.pending.get(position) {
        let mut pending = pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pending.insert(
            key,
            Pending {
                sent: Instant::now(),
                sender: slot,
                remaining: receipts,
            },
        );
    }
    ctx.metrics
        .counters
        .outstanding
        .fetch_add(i64::from(receipts), Ordering::Relaxed);
}

/// Handles one binary frame: times updates, feeds the replica.
fn on_frame(
    ctx: &Ctx,
    position: usize,
    slot: usize,
    number: usize,
    replica: Option<&Editor>,
    framing: &Framing,
    frame: &[u8],
) {
    let body = match framing.unwrap(frame) {
        Inbound::Y(body) => body,
        Inbound::SyncStatus(true)
        | Inbound::Authenticated(_)
        | Inbound::TokenRequest
        | Inbound::Ignored => return,
        Inbound::SyncStatus(false) => {
            ctx.metrics
                .error("hocuspocus: update not saved (sync status 0)");
            return;
        }
        Inbound::PermissionDenied(reason) => {
            ctx.metrics.error(format!("permission denied: {reason}"));
            return;
        }
        Inbound::Close(reason) => {
            ctx.metrics.error(format!("hocuspocus close: {reason}"));
            return;
        }
        Inbound::OtherDocument => {
            ctx.metrics.error("hocuspocus: frame for another document");
            return;
        }
        Inbound::Malformed(what) => {
            ctx.metrics
                .error(format!("malformed frame from the server: {what}"));
            return;
        }
    };
    let update = match Message::decode(&body) {
        Ok(Message::Update(update) | Message::SyncStep2(update)) => update,
        Ok(Message::Awareness(_) | Message::SyncStep1(_) | Message::QueryAwareness) => return,
        Ok(Message::PermissionDenied(reason)) => {
            ctx.metrics.error(format!("permission denied: {reason}"));
            return;
        }
        Err(_) => {
            ctx.metrics.error("malformed frame from the server");
            return;
        }
    };
    if let Some(replica) = replica
        && let Err(error) = replica.apply(update)
    {
        ctx.metrics.error(format!("replica: {error}"));
    }
    let Some(key) = update_key(update) else {
        return;
    };
    let now = Instant::now();
    let receipt = ctx.pending.get(position).and_then(|pending| {
        let mut pending = pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = pending.get_mut(&key)?;
        let found = (
            now.saturating_duration_since(entry.sent),
            entry.sender == slot,
        );
        entry.remaining = entry.remaining.saturating_sub(1);
        if entry.remaining == 0 {
            pending.remove(&key);
        }
        Some(found)
    });
    let counters = &ctx.metrics.counters;
    match receipt {
        Some((latency, own)) => {
            counters.outstanding.fetch_sub(1, Ordering::Relaxed);
            if own {
                ctx.metrics.record(number, Hist::Ack, latency);
                add(&counters.acks, 1);
            } else {
                ctx.metrics.record(number, Hist::Fanout, latency);
                add(&counters.deliveries, 1);
            }
        }
        None => add(&counters.unexpected, 1),
    }
}
