//! The crowd's section of the report: what the workers did, the window's
//! throughput, and the read-back (consensus accuracy against the truth,
//! acknowledged answers against the answers the server holds).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use super::model::ConsensusScore;
use super::setup::{QualityCheck, regular_tasks};
use super::{Crowd, CrowdCounters};
use crate::config::Cli;
use crate::metrics::{Metrics, get};
use crate::run::Window;

/// Rooms whose answer counts differ that the report names.
const MISMATCHES_LISTED: usize = 10;

/// Every room read back, summed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Readback {
    pub rooms: usize,
    pub consensus: ConsensusScore,
    pub quality: QualityCheck,
    /// Answers acknowledged to the workers (`ok` replies to `task.submit`).
    pub answers_acknowledged: u64,
    /// Answers the server holds in these rooms.
    pub answers_on_server: u64,
    /// Acknowledged answers the server does not hold: must be 0, since an
    /// acknowledged answer is committed.
    pub lost_answers: u64,
    /// Answers the server holds without our having seen the `ok` (replies
    /// still in flight when the run stopped).
    pub unacknowledged_answers: u64,
    /// The first rooms whose counts differ, with both counts.
    pub mismatched_rooms: Vec<String>,
}

impl Readback {
    /// Adds one room: `acked` answers acknowledged to our workers there.
    pub fn add_room(
        &mut self,
        name: &str,
        acked: u64,
        score: &ConsensusScore,
        quality: &QualityCheck,
    ) {
        self.rooms += 1;
        self.consensus.merge(score);
        self.quality.merge(quality);
        self.answers_acknowledged += acked;
        self.answers_on_server += score.answers;
        self.lost_answers += acked.saturating_sub(score.answers);
        self.unacknowledged_answers += score.answers.saturating_sub(acked);
        if acked != score.answers && self.mismatched_rooms.len() < MISMATCHES_LISTED {
            self.mismatched_rooms.push(format!(
                "{name}: {acked} acknowledged, {} on the server",
                score.answers
            ));
        }
    }
}

/// What the crowd scenario adds to the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CrowdOutcome {
    pub workers_per_room: usize,
    pub moderators_per_room: usize,
    pub regular_tasks_per_room: usize,
    pub gold_tasks_per_room: usize,
    pub labels: usize,
    pub think_median_ms: f64,
    pub think_sigma: f64,
    pub chat_every_seconds: Option<f64>,
    /// The crowd's counters for the whole run.
    pub counts: BTreeMap<&'static str, u64>,
    /// Grants and acknowledged answers of requests sent in the window.
    pub grants_per_second: f64,
    pub answers_per_second: f64,
    /// Server CPU over the window and drain per grant plus answer of the window.
    pub server_cpu_us_per_operation: Option<f64>,
    /// With `--postgres-pid`: PostgreSQL's CPU for the server's database over
    /// the same span, per grant plus answer, and the two added up.
    pub postgres_cpu_us_per_operation: Option<f64>,
    pub server_and_postgres_cpu_us_per_operation: Option<f64>,
    pub readback: Option<Readback>,
    pub readback_error: Option<String>,
}

impl CrowdOutcome {
    pub fn gather(
        cli: &Cli,
        metrics: &Metrics,
        crowd: &Crowd,
        window: &Window,
        readback: Result<Readback, String>,
    ) -> CrowdOutcome {
        let seconds = cli.duration.as_secs_f64().max(f64::EPSILON);
        let grants = get(&metrics.counters.grants_in_window);
        let answers = get(&metrics.counters.answers_in_window);
        let operations = grants + answers;
        let per_operation = |cpu: Option<Duration>| {
            cpu.filter(|_| operations > 0)
                .map(|cpu| cpu.as_micros() as f64 / operations as f64)
        };
        let (readback, readback_error) = match readback {
            Ok(readback) => (Some(readback), None),
            Err(error) => (None, Some(error)),
        };
        CrowdOutcome {
            workers_per_room: cli.clients_per_room,
            moderators_per_room: cli.moderators,
            regular_tasks_per_room: regular_tasks(cli),
            gold_tasks_per_room: cli.gold_per_room,
            labels: cli.labels,
            think_median_ms: cli.think_median_ms,
            think_sigma: cli.think_sigma,
            chat_every_seconds: crowd.chat_every.map(|every| every.as_secs_f64()),
            counts: counts(&crowd.counters, metrics),
            grants_per_second: grants as f64 / seconds,
            answers_per_second: answers as f64 / seconds,
            server_cpu_us_per_operation: per_operation(window.server_cpu),
            postgres_cpu_us_per_operation: per_operation(window.postgres_cpu),
            server_and_postgres_cpu_us_per_operation: per_operation(
                window
                    .server_cpu
                    .zip(window.postgres_cpu)
                    .map(|(server, postgres)| server + postgres),
            ),
            readback,
            readback_error,
        }
    }

    fn count(&self, key: &str) -> u64 {
        self.counts.get(key).copied().unwrap_or(0)
    }

