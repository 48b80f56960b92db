//! The crowd's sockets: a worker is one live-channel connection driven by
//! its `Machine`; a moderator is one that only reads and counts.
//!
//! A worker task sleeps on one timer, re-armed only when the machine's next
//! wake-up moves, and reads frames into borrowed fields (`frame.rs`). Its
//! requests in flight (at most a work request, a heartbeat and a chat
//! message) sit in a small vector, matched by id. Latencies are recorded
//! for requests sent inside the measured window only, so the ramp-up's
//! connection storm and the drain do not blur them; counts cover the run.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::SinkExt;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::frame::{self, Frame};
use super::machine::{Action, Machine};
use super::model::{LABELS, Profile};
use super::{Crowd, client_number, worker_rng};
use crate::chat::{BODY_PREFIX, join_live, parse_body};
use crate::coedit::CLOSE_TIMEOUT;
use crate::metrics::{Hist, add};
use crate::net::{Ws, read_cause};
use crate::run::Ctx;
use crate::ywire::{Incoming, next_incoming};

/// A request awaiting its reply.
struct Sent {
    id: u64,
    action: Action,
    at: Instant,
}

/// One worker's connection-side state.
struct Worker<'a> {
    ctx: &'a Ctx,
    crowd: &'a Crowd,
    position: usize,
    number: usize,
    machine: Machine,
    in_flight: Vec<Sent>,
    next_id: u64,
}

/// Runs worker `slot` of room `position`: joins, works until the window
/// ends, then waits for the stop signal (the drain) and leaves.
pub async fn run_worker(
    ctx: Arc<Ctx>,
    crowd: Arc<Crowd>,
    position: usize,
    slot: usize,
    ordinal: usize,
) {
    let Some(room) = ctx.rooms.get(position) else {
        return;
    };
    let number = client_number(&ctx.cli, room.index, slot);
    tokio::time::sleep_until(ctx.connect_at(ordinal)).await;
    if ctx.stopped() {
        return;
    }
    let Some(mut ws) = join_live(&ctx, &room.live_path(slot), number).await else {
        return;
    };
    add(&crowd.counters.workers_joined, 1);
    let mut rng = worker_rng(ctx.cli.seed, number);
    let profile = Profile::draw(&crowd.population, &mut rng);
    let chat = crowd.chat_every.map(|mean| (ctx.window_start, mean));
    let machine = Machine::new(
        profile,
        rng,
        Instant::now(),
        ctx.cli.reservation_ttl,
        chat,
        ctx.window_end,
    );
    let mut worker = Worker {
        ctx: &ctx,
        crowd: &crowd,
        position,
        number,
        machine,
        in_flight: Vec::with_capacity(4),
        next_id: 0,
    };
    let intact = worker.work(&mut ws).await;
    finish(&ctx, ws, intact).await;
}

