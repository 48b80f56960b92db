//! The work engine's vocabulary: a room's project (how its tasks are
//! answered, paid and checked), tasks, and answer validation.
//!
//! Everything that must hold under concurrency (overlap, one reservation
//! and one answer per worker and task) is enforced by the store's
//! conditional writes, so it holds across server processes sharing one
//! database; the in-process code only chooses what to try.

pub mod assign;
pub mod batch;
pub mod decide;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

/// Longest free-text answer accepted by default, in characters.
const DEFAULT_MAX_TEXT_CHARS: u32 = 10_000;
/// Most characters a project may allow in a free-text answer: settling
/// compares every pair of answers, in time that grows with the product of
/// their lengths.
pub const MAX_TEXT_CHARS: u32 = 20_000;
/// Most spans in one answer: a text's entities are tens; this bounds the
/// vote's work per answer.
pub const MAX_SPANS: usize = 1_000;
/// Longest text spans may cover, in UTF-16 code units (JavaScript's string
/// length, the offsets the client sends): a task text longer than a
/// megabyte is no annotation task.
pub const MAX_SPAN_TEXT_UNITS: usize = 1_000_000;
/// Most labels or options one schema may declare.
const MAX_OPTIONS: usize = 1_000;

/// How a project's tasks are answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AnswerSchema {
    /// One label out of `options`: the answer is a string.
    SingleChoice { options: Vec<String> },
    /// Any subset of `options`: the answer is an array of distinct strings.
    MultiLabel { options: Vec<String> },
    /// Labelled spans over the task's text: `[{start, end, label}]`, UTF-16
    /// offsets as JavaScript counts them, `start < end`.
    Spans { labels: Vec<String> },
    /// A string of at most `max_chars` characters.
    FreeText {
        #[serde(default)]
        max_chars: Option<u32>,
    },
    /// A number within the optional bounds.
    Numeric {
        #[serde(default)]
        min: Option<f64>,
        #[serde(default)]
        max: Option<f64>,
    },
}

impl AnswerSchema {
    /// Checks the schema itself.
    pub fn validate_schema(&self) -> Result<()> {
        let options = match self {
            AnswerSchema::SingleChoice { options } | AnswerSchema::MultiLabel { options } => {
                options
            }
            AnswerSchema::Spans { labels } => labels,
            AnswerSchema::FreeText { max_chars } => {
                return match max_chars {
                    Some(max) if *max == 0 || *max > MAX_TEXT_CHARS => Err(bad(&format!(
                        "free text: max_chars must be 1 to {MAX_TEXT_CHARS}"
                    ))),
                    _ => Ok(()),
                };
            }
            AnswerSchema::Numeric { min, max } => {
                if min.is_some_and(|min| !min.is_finite()) || max.is_some_and(|max| !max.is_finite())
                {
                    return Err(bad("numeric schema: min and max must be finite numbers"));
                }
                return match (min, max) {
                    (Some(min), Some(max)) if min > max => {
                        Err(bad("numeric schema: min is above max"))
                    }
                    _ => Ok(()),
                };
            }
        };
        if options.is_empty() || options.len() > MAX_OPTIONS {
            return Err(bad(&format!("a schema needs 1 to {MAX_OPTIONS} options")));
        }
        let mut sorted: Vec<&String> = options.iter().collect();
        sorted.sort();
        if sorted.windows(2).any(|pair| pair[0] == pair[1])
            || options.iter().any(|option| option.trim().is_empty())
        {
            return Err(bad("schema options must be distinct and non-empty"));
        }
        Ok(())
    }

    /// Checks an answer (or a gold answer) against the schema. Spans are
    /// only checked against [`MAX_SPAN_TEXT_UNITS`]: a worker's answer is
    /// checked against its task's text with [`Self::validate_answer_for`].
    pub fn validate_answer(&self, answer: &Value) -> Result<()> {
        self.validate_answer_within(answer, MAX_SPAN_TEXT_UNITS)
    }

    /// Checks an answer to the task whose data is `data`: spans must lie
    /// within the text the worker was shown ([`span_text_units`]).
    pub fn validate_answer_for(&self, answer: &Value, data: &Value) -> Result<()> {
        self.validate_answer_within(answer, span_text_units(data))
    }

