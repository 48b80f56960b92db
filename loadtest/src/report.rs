//! The end of a run: one `Report` value, printed for a human and written as
//! JSON, and flattened into the figures `--slo` targets name.
//!
//! The JSON carries everything the human summary shows plus the options, so
//! a benchmark table can be rebuilt from the file alone.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Value, json};

use crate::config::Cli;
use crate::crowd::outcome::CrowdOutcome;
use crate::idle::{IdleOutcome, IdleStep};
use crate::metrics::{Metrics, Summary, get};
use crate::run::{Convergence, Window};

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    pub protocol: String,
    pub url: String,
    pub rooms: usize,
    pub clients_per_room: usize,
    pub rate_per_client: f64,
    pub shard: String,
    pub latency_ms: BTreeMap<&'static str, Summary>,
    pub counts: BTreeMap<&'static str, i64>,
    pub throughput_per_second: BTreeMap<&'static str, f64>,
    pub errors: BTreeMap<String, u64>,
    pub error_total: u64,
    pub window_seconds: Option<f64>,
    pub drained: Option<bool>,
    pub server: Option<Value>,
    pub generator: Value,
    pub convergence: Option<Convergence>,
    pub idle: Option<IdleOutcome>,
    /// The crowd scenario's section (set by `crowd::run`).
    pub crowd: Option<CrowdOutcome>,
}

impl Report {
    /// Gathers the report from the metrics and what the scenario returned.
    pub fn build(
        cli: &Cli,
        metrics: &Metrics,
        window: Option<&Window>,
        convergence: Option<Convergence>,
        idle: Option<IdleOutcome>,
    ) -> anyhow::Result<Report> {
        let counters = &metrics.counters;
        let signed = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        let missing = counters
            .outstanding
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(0);
        let counts = BTreeMap::from([
            ("connected", signed(get(&counters.connected))),
            ("connect_failed", signed(get(&counters.connect_failed))),
            ("dropped", signed(get(&counters.dropped))),
            ("edits_sent", signed(get(&counters.edits_sent))),
            ("deliveries", signed(get(&counters.deliveries))),
            ("acks", signed(get(&counters.acks))),
            ("chat_sent", signed(get(&counters.chat_sent))),
            ("chat_replies", signed(get(&counters.chat_replies))),
            ("chat_events", signed(get(&counters.chat_events))),
            ("missing", missing),
            ("unexpected_frames", signed(get(&counters.unexpected))),
        ]);
        let mut throughput = BTreeMap::new();
        let mut server = None;
        if let Some(window) = window {
            // Sending happens in the window proper; the drain only receives.
            let seconds = cli.duration.as_secs_f64().max(f64::EPSILON);
            throughput.insert("edits", get(&counters.edits_sent) as f64 / seconds);
            throughput.insert("deliveries", get(&counters.deliveries) as f64 / seconds);
            throughput.insert("chat_messages", get(&counters.chat_sent) as f64 / seconds);
            throughput.insert("chat_events", get(&counters.chat_events) as f64 / seconds);
            if let Some(cpu) = window.server_cpu {
                let edits = get(&counters.edits_sent);
                let messages = edits
                    + get(&counters.chat_sent)
                    + get(&counters.grants_in_window)
                    + get(&counters.answers_in_window);
                server = Some(json!({
                    "pid": cli.server_pid,
                    "cpu_seconds": cpu.as_secs_f64(),
                    "cpu_percent_of_one_core": 100.0 * cpu.as_secs_f64() / window.measured.as_secs_f64().max(f64::EPSILON),
                    // Per edit only when edits are all the server did (not in mix).
                    "cpu_us_per_edit": (edits > 0 && edits == messages).then(|| cpu.as_micros() as f64 / edits as f64),
                    "cpu_us_per_message": (messages > 0).then(|| cpu.as_micros() as f64 / messages as f64),
                    "rss_kib_start": window.server_rss_kib_start,
                    "rss_kib_end": window.server_rss_kib_end,
                }));
            }
        }
        let latency_ms = metrics.summaries()?;
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let machine_busy = window.and_then(|window| window.machine_busy_percent);
        let generator = json!({
            "cpu_seconds": window.and_then(|window| window.generator_cpu).map(|cpu| cpu.as_secs_f64()),
            "cpu_percent_of_one_core": window.and_then(|window| {
                window.generator_cpu.map(|cpu| 100.0 * cpu.as_secs_f64() / window.measured.as_secs_f64().max(f64::EPSILON))
            }),
            "cores": cores,
            "machine_busy_percent_of_one_core": machine_busy,
            "rss_kib": crate::procstat::Process::OurSelf.rss_kib().ok(),
            "caution": generator_caution(latency_ms.get("send_lag"), machine_busy, cores),
        });
        let errors = metrics.errors();
        Ok(Report {
            scenario: value_name(cli.scenario),
            protocol: value_name(cli.protocol),
            url: cli.url.clone(),
            rooms: cli.rooms,
            clients_per_room: cli.clients_per_room,
            rate_per_client: cli.rate,
            shard: format!("{}/{}", cli.shard.index, cli.shard.count),
            latency_ms,
            counts,
            throughput_per_second: throughput,
            error_total: errors.values().sum(),
            errors,
            window_seconds: window.map(|window| window.measured.as_secs_f64()),
            drained: window.map(|window| window.drained),
            server,
            generator,
            convergence,
            idle,
            crowd: None,
        })
    }

