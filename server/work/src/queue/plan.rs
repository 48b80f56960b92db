//! What batch assignment plans from: the open tasks most in need and each
//! member's expected gain on each task they may take, read from the room's
//! memory with the live queue's own rules (eligibility as a grant checks
//! it, gain by [`crate::gain`]'s one formula, per-skill accuracy and
//! interests included). [`crate::assign::assign`] then solves the plan,
//! off the room's loop, and the room grants the pairs it chose with
//! [`WorkState::assign`], which checks each again against the queue as it
//! stands by then.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::WorkState;
use super::index::{is_subset, key_task, meets};
use super::standing::Worker;
use crate::assign::Member;
use crate::gain::{expected_gain, need, skill_estimate};

/// How strongly work already done lowers a member's gains: a member with
/// twice the team's mean answers counts each gain at 2/3.
pub const SPREAD: f64 = 0.5;

/// A batch assignment's problem: the candidate tasks (their ids and free
/// slots) and each member's options among them, fair spread applied.
#[derive(Debug, Default)]
pub struct Plan {
    /// The candidates' task ids; `Member::options` index into these.
    pub tasks: Vec<i64>,
    /// Each candidate's free slots.
    pub slots: Vec<u32>,
    /// One per member asked for, in the order asked.
    pub members: Vec<Member>,
}

impl WorkState {
    /// The plan for `members` (worker id, capacity) over at most
    /// `most_tasks` open regular tasks with free slots, the most answered
    /// first (the live queue's order). A member may take a task where a
    /// grant would give it to them: not paused, with the project's and the
    /// task's skills, not answered, skipped or held by them.
    pub fn plan(&self, members: &[(&str, u32)], most_tasks: usize) -> Plan {
        let tasks = self.candidates(most_tasks);
        let mut plan = Plan {
            tasks: tasks.iter().map(|&task| self.tasks.id(task)).collect(),
            slots: tasks.iter().map(|&task| self.free_slots(task)).collect(),
            members: Vec::with_capacity(members.len()),
        };
        let mut done = Vec::with_capacity(members.len());
        for &(id, capacity) in members {
            let fresh;
            let worker = match self.worker_numbers.get(id) {
                Some(&number) => self.workers.get(number as usize),
                None => None,
            };
            let worker = match worker {
                Some(worker) => worker,
                None => {
                    fresh = Worker::new(id.into());
                    &fresh
                }
            };
            done.push(worker.overall.answers);
            plan.members.push(Member {
                capacity,
                options: self.options(worker, &tasks),
            });
        }
        spread_fairly(&mut plan.members, &done);
        plan
    }

    /// The first `most` grantable regular tasks in the queue's order,
    /// merged from the groups' ordered sets.
    fn candidates(&self, most: usize) -> Vec<u32> {
        let mut fronts: Vec<_> = self
            .tasks
            .groups
            .iter()
            .filter(|group| !group.gold)
            .map(|group| group.open.iter().peekable())
            .collect();
        let mut heads = BinaryHeap::new();
        for (at, front) in fronts.iter_mut().enumerate() {
            if let Some(&&key) = front.peek() {
                heads.push(Reverse((key, at)));
            }
        }
        let mut chosen = Vec::new();
        while chosen.len() < most {
            let Some(Reverse((key, at))) = heads.pop() else {
                break;
            };
            let Some(front) = fronts.get_mut(at) else {
                break;
            };
            front.next();
            if let Some(&&next) = front.peek() {
                heads.push(Reverse((next, at)));
            }
            let task = key_task(key);
            if self.tasks.slot(task).is_ok_and(|slot| slot.grantable()) {
                chosen.push(task);
            }
        }
        chosen
    }

    fn free_slots(&self, task: u32) -> u32 {
        self.tasks.slot(task).map_or(0, |slot| {
            slot.target
                .saturating_sub(slot.reserved)
                .saturating_sub(slot.answered)
        })
    }

