//! Random operation sequences on a small room (a few workers and tasks,
//! random skills and interests, gold tasks, pauses, time running past
//! reservations' time to live and caps, decisions applied late or never),
//! with the queue's invariants checked after every step (see the module
//! docs of `queue.rs`), every grant compared with a brute-force ranking of
//! all tasks, and the room reloaded from its rows at the end.
//!
//! Replaying a failure: the test prints `proptest seed N` on stderr, which
//! the harness shows when the test fails, next to proptest's `minimal
//! failing input: ...`. Run `PROPTEST_RNG_SEED=N cargo test -p
//! crowdroom-work --lib queue::props` to draw the same cases again and
//! reach the same minimal input. Nothing is written to disk: turn a
//! minimal input worth keeping into a unit test (`queue/tests.rs`).
//! `PROPTEST_CASES=N` runs longer.

#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};

use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::json;

use super::grant::CANDIDATES;
use super::index::{is_subset, key, key_task, meets};
use super::*;
use crate::gain::{expected_gain, need, skill_estimate};
use crate::testkit::config;

const SKILLS: [&str; 3] = ["a", "b", "c"];
const TAGS: [&str; 2] = ["news", "law"];
const WORKERS: usize = 3;

fn names(mask: u8, pool: &[&str]) -> Vec<String> {
    pool.iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1 << bit) != 0)
        .map(|(_, name)| (*name).to_owned())
        .collect()
}

fn worker(at: usize) -> String {
    format!("w{}", at % WORKERS)
}

#[derive(Debug, Clone)]
struct Room {
    required: u8,
    onboarding_gold: u32,
    min_lead_time_ms: u64,
    /// (skills mask, tags mask, gold, overlap target) per task.
    tasks: Vec<(u8, u8, bool, u32)>,
    /// (skills mask, interests mask) per worker.
    workers: Vec<(u8, u8)>,
}

#[derive(Debug, Clone)]
enum Op {
    Request(usize, f64),
    Heartbeat(usize),
    Skip(usize, Option<usize>),
    Submit(usize, Option<usize>, u8),
    Advance(i64),
    Sweep,
    Decide(usize, u8),
    Release(usize),
    Assign(usize, usize),
    Pause(usize),
    Unpause(usize),
    SetSkills(usize, u8),
    Review(usize, bool),
}

