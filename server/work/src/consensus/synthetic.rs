//! A reproducible synthetic crowd, for speed benchmarks at a size no public
//! dataset has (`--synthetic 200000x5,workers=2000,classes=4,seed=1`).
//!
//! The generating model is Dawid-Skene's own, so the truth is known and the
//! accuracy is meaningful: class priors drawn once (mildly imbalanced); 10%
//! of workers are spammers answering uniformly at random; every other
//! worker has accuracy drawn from U(0.5, 0.95), jittered per true class, and
//! spreads their errors over the wrong labels with skewed random weights
//! (so some confusions are much likelier than others). Each task is
//! answered by distinct workers drawn uniformly.
//!
//! The random generator is SplitMix64, written out here so that a seed
//! gives the same dataset whatever version of `rand` the build resolves.

use super::Answers;
use super::dataset::Dataset;
use crate::error::{Error, Result};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntheticSpec {
    pub tasks: usize,
    pub answers_per_task: usize,
    pub workers: usize,
    pub classes: usize,
    pub seed: u64,
}

impl SyntheticSpec {
    /// Parses `TASKSxANSWERS[,workers=N][,classes=K][,seed=S]`
    /// (defaults: 2000 workers, 4 classes, seed 1).
    pub fn parse(text: &str) -> Result<SyntheticSpec> {
        let bad = |why: &str| {
            Error::Invalid(format!(
                "--synthetic {text:?}: {why} (expected TASKSxANSWERS[,workers=N][,classes=K][,seed=S])"
            ))
        };
        let mut parts = text.split(',');
        let size = parts.next().unwrap_or_default();
        let (tasks, answers) = size
            .split_once('x')
            .ok_or_else(|| bad("missing TASKSxANSWERS"))?;
        let number = |value: &str| {
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| bad(&format!("{value:?} is not a whole number")))
        };
        let mut spec = SyntheticSpec {
            tasks: number(tasks)? as usize,
            answers_per_task: number(answers)? as usize,
            workers: 2000,
            classes: 4,
            seed: 1,
        };
        for part in parts {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| bad(&format!("{part:?} is not key=value")))?;
            match key.trim() {
                "workers" => spec.workers = number(value)? as usize,
                "classes" => spec.classes = number(value)? as usize,
                "seed" => spec.seed = number(value)?,
                other => return Err(bad(&format!("unknown key {other:?}"))),
            }
        }
        if spec.tasks == 0
            || spec.answers_per_task == 0
            || spec.classes < 2
            || spec.workers < spec.answers_per_task
        {
            return Err(bad(
                "need tasks >= 1, answers >= 1, classes >= 2 and workers >= answers per task",
            ));
        }
        if spec.tasks.saturating_mul(spec.answers_per_task) > u32::MAX as usize / 2 {
            return Err(bad("too many answers"));
        }
        Ok(spec)
    }

    /// A name for the JSON lines, e.g. `synthetic-200000x5-w2000-k4-s1`.
    pub fn name(&self) -> String {
        format!(
            "synthetic-{}x{}-w{}-k{}-s{}",
            self.tasks, self.answers_per_task, self.workers, self.classes, self.seed
        )
    }
}

