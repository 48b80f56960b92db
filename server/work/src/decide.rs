//! The live consensus decision for one task, made in the transaction of
//! the answer that reaches the task's overlap target.
//!
//! Categorical answers (a choice, a label set) go through a weighted vote:
//! each worker's weight is the one-coin log-odds of their estimated
//! accuracy, and the posterior of an answer is the softmax of its summed
//! weights. Spans are voted token by token, numbers take the median, free
//! text the answer closest to the others. A tie is never broken: it asks
//! for one more answer.

use serde_json::Value;

use crate::consensus::numeric::median;
use crate::consensus::text::medoid;
use crate::consensus::vote::log_odds_weight;
use crate::schema::{AnswerSchema, answers_match};

/// Posteriors closer than this count as a tie.
const TIE: f64 = 1e-9;

/// What the answers so far say.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub answer: Value,
    /// The posterior of the chosen answer (categorical), or the share of
    /// weight that agrees with it (numbers, text).
    pub confidence: f64,
    pub method: &'static str,
}

/// One answer with its worker's estimated accuracy.
pub struct Vote<'a> {
    pub answer: &'a Value,
    pub accuracy: f64,
}

/// Decides a task from its answers; None on a tie or with no answers.
pub fn decide(schema: &AnswerSchema, votes: &[Vote<'_>]) -> Option<Decision> {
    match schema {
        AnswerSchema::SingleChoice { options } => categorical(votes, options.len().max(2)),
        AnswerSchema::MultiLabel { .. } => {
            // Label sets are compared whole (as sets); the number of
            // possible answers is unbounded, so count two classes more than
            // the distinct answers seen.
            let distinct = distinct_answers(votes);
            categorical(votes, distinct + 2)
        }
        AnswerSchema::Spans { labels } => spans(votes, labels),
        AnswerSchema::Numeric { min, max } => numeric(votes, *min, *max),
        AnswerSchema::FreeText { .. } => free_text(votes),
    }
}

fn distinct_answers(votes: &[Vote<'_>]) -> usize {
    let mut seen: Vec<&Value> = Vec::new();
    for vote in votes {
        if !seen.iter().any(|known| answers_match(known, vote.answer)) {
            seen.push(vote.answer);
        }
    }
    seen.len()
}

fn categorical(votes: &[Vote<'_>], classes: usize) -> Option<Decision> {
    // Group equal answers, summing their weights.
    let mut groups: Vec<(&Value, f64)> = Vec::new();
    for vote in votes {
        let weight = log_odds_weight(vote.accuracy, classes);
        match groups
            .iter_mut()
            .find(|(answer, _)| answers_match(answer, vote.answer))
        {
            Some(group) => group.1 += weight,
            None => groups.push((vote.answer, weight)),
        }
    }
    if groups.is_empty() {
        return None;
    }
    // Softmax over the classes seen plus the unseen ones (score 0 each).
    let unseen = classes.saturating_sub(groups.len()) as f64;
    let top = groups
        .iter()
        .map(|(_, score)| *score)
        .fold(0.0_f64, f64::max);
    let normaliser: f64 = groups
        .iter()
        .map(|(_, score)| (score - top).exp())
        .sum::<f64>()
        + unseen * (-top).exp();
    groups.sort_by(|left, right| right.1.total_cmp(&left.1));
    let (best, best_score) = groups.first().copied()?;
    if groups
        .get(1)
        .is_some_and(|(_, second)| (best_score - second).abs() < TIE)
    {
        return None;
    }
    Some(Decision {
        answer: best.clone(),
        confidence: (best_score - top).exp() / normaliser,
        method: "wmv",
    })
}

/// Token-level voting (each UTF-16 code unit is a token): a token keeps a
/// label with more than half of the annotators' weight. The confidence is
/// the weighted mean agreement (Jaccard over labelled tokens) between each
/// annotator and the result.
fn spans(votes: &[Vote<'_>], labels: &[String]) -> Option<Decision> {
    use crate::consensus::spans::{Annotation, Span, overlap, vote_spans};
    use crate::schema::{MAX_SPAN_TEXT_UNITS, MAX_SPANS};
    // Answers were validated when submitted; what is stored is bounded
    // here again, so no stored answer can make the vote unbounded.
    let parse = |answer: &Value| -> Vec<Span> {
        answer
            .as_array()
            .map(|spans| {
                spans
                    .iter()
                    .take(MAX_SPANS)
                    .filter_map(|span| {
                        let start = usize::try_from(span.get("start")?.as_u64()?).ok()?;
                        let end = usize::try_from(span.get("end")?.as_u64()?).ok()?;
                        let name = span.get("label")?.as_str()?;
                        let label = labels.iter().position(|known| known == name)?;
                        (start < end && end <= MAX_SPAN_TEXT_UNITS).then_some(Span {
                            start,
                            end,
                            label: u32::try_from(label).ok()?,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let parsed: Vec<Vec<Span>> = votes.iter().map(|vote| parse(vote.answer)).collect();
    if parsed.is_empty() {
        return None;
    }
    let length = parsed
        .iter()
        .flatten()
        .map(|span| span.end)
        .max()
        .unwrap_or(0);
    let annotations: Vec<Annotation<'_>> = parsed
        .iter()
        .zip(votes)
        .map(|(spans, vote)| Annotation {
            weight: vote.accuracy.max(0.0),
            spans,
        })
        .collect();
    let result = vote_spans(length, &annotations).ok()?;
    let (mut agreement, mut weight) = (0.0, 0.0);
    for (spans, vote) in parsed.iter().zip(votes) {
        let (shared, union) = overlap(spans, &result);
        let jaccard = if union == 0 {
            1.0
        } else {
            shared as f64 / union as f64
        };
        agreement += vote.accuracy * jaccard;
        weight += vote.accuracy;
    }
    let answer: Vec<Value> = result
        .iter()
        .filter_map(|span| {
            let label = labels.get(span.label as usize)?;
            Some(serde_json::json!({ "start": span.start, "end": span.end, "label": label }))
        })
        .collect();
    let confidence = if weight > 0.0 {
        agreement / weight
    } else {
        0.0
    };
    Some(Decision {
        answer: Value::Array(answer),
        confidence,
        method: "token_vote",
    })
}

fn numeric(votes: &[Vote<'_>], min: Option<f64>, max: Option<f64>) -> Option<Decision> {
    let mut values: Vec<f64> = votes
        .iter()
        .filter_map(|vote| vote.answer.as_f64())
        .collect();
    let middle = median(&mut values)?;
    // Agreement: answers within 5% of the scale (the schema's range, or else
    // the median's magnitude) of the median.
    let scale = match (min, max) {
        (Some(min), Some(max)) if max > min => max - min,
        _ => middle.abs().max(1.0),
    };
    let close = values
        .iter()
        .filter(|value| (*value - middle).abs() <= 0.05 * scale)
        .count();
    Some(Decision {
        answer: serde_json::json!(middle),
        confidence: close as f64 / values.len() as f64,
        method: "median",
    })
}

fn free_text(votes: &[Vote<'_>]) -> Option<Decision> {
    let (texts, weights): (Vec<&str>, Vec<f64>) = votes
        .iter()
        .filter_map(|vote| Some((vote.answer.as_str()?, vote.accuracy)))
        .unzip();
    let (chosen, similarity) = medoid(&texts, &weights)?;
    let text = texts.get(chosen)?;
    Some(Decision {
        answer: Value::String((*text).to_owned()),
        confidence: similarity,
        method: "closest_text",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn votes<'a>(answers: &'a [Value], accuracy: &[f64]) -> Vec<Vote<'a>> {
        answers
            .iter()
            .zip(accuracy)
            .map(|(answer, &accuracy)| Vote { answer, accuracy })
            .collect()
    }

    #[test]
    fn weighted_vote_and_ties() {
        let schema = AnswerSchema::SingleChoice {
            options: vec!["pos".into(), "neg".into()],
        };
        let answers = [json!("pos"), json!("pos"), json!("neg")];
        let decided = decide(&schema, &votes(&answers, &[0.7, 0.7, 0.7])).unwrap();
        assert_eq!(decided.answer, json!("pos"));
        assert!(
            decided.confidence > 0.5 && decided.confidence < 0.9,
            "{decided:?}"
        );
        // One very reliable worker outweighs two weak ones.
        let decided = decide(&schema, &votes(&answers, &[0.55, 0.55, 0.99])).unwrap();
        assert_eq!(decided.answer, json!("neg"));
        // A tie asks for more, whatever the label order.
        let tied = [json!("pos"), json!("neg")];
        assert_eq!(decide(&schema, &votes(&tied, &[0.8, 0.8])), None);
    }

    #[test]
    fn sets_numbers_and_text() {
        let labels = AnswerSchema::MultiLabel {
            options: vec!["a".into(), "b".into()],
        };
        let answers = [json!(["a", "b"]), json!(["b", "a"]), json!(["a"])];
        assert_eq!(
            decide(&labels, &votes(&answers, &[0.7, 0.7, 0.7]))
                .unwrap()
                .answer,
            json!(["a", "b"])
        );
        let numeric = AnswerSchema::Numeric {
            min: Some(0.0),
            max: Some(100.0),
        };
        let numbers = [json!(10), json!(12), json!(90)];
        let decided = decide(&numeric, &votes(&numbers, &[0.7, 0.7, 0.7])).unwrap();
        assert_eq!(decided.answer, json!(12.0));
        assert!((decided.confidence - 2.0 / 3.0).abs() < 1e-9);
        let spans = AnswerSchema::Spans {
            labels: vec!["PER".into(), "LOC".into()],
        };
        // Boundaries differ ("Ann Lee" vs "Ann"), the tokens agree: 0..3 is PER for all three.
        let marked = [
            json!([{"start": 0, "end": 7, "label": "PER"}]),
            json!([{"start": 0, "end": 3, "label": "PER"}, {"start": 11, "end": 16, "label": "LOC"}]),
            json!([{"start": 0, "end": 7, "label": "PER"}, {"start": 11, "end": 16, "label": "LOC"}]),
        ];
        let decided = decide(&spans, &votes(&marked, &[0.7, 0.7, 0.7])).unwrap();
        assert_eq!(
            decided.answer,
            json!([{"start": 0, "end": 7, "label": "PER"}, {"start": 11, "end": 16, "label": "LOC"}])
        );
        assert_eq!(decided.method, "token_vote");
        assert!(
            decided.confidence > 0.6 && decided.confidence < 1.0,
            "{decided:?}"
        );
        let text = AnswerSchema::FreeText { max_chars: None };
        let texts = [json!("the cat sat"), json!("the cat sat."), json!("dogs")];
        assert_eq!(
            decide(&text, &votes(&texts, &[0.7, 0.7, 0.7]))
                .unwrap()
                .answer,
            json!("the cat sat")
        );
    }
}
