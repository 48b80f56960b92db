//! Majority vote (MV) and weighted majority vote (WMV).
//!
//! MV is the floor every other estimator must beat and the starting point
//! of WMV and Dawid-Skene. Its posterior is the vote share, so a 5-5 split
//! stays a tie: breaking it by label order would hide a bias toward the
//! first label (Crowd-Kit's MV does that; on RTE it moves accuracy by 2
//! points).
//!
//! WMV gives each worker the weight `ln((K-1)·p/(1-p))`, the log-odds of the
//! "one-coin" model in which a worker is right with probability `p` and
//! otherwise picks one of the `K-1` wrong labels uniformly; under that model
//! the posterior of a label is the softmax of its summed weights, which is
//! what [`Consensus`] holds. `p` is estimated by agreement with the current
//! consensus (a tie of `k` labels counts `1/k`), smoothed by a Beta prior,
//! starting from MV and repeated until the weights stop changing. Workers
//! with known gold answers (honeypots) can have `p` estimated from those.

use super::{Answers, Consensus, TIE_TOLERANCE};

/// Majority vote: the posterior of a label is its share of the item's votes.
pub fn majority_vote(answers: &Answers) -> Consensus {
    let classes = answers.classes();
    let mut posteriors = vec![0.0; answers.items() * classes];
    let labels = answers.answer_labels();
    for (item, window) in answers.offsets().windows(2).enumerate() {
        let row = &mut posteriors[item * classes..(item + 1) * classes];
        let votes = &labels[window[0] as usize..window[1] as usize];
        for &label in votes {
            row[label as usize] += 1.0;
        }
        if !votes.is_empty() {
            let share = 1.0 / votes.len() as f64;
            row.iter_mut().for_each(|count| *count *= share);
        }
    }
    Consensus::new(classes, posteriors, 0)
}

/// Options of [`weighted_majority_vote`].
#[derive(Debug, Clone, Copy)]
pub struct WmvOptions {
    /// Re-weighting rounds at most; it stops earlier when no weight moves.
    pub max_rounds: u32,
    /// Beta prior on a worker's accuracy: pseudo-answers that agreed...
    pub prior_right: f64,
    /// ...and pseudo-answers that disagreed. The defaults (2, 1) say "a
    /// worker is more likely right than wrong" with the weight of three
    /// answers, so a worker seen once gets a modest weight, not an extreme one.
    pub prior_wrong: f64,
}

impl Default for WmvOptions {
    fn default() -> WmvOptions {
        WmvOptions {
            max_rounds: 10,
            prior_right: 2.0,
            prior_wrong: 1.0,
        }
    }
}

/// Weighted majority vote. `gold` pairs `(item, label)` are honeypots: a
/// worker who answered at least one of them has `p` estimated from those
/// answers only (with the same prior). Pass `&[]` to estimate every worker
/// from agreement, as when gold is kept for evaluation.
pub fn weighted_majority_vote(
    answers: &Answers,
    options: WmvOptions,
    gold: &[(u32, Option<u32>)],
) -> Consensus {
    let classes = answers.classes();
    let workers = answers.workers();
    let gold_counts = gold_counts(answers, gold);
    let mut answered = vec![0.0; workers];
    for &worker in answers.answer_workers() {
        answered[worker as usize] += 1.0;
    }
    // Rounds compare summed weights (log-odds); the softmax into posteriors
    // is taken once at the end. Weights of 1 make the first round agree
    // with plain majority vote.
    let mut weights = vec![1.0; workers];
    let mut scores = vec![0.0; answers.items() * classes];
    weighted_scores(answers, &weights, &mut scores);
    let mut agreed = vec![0.0; workers];
    let mut rounds = 0;
    while rounds < options.max_rounds {
        rounds += 1;
        agreement(answers, &scores, &mut agreed);
        let mut moved: f64 = 0.0;
        for worker in 0..workers {
            let (right, total) = match gold_counts.get(worker) {
                Some(&(right, total)) if total > 0.0 => (right, total),
                _ => (agreed[worker], answered[worker]),
            };
            let accuracy =
                (right + options.prior_right) / (total + options.prior_right + options.prior_wrong);
            let weight = log_odds_weight(accuracy, classes);
            moved = moved.max((weight - weights[worker]).abs());
            weights[worker] = weight;
        }
        weighted_scores(answers, &weights, &mut scores);
        if moved < 1e-9 {
            break;
        }
    }
    if classes > 0 {
        scores.chunks_exact_mut(classes).for_each(softmax);
    }
    Consensus::new(classes, scores, rounds)
}

/// `ln((K-1)·p/(1-p))`, the one-coin model's vote weight; 0 with fewer
/// than two labels (nothing to decide) and bounded so that `p` of 0 or 1
/// cannot produce an infinite weight.
pub fn log_odds_weight(accuracy: f64, classes: usize) -> f64 {
    if classes < 2 {
        return 0.0;
    }
    let accuracy = accuracy.clamp(1e-6, 1.0 - 1e-6);
    ((classes - 1) as f64 * accuracy / (1.0 - accuracy)).ln()
}

/// A vote with given worker weights (log-odds, e.g. from
/// [`log_odds_weight`]): the posterior is the softmax of each label's
/// summed weights.
pub fn weighted_vote(answers: &Answers, weights: &[f64]) -> Consensus {
    let classes = answers.classes();
    let mut scores = vec![0.0; answers.items() * classes];
    weighted_scores(answers, weights, &mut scores);
    if classes > 0 {
        scores.chunks_exact_mut(classes).for_each(softmax);
    }
    Consensus::new(classes, scores, 0)
}

