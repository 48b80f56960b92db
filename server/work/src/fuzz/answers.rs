//! Fuzzing answers for every schema: validation, and the live decision on
//! validated and arbitrary answers.

use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::{config, json_number, json_value};
use crate::decide::{Vote, decide};
use crate::schema::{AnswerSchema, MAX_SPANS, answers_match};

const LABELS: [&str; 4] = ["PER", "LOC", "ORG", "é x"];

fn labels() -> impl Strategy<Value = Vec<String>> {
    proptest::sample::subsequence(LABELS.to_vec(), 1..=LABELS.len())
        .prop_map(|labels| labels.into_iter().map(str::to_owned).collect())
}

/// Every schema kind, including bounds that validate_schema refuses.
fn schema() -> impl Strategy<Value = AnswerSchema> {
    let bound = prop_oneof![
        3 => Just(None),
        3 => (-1000.0f64..1000.0).prop_map(Some),
        1 => any::<f64>().prop_map(Some),
    ];
    prop_oneof![
        labels().prop_map(|options| AnswerSchema::SingleChoice { options }),
        labels().prop_map(|options| AnswerSchema::MultiLabel { options }),
        labels().prop_map(|labels| AnswerSchema::Spans { labels }),
        prop_oneof![Just(None), (0u32..40).prop_map(Some), Just(Some(u32::MAX))]
            .prop_map(|max_chars| AnswerSchema::FreeText { max_chars }),
        (bound.clone(), bound).prop_map(|(min, max)| AnswerSchema::Numeric { min, max }),
    ]
}

/// The options or labels of a schema, if it has any.
fn options(schema: &AnswerSchema) -> &[String] {
    match schema {
        AnswerSchema::SingleChoice { options } | AnswerSchema::MultiLabel { options } => options,
        AnswerSchema::Spans { labels } => labels,
        AnswerSchema::FreeText { .. } | AnswerSchema::Numeric { .. } => &[],
    }
}

/// Raw material for a well-formed answer to any schema; [`well_formed`]
/// shapes it for one.
#[derive(Debug, Clone)]
struct AnswerSeed {
    picks: Vec<proptest::sample::Index>,
    spans: Vec<(u64, u64, proptest::sample::Index)>,
    text: String,
    fraction: f64,
}

fn answer_seed() -> impl Strategy<Value = AnswerSeed> {
    (
        vec(any::<proptest::sample::Index>(), 0..4),
        vec(
            (0u64..300, 1u64..40, any::<proptest::sample::Index>()),
            0..5,
        ),
        "[a-z]{1,3}( ?[a-zé]{0,8}){0,3}",
        0.0f64..=1.0,
    )
        .prop_map(|(picks, spans, text, fraction)| AnswerSeed {
            picks,
            spans,
            text,
            fraction,
        })
}

/// A well-formed answer to `schema` from `seed` (one validate_answer
/// should accept), or None when the schema admits none (a refused schema).
fn well_formed(schema: &AnswerSchema, seed: &AnswerSeed) -> Option<Value> {
    let options = options(schema);
    let pick = |index: &proptest::sample::Index| options[index.index(options.len())].clone();
    match schema {
        AnswerSchema::SingleChoice { .. } => Some(json!(pick(seed.picks.first()?))),
        AnswerSchema::MultiLabel { .. } => {
            let mut chosen: Vec<String> = seed.picks.iter().map(pick).collect();
            chosen.sort();
            chosen.dedup();
            Some(json!(chosen))
        }
        AnswerSchema::Spans { .. } => Some(Value::Array(
            seed.spans
                .iter()
                .map(|(start, len, label)| {
                    json!({"start": start, "end": start + len, "label": pick(label)})
                })
                .collect(),
        )),
        AnswerSchema::FreeText { max_chars } => {
            let max = max_chars.unwrap_or(10_000) as usize;
            let text: String = seed.text.chars().take(max).collect();
            (!text.trim().is_empty()).then(|| json!(text))
        }
        AnswerSchema::Numeric { min, max } => {
            let (low, high) = (min.unwrap_or(-1e6), max.unwrap_or(1e6));
            let value = low + (high - low) * seed.fraction;
            (low.is_finite() && high.is_finite() && low <= high && value.is_finite())
                .then(|| json!(value.clamp(low, high)))
        }
    }
}

