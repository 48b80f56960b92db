//! Consensus (truth inference): from several workers' answers per item to
//! one answer per item, with a confidence.
//!
//! Why a module of its own: the live engine will re-run these estimators
//! on every room's answers, and the offline `crowdroom consensus` command
//! (in the server, which reads the dataset files) measures them on public
//! benchmark datasets. Both need the same pure code, so nothing here reads
//! a file, a clock or the store.
//!
//! Why the dense shape: items, workers and labels are interned to `u32`
//! indices once ([`Answers`]), answers are stored by item (CSR), and every
//! estimator works on flat `Vec<f64>` tables, so an EM iteration over a
//! million answers is two linear passes with no hashing.
//!
//! The estimators:
//! - [`vote::majority_vote`] and [`vote::weighted_majority_vote`] (MV, WMV),
//! - [`dawid_skene::dawid_skene`] (per-worker confusion matrices, EM),
//! - [`numeric::median`] for numbers, [`text::closest_text`] for free text,
//!   [`spans::vote_spans`] for token spans.
//!
//! Ties are kept as ties: a [`Consensus`] never breaks one by label order.
//! [`Consensus::accuracy`] scores a tie of `k` labels that contains the
//! gold label as `1/k`, the expectation under a fair random tie-break.

pub mod answers;
pub mod dataset;
pub mod dawid_skene;
pub mod numeric;
pub mod spans;
pub mod synthetic;
pub mod text;
pub mod vote;

pub use answers::{Answers, AnswersBuilder};

/// Two posteriors closer than this are a tie. Posteriors are normalized to
/// sum to one, so an absolute tolerance is enough; it absorbs the rounding
/// of weighted sums (two workers with equal weights who disagree).
pub const TIE_TOLERANCE: f64 = 1e-9;

/// The outcome for one item: a label, or a tie the caller must resolve
/// (ask another worker, or draw at random; never the lowest label index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// One label has the highest posterior.
    Label(u32),
    /// These labels (ascending indices) share the highest posterior.
    Tie(Vec<u32>),
}

/// The result of a categorical estimator: a posterior distribution over
/// labels for every item, row-major `[item][label]`.
#[derive(Debug, Clone)]
pub struct Consensus {
    /// Number of labels (row length).
    classes: usize,
    /// `items × classes` probabilities; each row sums to one.
    posteriors: Vec<f64>,
    /// EM or re-weighting rounds actually run (0 for plain MV).
    iterations: u32,
}

impl Consensus {
    /// Wraps posteriors computed by an estimator. `posteriors.len()` must
    /// be a multiple of `classes`.
    pub fn new(classes: usize, posteriors: Vec<f64>, iterations: u32) -> Consensus {
        debug_assert!(classes == 0 || posteriors.len().is_multiple_of(classes));
        Consensus {
            classes,
            posteriors,
            iterations,
        }
    }

    /// Number of items.
    pub fn items(&self) -> usize {
        self.posteriors.len().checked_div(self.classes).unwrap_or(0)
    }

    /// Number of labels.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Rounds the estimator ran.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// The posterior over labels of `item`, or `None` if out of range.
    pub fn posterior(&self, item: usize) -> Option<&[f64]> {
        self.posteriors
            .get(item.checked_mul(self.classes)?..item.checked_add(1)?.checked_mul(self.classes)?)
    }

    /// The posterior probability of the chosen label (the highest one);
    /// 0 for an unknown item.
    pub fn confidence(&self, item: usize) -> f64 {
        self.posterior(item)
            .map_or(0.0, |row| row.iter().copied().fold(0.0, f64::max))
    }

    /// The chosen label of `item`, or the tie; `None` for an unknown item.
    pub fn decision(&self, item: usize) -> Option<Decision> {
        let row = self.posterior(item)?;
        let top = top_labels(row);
        match top.as_slice() {
            [single] => Some(Decision::Label(*single)),
            _ => Some(Decision::Tie(top)),
        }
    }

    /// Number of items whose highest posterior is shared by two or more labels.
    pub fn ties(&self) -> usize {
        (0..self.items())
            .filter_map(|item| self.posterior(item))
            .filter(|row| tied_count(row) > 1)
            .count()
    }

    /// Accuracy on gold `(item, label)` pairs; a gold label of `None` (one
    /// no worker gave) is always missed. A tie of `k` labels containing the
    /// gold label counts `1/k`. `None` when there is no gold.
    pub fn accuracy(&self, gold: &[(u32, Option<u32>)]) -> Option<f64> {
        let mut correct = 0.0;
        let mut counted = 0usize;
        for &(item, label) in gold {
            let Some(row) = self.posterior(item as usize) else {
                continue;
            };
            counted += 1;
            let Some(label) = label else { continue };
            let best = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if row
                .get(label as usize)
                .is_some_and(|&p| best - p <= TIE_TOLERANCE)
            {
                correct += 1.0 / tied_count(row) as f64;
            }
        }
        (counted > 0).then(|| correct / counted as f64)
    }
}

/// Labels whose posterior is within [`TIE_TOLERANCE`] of the highest.
fn top_labels(row: &[f64]) -> Vec<u32> {
    let best = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (0..row.len() as u32)
        .filter(|&label| best - row[label as usize] <= TIE_TOLERANCE)
        .collect()
}

/// How many labels share the highest posterior.
fn tied_count(row: &[f64]) -> usize {
    let best = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    row.iter().filter(|&&p| best - p <= TIE_TOLERANCE).count()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ties_are_reported_and_scored_as_expectations() {
        let consensus = Consensus::new(
            3,
            vec![
                0.5,
                0.5,
                0.0,
                0.2,
                0.7,
                0.1,
                1.0 / 3.0,
                1.0 / 3.0,
                1.0 / 3.0,
            ],
            0,
        );
        assert_eq!(consensus.items(), 3);
        assert_eq!(consensus.ties(), 2);
        assert_eq!(consensus.decision(0), Some(Decision::Tie(vec![0, 1])));
        assert_eq!(consensus.decision(1), Some(Decision::Label(1)));
        assert_eq!(consensus.decision(3), None);
        assert!((consensus.confidence(1) - 0.7).abs() < 1e-12);
        // Item 0: half right; item 1: right; item 2: a third; unknown gold label: wrong.
        let accuracy = consensus
            .accuracy(&[(0, Some(1)), (1, Some(1)), (2, Some(2)), (1, None)])
            .unwrap();
        assert!((accuracy - (0.5 + 1.0 + 1.0 / 3.0) / 4.0).abs() < 1e-12);
        assert_eq!(consensus.accuracy(&[]), None);
    }
}
