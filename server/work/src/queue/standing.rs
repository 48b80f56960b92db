//! A worker's standing in a room (skills, interests, records, pause, the
//! tasks they answered and skipped, their reservation and earnings) and
//! the operations on it that are not grants or answers: what moderators
//! and the ledger change, and the worker's own view.

use std::collections::HashSet;

use serde::Serialize;

use super::index::{Sets, Tasks, hash_bytes, is_subset};
use super::{Earnings, Effect, EntryState, Outcome, Record, Reservation, WorkState, WorkerId};
use crate::error::Result;

/// One worker's standing. Task and skill references are interned numbers.
#[derive(Debug)]
pub(crate) struct Worker {
    pub id: WorkerId,
    /// Sorted skill numbers.
    pub skills: Vec<u32>,
    /// Sorted tag numbers.
    pub interests: Vec<u32>,
    pub overall: Record,
    pub per_skill: Vec<(u32, Record)>,
    pub paused: Option<Box<str>>,
    pub answered: HashSet<u32>,
    pub skipped: HashSet<u32>,
    /// Their reservations (task index), oldest first, expired but not
    /// swept included: the one they asked for, or what a batch assignment
    /// gave them (a worker asks for one task at a time).
    pub held: Vec<(u32, Reservation)>,
    pub earnings: Earnings,
    /// The groups whose skill set they have, among the first
    /// `groups_seen` groups (groups are only ever added).
    eligible: Vec<u32>,
    groups_seen: usize,
}

impl Worker {
    pub fn new(id: WorkerId) -> Worker {
        Worker {
            id,
            skills: Vec::new(),
            interests: Vec::new(),
            overall: Record::default(),
            per_skill: Vec::new(),
            paused: None,
            answered: HashSet::new(),
            skipped: HashSet::new(),
            held: Vec::new(),
            earnings: Earnings::default(),
            eligible: Vec::new(),
            groups_seen: 0,
        }
    }

    /// Forgets the groups they may take (their skills changed).
    pub fn forget_groups(&mut self) {
        self.eligible.clear();
        self.groups_seen = 0;
    }

    /// Brings the groups whose skill set they have up to date with the
    /// groups made since the last look.
    pub fn refresh_groups(&mut self, tasks: &Tasks, sets: &Sets) {
        for (number, group) in tasks.groups.iter().enumerate().skip(self.groups_seen) {
            if is_subset(sets.get(group.skills), &self.skills)
                && let Ok(number) = u32::try_from(number)
            {
                self.eligible.push(number);
            }
        }
        self.groups_seen = tasks.groups.len();
    }

    /// The groups whose skill set they have (as of the last refresh).
    pub fn eligible(&self) -> &[u32] {
        &self.eligible
    }

    /// Their record in a skill, if they have one.
    pub fn record(&self, skill: u32) -> Option<&Record> {
        self.per_skill
            .iter()
            .find(|(have, _)| *have == skill)
            .map(|(_, record)| record)
    }

    pub fn heap_bytes(&self) -> usize {
        (self.skills.capacity() + self.interests.capacity() + self.eligible.capacity()) * 4
            + self.per_skill.capacity() * std::mem::size_of::<(u32, Record)>()
            + self.paused.as_ref().map_or(0, |reason| reason.len())
            + hash_bytes(self.answered.capacity(), 4)
            + hash_bytes(self.skipped.capacity(), 4)
            + self.id.len()
            + 16
    }
}

/// What a worker sees of their own standing (`queue.mine`, progress).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WorkerView {
    /// Their live reservation.
    pub reservation: Option<Reservation>,
    /// Their answers in the room.
    pub answers: i64,
    /// Their overall record.
    pub record: Record,
    pub paused: Option<String>,
    pub earnings: Earnings,
    /// Earnings not rejected per hour of lead time; None before any.
    pub hourly_rate: Option<i64>,
}

impl Earnings {
    fn bucket(&mut self, state: EntryState) -> &mut i64 {
        match state {
            EntryState::Pending => &mut self.pending,
            EntryState::Approved => &mut self.approved,
            EntryState::Paid => &mut self.paid,
            EntryState::Rejected => &mut self.rejected,
            EntryState::Disputed => &mut self.disputed,
        }
    }

    /// Earnings not rejected per hour of their lead time.
    pub fn hourly_rate(&self) -> Option<i64> {
        let earned = [self.pending, self.approved, self.paid, self.disputed]
            .iter()
            .fold(0_i64, |sum, amount| sum.saturating_add(*amount));
        (self.lead_time_ms > 0)
            .then(|| ((earned as f64) * 3_600_000.0 / self.lead_time_ms as f64) as i64)
    }
}