    /// The crowd's lines of the human summary.
    pub fn write_human(&self, out: &mut String) -> std::fmt::Result {
        let count = |key: &str| self.count(key);
        writeln!(
            out,
            "\ncrowd: {} workers and {} moderators joined ({} and {} per room); think median {:.0} ms, sigma {}",
            count("workers_joined"),
            count("moderators_joined"),
            self.workers_per_room,
            self.moderators_per_room,
            self.think_median_ms,
            self.think_sigma
        )?;
        writeln!(
            out,
            "work: {} requests, {} grants, {} answers ({} settled a task), {} skips, {} no_work, {} paused replies",
            count("requests"),
            count("grants"),
            count("answers"),
            count("settled"),
            count("skips"),
            count("no_work"),
            count("paused_replies")
        )?;
        writeln!(
            out,
            "      {} heartbeats ({} refused); reservation ran out: {} submits or skips refused, {} task.expired events ({} while thinking)",
            count("heartbeats"),
            count("heartbeats_refused"),
            count("expired_submits"),
            count("expired_events"),
            count("expired_while_thinking")
        )?;
        writeln!(
            out,
            "paused workers: {} spammers, {} honest",
            count("paused_spammers"),
            count("paused_honest")
        )?;
        let per_operation = self
            .server_cpu_us_per_operation
            .map_or("-".to_owned(), |micros| format!("{micros:.0} µs"));
        writeln!(
            out,
            "window throughput: {:.1} grants/s, {:.1} answers/s; server CPU {per_operation} per grant or answer",
            self.grants_per_second, self.answers_per_second
        )?;
        if let (Some(postgres), Some(together)) = (
            self.postgres_cpu_us_per_operation,
            self.server_and_postgres_cpu_us_per_operation,
        ) {
            writeln!(
                out,
                "      PostgreSQL CPU {postgres:.0} µs per grant or answer (its backends for this database and its background processes); server and PostgreSQL together {together:.0} µs"
            )?;
        }
        writeln!(
            out,
            "events: {} at workers (queue, presence), {} at moderators ({} queue.counts); chat {} sent, {} replies, {} events",
            count("worker_events"),
            count("moderator_events"),
            count("moderator_counts"),
            count("chat_sent"),
            count("chat_replies"),
            count("chat_events")
        )?;
        match (&self.readback, &self.readback_error) {
            (Some(readback), _) => write_readback(out, readback)?,
            (None, Some(error)) => writeln!(out, "read-back FAILED: {error}")?,
            (None, None) => {}
        }
        Ok(())
    }
}

fn write_readback(out: &mut String, readback: &Readback) -> std::fmt::Result {
    let verdict = if readback.lost_answers == 0 {
        "ok"
    } else {
        "ACKNOWLEDGED ANSWERS MISSING"
    };
    writeln!(
        out,
        "read back {} rooms: {} answers on the server, {} acknowledged: {} lost ({verdict}), {} not acknowledged yet",
        readback.rooms,
        readback.answers_on_server,
        readback.answers_acknowledged,
        readback.lost_answers,
        readback.unacknowledged_answers
    )?;
    for room in &readback.mismatched_rooms {
        writeln!(out, "  {room}")?;
    }
    let consensus = &readback.consensus;
    let share = |value: Option<f64>| value.map_or("-".to_owned(), |value| format!("{value:.3}"));
    writeln!(
        out,
        "consensus vs truth: {} decided ({} complete, {} review; {} open), accuracy {} (complete only {})",
        consensus.decided,
        consensus.complete,
        consensus.review,
        consensus.open,
        share(consensus.accuracy()),
        share(consensus.complete_accuracy())
    )?;
    if consensus.unknown > 0 {
        writeln!(
            out,
            "  {} tasks the generator did not import",
            consensus.unknown
        )?;
    }
    let quality = &readback.quality;
    writeln!(
        out,
        "worker records: {} spammers ({} paused), {} honest ({} paused); mean |estimated - true accuracy| {} over {} with a verdict",
        quality.spammers,
        quality.spammers_paused,
        quality.honest,
        quality.honest_paused,
        share(quality.mean_accuracy_error()),
        quality.with_verdict
    )
}