    /// The figures `--slo` targets can name.
    pub fn figures(&self) -> BTreeMap<String, f64> {
        let mut figures = BTreeMap::new();
        for (name, summary) in &self.latency_ms {
            for (percentile, value) in summary.fields() {
                figures.insert(format!("{name}_{percentile}_ms"), value);
            }
        }
        figures.insert("errors".to_owned(), self.error_total as f64);
        for key in ["dropped", "missing", "connect_failed"] {
            figures.insert(
                key.to_owned(),
                self.counts.get(key).copied().unwrap_or(0) as f64,
            );
        }
        if let Some(convergence) = &self.convergence {
            figures.insert(
                "diverged_rooms".to_owned(),
                convergence.diverged_count as f64,
            );
        }
        if let Some(readback) = self
            .crowd
            .as_ref()
            .and_then(|crowd| crowd.readback.as_ref())
        {
            figures.insert("lost_answers".to_owned(), readback.lost_answers as f64);
        }
        figures
    }

    /// The human summary.
    pub fn human(&self) -> String {
        let mut out = String::new();
        let _ = self.write_human(&mut out);
        out
    }

    fn write_human(&self, out: &mut String) -> std::fmt::Result {
        writeln!(
            out,
            "\n== crowdroom-loadtest {} against {} ({}) ==",
            self.scenario, self.url, self.protocol
        )?;
        writeln!(
            out,
            "rooms {} x {} clients, rate {}/s per client, shard {}",
            self.rooms, self.clients_per_room, self.rate_per_client, self.shard
        )?;
        let count = |key: &str| self.counts.get(key).copied().unwrap_or(0);
        writeln!(
            out,
            "connections: {} ok, {} failed, {} dropped",
            count("connected"),
            count("connect_failed"),
            count("dropped")
        )?;
        if let Some(seconds) = self.window_seconds {
            writeln!(
                out,
                "window: {:.1} s measured (incl. drain), drained: {}",
                seconds,
                self.drained.unwrap_or(false)
            )?;
        }
        if !self.latency_ms.is_empty() {
            writeln!(
                out,
                "\n{:<12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                "latency ms", "count", "p50", "p90", "p99", "p99.9", "max"
            )?;
            for (name, summary) in &self.latency_ms {
                writeln!(
                    out,
                    "{:<12} {:>9} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                    name,
                    summary.count,
                    summary.p50_ms,
                    summary.p90_ms,
                    summary.p99_ms,
                    summary.p999_ms,
                    summary.max_ms
                )?;
            }
        }
        if !self.throughput_per_second.is_empty() {
            writeln!(out)?;
            for (name, rate) in &self.throughput_per_second {
                if *rate > 0.0 {
                    writeln!(out, "throughput {name}: {rate:.1}/s")?;
                }
            }
        }
        if count("edits_sent") > 0 {
            writeln!(
                out,
                "edits {} sent, {} deliveries, {} acks, {} receipts missing",
                count("edits_sent"),
                count("deliveries"),
                count("acks"),
                count("missing")
            )?;
        }
        if count("chat_sent") > 0 {
            writeln!(
                out,
                "chat {} sent, {} replies ok, {} events; {} receipts missing",
                count("chat_sent"),
                count("chat_replies"),
                count("chat_events"),
                count("missing")
            )?;
        }
        if count("unexpected_frames") > 0 {
            writeln!(out, "unexpected frames: {}", count("unexpected_frames"))?;
        }
        if self.errors.is_empty() {
            writeln!(out, "errors: none")?;
        } else {
            writeln!(out, "errors: {}", self.error_total)?;
            for (cause, count) in &self.errors {
                writeln!(out, "  {count:>8}  {cause}")?;
            }
        }
        if let Some(convergence) = &self.convergence {
            let verdict = if convergence.diverged_count == 0 {
                "CONVERGED"
            } else {
                "DIVERGED"
            };
            writeln!(
                out,
                "convergence: {verdict}, {}/{} rooms",
                convergence.converged, convergence.rooms
            )?;
            for problem in &convergence.diverged {
                writeln!(out, "  {problem}")?;
            }
            if convergence.diverged_count > 0 && count("missing") > 0 {
                writeln!(
                    out,
                    "  (checked while {} receipts were still missing: the server was behind, so this may be a backlog, not a divergence)",
                    count("missing")
                )?;
            }
        }
        if let Some(server) = &self.server {
            let field = |key: &str| server.get(key).and_then(Value::as_f64);
            let per = match (field("cpu_us_per_edit"), field("cpu_us_per_message")) {
                (Some(micros), _) => format!("{micros:.1} µs per edit"),
                (None, Some(micros)) => {
                    format!("{micros:.1} µs per message (edits, chat, grants, answers)")
                }
                (None, None) => "nothing sent".to_owned(),
            };
            writeln!(
                out,
                "server: CPU {:.2} s ({:.0}% of a core), {per}, RSS {} -> {} KiB",
                field("cpu_seconds").unwrap_or(0.0),
                field("cpu_percent_of_one_core").unwrap_or(0.0),
                server
                    .get("rss_kib_start")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
                server
                    .get("rss_kib_end")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
            )?;
        }
        if let Some(cpu) = self
            .generator
            .get("cpu_percent_of_one_core")
            .and_then(Value::as_f64)
        {
            let cores = self
                .generator
                .get("cores")
                .and_then(Value::as_u64)
                .unwrap_or(1);
            let machine = self
                .generator
                .get("machine_busy_percent_of_one_core")
                .and_then(Value::as_f64);
            writeln!(
                out,
                "generator: CPU {cpu:.0}% of a core; whole machine busy {}% of {} ({cores} cores)",
                machine.map_or("-".to_owned(), |busy| format!("{busy:.0}")),
                cores * 100
            )?;
        }
        if let Some(caution) = self.generator.get("caution").and_then(Value::as_str) {
            writeln!(out, "caution: {caution}")?;
        }
        if let Some(crowd) = &self.crowd {
            crowd.write_human(out)?;
        }
        if let Some(idle) = &self.idle {
            writeln!(out, "idle: {} connections held to the end", idle.held)?;
            if let Some(cpu) = idle.server_hold_cpu_percent {
                writeln!(out, "server CPU while holding them: {cpu:.1}% of a core")?;
            }
        }
        Ok(())
    }
}

