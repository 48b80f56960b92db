//! Quality rules: what a submitted answer is checked against, and the
//! estimates of a worker's accuracy that weigh their votes and pause them.

use crate::schema::AnswerSchema;

/// Gold answers a worker gives before their accuracy counts for a verdict.
pub const MIN_GOLD_FOR_VERDICT: i64 = 5;

/// What a submitted answer is checked against (from the project).
#[derive(Debug, Clone, Copy)]
pub struct QualityRules {
    pub min_lead_time_ms: i64,
    pub min_accuracy: f64,
}

/// What a submit applies: the quality rules, and how to decide the task
/// once it has its answers (dynamic overlap up to `overlap_max`).
#[derive(Debug, Clone)]
pub struct SubmitRules {
    pub quality: QualityRules,
    pub schema: AnswerSchema,
    pub overlap_max: u32,
    pub min_confidence: f64,
    /// What the answer earns (booked pending in the same transaction).
    pub pay_per_answer: i64,
}

/// The accuracy a worker's vote is weighted by: gold answers, plus
/// agreement with completed consensus counted at half weight (weaker
/// evidence), over a Beta(2, 1) prior ("more likely right than wrong"), so
/// a newcomer's vote counts a little rather than nothing.
pub fn vote_accuracy(gold_correct: i64, gold_total: i64, agree: i64, disagree: i64) -> f64 {
    let right = gold_correct as f64 + 0.5 * agree as f64 + 2.0;
    let seen = gold_total as f64 + 0.5 * (agree + disagree) as f64 + 3.0;
    right / seen
}

/// A worker's estimated accuracy: the mean of a Beta(1, 1) prior updated
/// with their gold answers.
pub fn accuracy_posterior(correct: i64, total: i64) -> f64 {
    (correct as f64 + 1.0) / (total as f64 + 2.0)
}

/// How high the worker's accuracy may plausibly still be: the posterior
/// mean plus 1.645 standard deviations of the Beta posterior (about the 95th
/// percentile). A worker is paused for accuracy only when even this is
/// below the project's minimum, so a few unlucky gold answers do not pause
/// an honest worker: with the posterior mean alone, a worker who is right
/// 80% of the time fails a 0.6 minimum on 5 gold answers one time in four.
pub fn accuracy_upper_bound(correct: i64, total: i64) -> f64 {
    let a = correct as f64 + 1.0;
    let b = (total - correct) as f64 + 1.0;
    let n = a + b;
    let sd = (a * b / (n * n * (n + 1.0))).sqrt();
    (a / n + 1.645 * sd).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accuracy_rule_waits_for_evidence() {
        // At a 0.6 minimum with 5 gold answers: 0 or 1 right pauses, 2 waits.
        assert!(accuracy_upper_bound(0, 5) < 0.6);
        assert!(accuracy_upper_bound(1, 5) < 0.6);
        assert!(accuracy_upper_bound(2, 5) > 0.6);
        assert!(accuracy_upper_bound(3, 5) > 0.6);
        // More evidence narrows it: 4 right out of 10 is enough to pause...
        assert!(accuracy_upper_bound(4, 15) < 0.6);
        // ...a random guesser among 3 labels is paused by 15 gold answers,
        assert!(accuracy_upper_bound(5, 15) < 0.6);
        // and the bound is never below the mean nor above 1.
        for total in 0..30 {
            for correct in 0..=total {
                let upper = accuracy_upper_bound(correct, total);
                assert!(upper >= accuracy_posterior(correct, total) && upper <= 1.0);
            }
        }
    }
}