    fn validate_answer_within(&self, answer: &Value, text_units: usize) -> Result<()> {
        match self {
            AnswerSchema::SingleChoice { options } => match answer.as_str() {
                Some(label) if options.iter().any(|option| option == label) => Ok(()),
                _ => Err(bad("the answer must be one of the options")),
            },
            AnswerSchema::MultiLabel { options } => {
                let labels = answer
                    .as_array()
                    .ok_or_else(|| bad("the answer must be an array of options"))?;
                let mut seen = Vec::with_capacity(labels.len());
                for label in labels {
                    let label = label
                        .as_str()
                        .filter(|label| options.iter().any(|option| option == label));
                    let label =
                        label.ok_or_else(|| bad("every label must be one of the options"))?;
                    if seen.contains(&label) {
                        return Err(bad("labels must be distinct"));
                    }
                    seen.push(label);
                }
                Ok(())
            }
            AnswerSchema::Spans { labels } => {
                let spans = answer
                    .as_array()
                    .ok_or_else(|| bad("the answer must be an array of spans"))?;
                if spans.len() > MAX_SPANS {
                    return Err(bad(&format!("an answer has at most {MAX_SPANS} spans")));
                }
                let limit = text_units.min(MAX_SPAN_TEXT_UNITS);
                for span in spans {
                    let start = span.get("start").and_then(Value::as_u64);
                    let end = span.get("end").and_then(Value::as_u64);
                    let label = span.get("label").and_then(Value::as_str);
                    match (start, end, label) {
                        (Some(start), Some(end), Some(label))
                            if start < end && labels.iter().any(|known| known == label) =>
                        {
                            if usize::try_from(end).map_or(true, |end| end > limit) {
                                return Err(bad(&format!(
                                    "span {start}..{end} ends past the text ({limit} UTF-16 units)"
                                )));
                            }
                        }
                        _ => {
                            return Err(bad(
                                "every span is {start, end, label} with start < end and a known label",
                            ));
                        }
                    }
                }
                Ok(())
            }
            AnswerSchema::FreeText { max_chars } => {
                let text = answer
                    .as_str()
                    .ok_or_else(|| bad("the answer must be a string"))?;
                let max = max_chars
                    .unwrap_or(DEFAULT_MAX_TEXT_CHARS)
                    .min(MAX_TEXT_CHARS);
                if text.trim().is_empty() || text.chars().count() > max as usize {
                    return Err(bad(&format!("the answer must have 1 to {max} characters")));
                }
                Ok(())
            }
            AnswerSchema::Numeric { min, max } => {
                let value = answer
                    .as_f64()
                    .filter(|value| value.is_finite())
                    .ok_or_else(|| bad("the answer must be a number"))?;
                if min.is_some_and(|min| value < min) || max.is_some_and(|max| value > max) {
                    return Err(bad("the answer is out of range"));
                }
                Ok(())
            }
        }
    }
}

/// How long the text a spans task shows is, in UTF-16 code units: its
/// `text` field, or else the whole data as JSON (what the web client
/// shows when there is no `text`).
pub fn span_text_units(data: &Value) -> usize {
    let units = match data.get("text").and_then(Value::as_str) {
        Some(text) => text.encode_utf16().count(),
        None => data.to_string().encode_utf16().count(),
    };
    units.min(MAX_SPAN_TEXT_UNITS)
}

fn bad(message: &str) -> Error {
    Error::BadRequest(message.to_owned())
}

/// A project: one per room. Money is in integer micro-units (1/1,000,000
/// of the currency unit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectConfig {
    pub instructions: String,
    pub answer_schema: AnswerSchema,
    /// Skills a worker needs for every task of the project (tasks may add more).
    pub required_skills: Vec<String>,
    /// Answers a task gets before consensus is attempted.
    pub overlap_min: u32,
    /// Answers a task may get at most (dynamic overlap raises towards it).
    pub overlap_max: u32,
    /// Consensus confidence a task needs to complete.
    pub min_confidence: f64,
    /// Share of tasks served as gold once onboarding is done.
    pub gold_rate: f64,
    /// Gold tasks a new worker answers first.
    pub onboarding_gold: u32,
    /// Lifetime of a reservation; heartbeats renew it.
    pub reservation_ttl_seconds: u64,
    /// Longest a reservation can be kept alive by heartbeats.
    pub reservation_cap_seconds: u64,
    pub pay_per_answer: i64,
    pub target_hourly_rate: i64,
    pub auto_approve_seconds: u64,
    /// Gold accuracy (posterior mean) under which a worker is paused, once
    /// they have answered enough gold for a verdict.
    pub min_accuracy: f64,
    /// Answers faster than this (from reservation to submit) count as too fast.
    pub min_lead_time_ms: u64,
}