/// Sums each label's worker weights per item into `scores` (`[item][label]`).
/// A worker without a weight counts 0.
fn weighted_scores(answers: &Answers, weights: &[f64], scores: &mut [f64]) {
    scores.fill(0.0);
    let classes = answers.classes();
    let (workers, labels) = (answers.answer_workers(), answers.answer_labels());
    for (item, window) in answers.offsets().windows(2).enumerate() {
        let row = &mut scores[item * classes..(item + 1) * classes];
        for index in window[0] as usize..window[1] as usize {
            row[labels[index] as usize] +=
                weights.get(workers[index] as usize).copied().unwrap_or(0.0);
        }
    }
}

/// Normalizes a row of log-scores into probabilities in place.
pub(crate) fn softmax(row: &mut [f64]) {
    let best = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !best.is_finite() {
        let uniform = 1.0 / row.len() as f64;
        row.iter_mut().for_each(|value| *value = uniform);
        return;
    }
    let mut total = 0.0;
    for value in row.iter_mut() {
        *value = (*value - best).exp();
        total += *value;
    }
    row.iter_mut().for_each(|value| *value /= total);
}

/// For each worker, answers agreeing with the current top label of their
/// item (a tie of `k` labels that includes theirs counts `1/k`).
fn agreement(answers: &Answers, scores: &[f64], agreed: &mut [f64]) {
    agreed.fill(0.0);
    let classes = answers.classes();
    let (workers, labels) = (answers.answer_workers(), answers.answer_labels());
    for (item, window) in answers.offsets().windows(2).enumerate() {
        let row = &scores[item * classes..(item + 1) * classes];
        let best = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let tied = row
            .iter()
            .filter(|&&score| best - score <= TIE_TOLERANCE)
            .count() as f64;
        for index in window[0] as usize..window[1] as usize {
            if best - row[labels[index] as usize] <= TIE_TOLERANCE {
                agreed[workers[index] as usize] += 1.0 / tied;
            }
        }
    }
}

/// Per worker `(right, total)` on the gold items they answered.
fn gold_counts(answers: &Answers, gold: &[(u32, Option<u32>)]) -> Vec<(f64, f64)> {
    if gold.is_empty() {
        return Vec::new();
    }
    let mut counts = vec![(0.0, 0.0); answers.workers()];
    for &(item, label) in gold {
        let (workers, labels) = answers.of_item(item as usize);
        for (&worker, &given) in workers.iter().zip(labels) {
            let entry = &mut counts[worker as usize];
            entry.1 += 1.0;
            if label == Some(given) {
                entry.0 += 1.0;
            }
        }
    }
    counts
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::consensus::{AnswersBuilder, Decision};

    fn answers(rows: &[(&str, &str, &str)]) -> Answers {
        let mut builder = AnswersBuilder::new();
        rows.iter()
            .for_each(|(item, worker, label)| builder.push(item, worker, label));
        builder.build().unwrap()
    }

    #[test]
    fn majority_vote_keeps_ties() {
        let answers = answers(&[
            ("a", "1", "x"),
            ("a", "2", "y"),
            ("b", "1", "y"),
            ("b", "2", "y"),
            ("b", "3", "x"),
        ]);
        let consensus = majority_vote(&answers);
        assert_eq!(consensus.decision(0), Some(Decision::Tie(vec![0, 1])));
        assert_eq!(consensus.decision(1), Some(Decision::Label(1)));
        assert!((consensus.confidence(1) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(consensus.ties(), 1);
        assert_eq!(
            consensus.accuracy(&[(0, Some(0)), (1, Some(1))]),
            Some(0.75)
        );
    }

    #[test]
    fn weighted_vote_trusts_the_worker_who_agrees_more() {
        // Workers 1 and 2 agree with the majority everywhere; 3 and 4 disagree
        // on most items. On item "t", 1 and 2 say x, 3 and 4 say y: a tie for
        // MV, won by x under WMV.
        let mut rows = Vec::new();
        let names: Vec<String> = (0..8).map(|index| format!("i{index}")).collect();
        for name in &names {
            rows.extend([
                (name.as_str(), "1", "x"),
                (name.as_str(), "2", "x"),
                (name.as_str(), "5", "x"),
            ]);
            rows.extend([(name.as_str(), "3", "y"), (name.as_str(), "4", "y")]);
        }
        rows.extend([
            ("t", "1", "x"),
            ("t", "2", "x"),
            ("t", "3", "y"),
            ("t", "4", "y"),
        ]);
        let answers = answers(&rows);
        assert_eq!(
            majority_vote(&answers).decision(8),
            Some(Decision::Tie(vec![0, 1]))
        );
        let consensus = weighted_majority_vote(&answers, WmvOptions::default(), &[]);
        assert_eq!(consensus.decision(8), Some(Decision::Label(0)));
        assert!(consensus.confidence(8) > 0.9);
        assert!(consensus.iterations() >= 1);
    }

    #[test]
    fn gold_answers_set_a_workers_weight() {
        // Two workers disagree on everything; gold on item 0 says worker "b" is right.
        let answers = answers(&[
            ("0", "a", "x"),
            ("0", "b", "y"),
            ("1", "a", "x"),
            ("1", "b", "y"),
        ]);
        let consensus = weighted_majority_vote(&answers, WmvOptions::default(), &[(0, Some(1))]);
        assert_eq!(consensus.decision(1), Some(Decision::Label(1)));
    }

    #[test]
    fn weights_follow_the_one_coin_log_odds() {
        assert!(log_odds_weight(0.5, 2).abs() < 1e-12);
        assert!(log_odds_weight(0.25, 4).abs() < 1e-12);
        assert!(log_odds_weight(0.9, 2) > 2.0);
        assert!(log_odds_weight(1.0, 2).is_finite());
        assert_eq!(log_odds_weight(0.9, 1), 0.0);
    }
}
