//! The chat client: one live-channel socket (`/rooms/{room}/live`) that
//! waits for `hello`, then sends `chat.send` at `--rate` and times the reply
//! (committed) and the `chat.message` event at every client of the room.
//!
//! Fan-out needs no shared map here: the body carries the sender's number
//! and its send time (microseconds since the run's epoch, one process, one
//! clock), so a receiver computes the latency from the event alone. Frames
//! are parsed into borrowed fields only; unknown fields (presence lists,
//! message metadata) are skipped without being built.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::SinkExt;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::coedit::CLOSE_TIMEOUT;
use crate::metrics::{Hist, add};
use crate::net::{Ws, read_cause};
use crate::run::Ctx;
use crate::ywire::{Incoming, next_incoming};

/// How long the server may take to say `hello`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(15);
/// Marks the generator's chat bodies: `lt <sender> <seq> <micros>`.
pub const BODY_PREFIX: &str = "lt ";

/// One live-channel frame, only the fields the generator reads.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    /// Replies: the request id (ours are numbers).
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    ok: Option<bool>,
    #[serde(default, borrow)]
    error: Option<ErrorBody<'a>>,
    #[serde(default, borrow)]
    event: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    data: Option<EventData<'a>>,
}

#[derive(Deserialize)]
struct ErrorBody<'a> {
    #[serde(borrow)]
    code: Cow<'a, str>,
}

#[derive(Deserialize)]
struct EventData<'a> {
    #[serde(default, borrow)]
    body: Option<Cow<'a, str>>,
}

/// Spawns one chat client per client of every room.
pub fn spawn_chatters(
    ctx: &Arc<Ctx>,
    ordinal_base: usize,
    ordinal_step: usize,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut handles = Vec::with_capacity(ctx.rooms.len() * ctx.cli.clients_per_room);
    for slot in 0..ctx.cli.clients_per_room {
        for position in 0..ctx.rooms.len() {
            let ordinal = ordinal_base + (slot * ctx.rooms.len() + position) * ordinal_step;
            handles.push(tokio::spawn(run_chatter(
                ctx.clone(),
                position,
                slot,
                ordinal,
            )));
        }
    }
    handles
}

