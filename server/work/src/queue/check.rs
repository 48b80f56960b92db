//! The work state's invariants, recomputed by brute force: what the
//! property tests check after every step, and what a debug build of the
//! server may check after loading a room. Release builds leave it out: it
//! walks every task and worker.

use std::collections::{BTreeSet, HashMap};

use super::index::key;
use super::{TaskState, WorkState, state_slot};

impl WorkState {
    /// Recomputes every count and the open index from the tasks and the
    /// workers, and says what differs. A task's `answered` may exceed the
    /// answers in the loaded workers' rows (answers of members who left).
    pub fn check(&self) -> Result<(), String> {
        let tasks = self.tasks.slots.len();
        let mut reserved = vec![0_u32; tasks];
        let mut answered = vec![0_u32; tasks];
        let mut expiries = BTreeSet::new();
        for (number, worker) in self.workers.iter().enumerate() {
            let number = u32::try_from(number).map_err(|error| error.to_string())?;
            for task in &worker.answered {
                let count = answered
                    .get_mut(*task as usize)
                    .ok_or("answer of no task")?;
                *count += 1;
            }
            for &(task, reservation) in &worker.held {
                if worker.answered.contains(&task) {
                    return Err(format!("{} holds task {task} they answered", worker.id));
                }
                if self.tasks.id(task) != reservation.task_id {
                    return Err(format!("{}'s reservation names another task", worker.id));
                }
                let count = reserved
                    .get_mut(task as usize)
                    .ok_or("reservation of no task")?;
                *count += 1;
                expiries.insert((reservation.expires_at, number, task));
            }
        }
        if expiries != self.expiries {
            return Err("the expiry set differs from the reservations".into());
        }
        let mut open: HashMap<u32, BTreeSet<u64>> = HashMap::new();
        let mut states = [0_i64; 5];
        let mut answers = 0_i64;
        for (index, slot) in self.tasks.slots.iter().enumerate() {
            let id = self.tasks.ids.get(index).copied().unwrap_or(-1);
            let at = u32::try_from(index).map_err(|error| error.to_string())?;
            if self.tasks.find(id) != Ok(at) {
                return Err(format!("task {id} is not found at its index"));
            }
            if reserved.get(index) != Some(&slot.reserved) {
                return Err(format!(
                    "task {id}: reserved {} counted, held {:?}",
                    slot.reserved,
                    reserved.get(index)
                ));
            }
            // Answers of workers who are not loaded (members who left) count
            // on the task only.
            if answered
                .get(index)
                .is_none_or(|answers| *answers > slot.answered)
            {
                return Err(format!(
                    "task {id}: answered {} counted, {:?} answers",
                    slot.answered,
                    answered.get(index)
                ));
            }
            if u64::from(slot.reserved) + u64::from(slot.answered) > u64::from(slot.target) {
                return Err(format!(
                    "task {id}: reserved + answered above the target {}",
                    slot.target
                ));
            }
            let gold = self.tasks.gold.contains_key(&at);
            let group = self
                .tasks
                .groups
                .get(slot.group as usize)
                .ok_or("task of no group")?;
            if group.gold != gold {
                return Err(format!("task {id} is in a group of the other gold flag"));
            }
            if slot.state == TaskState::Deciding && (gold || slot.answered < slot.target) {
                return Err(format!("task {id} waits for a decision below its target"));
            }
            if slot.grantable() {
                open.entry(slot.group)
                    .or_default()
                    .insert(key(slot.answered, at));
            }
            if let Some(count) = states.get_mut(state_slot(slot.state)) {
                *count += 1;
            }
            answers += i64::from(slot.answered);
        }
        for (number, group) in self.tasks.groups.iter().enumerate() {
            let number = u32::try_from(number).map_err(|error| error.to_string())?;
            let expected = open.remove(&number).unwrap_or_default();
            if expected != group.open {
                return Err(format!("group {number}'s open set differs from its tasks"));
            }
        }
        if states != self.states || answers != self.answers {
            return Err("the counts by state or of answers differ".into());
        }
        Ok(())
    }
}
