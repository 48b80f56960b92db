//! A room's project (how its tasks are answered, paid and checked) and
//! the tasks imported into it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod change;
mod styles;

pub use styles::{LabelStyle, LabelStyles, validate_styles};

use crate::error::Result;
use crate::quality::{QualityRules, SubmitRules};
use crate::schema::{AnswerSchema, bad, bad_field};

/// A project: one per room. Money is in integer micro-units (1/1,000,000
/// of the currency unit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectConfig {
    pub instructions: String,
    pub answer_schema: AnswerSchema,
    /// Each label's colour and hotkey in the work view. Left out of the
    /// JSON when empty, so a project stored without styles reads the same
    /// to a server that predates them.
    #[serde(skip_serializing_if = "LabelStyles::is_empty")]
    pub label_styles: LabelStyles,
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
            label_styles: LabelStyles::new(),
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
    /// Checks every setting; an error names the first setting at fault
    /// ([`crate::Error::Field`]), in the order of the form that edits them.
    pub fn validate(&self) -> Result<()> {
        self.answer_schema.validate_schema()?;
        validate_styles(&self.label_styles, &self.answer_schema)?;
        if self.required_skills.len() > MAX_REQUIRED_SKILLS
            || self
                .required_skills
                .iter()
                .any(|skill| skill.trim().is_empty() || skill.len() > MAX_SKILL_BYTES)
        {
            return Err(bad_field(
                "required_skills",
                &format!(
                    "at most {MAX_REQUIRED_SKILLS} required skills of 1 to {MAX_SKILL_BYTES} bytes"
                ),
            ));
        }
        if self.overlap_min == 0 {
            return Err(bad_field("overlap_min", "overlap_min is at least 1"));
        }
        if self.overlap_max > MAX_OVERLAP {
            return Err(bad_field(
                "overlap_max",
                &format!("overlap_max is at most {MAX_OVERLAP}"),
            ));
        }
        if self.overlap_min > self.overlap_max {
            return Err(bad_field(
                "overlap_min",
                &format!(
                    "overlap_min ({}) must not be above overlap_max ({})",
                    self.overlap_min, self.overlap_max
                ),
            ));
        }
        let unit = 0.0..=1.0;
        for (field, value) in [
            ("min_confidence", self.min_confidence),
            ("gold_rate", self.gold_rate),
            ("min_accuracy", self.min_accuracy),
        ] {
            if !unit.contains(&value) {
                return Err(bad_field(field, &format!("{field} is between 0 and 1")));
            }
        }
        if self.reservation_ttl_seconds == 0 {
            return Err(bad_field(
                "reservation_ttl_seconds",
                "reservation_ttl_seconds is at least 1",
            ));
        }
        if self.reservation_ttl_seconds > self.reservation_cap_seconds {
            return Err(bad_field(
                "reservation_ttl_seconds",
                "reservation_ttl_seconds must not be above reservation_cap_seconds",
            ));
        }
        if self.pay_per_answer < 0 {
            return Err(bad_field("pay_per_answer", "pay cannot be negative"));
        }
        if self.target_hourly_rate < 0 {
            return Err(bad_field("target_hourly_rate", "pay cannot be negative"));
        }
        if self.pay_per_answer > MAX_PAY_PER_ANSWER {
            return Err(bad_field(
                "pay_per_answer",
                &format!("pay_per_answer is at most {MAX_PAY_PER_ANSWER} micro-units"),
            ));
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

/// Most answers a task may get (`overlap_max`).
const MAX_OVERLAP: u32 = 100;
/// The most one answer pays, in micro-units (1,000 currency units): far
/// above any real rate, and billions of entries still sum within an `i64`.
const MAX_PAY_PER_ANSWER: i64 = 1_000_000_000;
/// Most skills a project may require, and the longest, in bytes: the same
/// bounds as a member's skills (`http/work_api.rs`), which they must match.
const MAX_REQUIRED_SKILLS: usize = 100;
const MAX_SKILL_BYTES: usize = 100;

/// The overlap target of gold tasks: every worker may answer them.
pub const GOLD_OVERLAP: u32 = 1_000_000;

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
                .map_err(|error| bad(&format!("gold answer: {error}")))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    fn each_invalid_setting_names_its_field() {
        use crate::Error;
        let base = ProjectConfig {
            answer_schema: AnswerSchema::SingleChoice {
                options: vec!["yes".into(), "no".into()],
            },
            ..ProjectConfig::default()
        };
        let field = |config: ProjectConfig| match config.validate() {
            Err(Error::Field { field, .. }) => field,
            other => format!("{other:?}"),
        };
        let cases: Vec<(ProjectConfig, &str)> = vec![
            (
                ProjectConfig {
                    overlap_min: 6,
                    overlap_max: 5,
                    ..base.clone()
                },
                "overlap_min",
            ),
            (
                ProjectConfig {
                    overlap_min: 0,
                    ..base.clone()
                },
                "overlap_min",
            ),
            (
                ProjectConfig {
                    overlap_max: 101,
                    ..base.clone()
                },
                "overlap_max",
            ),
            (
                ProjectConfig {
                    min_confidence: 1.5,
                    ..base.clone()
                },
                "min_confidence",
            ),
            (
                ProjectConfig {
                    gold_rate: f64::NAN,
                    ..base.clone()
                },
                "gold_rate",
            ),
            (
                ProjectConfig {
                    min_accuracy: -0.1,
                    ..base.clone()
                },
                "min_accuracy",
            ),
            (
                ProjectConfig {
                    reservation_ttl_seconds: 0,
                    ..base.clone()
                },
                "reservation_ttl_seconds",
            ),
            (
                ProjectConfig {
                    reservation_ttl_seconds: 10,
                    reservation_cap_seconds: 5,
                    ..base.clone()
                },
                "reservation_ttl_seconds",
            ),
            (
                ProjectConfig {
                    pay_per_answer: -1,
                    ..base.clone()
                },
                "pay_per_answer",
            ),
            (
                ProjectConfig {
                    pay_per_answer: 1_000_000_001,
                    ..base.clone()
                },
                "pay_per_answer",
            ),
            (
                ProjectConfig {
                    target_hourly_rate: -1,
                    ..base.clone()
                },
                "target_hourly_rate",
            ),
            (
                ProjectConfig {
                    required_skills: vec![" ".into()],
                    ..base.clone()
                },
                "required_skills",
            ),
            (
                ProjectConfig {
                    answer_schema: AnswerSchema::SingleChoice { options: vec![] },
                    ..base.clone()
                },
                "answer_schema.options",
            ),
            (
                ProjectConfig {
                    answer_schema: AnswerSchema::Spans {
                        labels: vec!["A".into(), "A".into()],
                    },
                    ..base.clone()
                },
                "answer_schema.labels",
            ),
            (
                ProjectConfig {
                    answer_schema: AnswerSchema::FreeText { max_chars: Some(0) },
                    ..base.clone()
                },
                "answer_schema.max_chars",
            ),
            (
                ProjectConfig {
                    answer_schema: AnswerSchema::Numeric {
                        min: Some(2.0),
                        max: Some(1.0),
                    },
                    ..base.clone()
                },
                "answer_schema.min",
            ),
            (
                ProjectConfig {
                    label_styles: [(
                        "yes".to_owned(),
                        LabelStyle {
                            colour: Some("red".into()),
                            hotkey: None,
                        },
                    )]
                    .into(),
                    ..base.clone()
                },
                "label_styles.yes.colour",
            ),
        ];
        for (config, expected) in cases {
            assert_eq!(field(config), expected);
        }
        assert!(base.validate().is_ok());
    }

    #[test]
    fn label_styles_are_optional_and_round_trip() {
        // A project stored before label styles existed still reads.
        let old: ProjectConfig = serde_json::from_value(json!({
            "answer_schema": {"kind": "single_choice", "options": ["yes", "no"]}
        }))
        .unwrap_or_default();
        assert!(old.label_styles.is_empty());
        // Empty styles are left out, so an older server reads the JSON too.
        let text = serde_json::to_string(&old).unwrap_or_default();
        assert!(!text.contains("label_styles"), "{text}");
        let styled: ProjectConfig = serde_json::from_value(json!({
            "answer_schema": {"kind": "single_choice", "options": ["yes", "no"]},
            "label_styles": {"yes": {"colour": "#2f9e44", "hotkey": "y"}, "no": {"hotkey": "n"}}
        }))
        .unwrap_or_default();
        assert!(styled.validate().is_ok());
        assert_eq!(styled.label_styles["no"].hotkey.as_deref(), Some("n"));
        let again: ProjectConfig =
            serde_json::from_str(&serde_json::to_string(&styled).unwrap_or_default())
                .unwrap_or_default();
        assert_eq!(again, styled);
    }
}
