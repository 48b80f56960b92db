//! Grants, heartbeats, skips, releases and sweeps: the decisions about
//! reservations (the rules of `rooms/work.rs` and `store/reserve.rs`).
//!
//! A request first frees the room's expired reservations (the store's
//! grant dropped those of a task that looked full; here the sweep is a
//! look at the front of an ordered set). Then: a worker holding a live
//! reservation gets it back; a paused worker, or one missing a skill the
//! project requires, is refused with the reason; a worker still in
//! onboarding (fewer gold answers than the project's `onboarding_gold`)
//! gets gold first, and so does anyone whose `gold_draw` falls below the
//! project's gold rate; else regular work, and gold when there is none.
//!
//! Which task: the first [`CANDIDATES`] the worker may take, in the
//! queue's order (most answers first, then oldest) across the groups whose
//! skill set they have, skipping those they answered or skipped; of
//! those, the one of highest expected gain ([`crate::gain`]), the first in
//! queue order on a tie. The cost is a look at the front of each group
//! they may take, plus one step per task they answered or skipped that is
//! still open in front of the others, plus [`CANDIDATES`] heap steps.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::collections::btree_set;

use super::index::{Sets, Tasks, is_subset, key_task, meets};
use super::standing::Worker;
use super::{Effect, Freed, Grant, Outcome, Refusal, Reservation, WorkState, WorkerId};
use crate::error::{Error, Result};
use crate::floor;
use crate::gain::{expected_gain, need, skill_estimate};

/// Candidates ranked per grant: the queue's order decides among more, and
/// ranking more costs more per grant (the store ranked as many).
pub const CANDIDATES: usize = 16;

impl WorkState {
    /// A worker asks for work. `gold_draw` is a uniform draw in [0, 1)
    /// (the caller's random source), compared with the project's gold rate.
    /// The effects start with the reservations found expired (freed first,
    /// as a sweep does: tell their holders `task.expired`).
    pub fn request(&mut self, worker: &str, gold_draw: f64, now_ms: i64) -> Result<Outcome<Grant>> {
        let mut effects = Vec::new();
        self.sweep_into(now_ms, &mut effects)?;
        let number = self.worker_number(worker);
        let standing = self.worker(number)?;
        let refused = |refusal| Grant::Refused(refusal);
        let value = if let Some((_, reservation)) = standing.held.first() {
            Grant::Held(*reservation)
        } else if let Some(reason) = &standing.paused {
            refused(Refusal::Paused(reason.to_string()))
        } else if !is_subset(&self.rules.required, &standing.skills) {
            refused(Refusal::MissingSkills)
        } else {
            let project = &self.rules.project;
            let onboarding = standing.overall.gold_total < i64::from(project.onboarding_gold);
            let kinds: &[bool] = if onboarding || gold_draw < project.gold_rate {
                &[true, false]
            } else {
                &[false]
            };
            let standing = self
                .workers
                .get_mut(number as usize)
                .ok_or(Error::NotFound("worker"))?;
            standing.refresh_groups(&self.tasks, &self.skill_sets);
            let found = kinds.iter().find_map(|gold| {
                best(
                    &self.tasks,
                    &self.skill_sets,
                    &self.tag_sets,
                    standing,
                    *gold,
                )
            });
            match found {
                Some(task) => {
                    let reservation = self.grant(number, task, now_ms)?;
                    effects.push(Effect::ReservationInserted {
                        worker: self.worker(number)?.id.clone(),
                        reservation,
                    });
                    Grant::Granted(reservation)
                }
                None => refused(Refusal::NoWork),
            }
        };
        Ok(Outcome { value, effects })
    }

    /// Grants a worker one named task (batch assignment, planned by
    /// [`crate::assign`] within each member's capacity) until the
    /// project's reservation cap: the rules of a request's grant, for this
    /// task only. None when they are paused or unskilled, hold it already,
    /// or the task has no slot for them. A worker may hold several
    /// assigned tasks; a request returns the oldest they hold.
    pub fn assign(
        &mut self,
        worker: &str,
        task: i64,
        now_ms: i64,
    ) -> Result<Outcome<Option<Reservation>>> {
        let mut effects = Vec::new();
        self.sweep_into(now_ms, &mut effects)?;
        let number = self.worker_number(worker);
        let index = self.tasks.find(task)?;
        let slot = *self.tasks.slot(index)?;
        let standing = self.worker(number)?;
        let skills = self
            .tasks
            .groups
            .get(slot.group as usize)
            .map_or(&[][..], |group| self.skill_sets.get(group.skills));
        let may = !standing.held.iter().any(|(held, _)| *held == index)
            && standing.paused.is_none()
            && is_subset(&self.rules.required, &standing.skills)
            && is_subset(skills, &standing.skills)
            && slot.grantable()
            && !standing.answered.contains(&index)
            && !standing.skipped.contains(&index);
        if !may {
            return Ok(Outcome {
                value: None,
                effects,
            });
        }
        let cap = self.rules.project.cap_ms();
        let reservation = self.grant_for(number, index, now_ms, cap)?;
        effects.push(Effect::ReservationInserted {
            worker: self.worker(number)?.id.clone(),
            reservation,
        });
        Ok(Outcome {
            value: Some(reservation),
            effects,
        })
    }

