//! The dense answer table every estimator reads.
//!
//! Why CSR by item: every estimator's inner loop is "for each item, for each
//! of its answers", so the answers of one item are contiguous (`workers`
//! and `labels` are parallel arrays sliced by `offsets`). Names are interned
//! once while reading and never looked at again until the report.
//!
//! One answer per (item, worker): a worker who answered the same item twice
//! changed their mind, so the last answer in input order is kept and the
//! earlier ones are counted in [`Answers::duplicates`].

use std::collections::HashMap;

use crate::error::{Error, Result};

/// Answers interned to indices and grouped by item.
#[derive(Debug, Clone, Default)]
pub struct Answers {
    item_names: Vec<String>,
    worker_names: Vec<String>,
    label_names: Vec<String>,
    /// Answers of item `i` are `offsets[i]..offsets[i + 1]`; `items + 1` entries.
    offsets: Vec<u32>,
    /// The worker of each answer.
    workers: Vec<u32>,
    /// The label of each answer.
    labels: Vec<u32>,
    /// Earlier answers dropped because the same worker answered the item again.
    duplicates: usize,
}

impl Answers {
    /// Builds the table from index triples `(item, worker, label)`, with
    /// names for each index (the synthetic generator uses this). An index
    /// at or past the length of its name list is an error.
    pub fn from_indices(
        item_names: Vec<String>,
        worker_names: Vec<String>,
        label_names: Vec<String>,
        triples: &[(u32, u32, u32)],
    ) -> Result<Answers> {
        let items = item_names.len();
        let workers = worker_names.len();
        if triples.len() >= u32::MAX as usize {
            return Err(Error::Invalid(format!(
                "{} answers are more than this table holds",
                triples.len()
            )));
        }
        if let Some(&(item, worker, label)) = triples.iter().find(|&&(item, worker, label)| {
            item as usize >= items
                || worker as usize >= workers
                || label as usize >= label_names.len()
        }) {
            return Err(Error::Invalid(format!(
                "answer ({item}, {worker}, {label}) is out of range ({items} items, {workers} workers, {} labels)",
                label_names.len()
            )));
        }
        // Counting sort by item; stable, so input order is kept within an item.
        let mut offsets = vec![0u32; items + 1];
        for &(item, _, _) in triples {
            offsets[item as usize + 1] += 1;
        }
        for index in 0..items {
            offsets[index + 1] += offsets[index];
        }
        let mut cursor = offsets.clone();
        let mut by_item = vec![(0u32, 0u32); triples.len()];
        for &(item, worker, label) in triples {
            let slot = &mut cursor[item as usize];
            by_item[*slot as usize] = (worker, label);
            *slot += 1;
        }
        // Keep the last answer of each worker per item: walk each item's
        // answers backwards, stamping workers already seen with the item.
        let mut seen = vec![u32::MAX; workers];
        let mut kept_offsets = Vec::with_capacity(items + 1);
        let mut kept_workers = Vec::with_capacity(triples.len());
        let mut kept_labels = Vec::with_capacity(triples.len());
        kept_offsets.push(0u32);
        for item in 0..items {
            let start = kept_workers.len();
            for &(worker, label) in by_item[offsets[item] as usize..offsets[item + 1] as usize]
                .iter()
                .rev()
            {
                if seen[worker as usize] != item as u32 {
                    seen[worker as usize] = item as u32;
                    kept_workers.push(worker);
                    kept_labels.push(label);
                }
            }
            kept_workers[start..].reverse();
            kept_labels[start..].reverse();
            kept_offsets.push(kept_workers.len() as u32);
        }
        let duplicates = triples.len() - kept_workers.len();
        Ok(Answers {
            item_names,
            worker_names,
            label_names,
            offsets: kept_offsets,
            workers: kept_workers,
            labels: kept_labels,
            duplicates,
        })
    }

    /// Number of items.
    pub fn items(&self) -> usize {
        self.item_names.len()
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.worker_names.len()
    }

    /// Number of distinct labels (classes).
    pub fn classes(&self) -> usize {
        self.label_names.len()
    }

    /// Number of answers kept (after dropping duplicates).
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    /// Whether there is no answer at all.
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// Earlier answers dropped because the same worker answered the same item again.
    pub fn duplicates(&self) -> usize {
        self.duplicates
    }

