//! `crowdroom-loadtest`: drives a running Crowdroom (or any y-websocket, or Hocuspocus)
//! server over its public wire protocols and reports what it measured.
//!
//! It depends on no server code, only on the protocols (`crowdroom-crdt`
//! for y-websocket framing, yrs for making updates), so it measures what a
//! real client sees and can run against other servers for comparison.
//!
//! The flow: parse and validate options (only loopback targets), provision
//! rooms and tokens over REST (blocking threads, before anything is timed),
//! then run the scenario on a multi-thread runtime, print the summary, write
//! the JSON report and check the `--slo` targets. See docs/BENCHMARKS.md.

mod chat;
mod coedit;
mod config;
mod crowd;
mod hocuspocus;
mod idle;
mod metrics;
mod net;
mod procstat;
mod progress;
mod provision;
mod report;
mod run;
mod slo;
mod ywire;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

use crate::config::{Cli, Scenario, Target};
use crate::metrics::Metrics;
use crate::net::Connector;
use crate::report::Report;
use crate::run::Ctx;

/// Exit status when an `--slo` target was missed (1 is any other error, 2 a usage error).
const EXIT_SLO_MISSED: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("crowdroom-loadtest: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    cli.validate()?;
    let targets = cli.slo.as_deref().map(slo::parse).transpose()?;
    let target = Target::parse(&cli.url)?;
    let threads = if cli.threads == 0 {
        std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(2)
    } else {
        cli.threads
    };

    let provisioning = std::time::Instant::now();
    let rooms = provision::provision(&cli, &target)?;
    eprintln!(
        "provisioned {} rooms x {} clients in {:.1} s",
        rooms.len(),
        cli.clients_per_room,
        provisioning.elapsed().as_secs_f64()
    );
    if cli.scenario == Scenario::Crowd {
        eprintln!(
            "crowd: {} moderators, {} regular and {} gold tasks per room",
            cli.moderators,
            crowd::setup::regular_tasks(&cli),
            cli.gold_per_room
        );
    }
    if rooms.is_empty() {
        anyhow::bail!(
            "this shard owns no rooms (--rooms {} --shard {}/{})",
            cli.rooms,
            cli.shard.index,
            cli.shard.count
        );
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let connector = Connector::new(target, cli.source_addrs.clone());
    let metrics = Metrics::new(threads * 4)?;
    let report = runtime.block_on(async move {
        let ctx = Arc::new(Ctx::new(cli, connector, metrics, rooms));
        let ticker = progress::start(ctx.clone());
        let report = scenario(&ctx).await;
        // The ticker ends with the stop signal; it only draws.
        let _ = ticker.await;
        report.map(|report| (report, ctx))
    });
    let (report, ctx) = report?;
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));

    print!("{}", report.human());
    if let Some(path) = &ctx.cli.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("report written to {}", path.display());
    }
    let Some(targets) = targets else {
        return Ok(ExitCode::SUCCESS);
    };
    let verdicts = slo::evaluate(&targets, &report.figures());
    for verdict in &verdicts {
        println!("slo: {verdict}");
    }
    Ok(if verdicts.iter().all(slo::Verdict::met) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_SLO_MISSED)
    })
}

async fn scenario(ctx: &Arc<Ctx>) -> anyhow::Result<Report> {
    match ctx.cli.scenario {
        Scenario::Idle => {
            let outcome = idle::run(ctx.clone()).await;
            Report::build(&ctx.cli, &ctx.metrics, None, None, Some(outcome))
        }
        Scenario::Chat => {
            let chatters = chat::spawn_chatters(ctx, 0, 1);
            let window = run::measure_window(ctx).await;
            for handle in chatters {
                // A panicked task has been reported by the runtime already.
                let _ = handle.await;
            }
            Report::build(&ctx.cli, &ctx.metrics, Some(&window), None, None)
        }
        Scenario::Crowd => crowd::run(ctx).await,
        Scenario::Coedit | Scenario::Mix => {
            let mix = ctx.cli.scenario == Scenario::Mix;
            let step = if mix { 2 } else { 1 };
            let editors = coedit::spawn_editors(ctx, 0, step);
            let chatters = if mix {
                chat::spawn_chatters(ctx, 1, 2)
            } else {
                Vec::new()
            };
            let window = run::measure_window(ctx).await;
            let mut results = Vec::with_capacity(editors.len());
            for handle in editors {
                if let Ok(result) = handle.await {
                    results.push(result);
                }
            }
            for handle in chatters {
                // As above.
                let _ = handle.await;
            }
            let convergence = run::check_convergence(ctx, results).await;
            Report::build(
                &ctx.cli,
                &ctx.metrics,
                Some(&window),
                Some(convergence),
                None,
            )
        }
    }
}