impl WorkState {
    /// Pauses a worker (a moderator's decision): they get no more tasks.
    /// A new reason replaces the old.
    pub fn pause(&mut self, worker: &str, reason: &str, now_ms: i64) -> Result<Outcome<()>> {
        let number = self.worker_number(worker);
        let standing = self.worker_mut(number)?;
        standing.paused = Some(reason.into());
        Ok(Outcome {
            value: (),
            effects: vec![Effect::WorkerPaused {
                worker: standing.id.clone(),
                reason: reason.to_owned(),
                at: now_ms,
            }],
        })
    }

    /// Lifts a pause; the value says whether the worker was paused.
    pub fn unpause(&mut self, worker: &str) -> Result<Outcome<bool>> {
        let Ok(number) = self.known_worker(worker) else {
            return Ok(Outcome {
                value: false,
                effects: Vec::new(),
            });
        };
        let standing = self.worker_mut(number)?;
        let was = standing.paused.take().is_some();
        let effects = if was {
            vec![Effect::WorkerUnpaused {
                worker: standing.id.clone(),
            }]
        } else {
            Vec::new()
        };
        Ok(Outcome {
            value: was,
            effects,
        })
    }

    /// Replaces a worker's skills.
    pub fn set_skills(&mut self, worker: &str, skills: &[String]) -> Result<Outcome<()>> {
        let number = self.worker_number(worker);
        let interned = self.skills.intern_set(skills);
        let standing = self.worker_mut(number)?;
        standing.skills = interned;
        standing.forget_groups();
        Ok(Outcome {
            value: (),
            effects: vec![Effect::SkillsSet {
                worker: standing.id.clone(),
                skills: skills.to_vec(),
            }],
        })
    }

    /// Replaces a worker's interests.
    pub fn set_interests(&mut self, worker: &str, interests: &[String]) -> Result<Outcome<()>> {
        let number = self.worker_number(worker);
        let interned = self.tags.intern_set(interests);
        let standing = self.worker_mut(number)?;
        standing.interests = interned;
        Ok(Outcome {
            value: (),
            effects: vec![Effect::InterestsSet {
                worker: standing.id.clone(),
                interests: interests.to_vec(),
            }],
        })
    }

    /// Keeps a worker's earnings in step with a ledger move the ledger
    /// committed (approve, pay, reject, dispute; `from` None for a new
    /// entry such as a bonus). `lead_time_ms` is the entry's answer's.
    pub fn move_earnings(
        &mut self,
        worker: &str,
        from: Option<EntryState>,
        to: EntryState,
        amount: i64,
        lead_time_ms: i64,
    ) -> Result<()> {
        let number = self.worker_number(worker);
        let earnings = &mut self.worker_mut(number)?.earnings;
        if let Some(from) = from {
            let bucket = earnings.bucket(from);
            *bucket = bucket.saturating_sub(amount);
        }
        let bucket = earnings.bucket(to);
        *bucket = bucket.saturating_add(amount);
        let counted = |state: Option<EntryState>| state.is_some_and(|s| s != EntryState::Rejected);
        match (counted(from), counted(Some(to))) {
            (true, false) => {
                earnings.lead_time_ms = earnings.lead_time_ms.saturating_sub(lead_time_ms)
            }
            (false, true) => {
                earnings.lead_time_ms = earnings.lead_time_ms.saturating_add(lead_time_ms)
            }
            _ => {}
        }
        Ok(())
    }

    /// A worker's view at `now_ms`: their live reservation, progress,
    /// record, pause and earnings. A worker never seen has an empty one.
    pub fn view(&self, worker: &str, now_ms: i64) -> WorkerView {
        let Some(standing) = self
            .known_worker(worker)
            .ok()
            .and_then(|number| self.worker(number).ok())
        else {
            return WorkerView::default();
        };
        WorkerView {
            reservation: standing
                .held
                .iter()
                .map(|(_, reservation)| *reservation)
                .find(|reservation| reservation.expires_at > now_ms),
            answers: standing.overall.answers,
            record: standing.overall,
            paused: standing.paused.as_deref().map(str::to_owned),
            earnings: standing.earnings,
            hourly_rate: standing.earnings.hourly_rate(),
        }
    }

    /// A worker's skills, by name.
    pub fn skills_of(&self, worker: &str) -> Vec<String> {
        self.known_worker(worker)
            .ok()
            .and_then(|number| self.worker(number).ok())
            .map(|standing| {
                standing
                    .skills
                    .iter()
                    .map(|skill| self.skills.name(*skill).to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}
