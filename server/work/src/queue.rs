//! A room's live queue in memory: tasks' slots, live reservations and
//! workers' standings, and every decision on them (grant, heartbeat, skip,
//! answer, sweep, consensus decision, pause, skills) as a plain function of
//! that memory, the current time and any random draw, all passed in.
//!
//! Why: a grant read the worker's view, the project and the ranked
//! candidates from SQL, about 33 statements per grant and answer. The room
//! now owns this state: it is loaded once ([`WorkState::load`], from plain
//! rows) and each operation changes memory at once and returns an
//! [`Outcome`]: the decision and the [`Effect`]s the group committer
//! writes before the client is answered. A failed commit makes the room
//! drop this state and load it again (crash-only), never patch it.
//!
//! Invariants, kept by every operation and checked after each step of
//! random operation sequences (`queue/props.rs`): a worker asks for one
//! task at a time (a request while holding one returns it; only a batch
//! assignment grants more); a (task, worker) pair is never reserved or
//! answered twice; `reserved + answered <= target` for every task; a task reaching
//! its target is due exactly once and accepts one decision, and is never
//! granted meanwhile; a paused worker, or one missing a task's skills, is
//! never granted it; a skipped task is never granted again to its skipper;
//! the open index equals its brute-force recomputation.
//!
//! The rules are those of the store they replace (`rooms/work.rs`,
//! `store/reserve.rs`, `grant.rs`, `answer.rs`, `quality.rs`,
//! `consensus.rs`): see each module. One change: a task's skills are
//! checked before the candidates are cut to the first few, where the SQL
//! cut them first and could leave a skilled worker without work.

mod answer;
#[cfg(any(test, debug_assertions))]
mod check;
mod effect;
mod grant;
mod index;
mod plan;
mod rows;
mod settle;
mod standing;

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;

pub use answer::{MIN_FAST_FOR_VERDICT, RESERVATION_LOST, pause_reason};
pub use effect::{Decision, Due, Effect, Freed, Grant, Outcome, Refusal, Submitted, Verdict};
pub use plan::{Plan, SPREAD, spread_fairly};
pub use rows::{ReservationRow, StoredState, TaskRow, WorkerRow};
pub use settle::{DueAnswer, settle};
pub use standing::WorkerView;

use crate::error::{Error, Result};
use crate::project::{GOLD_OVERLAP, ProjectConfig};
use crate::quality::vote_accuracy;
use index::{Names, Sets, Slot, Tasks};
use standing::Worker;

/// A worker's id as the store spells it, shared by the effects that name it.
pub type WorkerId = Arc<str>;

/// A task's state in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Open,
    /// At its overlap target, waiting for the consensus actor's decision:
    /// never granted meanwhile.
    Deciding,
    Complete,
    Review,
    Rejected,
}

/// A live reservation (the fields are those of the `reservations` row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Reservation {
    pub task_id: i64,
    pub created_at: i64,
    pub expires_at: i64,
    /// Heartbeats cannot extend it past this.
    pub cap_at: i64,
}

/// A worker's record in one skill, or overall (`worker_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Record {
    pub gold_correct: i64,
    pub gold_total: i64,
    /// Agreement with confident consensus.
    pub agree: i64,
    pub disagree: i64,
    pub answers: i64,
    pub lead_time_total: i64,
    /// Answers faster than the project's minimum lead time.
    pub fast_answers: i64,
}

impl Record {
    /// Adds `delta`, saturating: a counter never wraps.
    pub fn add(&mut self, delta: &Record) {
        self.gold_correct = self.gold_correct.saturating_add(delta.gold_correct);
        self.gold_total = self.gold_total.saturating_add(delta.gold_total);
        self.agree = self.agree.saturating_add(delta.agree);
        self.disagree = self.disagree.saturating_add(delta.disagree);
        self.answers = self.answers.saturating_add(delta.answers);
        self.lead_time_total = self.lead_time_total.saturating_add(delta.lead_time_total);
        self.fast_answers = self.fast_answers.saturating_add(delta.fast_answers);
    }

    /// The accuracy the worker's votes weigh and their gains estimate.
    pub fn accuracy(&self) -> f64 {
        vote_accuracy(
            self.gold_correct,
            self.gold_total,
            self.agree,
            self.disagree,
        )
    }
}

/// A worker's ledger sums in micro-units (states of their entries).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Earnings {
    pub pending: i64,
    pub approved: i64,
    pub paid: i64,
    pub rejected: i64,
    pub disputed: i64,
    /// The lead time of their entries not rejected, for the hourly rate.
    #[serde(skip)]
    pub lead_time_ms: i64,
}

/// The state of a ledger entry, as the earnings sum them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryState {
    Pending,
    Approved,
    Paid,
    Rejected,
    Disputed,
}

/// The room's queue at a glance (the `queue.counts` event).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub total: i64,
    /// Open tasks, those waiting for their decision included.
    pub open: i64,
    pub complete: i64,
    /// Tasks in review, and rejected by a review.
    pub review: i64,
    /// Live reservations right now.
    pub reserved: i64,
    pub answers: i64,
}