fn room() -> impl Strategy<Value = Room> {
    (
        0_u8..2,
        0_u32..3,
        prop_oneof![Just(0_u64), Just(400)],
        vec(
            (0_u8..8, 0_u8..4, prop::bool::weighted(0.25), 1_u32..4),
            1..9,
        ),
        vec((0_u8..8, 0_u8..4), WORKERS),
    )
        .prop_map(
            |(required, onboarding_gold, min_lead_time_ms, tasks, workers)| Room {
                required,
                onboarding_gold,
                min_lead_time_ms,
                tasks,
                workers,
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0..WORKERS;
    prop_oneof![
        6 => (who.clone(), 0.0..1.0_f64).prop_map(|(w, draw)| Op::Request(w, draw)),
        2 => who.clone().prop_map(Op::Heartbeat),
        2 => (who.clone(), prop::option::weighted(0.2, 0_usize..9)).prop_map(|(w, t)| Op::Skip(w, t)),
        6 => (who.clone(), prop::option::weighted(0.1, 0_usize..9), 0_u8..2)
            .prop_map(|(w, t, answer)| Op::Submit(w, t, answer)),
        3 => (0_i64..1_500).prop_map(Op::Advance),
        1 => Just(Op::Sweep),
        3 => (0_usize..9, 0_u8..3).prop_map(|(t, verdict)| Op::Decide(t, verdict)),
        1 => who.clone().prop_map(Op::Release),
        2 => (who.clone(), 0_usize..9).prop_map(|(w, t)| Op::Assign(w, t)),
        1 => who.clone().prop_map(Op::Pause),
        1 => who.clone().prop_map(Op::Unpause),
        1 => (who, 0_u8..8).prop_map(|(w, mask)| Op::SetSkills(w, mask)),
        1 => (0_usize..9, any::<bool>()).prop_map(|(t, accept)| Op::Review(t, accept)),
    ]
}

fn load(room: &Room) -> WorkState {
    let project = ProjectConfig {
        required_skills: names(room.required, &SKILLS),
        overlap_max: 4,
        gold_rate: 0.3,
        onboarding_gold: room.onboarding_gold,
        reservation_ttl_seconds: 1,
        reservation_cap_seconds: 3,
        min_lead_time_ms: room.min_lead_time_ms,
        ..ProjectConfig::default()
    };
    let tasks = room
        .tasks
        .iter()
        .enumerate()
        .map(|(at, (skills, tags, gold, target))| TaskRow {
            id: 100 + 7 * at as i64,
            skills: names(*skills, &SKILLS),
            tags: names(*tags, &TAGS),
            gold: gold.then(|| json!("x0")),
            overlap_target: *target,
            answered: 0,
            state: StoredState::Open,
        })
        .collect();
    let workers = room
        .workers
        .iter()
        .enumerate()
        .map(|(at, (skills, interests))| WorkerRow {
            id: worker(at),
            skills: names(*skills, &SKILLS),
            interests: names(*interests, &TAGS),
            ..WorkerRow::default()
        })
        .collect();
    WorkState::load(project, tasks, workers, Vec::new())
        .unwrap()
        .state
}

/// The grant of `worker` by brute force: every task, in queue order.
fn brute_force(state: &WorkState, worker: &str, gold: bool) -> Option<i64> {
    let standing = state.worker(state.known_worker(worker).ok()?).ok()?;
    let mut eligible: Vec<u64> = (0..state.tasks.slots.len() as u32)
        .filter(|task| {
            let slot = state.tasks.slot(*task).unwrap();
            let group = &state.tasks.groups[slot.group as usize];
            slot.grantable()
                && group.gold == gold
                && is_subset(state.skill_sets.get(group.skills), &standing.skills)
                && !standing.answered.contains(task)
                && !standing.skipped.contains(task)
        })
        .map(|task| key(state.tasks.slot(task).unwrap().answered, task))
        .collect();
    eligible.sort_unstable();
    let mut best: Option<(f64, u32)> = None;
    for key in eligible.into_iter().take(CANDIDATES) {
        let task = key_task(key);
        let slot = state.tasks.slot(task).unwrap();
        let group = &state.tasks.groups[slot.group as usize];
        let estimate = skill_estimate(
            state.skill_sets.get(group.skills).iter().copied(),
            |skill| standing.record(skill).map(Record::accuracy),
            Some(standing.overall.accuracy()),
        );
        let interested = meets(state.tag_sets.get(slot.tags), &standing.interests);
        let gain = expected_gain(estimate, need(slot.answered, slot.target), interested);
        if best.is_none_or(|(top, _)| gain > top) {
            best = Some((gain, task));
        }
    }
    best.map(|(_, task)| state.tasks.id(task))
}

/// What the test knows independently of the state.
#[derive(Default)]
struct Model {
    now: i64,
    /// Tasks due and not decided yet.
    due: HashSet<i64>,
    skipped: HashSet<(i64, String)>,
    answered: HashSet<(i64, String)>,
    paused: HashSet<String>,
}

fn run(room: &Room, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut state = load(room);
    let mut model = Model {
        now: 1_000_000,
        ..Model::default()
    };
    let ids: Vec<i64> = state.tasks.ids.clone();
    let task_at = |at: usize| ids[at % ids.len()];
    for op in ops {
        let now = model.now;
        match op {
            Op::Request(at, draw) => {
                let who = worker(*at);
                state.sweep(now).unwrap();
                let view = state.view(&who, now);
                let standing = state
                    .known_worker(&who)
                    .ok()
                    .and_then(|n| state.worker(n).ok());
                let onboarding = standing
                    .is_some_and(|s| s.overall.gold_total < i64::from(room.onboarding_gold));
                let expected = if onboarding || *draw < 0.3 {
                    brute_force(&state, &who, true).or_else(|| brute_force(&state, &who, false))
                } else {
                    brute_force(&state, &who, false)
                };
                let skills = state.skills_of(&who);
                let outcome = state.request(&who, *draw, now).unwrap();
                match outcome.value {
                    Grant::Held(reservation) => {
                        prop_assert_eq!(Some(reservation), view.reservation)
                    }
                    Grant::Granted(reservation) => {
                        let task = reservation.task_id;
                        prop_assert!(view.reservation.is_none(), "granted while holding one");
                        prop_assert!(!model.paused.contains(&who), "a paused worker was granted");
                        prop_assert!(
                            !model.skipped.contains(&(task, who.clone())),
                            "skipped task granted again"
                        );
                        prop_assert!(
                            !model.answered.contains(&(task, who.clone())),
                            "answered task granted again"
                        );
                        let at = ids.iter().position(|id| *id == task).unwrap();
                        let needed = names(room.tasks[at].0 | room.required, &SKILLS);
                        prop_assert!(
                            needed.iter().all(|s| skills.contains(s)),
                            "granted without skills"
                        );
                        prop_assert_eq!(
                            Some(task),
                            expected,
                            "the grant differs from the brute force"
                        );
                    }
                    Grant::Refused(Refusal::NoWork) => prop_assert_eq!(expected, None),
                    Grant::Refused(Refusal::Paused(_)) => prop_assert!(model.paused.contains(&who)),
                    Grant::Refused(Refusal::MissingSkills) => {
                        prop_assert!(
                            !names(room.required, &SKILLS)
                                .iter()
                                .all(|s| skills.contains(s))
                        )
                    }
                }
            }
            Op::Heartbeat(at) => {
                let who = worker(*at);
                let view = state.view(&who, now);
                let task = view.reservation.map_or(ids[0], |r| r.task_id);
                let beat = state.heartbeat(&who, task, now);
                prop_assert_eq!(beat.is_ok(), view.reservation.is_some());
                if let (Ok(beat), Some(held)) = (beat, view.reservation) {
                    prop_assert!(beat.value <= held.cap_at && beat.value > now);
                }
            }
            Op::Skip(at, task) => {
                let who = worker(*at);
                let held = state
                    .worker(state.known_worker(&who).unwrap())
                    .unwrap()
                    .held
                    .first()
                    .copied();
                let task = task
                    .map(task_at)
                    .or(held.map(|(_, r)| r.task_id))
                    .unwrap_or(ids[0]);
                if state.skip(&who, task, now).is_ok() {
                    model.skipped.insert((task, who));
                }
            }
            Op::Submit(at, task, answer) => {
                let who = worker(*at);
                let view = state.view(&who, now);
                let task = task
                    .map(task_at)
                    .or(view.reservation.map(|r| r.task_id))
                    .unwrap_or(ids[0]);
                let answer = json!(format!("x{answer}"));
                // Its live reservations (a batch assignment may give several).
                let held: Vec<i64> = state
                    .known_worker(&who)
                    .ok()
                    .and_then(|number| state.worker(number).ok())
                    .map(|worker| {
                        worker
                            .held
                            .iter()
                            .filter(|(_, r)| r.expires_at > now)
                            .map(|(_, r)| r.task_id)
                            .collect()
                    })
                    .unwrap_or_default();
                match state.submit(&who, task, &answer, now) {
                    Ok(outcome) => {
                        prop_assert!(held.contains(&task), "answered without a live reservation");
                        prop_assert!(model.answered.insert((task, who.clone())), "answered twice");
                        if outcome.value.paused.is_some() {
                            model.paused.insert(who);
                        }
                        if let Some(due) = outcome.value.due {
                            prop_assert!(model.due.insert(due.task), "due twice");
                        }
                    }
                    Err(_) => prop_assert!(!held.contains(&task), "a live reservation refused"),
                }
            }
            Op::Advance(ms) => model.now += ms,
            Op::Sweep => {
                let swept = state.sweep(now).unwrap();
                prop_assert!(!state.has_expired(now));
                prop_assert_eq!(swept.value.len(), swept.effects.len());
            }
            Op::Decide(at, verdict) => {
                // Decisions come late or never: only some steps decide.
                let task = task_at(*at);
                let verdict =
                    [Verdict::Complete, Verdict::RaiseOverlap, Verdict::Review][*verdict as usize];
                let decision = Decision {
                    verdict,
                    agreement: vec![(worker(*at), true)],
                    consensus: None,
                };
                match state.apply_decision(task, &decision, now) {
                    Ok(_) => prop_assert!(model.due.remove(&task), "a decision accepted twice"),
                    Err(Error::Invalid(_)) => prop_assert!(model.due.contains(&task)),
                    Err(_) => prop_assert!(!model.due.contains(&task)),
                }
            }
            Op::Release(at) => {
                let held: Vec<Reservation> = state
                    .known_worker(&worker(*at))
                    .and_then(|number| state.worker(number))
                    .map(|standing| standing.held.iter().map(|(_, r)| *r).collect())
                    .unwrap_or_default();
                let released = state.release(&worker(*at), now).unwrap();
                // Each freed reservation's time counts for the pay floor,
                // never more than it was held.
                for effect in &released.effects {
                    let Effect::ReservationDeleted {
                        task, no_fault_ms, ..
                    } = effect
                    else {
                        continue;
                    };
                    let reservation = held.iter().find(|r| r.task_id == *task);
                    prop_assert!(reservation.is_some(), "released a task not held");
                    let longest = reservation.map_or(0, |r| now.min(r.cap_at) - r.created_at);
                    prop_assert!(no_fault_ms.unwrap_or(0) <= longest);
                }
            }
            Op::Assign(at, task) => {
                state.sweep(now).unwrap();
                let everyone: Vec<String> = (0..WORKERS).map(worker).collect();
                super::plan::check_plan(&state, &everyone, now)?;
                let (who, task) = (worker(*at), task_at(*task));
                if let Some(reservation) = state.assign(&who, task, now).unwrap().value {
                    prop_assert_eq!(reservation.task_id, task);
                    prop_assert!(!model.paused.contains(&who), "a paused worker was assigned");
                    prop_assert!(
                        !model.skipped.contains(&(task, who.clone())),
                        "skipped task assigned"
                    );
                    prop_assert!(
                        !model.answered.contains(&(task, who.clone())),
                        "answered task assigned"
                    );
                }
            }
            Op::Pause(at) => {
                state.pause(&worker(*at), "moderator", now).unwrap();
                model.paused.insert(worker(*at));
            }
            Op::Unpause(at) => {
                let was = state.unpause(&worker(*at)).unwrap().value;
                prop_assert_eq!(was, model.paused.remove(&worker(*at)));
            }
            Op::SetSkills(at, mask) => {
                _ = state
                    .set_skills(&worker(*at), &names(*mask, &SKILLS))
                    .unwrap()
            }
            Op::Review(at, accept) => {
                let state_after = if *accept {
                    TaskState::Complete
                } else {
                    TaskState::Rejected
                };
                let _ = state.apply_review(task_at(*at), state_after, now);
            }
        }
        prop_assert_eq!(state.check(), Ok(()), "after {:?}", op);
        let deciding: HashSet<i64> = ids
            .iter()
            .copied()
            .filter(|id| state.task_state(*id) == Ok(TaskState::Deciding))
            .collect();
        prop_assert_eq!(&deciding, &model.due, "the tasks waiting are the tasks due");
        let answers: usize = state.workers.iter().map(|w| w.answered.len()).sum();
        prop_assert_eq!(answers, model.answered.len(), "each answer counted once");
        prop_assert_eq!(state.counts(now).answers, answers as i64);
    }
    reload(&state, &model)
}

/// The room loaded again from rows made of its state: the same counts,
/// views and due tasks.
fn reload(state: &WorkState, model: &Model) -> Result<(), TestCaseError> {
    let (tasks, workers, reservations) = state.rows();
    let loaded = WorkState::load(state.project().clone(), tasks, workers, reservations).unwrap();
    prop_assert_eq!(loaded.state.check(), Ok(()));
    prop_assert_eq!(loaded.state.counts(model.now), state.counts(model.now));
    let due: HashSet<i64> = loaded.due.iter().map(|due| due.task).collect();
    prop_assert_eq!(
        &due,
        &model.due,
        "a task at its target without a decision is due again"
    );
    for at in 0..WORKERS {
        prop_assert_eq!(
            loaded.state.view(&worker(at), model.now),
            state.view(&worker(at), model.now)
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn random_operations_keep_the_invariants(room in room(), ops in vec(op(), 1..80)) {
        run(&room, &ops)?;
    }
}

/// Rows of the state as the store would hold them (for the reload check).
impl WorkState {
    pub(super) fn rows(&self) -> (Vec<TaskRow>, Vec<WorkerRow>, Vec<ReservationRow>) {
        let mut answered: HashMap<u32, Vec<i64>> = HashMap::new();
        let tasks = self
            .tasks
            .slots
            .iter()
            .enumerate()
            .map(|(at, slot)| {
                let group = &self.tasks.groups[slot.group as usize];
                let name = |names: &index::Names, set: &[u32]| {
                    set.iter()
                        .map(|n| names.name(*n).to_owned())
                        .collect::<Vec<_>>()
                };
                TaskRow {
                    id: self.tasks.ids[at],
                    skills: name(&self.skills, self.skill_sets.get(group.skills)),
                    tags: name(&self.tags, self.tag_sets.get(slot.tags)),
                    gold: self.tasks.gold.get(&(at as u32)).cloned(),
                    overlap_target: slot.target,
                    answered: slot.answered,
                    state: match slot.state {
                        TaskState::Open | TaskState::Deciding => StoredState::Open,
                        TaskState::Complete => StoredState::Complete,
                        TaskState::Review => StoredState::Review,
                        TaskState::Rejected => StoredState::Rejected,
                    },
                }
            })
            .collect();
        let mut reservations = Vec::new();
        let workers = self
            .workers
            .iter()
            .enumerate()
            .map(|(number, worker)| {
                answered.insert(
                    number as u32,
                    worker.answered.iter().map(|t| self.tasks.id(*t)).collect(),
                );
                for &(_, reservation) in &worker.held {
                    reservations.push(ReservationRow {
                        worker: worker.id.to_string(),
                        reservation,
                    });
                }
                let mut records = vec![(String::new(), worker.overall)];
                records.extend(
                    worker
                        .per_skill
                        .iter()
                        .map(|(s, r)| (self.skills.name(*s).to_owned(), *r)),
                );
                WorkerRow {
                    id: worker.id.to_string(),
                    skills: worker
                        .skills
                        .iter()
                        .map(|s| self.skills.name(*s).to_owned())
                        .collect(),
                    interests: worker
                        .interests
                        .iter()
                        .map(|s| self.tags.name(*s).to_owned())
                        .collect(),
                    paused: worker.paused.as_deref().map(str::to_owned),
                    records,
                    answered: answered.remove(&(number as u32)).unwrap_or_default(),
                    skipped: worker.skipped.iter().map(|t| self.tasks.id(*t)).collect(),
                    earnings: worker.earnings,
                }
            })
            .collect();
        (tasks, workers, reservations)
    }
}
