//! A benchmark dataset in memory: the answer table and its gold labels.
//! Reading one from files is the server's (`consensus/datasets.rs`).

use std::collections::HashMap;

use super::Answers;
use crate::error::{Error, Result};

/// A dataset: answers and the gold labels of answered items, as read
/// from disk by the server's `crowdroom consensus` command or generated
/// by [`super::synthetic`].
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The folder name, or the answers file name.
    pub name: String,
    pub answers: Answers,
    /// `(item, gold label as written)` for items that have answers; one per item (the last).
    pub gold: Vec<(u32, String)>,
    /// Gold lines whose item no worker answered; they are not evaluated.
    pub gold_unanswered: usize,
}

impl Dataset {
    /// Gold as label indices; `None` for a gold label that no worker gave.
    pub fn categorical_gold(&self) -> Vec<(u32, Option<u32>)> {
        let index: HashMap<&str, u32> = self
            .answers
            .label_names()
            .iter()
            .enumerate()
            .map(|(label, name)| (name.as_str(), label as u32))
            .collect();
        self.gold
            .iter()
            .map(|(item, label)| (*item, index.get(label.as_str()).copied()))
            .collect()
    }

    /// Gold as numbers, for numeric datasets.
    pub fn numeric_gold(&self) -> Result<Vec<(u32, f64)>> {
        self.gold
            .iter()
            .map(|(item, value)| {
                super::numeric::parse_number(value)
                    .map(|number| (*item, number))
                    .map_err(|error| {
                        Error::Invalid(format!(
                            "{}: gold of item {:?}: {error}",
                            self.name,
                            self.item_name(*item)
                        ))
                    })
            })
            .collect()
    }

    /// Whether the answers look like numbers on a scale rather than
    /// categories: every answer parses as a number and there are more than
    /// [`NUMERIC_MIN_DISTINCT`] distinct values.
    pub fn looks_numeric(&self) -> bool {
        let labels = self.answers.label_names();
        labels.len() > NUMERIC_MIN_DISTINCT
            && labels
                .iter()
                .all(|label| super::numeric::parse_number(label).is_ok())
    }

    fn item_name(&self, item: u32) -> &str {
        self.answers
            .item_names()
            .get(item as usize)
            .map_or("?", String::as_str)
    }
}

/// Numbered classes rarely exceed this many (the zheng2017 categorical sets
/// use 0-3); a numeric scale answered by a crowd almost always does.
pub const NUMERIC_MIN_DISTINCT: usize = 20;
