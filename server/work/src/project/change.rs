//! What saving a changed project does to the work already in the room, as
//! a plain function of the old and new project, the room's task rows, its
//! members who may take tasks and their reservations.
//!
//! Why this is needed: a saved project never rewrites a stored task. Its
//! overlap target was set from `overlap_min` at import and only the
//! consensus actor's dynamic overlap raises it; a decided task is never
//! decided again. What the new settings do change is every decision still
//! to come: the next decision of each open task (`min_confidence`, the
//! answer schema, whether an unsure task gets one more answer or goes to
//! review at `overlap_max`), every grant (`required_skills`, `gold_rate`,
//! `onboarding_gold`) and every answer's pay. A moderator editing a
//! running project should see which of those apply to what, before saving.
//! Nothing here is decided at once on save: the room reloads its work with
//! the new project, and the same tasks wait for the same answers.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::Value;

use super::ProjectConfig;
use crate::queue::{ReservationRow, StoredState, TaskRow};

/// At most this many ids are listed per kind of change (the counts are whole).
pub const MAX_LISTED: usize = 50;

/// A member who may take tasks, with their skills.
#[derive(Debug, Clone, PartialEq)]
pub struct Taker {
    pub user: String,
    pub skills: Vec<String>,
}

/// The room's tasks as they stand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TaskTally {
    pub total: u64,
    /// Regular tasks not decided yet (those at their target waiting for
    /// their decision included).
    pub open: u64,
    pub complete: u64,
    /// In review, or rejected by a review.
    pub review: u64,
    /// Gold tasks (never decided; served to check workers).
    pub gold: u64,
}

/// Ids of the first [`MAX_LISTED`] things of one kind, and how many there are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Listed<T> {
    pub count: u64,
    pub first: Vec<T>,
}

impl<T> Listed<T> {
    fn push(&mut self, item: T) {
        self.count += 1;
        if self.first.len() < MAX_LISTED {
            self.first.push(item);
        }
    }
}

/// What saving `new` over `old` does to the room's existing work. Every
/// count is 0 when the setting it follows did not change.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ChangePreview {
    /// The settings that differ, by their JSON name.
    pub changed: Vec<String>,
    pub tasks: TaskTally,
    /// Open regular tasks whose overlap target differs from the new
    /// `overlap_min`: they keep it; only tasks imported afterwards start
    /// at the new `overlap_min`.
    pub overlap_kept: u64,
    /// Open regular tasks at a target below the old `overlap_max` and not
    /// below the new one: unsure at their target, they now go to review
    /// instead of getting one more answer.
    pub overlap_capped: u64,
    /// Open regular tasks at a target not below the old `overlap_max` but
    /// below the new one: unsure at their target, they now get one more
    /// answer instead of going to review.
    pub overlap_extended: u64,
    /// Tasks in review when `overlap_max` rises: they stay in review (a
    /// decided task is not reopened).
    pub review_kept: u64,
    /// Open regular tasks whose coming decision follows the new
    /// `min_confidence` or answer schema (decided tasks keep theirs).
    pub decided_by_new_rules: u64,
    /// Open regular tasks with answers given under the old answer schema:
    /// those answers are kept and count in the task's decision as given.
    pub answered_under_old_schema: u64,
    /// Gold tasks whose gold answer does not fit the new answer schema:
    /// they keep it, and workers' answers are judged against it.
    pub gold_misfits: Listed<i64>,
    /// Members who may take tasks, had every skill the old project
    /// required and lack one the new one requires: they get no new task.
    pub newly_lacking_skills: Listed<String>,
    /// Live reservations those members hold: they may still answer them
    /// (an answer to a held reservation is not checked against skills).
    pub reservations_kept: u64,
    /// Members who lacked a skill the old project required and have every
    /// one the new project requires: they may take tasks again.
    pub newly_qualified: Listed<String>,
}