/// The project's rules as the queue applies them.
#[derive(Debug)]
struct Rules {
    project: ProjectConfig,
    /// The project's required skills, interned and sorted.
    required: Vec<u32>,
}

/// A loaded room: its state, and the tasks found at their target without
/// a decision (due: hand them to the consensus actor).
#[derive(Debug)]
pub struct Loaded {
    pub state: WorkState,
    pub due: Vec<Due>,
}

/// One room's work state. See the module docs.
#[derive(Debug)]
pub struct WorkState {
    rules: Rules,
    skills: Names,
    tags: Names,
    skill_sets: Sets,
    tag_sets: Sets,
    tasks: Tasks,
    workers: Vec<Worker>,
    worker_numbers: HashMap<WorkerId, u32>,
    /// Every reservation by (expiry, worker, task): a sweep pops the front.
    expiries: BTreeSet<(i64, u32, u32)>,
    /// Tasks per state, in [`TaskState`]'s order.
    states: [i64; 5],
    answers: i64,
}

fn state_slot(state: TaskState) -> usize {
    match state {
        TaskState::Open => 0,
        TaskState::Deciding => 1,
        TaskState::Complete => 2,
        TaskState::Review => 3,
        TaskState::Rejected => 4,
    }
}

impl WorkState {
    /// An empty room with this project.
    pub fn new(project: ProjectConfig) -> WorkState {
        let mut skills = Names::default();
        let required = skills.intern_set(&project.required_skills);
        WorkState {
            rules: Rules { project, required },
            skills,
            tags: Names::default(),
            skill_sets: Sets::default(),
            tag_sets: Sets::default(),
            tasks: Tasks::default(),
            workers: Vec::new(),
            worker_numbers: HashMap::new(),
            expiries: BTreeSet::new(),
            states: [0; 5],
            answers: 0,
        }
    }

    /// Builds a room's state from its rows. Reservations of unknown tasks
    /// are ignored (the store's foreign keys have none).
    pub fn load(
        project: ProjectConfig,
        tasks: Vec<TaskRow>,
        workers: Vec<WorkerRow>,
        reservations: Vec<ReservationRow>,
    ) -> Result<Loaded> {
        let Loaded { mut state, due } = WorkState::with_tasks(project, tasks)?;
        state.load_standings(workers, reservations)?;
        Ok(Loaded { state, due })
    }

    /// The first half of [`WorkState::load`]: the project and the tasks,
    /// with those found due. A loader may read the standings meanwhile.
    pub fn with_tasks(project: ProjectConfig, mut tasks: Vec<TaskRow>) -> Result<Loaded> {
        let mut state = WorkState::new(project);
        tasks.sort_unstable_by_key(|task| task.id);
        let due = state.add_tasks(tasks)?;
        Ok(Loaded { state, due })
    }

    /// The second half of [`WorkState::load`]: the workers' standings and
    /// the reservations, on a state made by [`WorkState::with_tasks`].
    pub fn load_standings(
        &mut self,
        workers: Vec<WorkerRow>,
        mut reservations: Vec<ReservationRow>,
    ) -> Result<()> {
        for row in workers {
            self.load_worker(row);
        }
        reservations.sort_by_key(|row| (row.reservation.created_at, row.reservation.task_id));
        for row in reservations {
            let Ok(task) = self.tasks.find(row.reservation.task_id) else {
                continue;
            };
            let worker = self.worker_number(&row.worker);
            let Some(standing) = self.workers.get_mut(worker as usize) else {
                continue;
            };
            // (task, worker) is the store's key: never twice.
            if standing.held.iter().any(|(held, _)| *held == task) {
                continue;
            }
            standing.held.push((task, row.reservation));
            self.expiries
                .insert((row.reservation.expires_at, worker, task));
            self.tasks
                .update(task, |slot| slot.reserved = slot.reserved.saturating_add(1))?;
        }
        Ok(())
    }

    /// Adds tasks (imported while the room runs, or loaded); returns those
    /// found at their target without a decision. Ids must be new to the
    /// room; tasks keep the order given within their answer count, which
    /// is the oldest first when they come in id order.
    pub fn add_tasks(&mut self, tasks: Vec<TaskRow>) -> Result<Vec<Due>> {
        let mut due = Vec::new();
        for row in tasks {
            let skills = self.skills.intern_set(&row.skills);
            let skills = self.skill_sets.intern(skills);
            let tags = self.tags.intern_set(&row.tags);
            let tags = self.tag_sets.intern(tags);
            let gold = row.gold.is_some();
            let target = if gold {
                GOLD_OVERLAP.max(row.overlap_target)
            } else {
                row.overlap_target
            };
            let state = match row.state {
                StoredState::Open if !gold && row.answered >= target => {
                    due.push(Due {
                        task: row.id,
                        target,
                    });
                    TaskState::Deciding
                }
                StoredState::Open => TaskState::Open,
                StoredState::Complete => TaskState::Complete,
                StoredState::Review => TaskState::Review,
                StoredState::Rejected => TaskState::Rejected,
            };
            let slot = Slot {
                group: self.tasks.group(skills, gold),
                tags,
                target,
                reserved: 0,
                answered: row.answered,
                state,
            };
            self.tasks.push(row.id, slot, row.gold)?;
            if let Some(count) = self.states.get_mut(state_slot(state)) {
                *count += 1;
            }
            self.answers = self.answers.saturating_add(i64::from(row.answered));
        }
        Ok(due)
    }

