//! Runs one estimator on a dataset, times it and scores it against gold:
//! one JSON line per method.
//!
//! Why the timing covers inference only: parsing is IO and interning,
//! which the live engine does incrementally; the figure that matters for
//! it is how long an estimator takes on answers already in memory.

use std::time::Instant;

use crowdroom_work::consensus::dataset::Dataset;
use crowdroom_work::consensus::dawid_skene::{self, DsOptions};
use crowdroom_work::consensus::numeric;
use crowdroom_work::consensus::vote::{self, WmvOptions};
use serde::Serialize;

use super::Method;
use crate::error::Result;

/// One line of `crowdroom consensus` output. The first seven fields are
/// fixed; the rest are present when they mean something.
#[derive(Debug, Clone, Serialize)]
pub struct ReportLine {
    pub dataset: String,
    pub method: &'static str,
    pub items: usize,
    pub answers: usize,
    pub workers: usize,
    /// Accuracy on gold items with answers (ties count `1/k`); null without gold or for numeric methods.
    pub accuracy: Option<f64>,
    /// Inference time, parsing excluded.
    pub seconds: f64,
    /// Mean absolute error of the estimate (numeric methods).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mae: Option<f64>,
    /// Gold items evaluated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gold: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes: Option<usize>,
    /// Items whose top posterior is shared by several labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ties: Option<usize>,
    /// Rounds or EM iterations run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iterations: Option<u32>,
    /// Mean over items of the chosen label's posterior.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_confidence: Option<f64>,
    /// Earlier answers dropped because the worker answered the item again (the last was kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicates: Option<usize>,
}

/// Estimator options for a run.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    pub wmv: WmvOptions,
    pub ds: DsOptions,
}

/// Runs `method` on `dataset`. Numeric methods need numeric answers;
/// the caller decides which methods fit the dataset.
pub fn evaluate(dataset: &Dataset, method: Method, options: &RunOptions) -> Result<ReportLine> {
    let answers = &dataset.answers;
    let mut line = ReportLine {
        dataset: dataset.name.clone(),
        method: method.as_str(),
        items: answers.items(),
        answers: answers.len(),
        workers: answers.workers(),
        accuracy: None,
        seconds: 0.0,
        mae: None,
        gold: None,
        classes: None,
        ties: None,
        iterations: None,
        mean_confidence: None,
        duplicates: (answers.duplicates() > 0).then_some(answers.duplicates()),
    };
    let started = Instant::now();
    let consensus = match method {
        Method::Median => return evaluate_median(dataset, line),
        Method::Mv => vote::majority_vote(answers),
        // Gold is never given to WMV here: it is what the result is scored against.
        Method::Wmv => vote::weighted_majority_vote(answers, options.wmv, &[]),
        Method::Ds => dawid_skene::dawid_skene(answers, options.ds),
    };
    line.seconds = started.elapsed().as_secs_f64();
    let gold = dataset.categorical_gold();
    line.accuracy = consensus.accuracy(&gold);
    line.gold = (!gold.is_empty()).then_some(gold.len());
    line.classes = Some(consensus.classes());
    line.ties = Some(consensus.ties());
    line.iterations = Some(consensus.iterations());
    let items = consensus.items();
    line.mean_confidence = (items > 0).then(|| {
        (0..items)
            .map(|item| consensus.confidence(item))
            .sum::<f64>()
            / items as f64
    });
    Ok(line)
}

/// The median of numeric answers, scored by mean absolute error.
fn evaluate_median(dataset: &Dataset, mut line: ReportLine) -> Result<ReportLine> {
    let values = numeric::label_values(&dataset.answers)?;
    let gold = dataset.numeric_gold()?;
    let started = Instant::now();
    let estimates = numeric::medians(&dataset.answers, &values);
    line.seconds = started.elapsed().as_secs_f64();
    line.mae = numeric::mean_absolute_error(&estimates, &gold);
    line.gold = (!gold.is_empty()).then_some(gold.len());
    Ok(line)
}