impl Worker<'_> {
    /// The worker's loop; false when the socket broke.
    async fn work(&mut self, ws: &mut Ws) -> bool {
        let far = self.ctx.window_end + self.ctx.cli.drain + Duration::from_secs(3600);
        let timer = tokio::time::sleep_until(far);
        tokio::pin!(timer);
        let mut armed = Some(far);
        let mut stop = self.ctx.stop.subscribe();
        loop {
            while let Some(action) = self.machine.poll(Instant::now()) {
                if let Err(cause) = self.send(ws, action).await {
                    self.ctx.metrics.error(format!("send: {cause}"));
                    return false;
                }
            }
            let wake = self.machine.next_wake().unwrap_or(far);
            if armed != Some(wake) {
                timer.as_mut().reset(wake);
                armed = Some(wake);
            }
            tokio::select! {
                _ = stop.changed() => return true,
                () = &mut timer => {
                    armed = None;
                    // How late the generator wakes for its own schedule: when
                    // this grows, the generator, not the server, is behind.
                    let now = Instant::now();
                    if wake >= self.ctx.window_start && wake < self.ctx.window_end {
                        let lag = now.saturating_duration_since(wake);
                        self.ctx.metrics.record(self.number, Hist::SendLag, lag);
                    }
                }
                incoming = next_incoming(ws) => match incoming {
                    Incoming::Text(text) => self.on_text(text.as_str()),
                    Incoming::Binary(_) => self.ctx.metrics.error("binary frame on the live channel"),
                    Incoming::Closed(cause) => {
                        self.ctx.metrics.error(cause);
                        add(&self.ctx.metrics.counters.dropped, 1);
                        return false;
                    }
                },
            }
        }
    }

    async fn send(&mut self, ws: &mut Ws, action: Action) -> Result<(), String> {
        self.next_id += 1;
        let id = self.next_id;
        let counters = &self.crowd.counters;
        let text = match action {
            Action::Ask => {
                add(&counters.requests, 1);
                format!(r#"{{"id":{id},"type":"task.request"}}"#)
            }
            Action::Submit { task_id, label } => {
                add(&counters.submits, 1);
                let label = LABELS.get(usize::from(label)).copied().unwrap_or("a");
                format!(
                    r#"{{"id":{id},"type":"task.submit","task_id":{task_id},"answer":"{label}"}}"#
                )
            }
            Action::Skip { task_id } => {
                format!(r#"{{"id":{id},"type":"task.skip","task_id":{task_id}}}"#)
            }
            Action::Heartbeat { task_id } => {
                format!(r#"{{"id":{id},"type":"task.heartbeat","task_id":{task_id}}}"#)
            }
            Action::Chat => {
                add(&self.ctx.metrics.counters.chat_sent, 1);
                let micros = self.ctx.start.elapsed().as_micros();
                let number = self.number;
                format!(
                    r#"{{"id":{id},"type":"chat.send","body":"{BODY_PREFIX}{number} {id} {micros}"}}"#
                )
            }
        };
        let now = Instant::now();
        self.in_flight.push(Sent {
            id,
            action,
            at: now,
        });
        self.ctx
            .metrics
            .counters
            .outstanding
            .fetch_add(1, Ordering::Relaxed);
        ws.send(WsMessage::Text(text.into()))
            .await
            .map_err(|error| read_cause(&error))
    }

    fn on_text(&mut self, text: &str) {
        let Some(frame) = frame::parse(text) else {
            add(&self.ctx.metrics.counters.unexpected, 1);
            return;
        };
        match frame.kind.as_ref() {
            "reply" => self.on_reply(frame),
            "event" => match frame.event.as_deref() {
                Some("chat.message") => on_chat_event(self.ctx, self.number, &frame),
                Some("task.expired") => {
                    add(&self.crowd.counters.expired_events, 1);
                    let task = frame.data.and_then(|data| data.task_id);
                    if let Some(task) = task
                        && self.machine.lost(Instant::now(), task)
                    {
                        add(&self.crowd.counters.expired_while_thinking, 1);
                    }
                }
                Some("error") => self.ctx.metrics.error("server event: error"),
                _ => add(&self.crowd.counters.worker_events, 1),
            },
            _ => {}
        }
    }

    fn on_reply(&mut self, frame: Frame<'_>) {
        let Some(index) = frame
            .id
            .and_then(|id| self.in_flight.iter().position(|sent| sent.id == id))
        else {
            add(&self.ctx.metrics.counters.unexpected, 1);
            return;
        };
        let sent = self.in_flight.swap_remove(index);
        let (ctx, crowd) = (self.ctx, self.crowd);
        let counters = &crowd.counters;
        ctx.metrics
            .counters
            .outstanding
            .fetch_sub(1, Ordering::Relaxed);
        let now = Instant::now();
        let latency = now.saturating_duration_since(sent.at);
        let in_window = sent.at >= ctx.window_start && sent.at < ctx.window_end;
        let number = self.number;
        let record = |hist: Hist| {
            if in_window {
                ctx.metrics.record(number, hist, latency);
            }
        };
        if frame.ok != Some(true) {
            let code = frame
                .error
                .map_or("no error code".into(), |error| error.code);
            // The reservation ran out before the answer (or the skip) arrived.
            let expired = match sent.action {
                Action::Submit { .. } => code == "reservation_expired",
                Action::Skip { .. } => code == "not_found" || code == "reservation_expired",
                Action::Ask | Action::Heartbeat { .. } | Action::Chat => false,
            };
            match sent.action {
                _ if expired => add(&counters.expired_submits, 1),
                Action::Heartbeat { task_id } if code == "not_found" => {
                    add(&counters.heartbeats_refused, 1);
                    self.machine.lost(now, task_id);
                    return;
                }
                action => ctx
                    .metrics
                    .error(format!("{}: {code}", request_name(action))),
            }
            if !matches!(sent.action, Action::Heartbeat { .. } | Action::Chat) {
                self.machine.refused(now, expired);
            }
            return;
        }
        let result = frame.result.unwrap_or_default();
        match sent.action {
            Action::Ask => match (result.reservation, result.task) {
                (Some(reservation), task) => {
                    record(Hist::Grant);
                    add(&ctx.metrics.counters.grants, 1);
                    if in_window {
                        add(&ctx.metrics.counters.grants_in_window, 1);
                    }
                    let truth = task.as_ref().and_then(|task| self.truth(&task.external_id));
                    if truth.is_none() {
                        ctx.metrics
                            .error("task.request: a task the generator did not import");
                    }
                    self.machine.granted(now, reservation.task_id, truth);
                }
                (None, _) => match result.reason.as_deref() {
                    Some("paused") => {
                        add(&counters.paused_replies, 1);
                        self.pause();
                    }
                    Some("no_work") => {
                        add(&counters.no_work, 1);
                        self.machine.no_work(now);
                    }
                    other => {
                        ctx.metrics.error(format!(
                            "task.request: {}",
                            other.unwrap_or("no reservation")
                        ));
                        self.machine.no_work(now);
                    }
                },
            },
            Action::Submit { .. } => {
                record(Hist::Ack);
                add(&ctx.metrics.counters.answers, 1);
                if in_window {
                    add(&ctx.metrics.counters.answers_in_window, 1);
                }
                if let Some(acked) = crowd.acked.get(self.position) {
                    add(acked, 1);
                }
                if result
                    .submitted
                    .is_some_and(|submitted| submitted.task_state != "open")
                {
                    add(&counters.settled, 1);
                }
                self.machine.done_with_task(now);
                if result.paused.is_some() {
                    self.pause();
                }
            }
            Action::Skip { .. } => {
                add(&counters.skips, 1);
                self.machine.done_with_task(now);
            }
            Action::Heartbeat { .. } => {
                record(Hist::Heartbeat);
                add(&counters.heartbeats, 1);
            }
            Action::Chat => {
                record(Hist::ChatReply);
                add(&ctx.metrics.counters.chat_replies, 1);
            }
        }
    }

    fn truth(&self, external_id: &str) -> Option<u8> {
        let plan = self.ctx.rooms.get(self.position)?.crowd.as_ref()?;
        plan.truth.label_of(external_id)
    }

    /// The server paused this worker: counted once, by kind.
    fn pause(&mut self) {
        if self.machine.paused() {
            return;
        }
        let counters = &self.crowd.counters;
        if self.machine.profile().spammer {
            add(&counters.paused_spammers, 1);
        } else {
            add(&counters.paused_honest, 1);
        }
        self.machine.pause();
    }
}

fn request_name(action: Action) -> &'static str {
    match action {
        Action::Ask => "task.request",
        Action::Submit { .. } => "task.submit",
        Action::Skip { .. } => "task.skip",
        Action::Heartbeat { .. } => "task.heartbeat",
        Action::Chat => "chat.send",
    }
}

/// A `chat.message` event: counts it and, when another client sent it,
/// records the fan-out latency from the send time in its body.
fn on_chat_event(ctx: &Ctx, number: usize, frame: &Frame<'_>) {
    let Some(body) = frame.data.as_ref().and_then(|data| data.body.as_deref()) else {
        return;
    };
    let Some((sender, micros)) = parse_body(body) else {
        add(&ctx.metrics.counters.unexpected, 1);
        return;
    };
    add(&ctx.metrics.counters.chat_events, 1);
    let sent = ctx.start + Duration::from_micros(micros);
    if sender != number && sent >= ctx.window_start && sent < ctx.window_end {
        let latency = Instant::now().saturating_duration_since(sent);
        ctx.metrics.record(number, Hist::ChatFanout, latency);
    }
}

/// Runs moderator `moderator` of room `position`: joins with a moderator
/// token and counts what it sees (queue counts, chat, presence) until stopped.
pub async fn run_moderator(
    ctx: Arc<Ctx>,
    crowd: Arc<Crowd>,
    position: usize,
    moderator: usize,
    ordinal: usize,
) {
    let Some(room) = ctx.rooms.get(position) else {
        return;
    };
    let Some(token) = room
        .crowd
        .as_ref()
        .and_then(|plan| plan.moderator_tokens.get(moderator))
    else {
        return;
    };
    let number = client_number(&ctx.cli, room.index, ctx.cli.clients_per_room + moderator);
    tokio::time::sleep_until(ctx.connect_at(ordinal)).await;
    if ctx.stopped() {
        return;
    }
    let Some(mut ws) = join_live(&ctx, &room.live_path_with(token), number).await else {
        return;
    };
    add(&crowd.counters.moderators_joined, 1);
    let counters = &crowd.counters;
    let mut stop = ctx.stop.subscribe();
    let intact = loop {
        tokio::select! {
            _ = stop.changed() => break true,
            incoming = next_incoming(&mut ws) => match incoming {
                Incoming::Text(text) => {
                    add(&counters.moderator_events, 1);
                    let Some(frame) = frame::parse(text.as_str()) else {
                        add(&ctx.metrics.counters.unexpected, 1);
                        continue;
                    };
                    match frame.event.as_deref() {
                        Some("queue.counts") => add(&counters.moderator_counts, 1),
                        Some("chat.message") => on_chat_event(&ctx, number, &frame),
                        _ => {}
                    }
                }
                Incoming::Binary(_) => ctx.metrics.error("binary frame on the live channel"),
                Incoming::Closed(cause) => {
                    ctx.metrics.error(cause);
                    add(&ctx.metrics.counters.dropped, 1);
                    break false;
                }
            },
        }
    };
    finish(&ctx, ws, intact).await;
}

/// Closes the socket (if it still works) and settles the counters.
async fn finish(ctx: &Ctx, mut ws: Ws, intact: bool) {
    if intact {
        // The run is over either way.
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(None)).await;
    }
    ctx.metrics.counters.open.fetch_sub(1, Ordering::Relaxed);
}
