//! A room's project (how its tasks are answered, paid and checked) and
//! the tasks imported into it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Result;
use crate::quality::{QualityRules, SubmitRules};
use crate::schema::{AnswerSchema, bad};

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
}