    /// Extends a live reservation by the project's time to live from now,
    /// up to its cap; the value is its new expiry.
    pub fn heartbeat(&mut self, worker: &str, task: i64, now_ms: i64) -> Result<Outcome<i64>> {
        let number = self.known_worker(worker)?;
        let index = self.tasks.find(task)?;
        let ttl = self.rules.project.ttl_ms();
        let standing = self.worker_mut(number)?;
        let Some((_, reservation)) = standing
            .held
            .iter_mut()
            .find(|(held, reservation)| *held == index && reservation.expires_at > now_ms)
        else {
            return Err(Error::NotFound("live reservation"));
        };
        let before = reservation.expires_at;
        reservation.expires_at = now_ms.saturating_add(ttl).min(reservation.cap_at);
        let expires_at = reservation.expires_at;
        let id = standing.id.clone();
        self.expiries.remove(&(before, number, index));
        self.expiries.insert((expires_at, number, index));
        Ok(Outcome {
            value: expires_at,
            effects: vec![Effect::ReservationExtended {
                task,
                worker: id,
                expires_at,
            }],
        })
    }

    /// Gives a reservation back (expired or not, if not swept yet): the
    /// task is never offered to this worker again.
    pub fn skip(&mut self, worker: &str, task: i64, now_ms: i64) -> Result<Outcome<()>> {
        let number = self.known_worker(worker)?;
        let index = self.tasks.find(task)?;
        if self.free(number, index)?.is_none() {
            return Err(Error::NotFound("reservation"));
        }
        let standing = self.worker_mut(number)?;
        standing.skipped.insert(index);
        let worker = standing.id.clone();
        Ok(Outcome {
            value: (),
            effects: vec![
                Effect::ReservationDeleted {
                    task,
                    worker: worker.clone(),
                    why: Freed::Skipped,
                    no_fault_ms: None,
                },
                Effect::SkipRecorded {
                    task,
                    worker,
                    at: now_ms,
                },
            ],
        })
    }

    /// Frees a worker's reservations (a moderator's decision); the value is
    /// the task of the oldest, None if they held none. The tasks may be
    /// granted to them again.
    pub fn release(&mut self, worker: &str, now_ms: i64) -> Result<Outcome<Option<i64>>> {
        let Ok(number) = self.known_worker(worker) else {
            return Ok(Outcome {
                value: None,
                effects: Vec::new(),
            });
        };
        let held: Vec<u32> = self
            .worker(number)?
            .held
            .iter()
            .map(|(task, _)| *task)
            .collect();
        let mut effects = Vec::with_capacity(held.len());
        for task in held {
            if let Some(reservation) = self.free(number, task)? {
                effects.push(Effect::ReservationDeleted {
                    task: reservation.task_id,
                    worker: self.worker(number)?.id.clone(),
                    why: Freed::Released,
                    no_fault_ms: floor::no_fault_ms(Freed::Released, &reservation, now_ms),
                });
            }
        }
        let value = effects.first().and_then(|effect| match effect {
            Effect::ReservationDeleted { task, .. } => Some(*task),
            _ => None,
        });
        Ok(Outcome { value, effects })
    }