    /// (candidate index, expected gain) of each candidate `worker` may take.
    fn options(&self, worker: &Worker, tasks: &[u32]) -> Vec<(usize, f64)> {
        if worker.paused.is_some() || !is_subset(&self.rules.required, &worker.skills) {
            return Vec::new();
        }
        let overall = Some(worker.overall.accuracy());
        tasks
            .iter()
            .enumerate()
            .filter_map(|(at, &task)| {
                let slot = self.tasks.slot(task).ok()?;
                let group = self.tasks.groups.get(slot.group as usize)?;
                let skills = self.skill_sets.get(group.skills);
                let may = is_subset(skills, &worker.skills)
                    && !worker.answered.contains(&task)
                    && !worker.skipped.contains(&task)
                    && !worker.held.iter().any(|(held, _)| *held == task);
                if !may {
                    return None;
                }
                let estimate = skill_estimate(
                    skills.iter().copied(),
                    |skill| worker.record(skill).map(|record| record.accuracy()),
                    overall,
                );
                let interested = meets(self.tag_sets.get(slot.tags), &worker.interests);
                Some((
                    at,
                    expected_gain(estimate, need(slot.answered, slot.target), interested),
                ))
            })
            .collect()
    }
}

/// The fair-spread term: scales each member's gains down by how far their
/// answers so far exceed the team's mean, so that among near-equal choices
/// the flow gives work to those who have had less.
pub fn spread_fairly(members: &mut [Member], done: &[i64]) {
    let mean = done.iter().sum::<i64>() as f64 / done.len().max(1) as f64;
    if mean <= 0.0 {
        return;
    }
    for (member, &answers) in members.iter_mut().zip(done) {
        let excess = (answers as f64 / mean - 1.0).max(0.0);
        let factor = 1.0 / (1.0 + SPREAD * excess);
        member
            .options
            .iter_mut()
            .for_each(|(_, gain)| *gain *= factor);
    }
}

/// The property the queue's random operation sequences check at each
/// batch assignment (`queue/props.rs`): a member is offered exactly the
/// regular tasks a grant would give them now (each tried on its own copy
/// of the state, reloaded from its rows), every gain is positive, and each
/// candidate's free slots are its target less its reservations and
/// answers.
#[cfg(test)]
pub(super) fn check_plan(
    state: &WorkState,
    workers: &[String],
    now: i64,
) -> Result<(), proptest::test_runner::TestCaseError> {
    use std::collections::HashSet;

    use proptest::prop_assert_eq;

    let members: Vec<(&str, u32)> = workers.iter().map(|id| (id.as_str(), 2)).collect();
    let plan = state.plan(&members, usize::MAX);
    for (at, &task) in plan.tasks.iter().enumerate() {
        let index = state
            .tasks
            .find(task)
            .map_err(|error| proptest::test_runner::TestCaseError::fail(error.to_string()))?;
        prop_assert_eq!(plan.slots.get(at).copied(), Some(state.free_slots(index)));
    }
    let copy = || {
        let (tasks, workers, reservations) = state.rows();
        WorkState::load(state.project().clone(), tasks, workers, reservations)
            .map(|loaded| loaded.state)
    };
    for (member, (worker, _)) in plan.members.iter().zip(&members) {
        proptest::prop_assert!(member.options.iter().all(|(_, gain)| *gain > 0.0));
        let offered: HashSet<i64> = member
            .options
            .iter()
            .filter_map(|(at, _)| plan.tasks.get(*at).copied())
            .collect();
        for (index, &task) in state.tasks.ids.iter().enumerate() {
            if state.tasks.gold.contains_key(&(index as u32)) {
                continue;
            }
            let mut fresh = copy()
                .map_err(|error| proptest::test_runner::TestCaseError::fail(error.to_string()))?;
            let granted = fresh
                .assign(worker, task, now)
                .map_err(|error| proptest::test_runner::TestCaseError::fail(error.to_string()))?
                .value
                .is_some();
            prop_assert_eq!(
                granted,
                offered.contains(&task),
                "{} offered task {} in the plan: {}, granted by assign: {}",
                worker,
                task,
                offered.contains(&task),
                granted
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assign::assign;

    #[test]
    fn members_who_did_more_get_less_among_equals() {
        let mut members = vec![
            Member {
                capacity: 1,
                options: vec![(0, 0.8)],
            },
            Member {
                capacity: 1,
                options: vec![(0, 0.8)],
            },
        ];
        spread_fairly(&mut members, &[30, 10]);
        // Mean 20: the first is 50% above it, the second below.
        assert!((members[0].options[0].1 - 0.8 / 1.25).abs() < 1e-12);
        assert!((members[1].options[0].1 - 0.8).abs() < 1e-12);
        assert_eq!(
            assign(&members, &[1]),
            vec![(1, 0)],
            "the one who did less gets the task"
        );
    }
}