/// The name clap shows for an option value (`y-websocket`, not `YWebsocket`).
fn value_name(value: impl clap::ValueEnum) -> String {
    value
        .to_possible_value()
        .map_or_else(String::new, |possible| possible.get_name().to_owned())
}

/// One line per idle step, printed as it completes.
pub fn print_idle_step(step: &IdleStep) {
    let per = step
        .bytes_per_connection
        .map_or("-".to_owned(), |bytes| format!("{:.2} KiB", bytes / 1024.0));
    let rss = step.server_rss_kib.map_or("-".to_owned(), |kib| {
        format!("{:.1} MiB", kib as f64 / 1024.0)
    });
    let generator = step.generator_rss_kib.map_or("-".to_owned(), |kib| {
        format!("{:.1} MiB", kib as f64 / 1024.0)
    });
    let sockets = step
        .server_sockets
        .map_or("-".to_owned(), |sockets| sockets.to_string());
    let kib =
        |bytes: Option<f64>| bytes.map_or("-".to_owned(), |bytes| format!("{:.2}", bytes / 1024.0));
    crate::progress::println(&format!(
        "step: {:>6} connections ({} failed) in {:.1} s; server: {sockets} sockets, RSS {rss}, {per} per connection; anonymous {} KiB per connection, {} KiB each since the last step; generator RSS {generator}",
        step.connections,
        step.failed,
        step.step_seconds,
        kib(step.anon_bytes_per_connection),
        kib(step.marginal_anon_bytes_per_connection),
    ));
}

/// The generator's own send lag at p99 above which it was late: a healthy
/// run sends within a couple of milliseconds of schedule (tokio's timer).
const LATE_SEND_P99_MS: f64 = 10.0;
/// The share of all cores busy above which the machine was saturated.
const SATURATED_SHARE: f64 = 0.9;

