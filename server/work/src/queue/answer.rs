//! Answers, decisions and reviews: what happens to a task once a worker
//! answers it (the rules of `store/answer.rs`, `quality.rs` and
//! `consensus.rs`).
//!
//! An answer consumes its worker's live reservation of the task (an
//! expired one is lost, even before a sweep); it counts on the task and in
//! the worker's record, overall and in each of the task's skills (gold
//! right and total, answers, lead time, fast answers), books its pay as
//! pending, and may pause its worker ([`pause_reason`]). The answer that
//! brings a regular task to its overlap target makes it due: the task
//! waits, never granted, until the consensus actor's decision comes back
//! through [`WorkState::apply_decision`], accepted once. Gold tasks are
//! never due: every worker may answer them.

use serde_json::Value;

use super::{Decision, Due, Effect, Outcome, Record, Submitted, TaskState, Verdict, WorkState};
use crate::error::{Error, Result};
use crate::quality::{MIN_GOLD_FOR_VERDICT, QualityRules, accuracy_upper_bound};
use crate::schema::answers_match;

/// Fast answers a worker may give before the fast-answer rule can pause them.
pub const MIN_FAST_FOR_VERDICT: i64 = 5;

/// What a refused answer's error says when its reservation was not live.
pub const RESERVATION_LOST: &str = "reservation lost: it expired or was given up";

/// Why a worker with this overall record should be paused, if they should:
/// enough gold answers for a verdict with even the optimistic bound of
/// their accuracy below the project's minimum, or most of at least
/// [`MIN_FAST_FOR_VERDICT`] answers faster than its minimum lead time.
pub fn pause_reason(record: &Record, rules: QualityRules) -> Option<&'static str> {
    if record.gold_total >= MIN_GOLD_FOR_VERDICT
        && accuracy_upper_bound(record.gold_correct, record.gold_total) < rules.min_accuracy
    {
        Some("accuracy on gold tasks is below the project's minimum")
    } else if record.fast_answers >= MIN_FAST_FOR_VERDICT
        && record.fast_answers.saturating_mul(2) > record.answers
    {
        Some("most answers came faster than the project's minimum lead time")
    } else {
        None
    }
}

impl WorkState {
    /// Records a worker's answer (already validated against the schema)
    /// to the task they hold a live reservation of.
    pub fn submit(
        &mut self,
        worker: &str,
        task: i64,
        answer: &Value,
        now_ms: i64,
    ) -> Result<Outcome<Submitted>> {
        let lost = || Error::State(RESERVATION_LOST.to_owned());
        let number = self.known_worker(worker).map_err(|_| lost())?;
        let index = self.tasks.find(task)?;
        let standing = self.worker(number)?;
        let Some(at) = standing
            .held
            .iter()
            .position(|(held, reservation)| *held == index && reservation.expires_at > now_ms)
        else {
            return Err(lost());
        };
        if standing.answered.contains(&index) {
            return Err(Error::State("this task is already answered".into()));
        }
        let worker_id = standing.id.clone();
        let (_, reservation) = self.worker_mut(number)?.held.remove(at);
        self.expiries
            .remove(&(reservation.expires_at, number, index));
        let slot = self.tasks.update(index, |slot| {
            slot.reserved = slot.reserved.saturating_sub(1);
            slot.answered = slot.answered.saturating_add(1);
            *slot
        })?;
        self.answers = self.answers.saturating_add(1);

        let project = &self.rules.project;
        let rules = project.quality_rules();
        let pay = project.pay_per_answer.max(0);
        let onboarding_gold = i64::from(project.onboarding_gold);
        let lead_time_ms = now_ms.saturating_sub(reservation.created_at);
        let correct = self
            .tasks
            .gold
            .get(&index)
            .map(|gold| answers_match(gold, answer));
        let too_fast = lead_time_ms < rules.min_lead_time_ms;
        let delta = Record {
            gold_correct: i64::from(correct == Some(true)),
            gold_total: i64::from(correct.is_some()),
            answers: 1,
            lead_time_total: lead_time_ms,
            fast_answers: i64::from(too_fast),
            ..Record::default()
        };
        let skills: Vec<u32> = self
            .tasks
            .groups
            .get(slot.group as usize)
            .map(|group| self.skill_sets.get(group.skills).to_vec())
            .unwrap_or_default();
        let mut effects = vec![Effect::AnswerRecorded {
            task,
            worker: worker_id.clone(),
            answer: answer.clone(),
            at: now_ms,
            lead_time_ms,
            correct,
            pay,
        }];
        effects.push(Effect::RecordChanged {
            worker: worker_id.clone(),
            skill: String::new(),
            delta,
        });
        for skill in &skills {
            effects.push(Effect::RecordChanged {
                worker: worker_id.clone(),
                skill: self.skills.name(*skill).to_owned(),
                delta,
            });
        }
        let standing = self
            .workers
            .get_mut(number as usize)
            .ok_or(Error::NotFound("worker"))?;
        standing.answered.insert(index);
        standing.overall.add(&delta);
        for skill in skills {
            match standing
                .per_skill
                .iter_mut()
                .find(|(have, _)| *have == skill)
            {
                Some((_, record)) => record.add(&delta),
                None => standing.per_skill.push((skill, delta)),
            }
        }
        standing.earnings.pending = standing.earnings.pending.saturating_add(pay);
        standing.earnings.lead_time_ms =
            standing.earnings.lead_time_ms.saturating_add(lead_time_ms);
        let mut paused = None;
        if standing.paused.is_none()
            && let Some(reason) = pause_reason(&standing.overall, rules)
        {
            standing.paused = Some(reason.into());
            paused = Some(reason.to_owned());
            effects.push(Effect::WorkerPaused {
                worker: worker_id,
                reason: reason.to_owned(),
                at: now_ms,
            });
        }
        // Onboarding gold is training: the worker learns whether they were
        // right. Later gold stays hidden among regular tasks.
        let gold_before = standing.overall.gold_total - delta.gold_total;
        let feedback = correct.filter(|_| gold_before < onboarding_gold);

        let mut due = None;
        let mut state = slot.state;
        if slot.state == TaskState::Open
            && !self.tasks.gold.contains_key(&index)
            && slot.answered >= slot.target
        {
            self.set_state(index, TaskState::Deciding)?;
            state = TaskState::Deciding;
            due = Some(Due {
                task,
                target: slot.target,
            });
        }
        Ok(Outcome {
            value: Submitted {
                task,
                lead_time_ms,
                correct,
                feedback,
                too_fast,
                paused,
                state,
                due,
            },
            effects,
        })
    }

