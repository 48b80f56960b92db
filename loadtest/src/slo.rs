//! `--slo 'fanout_p99_ms=25,ack_p99_ms=50,errors=0'`: upper bounds on report
//! figures, so a CI job or a script can fail on a regression.
//!
//! Every target is "at most": latencies (`<histogram>_<p50|p90|p99|p999|max|mean>_ms`)
//! and counts (`errors`, `dropped`, `missing`, `diverged_rooms`,
//! `connect_failed`, and for crowd `lost_answers`: acknowledged answers the
//! server does not hold). Keys are checked when the command line is parsed, so a
//! typo fails at once instead of after a ten-minute run. A target on a figure
//! the run did not measure (a chat latency in a coedit run) is missed: a
//! target nobody can check must not pass silently.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{Context, bail};

use crate::metrics::Hist;

/// Count figures a target may name.
pub const COUNT_KEYS: [&str; 6] = [
    "errors",
    "dropped",
    "missing",
    "diverged_rooms",
    "connect_failed",
    "lost_answers",
];
const PERCENTILES: [&str; 6] = ["p50", "p90", "p99", "p999", "max", "mean"];

/// One target: `key` must be at most `limit`.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub key: String,
    pub limit: f64,
}

/// A target compared with what the run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub key: String,
    pub limit: f64,
    /// None: the run did not measure it.
    pub value: Option<f64>,
}

impl Verdict {
    pub fn met(&self) -> bool {
        self.value.is_some_and(|value| value <= self.limit)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = if self.met() { "met" } else { "MISSED" };
        match self.value {
            Some(value) => write!(
                f,
                "{} = {value:.3} (target <= {}): {status}",
                self.key, self.limit
            ),
            None => write!(
                f,
                "{} not measured (target <= {}): {status}",
                self.key, self.limit
            ),
        }
    }
}

/// Whether `key` names a figure the report can carry.
fn known(key: &str) -> bool {
    if COUNT_KEYS.contains(&key) {
        return true;
    }
    let Some(rest) = key.strip_suffix("_ms") else {
        return false;
    };
    Hist::ALL.iter().any(|hist| {
        rest.strip_prefix(hist.name())
            .and_then(|tail| tail.strip_prefix('_'))
            .is_some_and(|percentile| PERCENTILES.contains(&percentile))
    })
}

/// Parses `key=limit[,key=limit...]`.
pub fn parse(text: &str) -> anyhow::Result<Vec<Target>> {
    let mut targets = Vec::new();
    for part in text
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
    {
        let (key, limit) = part
            .split_once('=')
            .with_context(|| format!("--slo: `{part}` is not key=value"))?;
        let key = key.trim();
        if !known(key) {
            bail!(
                "--slo: unknown figure `{key}`; use <histogram>_<p50|p90|p99|p999|max|mean>_ms with histogram one of {} or one of {}",
                Hist::ALL.map(Hist::name).join(", "),
                COUNT_KEYS.join(", ")
            );
        }
        let limit: f64 = limit
            .trim()
            .parse()
            .with_context(|| format!("--slo: `{part}`: the limit is not a number"))?;
        if !limit.is_finite() {
            bail!("--slo: `{part}`: the limit must be finite");
        }
        targets.push(Target {
            key: key.to_owned(),
            limit,
        });
    }
    if targets.is_empty() {
        bail!("--slo is empty");
    }
    Ok(targets)
}

/// Compares the targets with the run's figures.
pub fn evaluate(targets: &[Target], figures: &BTreeMap<String, f64>) -> Vec<Verdict> {
    targets
        .iter()
        .map(|target| Verdict {
            key: target.key.clone(),
            limit: target.limit,
            value: figures.get(&target.key).copied(),
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let targets = parse("fanout_p99_ms=25, ack_p99_ms=50,errors=0").unwrap();
        assert_eq!(
            targets,
            vec![
                Target {
                    key: "fanout_p99_ms".into(),
                    limit: 25.0
                },
                Target {
                    key: "ack_p99_ms".into(),
                    limit: 50.0
                },
                Target {
                    key: "errors".into(),
                    limit: 0.0
                },
            ]
        );
        assert!(parse("chat_reply_p999_ms=10.5,send_lag_max_ms=100").is_ok());
    }

    #[test]
    fn refuses_typos_and_garbage() {
        assert!(parse("fanout_p98_ms=25").is_err());
        assert!(parse("fanot_p99_ms=25").is_err());
        assert!(parse("errors").is_err());
        assert!(parse("errors=lots").is_err());
        assert!(parse("errors=inf").is_err());
        assert!(parse(" , ").is_err());
    }

    #[test]
    fn verdicts() {
        let targets = parse("fanout_p99_ms=25,errors=0,chat_reply_p99_ms=5").unwrap();
        let figures = BTreeMap::from([
            ("fanout_p99_ms".to_owned(), 24.9),
            ("errors".to_owned(), 1.0),
        ]);
        let verdicts = evaluate(&targets, &figures);
        assert!(verdicts[0].met());
        assert!(!verdicts[1].met(), "one error misses errors=0");
        assert!(!verdicts[2].met(), "a figure that was not measured misses");
        assert!(verdicts[2].to_string().contains("not measured"));
    }
}