/// Spans with offsets from anywhere (negative, fractional, near
/// `u64::MAX`) and known labels: what a hostile worker would submit.
fn wild_spans() -> impl Strategy<Value = Value> {
    let offset = prop_oneof![
        3 => (0u64..400).prop_map(Value::from),
        1 => Just(json!(u64::MAX)),
        1 => Just(json!(u64::MAX - 1)),
        1 => Just(json!(1u64 << 40)),
        1 => any::<u64>().prop_map(Value::from),
        1 => json_number(),
    ];
    let label = proptest::sample::select(LABELS.to_vec());
    vec((offset.clone(), offset, label), 1..4).prop_map(|spans| {
        spans
            .into_iter()
            .map(|(start, end, label)| json!({"start": start, "end": end, "label": label}))
            .collect()
    })
}

/// An answer: well-formed for the schema, hostile spans, or any JSON value.
fn answer_for(
    schema: &AnswerSchema,
    seed: &AnswerSeed,
    raw: &Value,
    spans: &Value,
    mode: u8,
) -> Value {
    match mode {
        0..=4 => well_formed(schema, seed).unwrap_or_else(|| raw.clone()),
        5 | 6 => spans.clone(),
        _ => raw.clone(),
    }
}

proptest! {
    #![proptest_config(config(2000))]

    /// validate_answer takes any JSON for every schema, and accepts the
    /// well-formed answers of a valid schema.
    #[test]
    fn answers_validate_or_are_refused(
        schema in schema(),
        raw in json_value(),
        seed in answer_seed(),
        data in prop_oneof![json_value(), ".{0,300}".prop_map(|text| json!({"text": text}))],
    ) {
        let _ = schema.validate_answer(&raw);
        let _ = schema.validate_answer_for(&raw, &data);
        if schema.validate_schema().is_ok()
            && let Some(answer) = well_formed(&schema, &seed)
        {
            let checked = schema.validate_answer(&answer);
            prop_assert!(checked.is_ok(), "{:?} refused {}: {:?}", schema, answer, checked);
        }
    }

    /// decide never panics, on validated answers and on any others, with
    /// any accuracies (NaN included); on validated answers with accuracies
    /// in (0, 1) its decision lies among (or, for numbers, between) the
    /// answers and its confidence is a probability.
    #[test]
    fn decisions_are_total_and_stay_among_the_answers(
        schema in schema(),
        votes in vec((answer_seed(), json_value(), wild_spans(), 0u8..8, prop_oneof![
            4 => 0.01f64..0.99,
            1 => any::<f64>(),
            1 => Just(f64::NAN),
            1 => Just(0.0),
            1 => Just(1.0),
        ]), 0..7),
    ) {
        let answers: Vec<(Value, f64)> = votes
            .iter()
            .map(|(seed, raw, spans, mode, accuracy)| {
                (answer_for(&schema, seed, raw, spans, *mode), *accuracy)
            })
            .collect();
        let ballot: Vec<Vote<'_>> = answers
            .iter()
            .map(|(answer, accuracy)| Vote { answer, accuracy: *accuracy })
            .collect();
        let decision = decide(&schema, &ballot);
        let in_domain = schema.validate_schema().is_ok()
            && answers.iter().all(|(answer, accuracy)| {
                schema.validate_answer(answer).is_ok() && (0.01..0.99).contains(accuracy)
            });
        if let (true, Some(decision)) = (in_domain, decision) {
            prop_assert!(
                (0.0..=1.0 + 1e-9).contains(&decision.confidence),
                "confidence {}",
                decision.confidence
            );
            check_among(&schema, &answers, &decision.answer)?;
        }
    }

    /// A unanimous vote decides its answer, for every schema kind.
    #[test]
    fn unanimous_votes_decide_their_answer(
        schema in schema(),
        seed in answer_seed(),
        accuracies in vec(0.5f64..0.99, 1..6),
    ) {
        let Some(answer) = well_formed(&schema, &seed) else { return Ok(()) };
        if schema.validate_schema().is_err() {
            return Ok(());
        }
        let ballot: Vec<Vote<'_>> = accuracies
            .iter()
            .map(|accuracy| Vote { answer: &answer, accuracy: *accuracy })
            .collect();
        let decision = decide(&schema, &ballot);
        prop_assert!(decision.is_some(), "no decision on unanimous {}", answer);
        let decision = decision.unwrap();
        match &schema {
            AnswerSchema::Spans { labels } => {
                // Tokens two labels cover go to one of them: compare the
                // covered tokens, and the spans themselves when no label
                // overlaps another.
                let given = span_tokens(&answer, labels);
                let decided = span_tokens(&decision.answer, labels);
                let covered = |tokens: &std::collections::BTreeSet<(u64, usize)>| {
                    tokens.iter().map(|(token, _)| *token).collect::<std::collections::BTreeSet<_>>()
                };
                prop_assert_eq!(covered(&decided), covered(&given));
                prop_assert!(decided.is_subset(&given));
            }
            _ => prop_assert!(
                answers_match(&decision.answer, &answer),
                "unanimous {} decided {}",
                answer,
                decision.answer
            ),
        }
    }
}