impl Default for ProjectConfig {
    fn default() -> Self {
        ProjectConfig {
            instructions: String::new(),
            answer_schema: AnswerSchema::FreeText { max_chars: None },
            required_skills: Vec::new(),
            overlap_min: 3,
            overlap_max: 5,
            min_confidence: 0.7,
            gold_rate: 0.1,
            onboarding_gold: 3,
            reservation_ttl_seconds: 300,
            reservation_cap_seconds: 3600,
            pay_per_answer: 50_000,
            target_hourly_rate: 15_000_000,
            auto_approve_seconds: 3 * 24 * 3600,
            min_accuracy: 0.6,
            min_lead_time_ms: 2000,
        }
    }
}

impl ProjectConfig {
    pub fn validate(&self) -> Result<()> {
        self.answer_schema.validate_schema()?;
        if self.overlap_min == 0 || self.overlap_min > self.overlap_max || self.overlap_max > 100 {
            return Err(bad("overlap: 1 <= overlap_min <= overlap_max <= 100"));
        }
        let unit = 0.0..=1.0;
        if !unit.contains(&self.min_confidence)
            || !unit.contains(&self.gold_rate)
            || !unit.contains(&self.min_accuracy)
        {
            return Err(bad(
                "min_confidence, gold_rate and min_accuracy are between 0 and 1",
            ));
        }
        if self.reservation_ttl_seconds == 0
            || self.reservation_ttl_seconds > self.reservation_cap_seconds
        {
            return Err(bad(
                "1 <= reservation_ttl_seconds <= reservation_cap_seconds",
            ));
        }
        if self.pay_per_answer < 0 || self.target_hourly_rate < 0 {
            return Err(bad("pay cannot be negative"));
        }
        /// The most one answer pays, in micro-units (1,000 currency units):
        /// far above any real rate, and billions of entries still sum within an `i64`.
        const MAX_PAY_PER_ANSWER: i64 = 1_000_000_000;
        if self.pay_per_answer > MAX_PAY_PER_ANSWER {
            return Err(bad(&format!(
                "pay_per_answer is at most {MAX_PAY_PER_ANSWER} micro-units"
            )));
        }
        Ok(())
    }

    pub fn ttl_ms(&self) -> i64 {
        i64::try_from(self.reservation_ttl_seconds.saturating_mul(1000)).unwrap_or(i64::MAX)
    }

    pub fn cap_ms(&self) -> i64 {
        i64::try_from(self.reservation_cap_seconds.saturating_mul(1000)).unwrap_or(i64::MAX)
    }

    /// The rules a submitted answer is checked against.
    pub fn quality_rules(&self) -> QualityRules {
        QualityRules {
            min_lead_time_ms: i64::try_from(self.min_lead_time_ms).unwrap_or(i64::MAX),
            min_accuracy: self.min_accuracy,
        }
    }

    /// Everything a submit needs to check the answer and decide the task.
    pub fn submit_rules(&self) -> SubmitRules {
        SubmitRules {
            quality: self.quality_rules(),
            schema: self.answer_schema.clone(),
            overlap_max: self.overlap_max,
            min_confidence: self.min_confidence,
            pay_per_answer: self.pay_per_answer,
        }
    }
}

/// Gold answers a worker gives before their accuracy counts for a verdict.
pub const MIN_GOLD_FOR_VERDICT: i64 = 5;
/// The overlap target of gold tasks: every worker may answer them.
pub const GOLD_OVERLAP: u32 = 1_000_000;

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

/// Whether two answers agree: equal JSON, except that arrays (labels,
/// spans) compare as sets, whatever their order.
pub fn answers_match(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Array(left), Value::Array(right)) => {
            let mut left: Vec<String> = left.iter().map(Value::to_string).collect();
            let mut right: Vec<String> = right.iter().map(Value::to_string).collect();
            left.sort_unstable();
            right.sort_unstable();
            left == right
        }
        (Value::Number(left), Value::Number(right)) => left.as_f64() == right.as_f64(),
        _ => left == right,
    }
}

