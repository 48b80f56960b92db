//! One simulated worker's behaviour as a state machine. Inputs are the time
//! (passed in, never read here) and the server's answers; the output is the
//! next request to send. The socket loop in `client.rs` only moves frames,
//! so these rules are tested without a server:
//!
//! ```text
//! Waiting(at) ──ask──▶ InFlight ──granted──▶ Thinking(until, heartbeat_at) ──submit/skip──▶ InFlight
//!     ▲                   │ no_work: retry later          │ task.expired / heartbeat refused
//!     └───────────────────┴─── answered, skipped, refused ◀┘
//! paused (a refusal or an answer that paused us): Paused, never asks again
//! window over: Done (a task still being thought about is abandoned)
//! ```
//!
//! Frames are paced: at least `MIN_FRAME_GAP` apart, which keeps a worker
//! under the live channel's 20 frames/s limit even with a tiny think time.

use std::time::Duration;

use rand::rngs::SmallRng;
use tokio::time::Instant;

use super::model::{Profile, Verdict, chat_gap};

/// Shortest gap between two frames of one worker: at most 16.7 frames/s,
/// under the server's limit of 20/s (bursts of 60), which closes with 4029.
pub const MIN_FRAME_GAP: Duration = Duration::from_millis(60);
/// After `no_work`, ask again this much later (plus up to as much jitter, so
/// a room's idle workers do not ask in lockstep).
pub const NO_WORK_RETRY: Duration = Duration::from_secs(5);
/// After an error reply (a store failure, the server shutting down).
pub const ERROR_BACKOFF: Duration = Duration::from_secs(1);

/// A request the worker wants sent now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Ask,
    Submit { task_id: i64, label: u8 },
    Skip { task_id: i64 },
    Heartbeat { task_id: i64 },
    Chat,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Asks for work at `at`.
    Waiting { at: Instant },
    /// A `task.request`, `task.submit` or `task.skip` awaits its reply.
    InFlight,
    /// Holds `task_id` and thinks until `until`.
    Thinking {
        task_id: i64,
        verdict: Verdict,
        until: Instant,
        heartbeat_at: Instant,
    },
    /// The server paused this worker: it stops asking.
    Paused,
    /// The measured window is over: no new work, no chat.
    Done,
}

/// The worker's state.
pub struct Machine {
    profile: Profile,
    rng: SmallRng,
    phase: Phase,
    /// Next chat message, when the worker chats at all.
    chat_at: Option<Instant>,
    chat_mean: Option<Duration>,
    /// Renew a reservation this often while thinking (half its TTL).
    heartbeat_every: Duration,
    window_end: Instant,
    last_send: Option<Instant>,
}

