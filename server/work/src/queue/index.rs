//! The room's tasks as the queue holds them, and the index a grant reads.
//!
//! A grant must be decided in microseconds in a room of a million open
//! tasks, so it cannot look at every task. Tasks are grouped by what a
//! worker needs to take them (their interned skill set, and whether they
//! are gold); each group keeps its grantable tasks (open, with a free slot)
//! in an ordered set, nearest completion first, then oldest. A worker reads
//! only the groups whose skill set is a subset of their skills, from the
//! front. Every change to a task's counts or state goes through
//! [`Tasks::update`], which moves the task in or out of its group's set,
//! so the index is never out of step (checked by `check.rs` in tests).
//!
//! Names (skills, tags) are interned to `u32`, and sets of them to one
//! `u32` each: a million tasks share a handful of skill sets, and a task is
//! 24 bytes plus its 8-byte id and its entry in the set.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::TaskState;
use crate::error::{Error, Result};

/// Interned names: each distinct string once, numbered in order of arrival.
#[derive(Debug, Default)]
pub(crate) struct Names {
    numbers: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Names {
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(number) = self.numbers.get(name) {
            return *number;
        }
        let number = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(name.into());
        self.numbers.insert(name.into(), number);
        number
    }

    pub fn name(&self, number: u32) -> &str {
        self.names.get(number as usize).map_or("", |name| name)
    }

    /// Interns names as a sorted, deduplicated set.
    pub fn intern_set<S: AsRef<str>>(&mut self, names: &[S]) -> Vec<u32> {
        let mut set: Vec<u32> = names
            .iter()
            .map(|name| self.intern(name.as_ref()))
            .collect();
        set.sort_unstable();
        set.dedup();
        set
    }

    pub fn heap_bytes(&self) -> usize {
        let strings: usize = self.names.iter().map(|name| name.len()).sum();
        2 * strings + self.names.capacity() * 16 + hash_bytes(self.numbers.capacity(), 20)
    }
}

/// Interned sets of numbers (sorted, deduplicated).
#[derive(Debug, Default)]
pub(crate) struct Sets {
    numbers: HashMap<Box<[u32]>, u32>,
    sets: Vec<Box<[u32]>>,
}

impl Sets {
    pub fn intern(&mut self, set: Vec<u32>) -> u32 {
        if let Some(number) = self.numbers.get(set.as_slice()) {
            return *number;
        }
        let number = u32::try_from(self.sets.len()).unwrap_or(u32::MAX);
        let set: Box<[u32]> = set.into();
        self.sets.push(set.clone());
        self.numbers.insert(set, number);
        number
    }

    pub fn get(&self, number: u32) -> &[u32] {
        self.sets.get(number as usize).map_or(&[], |set| set)
    }

    pub fn heap_bytes(&self) -> usize {
        let items: usize = self.sets.iter().map(|set| set.len() * 4).sum();
        2 * items + self.sets.capacity() * 16 + hash_bytes(self.numbers.capacity(), 20)
    }
}

/// Whether sorted `small` is a subset of sorted `large`.
pub(crate) fn is_subset(small: &[u32], large: &[u32]) -> bool {
    let mut rest = large.iter();
    small
        .iter()
        .all(|wanted| rest.by_ref().any(|have| have == wanted))
}

/// Whether two sorted sets meet.
pub(crate) fn meets(left: &[u32], right: &[u32]) -> bool {
    let (mut left, mut right) = (left.iter().peekable(), right.iter().peekable());
    while let (Some(a), Some(b)) = (left.peek(), right.peek()) {
        match a.cmp(b) {
            std::cmp::Ordering::Less => _ = left.next(),
            std::cmp::Ordering::Greater => _ = right.next(),
            std::cmp::Ordering::Equal => return true,
        }
    }
    false
}

/// One task's place in the queue (its data, what the worker sees, is not
/// held: the store reads it by id for a grant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    /// Its group: skill set and gold flag.
    pub group: u32,
    /// Its interned tag set, matched against the workers' interests.
    pub tags: u32,
    pub target: u32,
    /// Reservations holding it, expired ones not swept yet included.
    pub reserved: u32,
    pub answered: u32,
    pub state: TaskState,
}

impl Slot {
    /// Whether the task may be granted: open with a free slot.
    pub fn grantable(&self) -> bool {
        self.state == TaskState::Open
            && u64::from(self.reserved) + u64::from(self.answered) < u64::from(self.target)
    }
}

/// The key of a grantable task in its group's set: most answers first,
/// then the task loaded (or imported) first, which is the oldest.
pub(crate) fn key(answered: u32, index: u32) -> u64 {
    (u64::from(u32::MAX - answered) << 32) | u64::from(index)
}

/// The task index of a key.
pub(crate) fn key_task(key: u64) -> u32 {
    (key & u64::from(u32::MAX)) as u32
}

/// The tasks of one skill set and gold flag, and its grantable ones.
#[derive(Debug)]
pub(crate) struct Group {
    pub skills: u32,
    pub gold: bool,
    pub open: BTreeSet<u64>,
}