    /// Changes the project (its rules apply to the next decisions).
    pub fn set_project(&mut self, project: ProjectConfig) {
        self.rules.required = self.skills.intern_set(&project.required_skills);
        self.rules.project = project;
    }

    pub fn project(&self) -> &ProjectConfig {
        &self.rules.project
    }

    /// The room's counts at `now_ms` (live reservations are those not
    /// expired then).
    pub fn counts(&self, now_ms: i64) -> Counts {
        let [open, deciding, complete, review, rejected] = self.states;
        let held = i64::try_from(self.expiries.len()).unwrap_or(i64::MAX);
        let expired = self.expiries.range(..=(now_ms, u32::MAX, u32::MAX)).count();
        Counts {
            total: open + deciding + complete + review + rejected,
            open: open + deciding,
            complete,
            review: review + rejected,
            reserved: held - i64::try_from(expired).unwrap_or(0),
            answers: self.answers,
        }
    }

    /// A task's state.
    pub fn task_state(&self, task: i64) -> Result<TaskState> {
        Ok(self.tasks.slot(self.tasks.find(task)?)?.state)
    }

    /// What the work state takes on the heap, in bytes: an estimate from
    /// the capacities of its collections (hash tables and B-trees counted
    /// as their layouts are documented, not measured).
    pub fn heap_bytes(&self) -> usize {
        let workers: usize = self.workers.iter().map(Worker::heap_bytes).sum();
        self.tasks.heap_bytes()
            + self.skills.heap_bytes()
            + self.tags.heap_bytes()
            + self.skill_sets.heap_bytes()
            + self.tag_sets.heap_bytes()
            + self.workers.capacity() * std::mem::size_of::<Worker>()
            + workers
            + index::hash_bytes(self.worker_numbers.capacity(), 20)
            + index::btree_bytes(self.expiries.len(), 16)
    }

    /// The number of a worker, made with an empty standing on first sight
    /// (a member who never worked here has no rows).
    fn worker_number(&mut self, id: &str) -> u32 {
        if let Some(number) = self.worker_numbers.get(id) {
            return *number;
        }
        let number = u32::try_from(self.workers.len()).unwrap_or(u32::MAX);
        let id: WorkerId = id.into();
        self.workers.push(Worker::new(id.clone()));
        self.worker_numbers.insert(id, number);
        number
    }

    /// The number of a worker who must be known.
    fn known_worker(&self, id: &str) -> Result<u32> {
        self.worker_numbers
            .get(id)
            .copied()
            .ok_or(Error::NotFound("worker"))
    }

    fn worker(&self, number: u32) -> Result<&Worker> {
        self.workers
            .get(number as usize)
            .ok_or(Error::NotFound("worker"))
    }

    fn worker_mut(&mut self, number: u32) -> Result<&mut Worker> {
        self.workers
            .get_mut(number as usize)
            .ok_or(Error::NotFound("worker"))
    }

    /// Moves a task to `state`, keeping the counts and the index in step.
    fn set_state(&mut self, task: u32, state: TaskState) -> Result<()> {
        let before = self
            .tasks
            .update(task, |slot| std::mem::replace(&mut slot.state, state))?;
        if let Some(count) = self.states.get_mut(state_slot(before)) {
            *count -= 1;
        }
        if let Some(count) = self.states.get_mut(state_slot(state)) {
            *count += 1;
        }
        Ok(())
    }

    fn load_worker(&mut self, row: WorkerRow) {
        let number = self.worker_number(&row.id);
        let skills = self.skills.intern_set(&row.skills);
        let interests = self.tags.intern_set(&row.interests);
        let mut per_skill = Vec::new();
        let mut overall = Record::default();
        for (skill, record) in &row.records {
            if skill.is_empty() {
                overall = *record;
            } else {
                per_skill.push((self.skills.intern(skill), *record));
            }
        }
        // Tasks that are decided are never granted again: the worker's
        // answers and skips of them are not kept.
        let to_tasks = |ids: &[i64]| -> HashSet<u32> {
            ids.iter()
                .filter_map(|id| self.tasks.find(*id).ok())
                .filter(|task| {
                    self.tasks.slot(*task).is_ok_and(|slot| {
                        matches!(slot.state, TaskState::Open | TaskState::Deciding)
                    })
                })
                .collect()
        };
        let answered = to_tasks(&row.answered);
        let skipped = to_tasks(&row.skipped);
        if let Some(worker) = self.workers.get_mut(number as usize) {
            worker.skills = skills;
            worker.interests = interests;
            worker.overall = overall;
            worker.per_skill = per_skill;
            worker.paused = row.paused.map(Into::into);
            worker.answered = answered;
            worker.skipped = skipped;
            worker.earnings = row.earnings;
            worker.forget_groups();
        }
    }
}