    /// Frees every reservation expired at `now_ms`; the value is each one's
    /// (task, worker), whom the room tells `task.expired`.
    pub fn sweep(&mut self, now_ms: i64) -> Result<Outcome<Vec<(i64, WorkerId)>>> {
        let mut effects = Vec::new();
        self.sweep_into(now_ms, &mut effects)?;
        let value = effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::ReservationDeleted { task, worker, .. } => Some((*task, worker.clone())),
                _ => None,
            })
            .collect();
        Ok(Outcome { value, effects })
    }

    /// Whether any reservation has expired at `now_ms` (a sweep is due).
    pub fn has_expired(&self, now_ms: i64) -> bool {
        self.expiries
            .first()
            .is_some_and(|(at, _, _)| *at <= now_ms)
    }

    fn sweep_into(&mut self, now_ms: i64, effects: &mut Vec<Effect>) -> Result<()> {
        while let Some(&(at, number, task)) = self.expiries.first()
            && at <= now_ms
        {
            let freed = self.free(number, task)?;
            if let Some(reservation) = freed {
                effects.push(Effect::ReservationDeleted {
                    task: reservation.task_id,
                    worker: self.worker(number)?.id.clone(),
                    why: Freed::Expired,
                    no_fault_ms: floor::no_fault_ms(Freed::Expired, &reservation, now_ms),
                });
            } else {
                // Not held (cannot happen: every entry is a reservation);
                // dropped so the sweep ends.
                self.expiries.remove(&(at, number, task));
            }
        }
        Ok(())
    }

    /// Takes away a worker's reservation of `task`, expired or not, and
    /// frees its slot.
    pub(super) fn free(&mut self, number: u32, task: u32) -> Result<Option<Reservation>> {
        let standing = self.worker_mut(number)?;
        let Some(at) = standing.held.iter().position(|(held, _)| *held == task) else {
            return Ok(None);
        };
        let (_, reservation) = standing.held.remove(at);
        self.expiries
            .remove(&(reservation.expires_at, number, task));
        self.tasks
            .update(task, |slot| slot.reserved = slot.reserved.saturating_sub(1))?;
        Ok(Some(reservation))
    }

    fn grant(&mut self, number: u32, task: u32, now_ms: i64) -> Result<Reservation> {
        let ttl = self.rules.project.ttl_ms();
        self.grant_for(number, task, now_ms, ttl)
    }

    fn grant_for(&mut self, number: u32, task: u32, now_ms: i64, ttl: i64) -> Result<Reservation> {
        let cap = self.rules.project.cap_ms();
        let reservation = Reservation {
            task_id: self.tasks.id(task),
            created_at: now_ms,
            expires_at: now_ms.saturating_add(ttl.min(cap)),
            cap_at: now_ms.saturating_add(cap),
        };
        self.tasks
            .update(task, |slot| slot.reserved = slot.reserved.saturating_add(1))?;
        // Oldest first, as a load orders them: by creation, then task id.
        let held = &mut self.worker_mut(number)?.held;
        let order = |r: &Reservation| (r.created_at, r.task_id);
        let at = held.partition_point(|(_, other)| order(other) <= order(&reservation));
        held.insert(at, (task, reservation));
        self.expiries.insert((reservation.expires_at, number, task));
        Ok(reservation)
    }
}

/// A group's grantable tasks the worker may take, in queue order.
struct Front<'a> {
    tasks: btree_set::Iter<'a, u64>,
    estimate: f64,
}

impl Front<'_> {
    fn next(&mut self, worker: &Worker) -> Option<u64> {
        self.tasks.by_ref().copied().find(|key| {
            let task = key_task(*key);
            !worker.answered.contains(&task) && !worker.skipped.contains(&task)
        })
    }
}

/// The task of highest expected gain among the first [`CANDIDATES`] the
/// worker may take (gold or regular), if any.
pub(super) fn best(
    tasks: &Tasks,
    skill_sets: &Sets,
    tag_sets: &Sets,
    worker: &Worker,
    gold: bool,
) -> Option<u32> {
    let overall = Some(worker.overall.accuracy());
    let mut fronts = Vec::new();
    let mut heads = BinaryHeap::new();
    for number in worker.eligible() {
        let Some(group) = tasks.groups.get(*number as usize) else {
            continue;
        };
        if group.gold != gold || group.open.is_empty() {
            continue;
        }
        let estimate = skill_estimate(
            skill_sets.get(group.skills).iter().copied(),
            |skill| worker.record(skill).map(|record| record.accuracy()),
            overall,
        );
        let mut front = Front {
            tasks: group.open.iter(),
            estimate,
        };
        if let Some(key) = front.next(worker) {
            heads.push(Reverse((key, fronts.len())));
            fronts.push(front);
        }
    }
    let mut chosen: Option<(f64, u32)> = None;
    for _ in 0..CANDIDATES {
        let Some(Reverse((key, at))) = heads.pop() else {
            break;
        };
        let Some(front) = fronts.get_mut(at) else {
            break;
        };
        let task = key_task(key);
        if let Some(slot) = tasks.slots.get(task as usize) {
            let interested = meets(tag_sets.get(slot.tags), &worker.interests);
            let gain = expected_gain(front.estimate, need(slot.answered, slot.target), interested);
            if chosen.is_none_or(|(best, _)| gain > best) {
                chosen = Some((gain, task));
            }
        }
        if let Some(next) = front.next(worker) {
            heads.push(Reverse((next, at)));
        }
    }
    chosen.map(|(_, task)| task)
}