/// Every task of the room, by index (load order), with the open index.
#[derive(Debug, Default)]
pub(crate) struct Tasks {
    /// Each task's store id, by index.
    pub ids: Vec<i64>,
    pub slots: Vec<Slot>,
    /// Index by id when `ids` is not ascending (tasks imported out of id
    /// order); None while a binary search of `ids` finds them.
    pub unordered: Option<HashMap<i64, u32>>,
    /// Gold answers by task index: few tasks are gold.
    pub gold: HashMap<u32, Value>,
    pub groups: Vec<Group>,
    group_numbers: HashMap<(u32, bool), u32>,
}

impl Tasks {
    /// The index of the task with this id.
    pub fn find(&self, id: i64) -> Result<u32> {
        let found = match &self.unordered {
            Some(map) => map.get(&id).copied(),
            None => self
                .ids
                .binary_search(&id)
                .ok()
                .and_then(|at| u32::try_from(at).ok()),
        };
        found.ok_or(Error::NotFound("task"))
    }

    pub fn id(&self, index: u32) -> i64 {
        self.ids.get(index as usize).copied().unwrap_or(-1)
    }

    pub fn slot(&self, index: u32) -> Result<&Slot> {
        self.slots
            .get(index as usize)
            .ok_or(Error::NotFound("task"))
    }

    /// The group of (skill set, gold), made on first use.
    pub fn group(&mut self, skills: u32, gold: bool) -> u32 {
        if let Some(number) = self.group_numbers.get(&(skills, gold)) {
            return *number;
        }
        let number = u32::try_from(self.groups.len()).unwrap_or(u32::MAX);
        self.groups.push(Group {
            skills,
            gold,
            open: BTreeSet::new(),
        });
        self.group_numbers.insert((skills, gold), number);
        number
    }

    /// Adds a task (its id new to the room); returns its index.
    pub fn push(&mut self, id: i64, slot: Slot, gold: Option<Value>) -> Result<u32> {
        if self.find(id).is_ok() {
            return Err(Error::Invalid(format!("task {id} is already loaded")));
        }
        let index = u32::try_from(self.ids.len())
            .ok()
            .filter(|index| *index < u32::MAX)
            .ok_or_else(|| Error::Invalid("too many tasks in one room".into()))?;
        let ascending = self.ids.last().is_none_or(|last| *last < id);
        match &mut self.unordered {
            Some(map) => _ = map.insert(id, index),
            None if !ascending => {
                let mut map: HashMap<i64, u32> = self.ids.iter().copied().zip(0..).collect();
                map.insert(id, index);
                self.unordered = Some(map);
            }
            None => {}
        }
        self.ids.push(id);
        self.slots.push(slot);
        if let Some(gold) = gold {
            self.gold.insert(index, gold);
        }
        if slot.grantable()
            && let Some(group) = self.groups.get_mut(slot.group as usize)
        {
            group.open.insert(key(slot.answered, index));
        }
        Ok(index)
    }

    /// Changes a task, keeping its group's set of grantable tasks in step;
    /// returns what `change` returned.
    pub fn update<T>(&mut self, index: u32, change: impl FnOnce(&mut Slot) -> T) -> Result<T> {
        let slot = self
            .slots
            .get_mut(index as usize)
            .ok_or(Error::NotFound("task"))?;
        let before = *slot;
        let result = change(slot);
        let after = *slot;
        let was = before.grantable().then(|| key(before.answered, index));
        let now = after.grantable().then(|| key(after.answered, index));
        if was != now || before.group != after.group {
            if let (Some(was), Some(group)) = (was, self.groups.get_mut(before.group as usize)) {
                group.open.remove(&was);
            }
            if let (Some(now), Some(group)) = (now, self.groups.get_mut(after.group as usize)) {
                group.open.insert(now);
            }
        }
        Ok(result)
    }

    pub fn heap_bytes(&self) -> usize {
        let sets: usize = self
            .groups
            .iter()
            .map(|group| btree_bytes(group.open.len(), 8))
            .sum();
        self.ids.capacity() * 8
            + self.slots.capacity() * std::mem::size_of::<Slot>()
            + self
                .unordered
                .as_ref()
                .map_or(0, |map| hash_bytes(map.capacity(), 12))
            + hash_bytes(self.gold.capacity(), 4 + std::mem::size_of::<Value>())
            + self.groups.capacity() * std::mem::size_of::<Group>()
            + sets
    }
}

/// What a hash table of `capacity` entries of `entry` bytes takes: its
/// buckets (a power of two at least 8/7 of the capacity) and a control
/// byte each. An estimate: the exact layout is the standard library's.
pub(crate) fn hash_bytes(capacity: usize, entry: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    let buckets = (capacity.saturating_mul(8) / 7).next_power_of_two();
    buckets * (entry + 1)
}

/// What a B-tree set of `len` keys of `key` bytes takes: nodes of 11 keys
/// about two-thirds full, plus each node's header (parent pointer, index
/// and length) and the internal nodes' edges. An estimate, as above.
pub(crate) fn btree_bytes(len: usize, key: usize) -> usize {
    let nodes = len.div_ceil(7);
    nodes * (11 * key + 16) + nodes / 6 * (12 * 8)
}