    /// CSR offsets: the answers of item `i` are `offsets[i]..offsets[i + 1]`.
    pub fn offsets(&self) -> &[u32] {
        &self.offsets
    }

    /// The worker of every answer, grouped by item.
    pub fn answer_workers(&self) -> &[u32] {
        &self.workers
    }

    /// The label of every answer, grouped by item.
    pub fn answer_labels(&self) -> &[u32] {
        &self.labels
    }

    /// The `(workers, labels)` of one item's answers; empty when out of range.
    pub fn of_item(&self, item: usize) -> (&[u32], &[u32]) {
        let (Some(&start), Some(&end)) = (
            self.offsets.get(item),
            self.offsets.get(item.saturating_add(1)),
        ) else {
            return (&[], &[]);
        };
        let range = start as usize..end as usize;
        (&self.workers[range.clone()], &self.labels[range])
    }

    /// Item names by index.
    pub fn item_names(&self) -> &[String] {
        &self.item_names
    }

    /// Worker names by index.
    pub fn worker_names(&self) -> &[String] {
        &self.worker_names
    }

    /// Label names by index.
    pub fn label_names(&self) -> &[String] {
        &self.label_names
    }
}

/// Interns names while reading a file, then builds [`Answers`].
#[derive(Debug, Default)]
pub struct AnswersBuilder {
    items: Interner,
    workers: Interner,
    labels: Interner,
    triples: Vec<(u32, u32, u32)>,
}

impl AnswersBuilder {
    pub fn new() -> AnswersBuilder {
        AnswersBuilder::default()
    }

    /// Records one answer.
    pub fn push(&mut self, item: &str, worker: &str, label: &str) {
        let item = self.items.intern(item);
        let worker = self.workers.intern(worker);
        let label = self.labels.intern(label);
        self.triples.push((item, worker, label));
    }

    /// Number of answers pushed so far (duplicates included).
    pub fn len(&self) -> usize {
        self.triples.len()
    }

    /// Whether nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.triples.is_empty()
    }

    /// Groups the answers by item and drops duplicates (keeping the last).
    /// Fails only past `u32::MAX` answers.
    pub fn build(self) -> Result<Answers> {
        Answers::from_indices(
            self.items.names,
            self.workers.names,
            self.labels.names,
            &self.triples,
        )
    }
}

/// Names to dense indices in first-seen order. Used while reading only.
#[derive(Debug, Default)]
struct Interner {
    index: HashMap<String, u32>,
    names: Vec<String>,
}

impl Interner {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&index) = self.index.get(name) {
            return index;
        }
        let index = self.names.len() as u32;
        self.index.insert(name.to_owned(), index);
        self.names.push(name.to_owned());
        index
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_item_and_keeps_the_last_duplicate() {
        let mut builder = AnswersBuilder::new();
        builder.push("a", "w1", "x");
        builder.push("b", "w1", "y");
        builder.push("a", "w2", "y");
        builder.push("a", "w1", "y");
        let answers = builder.build().unwrap();
        assert_eq!(
            (answers.items(), answers.workers(), answers.classes()),
            (2, 2, 2)
        );
        assert_eq!(answers.len(), 3);
        assert_eq!(answers.duplicates(), 1);
        // Item a: w2 said y, then w1 changed x to y; order of the kept answers is input order.
        assert_eq!(answers.of_item(0), (&[1u32, 0][..], &[1u32, 1][..]));
        assert_eq!(answers.of_item(1), (&[0u32][..], &[1u32][..]));
        assert_eq!(answers.of_item(2), (&[][..], &[][..]));
        assert_eq!(answers.label_names(), ["x", "y"]);
    }

    #[test]
    fn rejects_indices_out_of_range() {
        let names = |count: usize| {
            (0..count)
                .map(|index| index.to_string())
                .collect::<Vec<_>>()
        };
        assert!(Answers::from_indices(names(1), names(1), names(1), &[(0, 0, 0)]).is_ok());
        assert!(Answers::from_indices(names(1), names(1), names(1), &[(0, 0, 1)]).is_err());
        assert!(Answers::from_indices(names(1), names(1), names(1), &[(1, 0, 0)]).is_err());
        assert!(Answers::from_indices(names(1), names(0), names(1), &[(0, 0, 0)]).is_err());
    }
}
