//! The consensus actor's decision on a due task, as a plain function of
//! its answers (each with its worker's accuracy) and the project's rules:
//! what `store/consensus.rs` decided inside the answer's transaction, now
//! decided off the room's loop and off the committer, and applied by
//! [`super::WorkState::apply_decision`].

use serde_json::Value;

use super::{Decision, Due, Verdict};
use crate::decide::{Vote, decide};
use crate::project::ProjectConfig;
use crate::schema::answers_match;

/// One answer to a due task, with its worker's accuracy as it stood.
#[derive(Debug, Clone, PartialEq)]
pub struct DueAnswer {
    pub worker: String,
    pub answer: Value,
    pub accuracy: f64,
}

/// Decides a due task: `Complete` on a confident consensus (every answer
/// agrees or not with it, for the workers' records), one more answer below
/// the project's overlap maximum otherwise, and a reviewer at the maximum.
/// A tie is never confident.
pub fn settle(project: &ProjectConfig, due: Due, answers: &[DueAnswer]) -> Decision {
    let votes: Vec<Vote<'_>> = answers
        .iter()
        .map(|answer| Vote {
            answer: &answer.answer,
            accuracy: answer.accuracy,
        })
        .collect();
    let consensus = decide(&project.answer_schema, &votes);
    let confident = consensus
        .as_ref()
        .is_some_and(|consensus| consensus.confidence >= project.min_confidence);
    let (verdict, agreement) = match &consensus {
        Some(consensus) if confident => {
            let agreement = answers
                .iter()
                .map(|answer| {
                    let agreed = answers_match(&answer.answer, &consensus.answer);
                    (answer.worker.clone(), agreed)
                })
                .collect();
            (Verdict::Complete, agreement)
        }
        _ if due.target < project.overlap_max => (Verdict::RaiseOverlap, Vec::new()),
        _ => (Verdict::Review, Vec::new()),
    };
    Decision {
        verdict,
        agreement,
        consensus,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::schema::AnswerSchema;

    fn project(overlap_max: u32) -> ProjectConfig {
        ProjectConfig {
            answer_schema: AnswerSchema::SingleChoice {
                options: vec!["a".into(), "b".into()],
            },
            overlap_max,
            min_confidence: 0.7,
            ..ProjectConfig::default()
        }
    }

    fn answer(worker: &str, answer: &str, accuracy: f64) -> DueAnswer {
        DueAnswer {
            worker: worker.into(),
            answer: json!(answer),
            accuracy,
        }
    }

    #[test]
    fn confident_agreement_completes_and_judges_every_answer() {
        let answers = [
            answer("ann", "a", 0.9),
            answer("bob", "a", 0.9),
            answer("cy", "b", 0.6),
        ];
        let decision = settle(&project(5), Due { task: 1, target: 3 }, &answers);
        assert_eq!(decision.verdict, Verdict::Complete);
        assert_eq!(
            decision.consensus.map(|consensus| consensus.answer),
            Some(json!("a"))
        );
        assert_eq!(
            decision.agreement,
            vec![
                ("ann".to_owned(), true),
                ("bob".to_owned(), true),
                ("cy".to_owned(), false)
            ]
        );
    }

    #[test]
    fn a_tie_asks_for_one_more_answer_below_the_maximum_and_a_reviewer_at_it() {
        let answers = [answer("ann", "a", 0.8), answer("bob", "b", 0.8)];
        let below = settle(&project(3), Due { task: 1, target: 2 }, &answers);
        assert_eq!(below.verdict, Verdict::RaiseOverlap);
        assert!(below.agreement.is_empty());
        let at = settle(&project(2), Due { task: 1, target: 2 }, &answers);
        assert_eq!(at.verdict, Verdict::Review);
    }
}
