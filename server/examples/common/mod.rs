//! What the store benchmarks share: flags and latency summaries.

use std::time::Duration;

/// The value after `name` on the command line, or `default`.
pub fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|arg| arg == name)
        .and_then(|index| args.get(index + 1))
        .cloned()
        .unwrap_or_else(|| default.to_owned())
}

/// "p50 … ms, p90 … ms, p99 … ms, max … ms" of `latencies` (sorted here).
pub fn summary(latencies: &mut [Duration]) -> String {
    latencies.sort_unstable();
    let at = |quantile: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * quantile) as usize)
            .copied()
            .unwrap_or(Duration::ZERO)
            .as_secs_f64()
            * 1e3
    };
    format!(
        "p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    )
}

/// A store (SQLite in a temporary folder unless `--database` says
/// otherwise) with a room `bench`.
pub struct Bench {
    pub store: crowdroom::Store,
    pub room: crowdroom::ids::RoomId,
    /// Keeps the SQLite folder until the benchmark ends.
    _dir: tempfile::TempDir,
}

impl Bench {
    pub async fn open() -> anyhow::Result<Bench> {
        let dir = tempfile::tempdir()?;
        let default_url = format!("sqlite://{}", dir.path().join("bench.db").display());
        let store = crowdroom::Store::open(&arg("--database", &default_url)).await?;
        let room = crowdroom::ids::RoomId::parse("bench")?;
        store.create_room(&room, "bench").await?;
        Ok(Bench {
            store,
            room,
            _dir: dir,
        })
    }
}