/// Says when a run's latencies measure the generator as much as the server:
/// it sent late itself, or it shared a saturated machine with the server.
/// Load testers should not take such figures as the server's alone.
fn generator_caution(
    send_lag: Option<&Summary>,
    machine_busy_percent: Option<f64>,
    cores: usize,
) -> Option<String> {
    let late = send_lag
        .filter(|lag| lag.p99_ms > LATE_SEND_P99_MS)
        .map(|lag| {
            format!(
                "the generator sent late itself (send lag p99 {:.1} ms)",
                lag.p99_ms
            )
        });
    let capacity = 100.0 * cores as f64;
    let saturated = machine_busy_percent
        .filter(|&busy| busy >= SATURATED_SHARE * capacity)
        .map(|busy| format!("the machine was {busy:.0}% busy of {capacity:.0}"));
    let why: Vec<String> = late.into_iter().chain(saturated).collect();
    (!why.is_empty()).then(|| {
        format!(
            "{}: the latencies include the generator's own delays; to measure the server alone, \
             give the generator its own machine or fewer clients",
            why.join(" and ")
        )
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::crowd::outcome::Readback;
    use crate::metrics::Hist;
    use clap::Parser;
    use std::time::Duration;

    #[test]
    fn crowd_figures_reach_the_slo_check() {
        let cli = Cli::parse_from(["crowdroom-loadtest", "crowd", "--token", "crt_x"]);
        let metrics = Metrics::new(2).unwrap();
        for ms in 1..=100 {
            metrics.record(ms, Hist::Grant, Duration::from_millis(ms as u64));
            metrics.record(ms, Hist::Ack, Duration::from_millis(2 * ms as u64));
        }
        let window = Window::default();
        let mut report = Report::build(&cli, &metrics, Some(&window), None, None).unwrap();
        let figures = report.figures();
        assert!((figures["grant_p99_ms"] - 99.0).abs() < 0.1, "{figures:?}");
        assert!((figures["ack_p99_ms"] - 198.0).abs() < 0.2);
        assert!(
            !figures.contains_key("lost_answers"),
            "no read-back, no figure"
        );
        let crowd = crate::crowd::Crowd::new(&cli, 1);
        let readback = Readback {
            lost_answers: 2,
            ..Readback::default()
        };
        report.crowd = Some(CrowdOutcome::gather(
            &cli,
            &metrics,
            &crowd,
            &window,
            Ok(readback),
        ));
        let targets = crate::slo::parse("grant_p99_ms=20,ack_p99_ms=250,lost_answers=0").unwrap();
        let verdicts = crate::slo::evaluate(&targets, &report.figures());
        let met: Vec<bool> = verdicts.iter().map(crate::slo::Verdict::met).collect();
        assert_eq!(met, vec![false, true, false]);
        assert!(report.human().contains("grant"));
    }

    #[test]
    fn a_late_generator_or_a_saturated_machine_is_called_out() {
        let lag = |p99_ms: f64| Summary {
            count: 100,
            mean_ms: 1.0,
            p50_ms: 1.0,
            p90_ms: 1.0,
            p99_ms,
            p999_ms: p99_ms,
            max_ms: p99_ms,
        };
        assert_eq!(generator_caution(Some(&lag(2.5)), Some(120.0), 2), None);
        assert_eq!(generator_caution(None, None, 2), None);
        let late = generator_caution(Some(&lag(63.1)), Some(150.0), 2).unwrap();
        assert!(
            late.starts_with("the generator sent late itself (send lag p99 63.1 ms): "),
            "{late}"
        );
        let busy = generator_caution(Some(&lag(2.0)), Some(197.0), 2).unwrap();
        assert!(
            busy.starts_with("the machine was 197% busy of 200: "),
            "{busy}"
        );
        let both = generator_caution(Some(&lag(63.1)), Some(199.0), 2).unwrap();
        assert!(both.contains("ms) and the machine was 199% busy"), "{both}");
        // Busy on one core of four is not saturation.
        assert_eq!(generator_caution(None, Some(190.0), 4), None);
        // And the report prints it.
        let cli = Cli::parse_from(["crowdroom-loadtest", "coedit", "--token", "crt_x"]);
        let metrics = Metrics::new(1).unwrap();
        metrics.record(0, Hist::SendLag, Duration::from_millis(40));
        let report = Report::build(&cli, &metrics, None, None, None).unwrap();
        assert!(
            report
                .human()
                .contains("caution: the generator sent late itself"),
            "{}",
            report.human()
        );
    }
}