impl Machine {
    /// A worker that has just joined at `now`: it asks for work at once and
    /// chats from `chat_from` on, every `chat_mean` on average.
    pub fn new(
        profile: Profile,
        rng: SmallRng,
        now: Instant,
        reservation_ttl: Duration,
        chat: Option<(Instant, Duration)>,
        window_end: Instant,
    ) -> Machine {
        let mut machine = Machine {
            profile,
            rng,
            phase: Phase::Waiting { at: now },
            chat_at: None,
            chat_mean: chat.map(|(_, mean)| mean),
            heartbeat_every: (reservation_ttl / 2).max(MIN_FRAME_GAP),
            window_end,
            last_send: None,
        };
        if let Some((from, mean)) = chat {
            machine.chat_at = Some(from.max(now) + chat_gap(mean, &mut machine.rng));
        }
        machine
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    pub fn paused(&self) -> bool {
        self.phase == Phase::Paused
    }

    /// The next instant at which `poll` may return an action; `None` while
    /// only a reply can move the worker on.
    pub fn next_wake(&self) -> Option<Instant> {
        let work = match self.phase {
            Phase::Waiting { at } => Some(at),
            Phase::Thinking {
                until,
                heartbeat_at,
                ..
            } => Some(until.min(heartbeat_at)),
            Phase::InFlight | Phase::Paused | Phase::Done => None,
        };
        let due = match (work, self.chat_at) {
            (Some(work), Some(chat)) => Some(work.min(chat)),
            (work, chat) => work.or(chat),
        };
        // Wake at the window's end at the latest, to notice it; never before
        // the pacing allows.
        let due = due.map(|due| due.min(self.window_end));
        match (due, self.last_send) {
            (Some(due), Some(last)) => Some(due.max(last + MIN_FRAME_GAP)),
            (due, _) => due,
        }
    }

    /// The action due at `now`, if any; at most one per call, as pacing
    /// allows. The caller sends it and calls again later.
    pub fn poll(&mut self, now: Instant) -> Option<Action> {
        if now >= self.window_end {
            if matches!(self.phase, Phase::Waiting { .. } | Phase::Thinking { .. }) {
                self.phase = Phase::Done;
            }
            self.chat_at = None;
            return None;
        }
        if self
            .last_send
            .is_some_and(|last| now < last + MIN_FRAME_GAP)
        {
            return None;
        }
        let action = self.work_due(now).or_else(|| self.chat_due(now))?;
        self.last_send = Some(now);
        Some(action)
    }

    fn work_due(&mut self, now: Instant) -> Option<Action> {
        match self.phase {
            Phase::Waiting { at } if now >= at => {
                self.phase = Phase::InFlight;
                Some(Action::Ask)
            }
            Phase::Thinking {
                task_id,
                verdict,
                until,
                ..
            } if now >= until => {
                self.phase = Phase::InFlight;
                Some(match verdict {
                    Verdict::Answer(label) => Action::Submit { task_id, label },
                    Verdict::Skip => Action::Skip { task_id },
                })
            }
            Phase::Thinking {
                task_id,
                ref mut heartbeat_at,
                ..
            } if now >= *heartbeat_at => {
                *heartbeat_at = now + self.heartbeat_every;
                Some(Action::Heartbeat { task_id })
            }
            _ => None,
        }
    }

    fn chat_due(&mut self, now: Instant) -> Option<Action> {
        let (at, mean) = (self.chat_at?, self.chat_mean?);
        if now < at {
            return None;
        }
        self.chat_at = Some(now + chat_gap(mean, &mut self.rng));
        Some(Action::Chat)
    }

    /// `task.request` granted `task_id`, whose true label is `truth` (`None`:
    /// a task the generator does not know, which it skips). Returns how long
    /// the worker will think.
    pub fn granted(&mut self, now: Instant, task_id: i64, truth: Option<u8>) -> Duration {
        let think = self.profile.think(&mut self.rng);
        let verdict = match truth {
            Some(truth) => self.profile.decide(truth, &mut self.rng),
            None => Verdict::Skip,
        };
        if self.phase == Phase::InFlight {
            self.phase = Phase::Thinking {
                task_id,
                verdict,
                until: now + think,
                heartbeat_at: now + self.heartbeat_every,
            };
        }
        think
    }

    /// `task.request` found nothing to do: ask again later.
    pub fn no_work(&mut self, now: Instant) {
        let jitter = NO_WORK_RETRY.mul_f64(rand::Rng::random::<f64>(&mut self.rng));
        self.wait_until(now + NO_WORK_RETRY + jitter);
    }

    /// The server paused this worker: it never asks again.
    pub fn pause(&mut self) {
        if self.phase != Phase::Done {
            self.phase = Phase::Paused;
        }
    }

    /// The submit or skip in flight was acknowledged: ask for the next task
    /// (reading it is part of the next think time).
    pub fn done_with_task(&mut self, now: Instant) {
        self.wait_until(now);
    }

    /// The request in flight was refused: `reservation_expired` moves on at
    /// once, other errors after a back-off.
    pub fn refused(&mut self, now: Instant, expired: bool) {
        self.wait_until(if expired { now } else { now + ERROR_BACKOFF });
    }

    /// The reservation of `task_id` is gone (`task.expired`, or a heartbeat
    /// refused): stop thinking about it and ask again. Returns whether it
    /// was the task being worked on.
    pub fn lost(&mut self, now: Instant, task_id: i64) -> bool {
        match self.phase {
            Phase::Thinking { task_id: held, .. } if held == task_id => {
                self.phase = Phase::Waiting { at: now };
                true
            }
            _ => false,
        }
    }

    fn wait_until(&mut self, at: Instant) {
        if self.phase == Phase::InFlight {
            self.phase = Phase::Waiting { at };
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::crowd::model::Population;
    use rand::SeedableRng;

    const SECOND: Duration = Duration::from_secs(1);

    fn machine(think: Duration, ttl: Duration, skip_rate: f64) -> (Machine, Instant) {
        let population = Population {
            labels: 3,
            accuracy_alpha: 1000.0,
            accuracy_beta: 0.001,
            spammer_share: 0.0,
            think_median: think,
            think_sigma: 0.0,
            skip_rate,
        };
        let mut rng = SmallRng::seed_from_u64(9);
        let profile = Profile::draw(&population, &mut rng);
        let now = Instant::now();
        let machine = Machine::new(profile, rng, now, ttl, None, now + 3600 * SECOND);
        (machine, now)
    }

    #[test]
    fn asks_thinks_answers_and_asks_again() {
        let (mut worker, start) = machine(8 * SECOND, 300 * SECOND, 0.0);
        assert_eq!(worker.next_wake(), Some(start));
        assert_eq!(worker.poll(start), Some(Action::Ask));
        assert_eq!(worker.poll(start + SECOND), None, "one request in flight");
        assert_eq!(worker.next_wake(), None);
        let granted_at = start + Duration::from_millis(5);
        assert_eq!(worker.granted(granted_at, 7, Some(2)), 8 * SECOND);
        assert_eq!(worker.next_wake(), Some(granted_at + 8 * SECOND));
        assert_eq!(worker.poll(granted_at + 7 * SECOND), None, "still thinking");
        let submit = worker.poll(granted_at + 8 * SECOND);
        assert_eq!(
            submit,
            Some(Action::Submit {
                task_id: 7,
                label: 2
            }),
            "accuracy ~1"
        );
        let acked = granted_at + 8 * SECOND + Duration::from_millis(3);
        worker.done_with_task(acked);
        // Asks again at once, but not sooner than the pacing allows.
        assert_eq!(
            worker.next_wake(),
            Some(granted_at + 8 * SECOND + MIN_FRAME_GAP)
        );
        assert_eq!(worker.poll(acked), None);
        assert_eq!(
            worker.poll(granted_at + 8 * SECOND + MIN_FRAME_GAP),
            Some(Action::Ask)
        );
    }

    #[test]
    fn heartbeats_while_thinking_longer_than_the_ttl_allows() {
        let (mut worker, start) = machine(100 * SECOND, 30 * SECOND, 0.0);
        assert_eq!(worker.poll(start), Some(Action::Ask));
        worker.granted(start, 3, Some(0));
        let mut heartbeats = Vec::new();
        let mut now = start;
        while now < start + 100 * SECOND {
            now = worker.next_wake().unwrap();
            match worker.poll(now) {
                Some(Action::Heartbeat { task_id: 3 }) => heartbeats.push(now - start),
                Some(Action::Submit { task_id: 3, .. }) => break,
                other => panic!("unexpected {other:?} at {:?}", now - start),
            }
        }
        assert_eq!(
            heartbeats,
            vec![
                15 * SECOND,
                30 * SECOND,
                45 * SECOND,
                60 * SECOND,
                75 * SECOND,
                90 * SECOND
            ]
        );
        assert_eq!(now - start, 100 * SECOND);
    }

    #[test]
    fn no_work_retries_later_and_paused_stops_asking() {
        let (mut worker, start) = machine(SECOND, 300 * SECOND, 0.0);
        assert_eq!(worker.poll(start), Some(Action::Ask));
        worker.no_work(start);
        let retry = worker.next_wake().unwrap();
        assert!(retry >= start + NO_WORK_RETRY && retry <= start + 2 * NO_WORK_RETRY);
        assert_eq!(worker.poll(retry), Some(Action::Ask));
        worker.pause();
        assert!(worker.paused());
        assert_eq!(worker.next_wake(), None);
        assert_eq!(worker.poll(retry + 3600 * SECOND / 2), None);
    }

    #[test]
    fn expiry_and_refusals() {
        let (mut worker, start) = machine(10 * SECOND, 300 * SECOND, 0.0);
        worker.poll(start);
        worker.granted(start, 5, Some(1));
        assert!(!worker.lost(start + SECOND, 6), "not the task held");
        assert!(worker.lost(start + SECOND, 5));
        assert_eq!(worker.poll(start + SECOND), Some(Action::Ask));
        worker.refused(start + 2 * SECOND, false);
        assert_eq!(worker.next_wake(), Some(start + 2 * SECOND + ERROR_BACKOFF));
        worker.poll(start + 3 * SECOND);
        worker.granted(start + 3 * SECOND, 8, None);
        assert_eq!(
            worker.poll(start + 13 * SECOND),
            Some(Action::Skip { task_id: 8 }),
            "an unknown task is skipped"
        );
        worker.refused(start + 13 * SECOND, true);
        assert_eq!(worker.poll(start + 14 * SECOND), Some(Action::Ask));
    }

    #[test]
    fn skippers_skip_and_the_window_ends_everything() {
        let (mut worker, start) = machine(SECOND, 300 * SECOND, 1.0);
        worker.poll(start);
        worker.granted(start, 1, Some(0));
        assert_eq!(
            worker.poll(start + SECOND),
            Some(Action::Skip { task_id: 1 })
        );
        worker.done_with_task(start + SECOND);
        let end = start + 3600 * SECOND;
        assert_eq!(worker.poll(end), None, "no work after the window");
        assert_eq!(worker.next_wake(), None);
    }

    #[test]
    fn chat_is_paced_and_poisson() {
        let population = Population {
            labels: 2,
            accuracy_alpha: 8.0,
            accuracy_beta: 2.0,
            spammer_share: 0.0,
            think_median: SECOND,
            think_sigma: 0.0,
            skip_rate: 0.0,
        };
        let mut rng = SmallRng::seed_from_u64(1);
        let profile = Profile::draw(&population, &mut rng);
        let start = Instant::now();
        let end = start + 10_000 * SECOND;
        let mut worker = Machine::new(
            profile,
            rng,
            start,
            300 * SECOND,
            Some((start + 10 * SECOND, 10 * SECOND)),
            end,
        );
        worker.pause();
        let mut chats = 0;
        let mut last: Option<Instant> = None;
        while let Some(now) = worker.next_wake() {
            if now >= end {
                break;
            }
            assert!(now >= start + 10 * SECOND, "no chat before chat_from");
            if let Some(previous) = last {
                assert!(now - previous >= MIN_FRAME_GAP);
            }
            assert_eq!(worker.poll(now), Some(Action::Chat));
            last = Some(now);
            chats += 1;
        }
        // 9,990 s at one message per 10 s on average.
        assert!((900..1100).contains(&chats), "{chats}");
    }
}
