//! Answer schemas: how a project's tasks are answered, and the checks
//! every answer (and every gold answer) passes before it is stored.

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
    /// The options or labels a worker picks from (none for free text and
    /// numbers).
    pub fn labels(&self) -> &[String] {
        match self {
            AnswerSchema::SingleChoice { options } | AnswerSchema::MultiLabel { options } => {
                options
            }
            AnswerSchema::Spans { labels } => labels,
            AnswerSchema::FreeText { .. } | AnswerSchema::Numeric { .. } => &[],
        }
    }

    /// Checks the schema itself.
    pub fn validate_schema(&self) -> Result<()> {
        let options = match self {
            AnswerSchema::SingleChoice { options } | AnswerSchema::MultiLabel { options } => {
                options
            }
            AnswerSchema::Spans { labels } => labels,
            AnswerSchema::FreeText { max_chars } => {
                return match max_chars {
                    Some(max) if *max == 0 || *max > MAX_TEXT_CHARS => Err(bad_field(
                        "answer_schema.max_chars",
                        &format!("free text: max_chars must be 1 to {MAX_TEXT_CHARS}"),
                    )),
                    _ => Ok(()),
                };
            }
            AnswerSchema::Numeric { min, max } => {
                let finite = "numeric schema: min and max must be finite numbers";
                if min.is_some_and(|min| !min.is_finite()) {
                    return Err(bad_field("answer_schema.min", finite));
                }
                if max.is_some_and(|max| !max.is_finite()) {
                    return Err(bad_field("answer_schema.max", finite));
                }
                return match (min, max) {
                    (Some(min), Some(max)) if min > max => Err(bad_field(
                        "answer_schema.min",
                        "numeric schema: min is above max",
                    )),
                    _ => Ok(()),
                };
            }
        };
        let field = match self {
            AnswerSchema::Spans { .. } => "answer_schema.labels",
            _ => "answer_schema.options",
        };
        if options.is_empty() || options.len() > MAX_OPTIONS {
            return Err(bad_field(
                field,
                &format!("a schema needs 1 to {MAX_OPTIONS} options"),
            ));
        }
        let mut sorted: Vec<&String> = options.iter().collect();
        sorted.sort();
        if sorted.windows(2).any(|pair| pair[0] == pair[1])
            || options.iter().any(|option| option.trim().is_empty())
        {
            return Err(bad_field(
                field,
                "schema options must be distinct and non-empty",
            ));
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

/// An [`Error::Invalid`] with this message.
pub(crate) fn bad(message: &str) -> Error {
    Error::Invalid(message.to_owned())
}

/// An [`Error::Field`]: `field` (its path in the project's JSON) is invalid.
pub(crate) fn bad_field(field: &str, message: &str) -> Error {
    Error::Field {
        field: field.to_owned(),
        message: message.to_owned(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quality::accuracy_posterior;
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
}