/// The (token, label index) pairs a spans answer covers.
fn span_tokens(answer: &Value, labels: &[String]) -> std::collections::BTreeSet<(u64, usize)> {
    let mut tokens = std::collections::BTreeSet::new();
    for span in answer.as_array().into_iter().flatten() {
        let (Some(start), Some(end), Some(label)) = (
            span["start"].as_u64(),
            span["end"].as_u64(),
            span["label"].as_str(),
        ) else {
            continue;
        };
        let Some(label) = labels.iter().position(|known| known == label) else {
            continue;
        };
        tokens.extend((start..end).map(|token| (token, label)));
    }
    tokens
}

/// A decision on validated answers: a choice, label set or text is one of
/// the answers; spans validate and cover only tokens some answer labelled
/// so; a number lies between the smallest and largest answer.
fn check_among(
    schema: &AnswerSchema,
    answers: &[(Value, f64)],
    decided: &Value,
) -> Result<(), TestCaseError> {
    match schema {
        AnswerSchema::SingleChoice { .. }
        | AnswerSchema::MultiLabel { .. }
        | AnswerSchema::FreeText { .. } => prop_assert!(
            answers
                .iter()
                .any(|(answer, _)| answers_match(answer, decided)),
            "{} is none of the answers",
            decided
        ),
        AnswerSchema::Spans { labels } => {
            prop_assert!(schema.validate_answer(decided).is_ok(), "{}", decided);
            prop_assert!(
                decided
                    .as_array()
                    .is_some_and(|spans| spans.len() <= MAX_SPANS)
            );
            let given: std::collections::BTreeSet<(u64, usize)> = answers
                .iter()
                .flat_map(|(answer, _)| span_tokens(answer, labels))
                .collect();
            prop_assert!(span_tokens(decided, labels).is_subset(&given));
        }
        AnswerSchema::Numeric { .. } => {
            let values: Vec<f64> = answers
                .iter()
                .filter_map(|(answer, _)| answer.as_f64())
                .collect();
            let low = values.iter().copied().fold(f64::INFINITY, f64::min);
            let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let decided = decided.as_f64();
            prop_assert!(
                decided.is_some_and(|value| low <= value && value <= high),
                "median {:?} outside {}..={}",
                decided,
                low,
                high
            );
        }
    }
    Ok(())
}
