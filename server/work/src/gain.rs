//! The expected gain of giving a task to a worker: the one formula both the
//! live queue ([`crate::queue`]) and batch assignment rank by.
//!
//! It was written twice in the server (the live ranking weighed a worker's
//! accuracy per skill and their interests; batch assignment their overall
//! accuracy only), so the two disagreed on who should get a task. Here it
//! is plain arithmetic on plain numbers: the callers look up the accuracy
//! and the overlap counts from whatever they hold.

use crate::quality::vote_accuracy;

/// How much a task matching one of the worker's interests gains: a
/// secondary term, enough to order tasks of similar need, never enough to
/// pass over a task much nearer completion.
pub const INTEREST_BONUS: f64 = 0.2;

/// How much a task needs one more answer, in (0, 1]: the share of its
/// overlap target this answer would fill, so the task nearest completion
/// needs it most (a finished task frees its data for the requester sooner).
pub fn need(answered: u32, target: u32) -> f64 {
    (f64::from(answered) + 1.0) / f64::from(target.max(1))
}

/// The accuracy a worker with no record at all is estimated to have (the
/// prior of [`vote_accuracy`]).
pub fn prior_accuracy() -> f64 {
    vote_accuracy(0, 0, 0, 0)
}

/// The worker's estimated accuracy on a task needing `skills`: the mean of
/// their accuracy in each skill, where `per_skill` returns None for a skill
/// they have no record in (their overall accuracy stands in); their overall
/// accuracy for a task needing no skill. `overall` is None for a worker with
/// no record (the prior stands in).
pub fn skill_estimate<S>(
    skills: impl IntoIterator<Item = S>,
    per_skill: impl Fn(S) -> Option<f64>,
    overall: Option<f64>,
) -> f64 {
    let overall = overall.unwrap_or_else(prior_accuracy);
    let (mut sum, mut count) = (0.0, 0_u32);
    for skill in skills {
        sum += per_skill(skill).unwrap_or(overall);
        count += 1;
    }
    if count == 0 {
        overall
    } else {
        sum / f64::from(count)
    }
}

/// The expected gain of giving a task to a worker: their estimated accuracy
/// on its skills ([`skill_estimate`]) times how much it needs an answer
/// ([`need`]), raised by [`INTEREST_BONUS`] when its tags meet the worker's
/// interests.
///
/// Batch assignment (`assign`) maximizes the sum of these gains over its
/// pairs; its fair-spread factor then scales a member's gains down.
pub fn expected_gain(estimate: f64, need: f64, interested: bool) -> f64 {
    let base = estimate * need;
    if interested {
        base * (1.0 + INTEREST_BONUS)
    } else {
        base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accuracy(skill: &str) -> Option<f64> {
        match skill {
            "de" => Some(0.9),
            "fr" => Some(0.3),
            _ => None,
        }
    }

    #[test]
    fn expected_gain_weighs_skill_accuracy_against_need() {
        let overall = Some(0.7);
        let german = expected_gain(skill_estimate(["de"], accuracy, overall), 0.5, false);
        let french = expected_gain(skill_estimate(["fr"], accuracy, overall), 0.6, false);
        assert!(german > french, "a weaker skill loses despite more need");
        let plain = expected_gain(skill_estimate::<&str>([], accuracy, overall), 0.6, false);
        assert!((plain - 0.42).abs() < 1e-12, "no skills: overall accuracy");
        let unknown = skill_estimate(["ja"], accuracy, overall);
        assert!(
            (unknown - 0.7).abs() < 1e-12,
            "no record in a skill: overall"
        );
        let newcomer = skill_estimate(["ja"], |_: &str| None, None);
        assert!(
            (newcomer - 2.0 / 3.0).abs() < 1e-12,
            "a newcomer: the prior"
        );
        let mixed = skill_estimate(["de", "fr"], accuracy, overall);
        assert!((mixed - 0.6).abs() < 1e-12, "several skills: their mean");
    }

    #[test]
    fn interests_order_tasks_of_similar_need_only() {
        let near = expected_gain(0.8, need(2, 3), false);
        let liked = expected_gain(0.8, need(1, 3), true);
        assert!(
            near > liked,
            "an interest never passes a task much nearer completion"
        );
        let liked_equal = expected_gain(0.8, need(2, 3), true);
        assert!(liked_equal > near, "between equals, the interest wins");
        assert!(
            (need(0, 0) - 1.0).abs() < 1e-12,
            "a zero target counts as one"
        );
    }
}