    /// Applies the consensus actor's decision on a due task, once: a task
    /// not waiting for one refuses it. Raising the overlap target (below
    /// the project's maximum only) reopens the task for one more answer.
    pub fn apply_decision(
        &mut self,
        task: i64,
        decision: &Decision,
        now_ms: i64,
    ) -> Result<Outcome<TaskState>> {
        let index = self.tasks.find(task)?;
        let slot = *self.tasks.slot(index)?;
        if slot.state != TaskState::Deciding {
            return Err(Error::State(format!(
                "task {task} is not waiting for a decision"
            )));
        }
        let mut effects = Vec::new();
        let state = match decision.verdict {
            Verdict::Complete => TaskState::Complete,
            Verdict::Review => TaskState::Review,
            Verdict::RaiseOverlap => {
                if slot.target >= self.rules.project.overlap_max {
                    return Err(Error::Invalid(format!(
                        "task {task} is at the project's overlap maximum: decide or review it"
                    )));
                }
                let target = self.tasks.update(index, |slot| {
                    slot.target = slot.target.saturating_add(1);
                    slot.target
                })?;
                effects.push(Effect::OverlapRaised { task, target });
                TaskState::Open
            }
        };
        self.set_state(index, state)?;
        if state != TaskState::Open {
            effects.push(Effect::TaskStateChanged {
                task,
                state,
                consensus: decision.consensus.clone(),
                at: now_ms,
            });
        }
        for (worker, agreed) in &decision.agreement {
            let Ok(number) = self.known_worker(worker) else {
                continue;
            };
            let delta = Record {
                agree: i64::from(*agreed),
                disagree: i64::from(!*agreed),
                ..Record::default()
            };
            let standing = self.worker_mut(number)?;
            standing.overall.add(&delta);
            effects.push(Effect::RecordChanged {
                worker: standing.id.clone(),
                skill: String::new(),
                delta,
            });
        }
        Ok(Outcome {
            value: state,
            effects,
        })
    }

    /// Applies a reviewer's final decision: the task becomes `Complete`
    /// (accepted or corrected) or `Rejected`. Gold tasks are not reviewed,
    /// and a task waiting for its consensus decision gets that first.
    pub fn apply_review(
        &mut self,
        task: i64,
        state: TaskState,
        now_ms: i64,
    ) -> Result<Outcome<()>> {
        let index = self.tasks.find(task)?;
        if !matches!(state, TaskState::Complete | TaskState::Rejected) {
            return Err(Error::Invalid(
                "a review completes or rejects a task".into(),
            ));
        }
        if self.tasks.gold.contains_key(&index) {
            return Err(Error::Invalid("gold tasks are not reviewed".into()));
        }
        if self.tasks.slot(index)?.state == TaskState::Deciding {
            return Err(Error::State(format!(
                "task {task} is waiting for its decision"
            )));
        }
        self.set_state(index, state)?;
        Ok(Outcome {
            value: (),
            effects: vec![Effect::TaskStateChanged {
                task,
                state,
                consensus: None,
                at: now_ms,
            }],
        })
    }
}