/// One task as imported: `{"id", "data", "skills"?, "gold"?}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    /// The importer's id, unique in the room (a re-import skips it).
    pub id: String,
    /// What the worker sees (text to annotate, a question, an image URL...).
    pub data: Value,
    #[serde(default)]
    pub skills: Vec<String>,
    /// The known answer of a gold task.
    #[serde(default)]
    pub gold: Option<Value>,
    /// Topics, matched against members' interests.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Most bytes of one task's id.
const MAX_TASK_ID_BYTES: usize = 256;

impl NewTask {
    pub fn validate(&self, schema: &AnswerSchema) -> Result<()> {
        if self.id.is_empty() || self.id.len() > MAX_TASK_ID_BYTES {
            return Err(bad(&format!(
                "a task id has 1 to {MAX_TASK_ID_BYTES} bytes"
            )));
        }
        if let Some(gold) = &self.gold {
            schema
                .validate_answer_for(gold, &self.data)
                .map_err(|error| bad(&format!("gold answer: {}", error.public_message())))?;
        }
        Ok(())
    }
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
    use serde_json::json;

    #[test]
    fn answers_are_checked_against_the_schema() {
        let choice = AnswerSchema::SingleChoice {
            options: vec!["cat".into(), "dog".into()],
        };
        assert!(choice.validate_answer(&json!("cat")).is_ok());
        assert!(choice.validate_answer(&json!("cow")).is_err());
        assert!(choice.validate_answer(&json!(1)).is_err());
        let multi = AnswerSchema::MultiLabel {
            options: vec!["a".into(), "b".into()],
        };
        assert!(multi.validate_answer(&json!(["a", "b"])).is_ok());
        assert!(multi.validate_answer(&json!(["a", "a"])).is_err());
        let spans = AnswerSchema::Spans {
            labels: vec!["PER".into()],
        };
        assert!(
            spans
                .validate_answer(&json!([{"start": 0, "end": 3, "label": "PER"}]))
                .is_ok()
        );
        assert!(
            spans
                .validate_answer(&json!([{"start": 3, "end": 3, "label": "PER"}]))
                .is_err()
        );
        let numeric = AnswerSchema::Numeric {
            min: Some(-1.0),
            max: Some(1.0),
        };
        assert!(numeric.validate_answer(&json!(0.5)).is_ok());
        assert!(numeric.validate_answer(&json!(2)).is_err());
        let text = AnswerSchema::FreeText { max_chars: Some(3) };
        assert!(text.validate_answer(&json!("abc")).is_ok());
        assert!(text.validate_answer(&json!("abcd")).is_err());
        assert!(text.validate_answer(&json!("  ")).is_err());
    }

    #[test]
    fn answers_match_as_sets_and_numbers() {
        assert!(answers_match(&json!(["a", "b"]), &json!(["b", "a"])));
        assert!(!answers_match(&json!(["a"]), &json!(["a", "b"])));
        assert!(answers_match(&json!(1), &json!(1.0)));
        assert!(!answers_match(&json!("pos"), &json!("neg")));
        assert!((accuracy_posterior(4, 5) - 5.0 / 7.0).abs() < 1e-12);
    }

    #[test]
    fn projects_are_validated() {
        assert!(ProjectConfig::default().validate().is_ok());
        let config: ProjectConfig = serde_json::from_value(json!({
            "answer_schema": {"kind": "single_choice", "options": ["yes", "no"]},
            "overlap_min": 2, "overlap_max": 4
        }))
        .unwrap_or_default();
        assert_eq!(config.overlap_max, 4);
        assert!(config.validate().is_ok());
        let bad_overlap = ProjectConfig {
            overlap_min: 5,
            overlap_max: 3,
            ..ProjectConfig::default()
        };
        assert!(bad_overlap.validate().is_err());
        let duplicate = AnswerSchema::SingleChoice {
            options: vec!["a".into(), "a".into()],
        };
        assert!(duplicate.validate_schema().is_err());
        assert!(serde_json::from_value::<ProjectConfig>(json!({"surprise": 1})).is_err());
    }
}