/// What saving `new` over `old` does to the room's `tasks`, `takers` and
/// `reservations` at `now_ms` (see the module docs).
pub fn preview(
    old: &ProjectConfig,
    new: &ProjectConfig,
    tasks: &[TaskRow],
    takers: &[Taker],
    reservations: &[ReservationRow],
    now_ms: i64,
) -> ChangePreview {
    let mut preview = ChangePreview {
        changed: changed_settings(old, new),
        ..ChangePreview::default()
    };
    let schema_changed = old.answer_schema != new.answer_schema;
    let rules_changed = schema_changed || old.min_confidence != new.min_confidence;
    for task in tasks {
        preview.tasks.total += 1;
        if let Some(gold) = &task.gold {
            preview.tasks.gold += 1;
            if schema_changed && new.answer_schema.validate_answer(gold).is_err() {
                preview.gold_misfits.push(task.id);
            }
            continue;
        }
        match task.state {
            StoredState::Open => preview.tasks.open += 1,
            StoredState::Complete => preview.tasks.complete += 1,
            StoredState::Review | StoredState::Rejected => {
                preview.tasks.review += 1;
                if new.overlap_max > old.overlap_max {
                    preview.review_kept += 1;
                }
                continue;
            }
        }
        if task.state != StoredState::Open {
            continue;
        }
        let target = task.overlap_target;
        if old.overlap_min != new.overlap_min && target != new.overlap_min {
            preview.overlap_kept += 1;
        }
        if target < old.overlap_max && target >= new.overlap_max {
            preview.overlap_capped += 1;
        }
        if target >= old.overlap_max && target < new.overlap_max {
            preview.overlap_extended += 1;
        }
        if rules_changed {
            preview.decided_by_new_rules += 1;
        }
        if schema_changed && task.answered > 0 {
            preview.answered_under_old_schema += 1;
        }
    }
    skills_change(&mut preview, old, new, takers, reservations, now_ms);
    preview
}

/// Who gains or loses the project's required skills, and what they hold.
fn skills_change(
    preview: &mut ChangePreview,
    old: &ProjectConfig,
    new: &ProjectConfig,
    takers: &[Taker],
    reservations: &[ReservationRow],
    now_ms: i64,
) {
    if old.required_skills == new.required_skills {
        return;
    }
    let has_all = |taker: &Taker, required: &[String]| {
        required.iter().all(|skill| taker.skills.contains(skill))
    };
    let mut lacking = HashSet::new();
    for taker in takers {
        match (
            has_all(taker, &old.required_skills),
            has_all(taker, &new.required_skills),
        ) {
            (true, false) => {
                lacking.insert(taker.user.as_str());
                preview.newly_lacking_skills.push(taker.user.clone());
            }
            (false, true) => preview.newly_qualified.push(taker.user.clone()),
            (true, true) | (false, false) => {}
        }
    }
    preview.reservations_kept = reservations
        .iter()
        .filter(|row| row.reservation.expires_at > now_ms && lacking.contains(row.worker.as_str()))
        .count() as u64;
}