fn counts(counters: &CrowdCounters, metrics: &Metrics) -> BTreeMap<&'static str, u64> {
    let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let shared = &metrics.counters;
    BTreeMap::from([
        ("workers_joined", read(&counters.workers_joined)),
        ("moderators_joined", read(&counters.moderators_joined)),
        ("requests", read(&counters.requests)),
        ("grants", get(&shared.grants)),
        ("no_work", read(&counters.no_work)),
        ("paused_replies", read(&counters.paused_replies)),
        ("paused_spammers", read(&counters.paused_spammers)),
        ("paused_honest", read(&counters.paused_honest)),
        ("submits", read(&counters.submits)),
        ("answers", get(&shared.answers)),
        ("settled", read(&counters.settled)),
        ("expired_submits", read(&counters.expired_submits)),
        ("skips", read(&counters.skips)),
        ("heartbeats", read(&counters.heartbeats)),
        ("heartbeats_refused", read(&counters.heartbeats_refused)),
        ("expired_events", read(&counters.expired_events)),
        (
            "expired_while_thinking",
            read(&counters.expired_while_thinking),
        ),
        ("worker_events", read(&counters.worker_events)),
        ("moderator_events", read(&counters.moderator_events)),
        ("moderator_counts", read(&counters.moderator_counts)),
        ("chat_sent", get(&shared.chat_sent)),
        ("chat_replies", get(&shared.chat_replies)),
        ("chat_events", get(&shared.chat_events)),
    ])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::crowd::model::Truth;
    use crate::metrics::add;
    use clap::Parser;
    use std::time::Duration;

    fn cli() -> Cli {
        Cli::parse_from([
            "crowdroom-loadtest",
            "crowd",
            "--token",
            "crt_x",
            "--duration",
            "10s",
            "--clients-per-room",
            "4",
        ])
    }

    #[test]
    fn readback_finds_lost_and_unacknowledged_answers() {
        let truth = Truth::generate(1, 0, 3, 0, 2);
        let mut room = ConsensusScore::default();
        room.add(&truth, "i0", "complete", Some("a"), 3);
        room.add(&truth, "i1", "open", None, 2);
        let mut readback = Readback::default();
        readback.add_room("r0", 5, &room, &QualityCheck::default());
        readback.add_room("r1", 7, &room, &QualityCheck::default());
        readback.add_room("r2", 4, &room, &QualityCheck::default());
        assert_eq!(readback.rooms, 3);
        assert_eq!(
            (readback.answers_acknowledged, readback.answers_on_server),
            (16, 15)
        );
        assert_eq!(readback.lost_answers, 2, "r1 acknowledged 7, holds 5");
        assert_eq!(readback.unacknowledged_answers, 1, "r2");
        assert_eq!(
            readback.mismatched_rooms,
            vec![
                "r1: 7 acknowledged, 5 on the server",
                "r2: 4 acknowledged, 5 on the server"
            ]
        );
        assert_eq!(readback.consensus.decided, 3);
    }

    #[test]
    fn the_outcome_reports_window_throughput_and_the_readback() {
        let cli = cli();
        let metrics = Metrics::new(1).unwrap();
        let crowd = Crowd::new(&cli, 2);
        add(&metrics.counters.grants_in_window, 150);
        add(&metrics.counters.answers_in_window, 50);
        add(&metrics.counters.grants, 180);
        add(&crowd.counters.paused_spammers, 2);
        let window = Window {
            server_cpu: Some(Duration::from_millis(100)),
            postgres_cpu: Some(Duration::from_millis(60)),
            ..Window::default()
        };
        let mut readback = Readback::default();
        let truth = Truth::generate(1, 0, 2, 0, 2);
        let mut room = ConsensusScore::default();
        let right = super::super::model::LABELS[usize::from(truth.label_of("i0").unwrap())];
        room.add(&truth, "i0", "complete", Some(right), 3);
        readback.add_room("r0", 3, &room, &QualityCheck::default());
        let outcome = CrowdOutcome::gather(&cli, &metrics, &crowd, &window, Ok(readback));
        assert_eq!(outcome.grants_per_second, 15.0);
        assert_eq!(outcome.answers_per_second, 5.0);
        assert_eq!(outcome.server_cpu_us_per_operation, Some(500.0));
        assert_eq!(outcome.postgres_cpu_us_per_operation, Some(300.0));
        assert_eq!(
            outcome.server_and_postgres_cpu_us_per_operation,
            Some(800.0)
        );
        assert_eq!(outcome.counts["grants"], 180, "counts cover the whole run");
        assert_eq!(outcome.chat_every_seconds, Some(120.0));
        let mut text = String::new();
        outcome.write_human(&mut text).unwrap();
        assert!(
            text.contains("15.0 grants/s, 5.0 answers/s; server CPU 500 µs"),
            "{text}"
        );
        assert!(
            text.contains("PostgreSQL CPU 300 µs per grant or answer"),
            "{text}"
        );
        assert!(text.contains("together 800 µs"), "{text}");
        assert!(
            text.contains("paused workers: 2 spammers, 0 honest"),
            "{text}"
        );
        assert!(
            text.contains("3 answers on the server, 3 acknowledged: 0 lost (ok)"),
            "{text}"
        );
        assert!(
            text.contains("accuracy 1.000 (complete only 1.000)"),
            "{text}"
        );
        let failed = CrowdOutcome::gather(
            &cli,
            &metrics,
            &crowd,
            &Window::default(),
            Err("HTTP 500".into()),
        );
        assert_eq!(failed.server_cpu_us_per_operation, None);
        assert_eq!(failed.server_and_postgres_cpu_us_per_operation, None);
        let mut text = String::new();
        failed.write_human(&mut text).unwrap();
        assert!(text.contains("read-back FAILED: HTTP 500"));
    }
}
