//! Batch consensus over a whole project: Dawid-Skene beside weighted
//! voting, both scored on the project's gold tasks, and the winner's labels
//! published where Dawid-Skene wins.
//!
//! Gold tasks are items like any other here (their truth is hidden from
//! the estimators, which estimate every worker from agreement), so the
//! comparison is fair: whichever estimator recovers more gold answers is
//! the better reading of this crowd.

use serde::Serialize;

use crate::consensus::dawid_skene::{DsOptions, dawid_skene};
use crate::consensus::vote::{WmvOptions, weighted_majority_vote};
use crate::consensus::{Answers, Consensus, Decision};
use crate::error::Result;

/// Gold tasks with answers needed before Dawid-Skene may replace weighted voting.
pub const MIN_GOLD_ITEMS: usize = 5;

/// One categorical answer: task index, worker index, label index.
pub type Triple = (u32, u32, u32);

/// What a batch run found.
#[derive(Debug, Clone, Serialize)]
pub struct BatchReport {
    pub tasks: usize,
    pub answers: usize,
    pub workers: usize,
    pub gold_items: usize,
    pub wmv_accuracy: Option<f64>,
    pub ds_accuracy: Option<f64>,
    /// `"ds"` when its labels were published, else `"wmv"` (nothing changed).
    pub published: &'static str,
    /// Tasks whose consensus the run rewrote.
    pub updated: usize,
}

/// A task's new consensus from the batch: (task index, label, confidence).
pub type Relabel = (usize, u32, f64);

/// Runs both estimators and says which tasks Dawid-Skene would relabel.
/// `gold` holds (task index, label) of gold tasks; `tasks` names each index.
pub fn run(
    tasks: Vec<String>,
    workers: Vec<String>,
    labels: Vec<String>,
    triples: &[Triple],
    gold: &[(u32, Option<u32>)],
) -> Result<(BatchReport, Vec<Relabel>)> {
    let answers = Answers::from_indices(tasks, workers, labels, triples)?;
    let wmv = weighted_majority_vote(&answers, WmvOptions::default(), &[]);
    let ds = dawid_skene(&answers, DsOptions::default());
    let gold_items = gold.len();
    let (wmv_accuracy, ds_accuracy) = (wmv.accuracy(gold), ds.accuracy(gold));
    let ds_wins = gold_items >= MIN_GOLD_ITEMS
        && matches!((ds_accuracy, wmv_accuracy), (Some(ds), Some(wmv)) if ds > wmv);
    let relabels = if ds_wins { chosen(&ds) } else { Vec::new() };
    let report = BatchReport {
        tasks: answers.items(),
        answers: answers.len(),
        workers: answers.workers(),
        gold_items,
        wmv_accuracy,
        ds_accuracy,
        published: if ds_wins { "ds" } else { "wmv" },
        updated: 0,
    };
    Ok((report, relabels))
}

/// Every item with a single best label (ties stay as they are).
fn chosen(consensus: &Consensus) -> Vec<Relabel> {
    (0..consensus.items())
        .filter_map(|item| match consensus.decision(item) {
            Some(Decision::Label(label)) => Some((item, label, consensus.confidence(item))),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A crowd where two reliable workers beat three who always say "a":
    /// voting follows the majority, Dawid-Skene learns who to trust.
    #[test]
    fn dawid_skene_wins_when_it_reads_the_crowd_better() {
        let tasks: Vec<String> = (0..40).map(|task| format!("t{task}")).collect();
        let workers: Vec<String> = (0..5).map(|worker| format!("w{worker}")).collect();
        let labels = vec!["a".to_owned(), "b".to_owned()];
        let mut triples = Vec::new();
        let mut gold = Vec::new();
        for task in 0..40u32 {
            let truth = task % 2;
            triples.push((task, 0, truth));
            triples.push((task, 1, truth));
            for spammer in 2..5 {
                triples.push((task, spammer, 0));
            }
            if task < 10 {
                gold.push((task, Some(truth)));
            }
        }
        let (report, relabels) = run(tasks, workers, labels, &triples, &gold).unwrap();
        assert_eq!(report.published, "ds", "{report:?}");
        assert!(report.ds_accuracy.unwrap() > report.wmv_accuracy.unwrap());
        assert!(
            relabels
                .iter()
                .any(|&(task, label, _)| task % 2 == 1 && label == 1)
        );
    }
}