async fn run_chatter(ctx: Arc<Ctx>, position: usize, slot: usize, ordinal: usize) {
    let number = ctx.client_number(position, slot);
    let Some(room) = ctx.rooms.get(position) else {
        return;
    };
    tokio::time::sleep_until(ctx.connect_at(ordinal)).await;
    if ctx.stopped() {
        return;
    }
    let Some(mut ws) = join_live(&ctx, &room.live_path(slot), number).await else {
        return;
    };
    let counters = &ctx.metrics.counters;
    let period = Duration::from_secs_f64(1.0 / ctx.cli.rate);
    let mut rng = rand::rngs::StdRng::seed_from_u64(
        !ctx.cli.seed ^ (number as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    let first = ctx.window_start.max(Instant::now()) + period.mul_f64(rng.random::<f64>());
    let mut sends = tokio::time::interval_at(first, period);
    sends.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut awaiting: HashMap<u64, Instant> = HashMap::new();
    let mut seq = 0u64;
    let mut stop = ctx.stop.subscribe();
    let receipts_per_message = ctx.cli.clients_per_room as i64 + 1;
    let mut intact = true;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            scheduled = sends.tick(), if Instant::now() < ctx.window_end => {
                if scheduled >= ctx.window_end {
                    continue;
                }
                ctx.metrics.record(number, Hist::SendLag, scheduled.elapsed());
                seq += 1;
                let micros = ctx.start.elapsed().as_micros();
                let request = format!(r#"{{"id":{seq},"type":"chat.send","body":"{BODY_PREFIX}{number} {seq} {micros}"}}"#);
                awaiting.insert(seq, Instant::now());
                // One reply and one event per client of the room, the sender included.
                counters.outstanding.fetch_add(receipts_per_message, Ordering::Relaxed);
                add(&counters.chat_sent, 1);
                if let Err(error) = ws.send(WsMessage::Text(request.into())).await {
                    ctx.metrics.error(format!("send: {}", read_cause(&error)));
                    intact = false;
                    break;
                }
            }
            incoming = next_incoming(&mut ws) => match incoming {
                Incoming::Text(text) => on_text(&ctx, number, &mut awaiting, receipts_per_message, text.as_str()),
                Incoming::Binary(_) => ctx.metrics.error("binary frame on the live channel"),
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
        // The run is over either way.
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(None)).await;
    }
    counters.open.fetch_sub(1, Ordering::Relaxed);
}

/// Opens a live-channel socket and waits for `hello`, timing both (the
/// `connect` and `hello` histograms) and counting the socket as open. `None`
/// when either failed; the cause is in the error table.
pub async fn join_live(ctx: &Ctx, path: &str, number: usize) -> Option<Ws> {
    let counters = &ctx.metrics.counters;
    let permit = ctx.connect_slots.acquire().await.ok();
    let opened_at = Instant::now();
    let mut ws = match ctx.connector.open(path).await {
        Ok(ws) => ws,
        Err(cause) => {
            ctx.metrics.error(cause);
            add(&counters.connect_failed, 1);
            return None;
        }
    };
    ctx.metrics
        .record(number, Hist::Connect, opened_at.elapsed());
    counters.open.fetch_add(1, Ordering::Relaxed);
    let hello_at = Instant::now();
    let hello = tokio::time::timeout(HELLO_TIMEOUT, next_incoming(&mut ws)).await;
    drop(permit);
    let failure = match hello {
        Ok(Incoming::Text(text)) if text.as_str().contains(r#""type":"hello""#) => {
            ctx.metrics.record(number, Hist::Hello, hello_at.elapsed());
            add(&counters.connected, 1);
            return Some(ws);
        }
        Ok(Incoming::Closed(cause)) => format!("hello: {cause}"),
        Ok(_) | Err(_) => "hello: missing or late".to_owned(),
    };
    ctx.metrics.error(failure);
    add(&counters.connect_failed, 1);
    counters.open.fetch_sub(1, Ordering::Relaxed);
    None
}

fn on_text(
    ctx: &Ctx,
    number: usize,
    awaiting: &mut HashMap<u64, Instant>,
    receipts_per_message: i64,
    text: &str,
) {
    let counters = &ctx.metrics.counters;
    let Ok(frame) = serde_json::from_str::<Frame<'_>>(text) else {
        add(&counters.unexpected, 1);
        return;
    };
    match frame.kind.as_ref() {
        "reply" => {
            let Some(sent) = frame.id.and_then(|id| awaiting.remove(&id)) else {
                add(&counters.unexpected, 1);
                return;
            };
            if frame.ok == Some(true) {
                ctx.metrics.record(number, Hist::ChatReply, sent.elapsed());
                add(&counters.chat_replies, 1);
                counters.outstanding.fetch_sub(1, Ordering::Relaxed);
            } else {
                let code = frame.error.map_or(Cow::Borrowed("?"), |error| error.code);
                ctx.metrics.error(format!("chat reply: {code}"));
                // A refused message produces no events either.
                counters
                    .outstanding
                    .fetch_sub(receipts_per_message, Ordering::Relaxed);
            }
        }
        "event" if frame.event.as_deref() == Some("chat.message") => {
            let Some(body) = frame.data.and_then(|data| data.body) else {
                return;
            };
            let Some((sender, micros)) = parse_body(&body) else {
                add(&counters.unexpected, 1);
                return;
            };
            add(&counters.chat_events, 1);
            counters.outstanding.fetch_sub(1, Ordering::Relaxed);
            if sender != number {
                let sent = ctx.start + Duration::from_micros(micros);
                ctx.metrics.record(
                    number,
                    Hist::ChatFanout,
                    Instant::now().saturating_duration_since(sent),
                );
            }
        }
        "event" if frame.event.as_deref() == Some("error") => {
            ctx.metrics.error("server event: error")
        }
        _ => {}
    }
}

/// `lt <sender> <seq> <micros>` → (sender, micros).
pub fn parse_body(body: &str) -> Option<(usize, u64)> {
    let mut parts = body.strip_prefix(BODY_PREFIX)?.split(' ');
    let sender = parts.next()?.parse().ok()?;
    let _seq: u64 = parts.next()?.parse().ok()?;
    let micros = parts.next()?.parse().ok()?;
    Some((sender, micros))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bodies_round_trip() {
        assert_eq!(parse_body("lt 17 3 123456"), Some((17, 123456)));
        assert_eq!(parse_body("hello"), None);
        assert_eq!(parse_body("lt x 3 1"), None);
    }

    #[test]
    fn frames_parse_with_unknown_fields() {
        let event = r#"{"type":"event","event":"chat.message","data":{"id":42,"user":"lt-u1","body":"lt 1 2 3","created_at":1,"edited_at":null}}"#;
        let frame: Frame<'_> = serde_json::from_str(event).unwrap();
        assert_eq!(frame.kind, "event");
        assert_eq!(frame.data.unwrap().body.unwrap(), "lt 1 2 3");
        let reply =
            r#"{"type":"reply","id":7,"ok":false,"error":{"code":"forbidden","message":"no"}}"#;
        let frame: Frame<'_> = serde_json::from_str(reply).unwrap();
        assert_eq!(
            (frame.id, frame.ok, frame.error.unwrap().code.as_ref()),
            (Some(7), Some(false), "forbidden")
        );
        let presence = r#"{"type":"event","event":"presence.left","data":{"user":"x"}}"#;
        assert!(
            serde_json::from_str::<Frame<'_>>(presence)
                .unwrap()
                .data
                .unwrap()
                .body
                .is_none()
        );
    }
}