/// Generates the dataset; its gold is the true label of every task.
pub fn generate(spec: SyntheticSpec) -> Result<Dataset> {
    let mut random = SplitMix64(spec.seed);
    let classes = spec.classes;
    let priors: Vec<f64> = (0..classes).map(|_| 0.5 + random.unit()).collect();
    let prior_cdf = cumulative(&priors);
    // Per worker, per true class: the cumulative distribution of the answer.
    let mut worker_cdf = Vec::with_capacity(spec.workers * classes * classes);
    for _ in 0..spec.workers {
        let spammer = random.unit() < 0.1;
        let accuracy = 0.5 + 0.45 * random.unit();
        for truth in 0..classes {
            let row: Vec<f64> = if spammer {
                vec![1.0; classes]
            } else {
                let right = (accuracy + 0.1 * (random.unit() - 0.5)).clamp(0.3, 0.99);
                let wrong: Vec<f64> = (0..classes)
                    .map(|label| {
                        if label == truth {
                            0.0
                        } else {
                            random.unit().powi(2) + 1e-3
                        }
                    })
                    .collect();
                let wrong_total: f64 = wrong.iter().sum();
                wrong
                    .iter()
                    .enumerate()
                    .map(|(label, weight)| {
                        if label == truth {
                            right
                        } else {
                            (1.0 - right) * weight / wrong_total
                        }
                    })
                    .collect()
            };
            worker_cdf.extend(cumulative(&row));
        }
    }
    let mut triples = Vec::with_capacity(spec.tasks * spec.answers_per_task);
    let mut truths = Vec::with_capacity(spec.tasks);
    let mut chosen = Vec::with_capacity(spec.answers_per_task);
    for task in 0..spec.tasks {
        let truth = sample(&prior_cdf, random.unit());
        truths.push(truth);
        chosen.clear();
        while chosen.len() < spec.answers_per_task {
            let worker = random.below(spec.workers);
            if chosen.contains(&worker) {
                continue;
            }
            chosen.push(worker);
            let row = (worker * classes + truth) * classes;
            let label = sample(&worker_cdf[row..row + classes], random.unit());
            triples.push((task as u32, worker as u32, label as u32));
        }
    }
    let answers = Answers::from_indices(
        (0..spec.tasks).map(|task| format!("t{task}")).collect(),
        (0..spec.workers)
            .map(|worker| format!("w{worker}"))
            .collect(),
        (0..classes).map(|label| format!("c{label}")).collect(),
        &triples,
    )?;
    let gold = truths
        .iter()
        .enumerate()
        .map(|(task, &truth)| (task as u32, format!("c{truth}")))
        .collect();
    Ok(Dataset {
        name: spec.name(),
        answers,
        gold,
        gold_unanswered: 0,
    })
}

/// Cumulative sums normalized to end at 1.
fn cumulative(weights: &[f64]) -> Vec<f64> {
    let total: f64 = weights.iter().sum();
    let mut running = 0.0;
    weights
        .iter()
        .map(|weight| {
            running += weight / total;
            running
        })
        .collect()
}

/// The first index whose cumulative probability exceeds `draw`.
fn sample(cdf: &[f64], draw: f64) -> usize {
    cdf.iter()
        .position(|&bound| draw < bound)
        .unwrap_or(cdf.len().saturating_sub(1))
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and fixed forever.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut value = self.0;
        value = (value ^ (value >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        value = (value ^ (value >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        value ^ (value >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..bound` (bound > 0).
    fn below(&mut self, bound: usize) -> usize {
        ((self.next() >> 32).wrapping_mul(bound as u64) >> 32) as usize
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        let spec = SyntheticSpec::parse("200000x5,workers=2000,classes=4,seed=1").unwrap();
        assert_eq!(
            spec,
            SyntheticSpec {
                tasks: 200_000,
                answers_per_task: 5,
                workers: 2000,
                classes: 4,
                seed: 1
            }
        );
        assert_eq!(SyntheticSpec::parse("10x3").unwrap().workers, 2000);
        for bad in [
            "",
            "10",
            "10x3,colour=red",
            "10x3,classes=1",
            "10x3,workers=2",
            "ax3",
        ] {
            assert!(SyntheticSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn generation_is_reproducible_and_well_formed() {
        let spec = SyntheticSpec::parse("500x5,workers=50,classes=3,seed=7").unwrap();
        let first = generate(spec).unwrap();
        let second = generate(spec).unwrap();
        assert_eq!(
            first.answers.answer_labels(),
            second.answers.answer_labels()
        );
        assert_eq!(first.answers.len(), 2500);
        assert_eq!(first.answers.duplicates(), 0);
        assert_eq!(first.gold.len(), 500);
        assert!(first.answers.classes() <= 3);
        let other = generate(SyntheticSpec { seed: 8, ..spec }).unwrap();
        assert_ne!(first.answers.answer_labels(), other.answers.answer_labels());
    }
}