/// The JSON names of the settings that differ, in name order.
fn changed_settings(old: &ProjectConfig, new: &ProjectConfig) -> Vec<String> {
    let (Ok(Value::Object(old)), Ok(Value::Object(new))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return Vec::new();
    };
    let mut names: Vec<String> = old.keys().chain(new.keys()).cloned().collect();
    names.sort_unstable();
    names.dedup();
    names.retain(|name| old.get(name) != new.get(name));
    names
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::queue::Reservation;
    use crate::schema::AnswerSchema;

    fn project() -> ProjectConfig {
        ProjectConfig {
            answer_schema: AnswerSchema::SingleChoice {
                options: vec!["yes".into(), "no".into()],
            },
            overlap_min: 2,
            overlap_max: 4,
            ..ProjectConfig::default()
        }
    }

    fn task(id: i64, target: u32, answered: u32, state: StoredState) -> TaskRow {
        TaskRow {
            id,
            skills: Vec::new(),
            tags: Vec::new(),
            gold: None,
            overlap_target: target,
            answered,
            state,
        }
    }

    fn tasks() -> Vec<TaskRow> {
        vec![
            task(1, 2, 0, StoredState::Open),
            task(2, 3, 2, StoredState::Open),
            task(3, 4, 4, StoredState::Open),
            task(4, 2, 2, StoredState::Complete),
            task(5, 4, 4, StoredState::Review),
            TaskRow {
                gold: Some(json!("yes")),
                ..task(6, 1_000_000, 3, StoredState::Open)
            },
        ]
    }

    #[test]
    fn an_unchanged_project_changes_nothing() {
        let preview = preview(&project(), &project(), &tasks(), &[], &[], 0);
        assert_eq!(
            preview,
            ChangePreview {
                tasks: TaskTally {
                    total: 6,
                    open: 3,
                    complete: 1,
                    review: 1,
                    gold: 1
                },
                ..ChangePreview::default()
            }
        );
    }

    #[test]
    fn overlap_changes_keep_targets_and_move_the_review_threshold() {
        let lower = ProjectConfig {
            overlap_min: 1,
            overlap_max: 3,
            ..project()
        };
        let preview = preview(&project(), &lower, &tasks(), &[], &[], 0);
        assert_eq!(preview.changed, ["overlap_max", "overlap_min"]);
        // Tasks 1, 2 and 3 keep their targets 2, 3 and 4.
        assert_eq!(preview.overlap_kept, 3);
        // Task 2 (target 3) could have risen to 4; now it goes to review.
        assert_eq!(preview.overlap_capped, 1);
        assert_eq!(preview.overlap_extended, 0);
        assert_eq!(preview.decided_by_new_rules, 0);
        let higher = ProjectConfig {
            overlap_max: 6,
            ..project()
        };
        let preview = super::preview(&project(), &higher, &tasks(), &[], &[], 0);
        assert_eq!(preview.overlap_kept, 0, "overlap_min did not change");
        // Task 3 (target 4, at the old maximum) may now get a fifth answer.
        assert_eq!(preview.overlap_extended, 1);
        assert_eq!(preview.review_kept, 1);
    }

    #[test]
    fn a_new_schema_flags_gold_that_no_longer_fits_and_answered_tasks() {
        let renamed = ProjectConfig {
            answer_schema: AnswerSchema::SingleChoice {
                options: vec!["ja".into(), "nein".into()],
            },
            ..project()
        };
        let preview = preview(&project(), &renamed, &tasks(), &[], &[], 0);
        assert_eq!(preview.changed, ["answer_schema"]);
        assert_eq!(
            preview.gold_misfits,
            Listed {
                count: 1,
                first: vec![6]
            }
        );
        assert_eq!(preview.decided_by_new_rules, 3);
        assert_eq!(preview.answered_under_old_schema, 2);
        let stricter = ProjectConfig {
            min_confidence: 0.9,
            ..project()
        };
        let preview = super::preview(&project(), &stricter, &tasks(), &[], &[], 0);
        assert_eq!(preview.decided_by_new_rules, 3);
        assert_eq!(preview.answered_under_old_schema, 0);
        assert_eq!(preview.gold_misfits.count, 0);
    }

    #[test]
    fn required_skills_name_who_loses_and_gains_work() {
        let takers = [
            Taker {
                user: "ann".into(),
                skills: vec!["de".into()],
            },
            Taker {
                user: "bob".into(),
                skills: vec!["de".into(), "legal".into()],
            },
            Taker {
                user: "cy".into(),
                skills: vec!["legal".into()],
            },
        ];
        let reservation = |worker: &str, expires_at: i64| ReservationRow {
            worker: worker.into(),
            reservation: Reservation {
                task_id: 1,
                created_at: 0,
                expires_at,
                cap_at: 2_000,
            },
        };
        let old = ProjectConfig {
            required_skills: vec!["de".into()],
            ..project()
        };
        let new = ProjectConfig {
            required_skills: vec!["legal".into()],
            ..project()
        };
        // Ann holds a live reservation and an expired one not swept yet.
        let reservations = [
            reservation("ann", 1_000),
            reservation("ann", 10),
            reservation("bob", 1_000),
        ];
        let preview = preview(&old, &new, &tasks(), &takers, &reservations, 500);
        assert_eq!(preview.newly_lacking_skills.first, ["ann"]);
        assert_eq!(preview.newly_qualified.first, ["cy"]);
        assert_eq!(preview.reservations_kept, 1, "ann's live reservation");
    }
}
