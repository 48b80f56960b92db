//! The live progress line: open connections, send and delivery rates,
//! errors. It reads the shared counters twice a second, so it costs the
//! connection tasks nothing. Without a terminal indicatif hides the bar, and
//! step lines go to stderr instead.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::metrics::get;
use crate::run::Ctx;

const TICK: Duration = Duration::from_millis(500);

static BAR: OnceLock<ProgressBar> = OnceLock::new();

/// Starts the bar and its ticker; the ticker ends with the run's stop signal.
pub fn start(ctx: Arc<Ctx>) -> tokio::task::JoinHandle<()> {
    let bar = ProgressBar::new(ctx.sockets() as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} open  {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    let bar = BAR.get_or_init(|| bar).clone();
    tokio::spawn(async move {
        let counters = &ctx.metrics.counters;
        let mut stop = ctx.stop.subscribe();
        let mut ticks = tokio::time::interval(TICK);
        let (mut edits, mut deliveries, mut chat) = (0, 0, 0);
        let (mut grants, mut answers) = (0, 0);
        let crowd = ctx.cli.scenario == crate::config::Scenario::Crowd;
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = ticks.tick() => {}
            }
            let per_second = |now: u64, before: u64| (now - before) as f64 / TICK.as_secs_f64();
            let (edits_now, deliveries_now, chat_now) = (
                get(&counters.edits_sent),
                get(&counters.deliveries),
                get(&counters.chat_sent),
            );
            let (grants_now, answers_now) = (get(&counters.grants), get(&counters.answers));
            bar.set_position(counters.open.load(Ordering::Relaxed).max(0) as u64);
            bar.set_message(if crowd {
                format!(
                    "grants/s {:.0}  answers/s {:.0}  chat/s {:.0}  errors {}",
                    per_second(grants_now, grants),
                    per_second(answers_now, answers),
                    per_second(chat_now, chat),
                    ctx.metrics.error_total(),
                )
            } else {
                format!(
                    "edits/s {:.0}  deliveries/s {:.0}  chat/s {:.0}  errors {}",
                    per_second(edits_now, edits),
                    per_second(deliveries_now, deliveries),
                    per_second(chat_now, chat),
                    ctx.metrics.error_total(),
                )
            });
            (edits, deliveries, chat) = (edits_now, deliveries_now, chat_now);
            (grants, answers) = (grants_now, answers_now);
        }
        bar.finish_and_clear();
    })
}

/// Prints a line above the bar (or to stderr when there is no bar).
pub fn println(line: &str) {
    match BAR.get() {
        Some(bar) if !bar.is_hidden() => bar.println(line),
        _ => eprintln!("{line}"),
    }
}
