//! Fuzzing the consensus estimators: the answer table, majority and
//! weighted votes, Dawid-Skene, the median, the span vote and the text
//! medoid, over their documented domains and outside them (NaN and
//! negative weights and options, empty sets, ids past the tables).

use proptest::collection::vec;
use proptest::prelude::*;

use super::config;
use crate::batch;
use crate::consensus::dawid_skene::{DsOptions, fit};
use crate::consensus::numeric::{mean_absolute_error, median, medians};
use crate::consensus::spans::{Annotation, Span, overlap, vote_spans};
use crate::consensus::text::{closest_text, medoid, normalized_edit_distance};
use crate::consensus::vote::{WmvOptions, majority_vote, weighted_majority_vote, weighted_vote};
use crate::consensus::{Answers, Consensus, Decision};

/// A small answer table: name counts and (item, worker, label) triples
/// whose indices may lie past them.
#[derive(Debug, Clone)]
struct Table {
    items: usize,
    workers: usize,
    labels: usize,
    triples: Vec<(u32, u32, u32)>,
}

fn table() -> impl Strategy<Value = Table> {
    (0usize..6, 0usize..6, 0usize..12).prop_flat_map(|(items, workers, labels)| {
        // Indices mostly in range, sometimes one past, rarely anywhere.
        let index = |count: usize| {
            prop_oneof![
                8 => 0..(count.max(1) as u32),
                1 => Just(count as u32),
                1 => any::<u32>(),
            ]
        };
        vec((index(items), index(workers), index(labels)), 0..30).prop_map(move |triples| Table {
            items,
            workers,
            labels,
            triples,
        })
    })
}

fn names(count: usize) -> Vec<String> {
    (0..count).map(|index| index.to_string()).collect()
}

impl Table {
    fn in_range(&self) -> bool {
        self.triples.iter().all(|&(item, worker, label)| {
            (item as usize) < self.items
                && (worker as usize) < self.workers
                && (label as usize) < self.labels
        })
    }

    fn answers(&self) -> Result<Answers, crate::Error> {
        Answers::from_indices(
            names(self.items),
            names(self.workers),
            names(self.labels),
            &self.triples,
        )
    }
}

/// Gold pairs, some past the items and labels.
fn gold() -> impl Strategy<Value = Vec<(u32, Option<u32>)>> {
    vec(
        (
            prop_oneof![0u32..8, any::<u32>()],
            prop_oneof![
                (0u32..14).prop_map(Some),
                Just(None),
                any::<u32>().prop_map(Some)
            ],
        ),
        0..6,
    )
}

/// Floats from anywhere: ordinary, zero, negative, huge, NaN, infinite.
fn wild_float() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => 0.0f64..10.0,
        1 => any::<f64>(),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(-1.0),
        1 => Just(0.0),
    ]
}

/// A consensus over `answers` is well formed: one row per item, each a
/// distribution (when `finite`), decisions among the table's labels, and
/// its accuracy on any gold a share.
fn check_consensus(
    answers: &Answers,
    consensus: &Consensus,
    gold: &[(u32, Option<u32>)],
    finite: bool,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(consensus.classes(), answers.classes());
    if answers.classes() > 0 {
        prop_assert_eq!(consensus.items(), answers.items());
    }
    for item in 0..consensus.items() + 2 {
        let decision = consensus.decision(item);
        let row = consensus.posterior(item);
        prop_assert_eq!(decision.is_some(), row.is_some());
        let _ = consensus.confidence(item);
        if let Some(Decision::Label(label)) = decision {
            prop_assert!((label as usize) < answers.classes());
        }
        if let (true, Some(row)) = (finite, row.filter(|row| !row.is_empty())) {
            let sum: f64 = row.iter().sum();
            prop_assert!(
                row.iter().all(|p| p.is_finite() && *p >= 0.0) && (sum - 1.0).abs() < 1e-6,
                "item {} row {:?}",
                item,
                row
            );
            prop_assert!(matches!(
                decision,
                Some(Decision::Label(_) | Decision::Tie(_))
            ));
            if let Some(Decision::Tie(tied)) = decision {
                prop_assert!(!tied.is_empty());
            }
        }
    }
    if let Some(accuracy) = consensus.accuracy(gold) {
        prop_assert!((0.0..=1.0).contains(&accuracy), "accuracy {}", accuracy);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(1000))]

    /// The table refuses indices past its names and otherwise keeps one
    /// answer per worker and item.
    #[test]
    fn answer_tables_refuse_indices_out_of_range(table in table()) {
        let answers = table.answers();
        prop_assert_eq!(answers.is_ok(), table.in_range());
        if let Ok(answers) = answers {
            prop_assert_eq!(answers.len() + answers.duplicates(), table.triples.len());
            for item in 0..table.items + 2 {
                let (workers, labels) = answers.of_item(item);
                prop_assert_eq!(workers.len(), labels.len());
                let mut distinct = workers.to_vec();
                distinct.sort_unstable();
                distinct.dedup();
                prop_assert_eq!(distinct.len(), workers.len());
            }
        }
    }

    /// Majority and weighted votes give distributions; a unanimous item's
    /// majority is its label.
    #[test]
    fn votes_give_distributions(
        table in table(),
        gold in gold(),
        weights in vec(wild_float(), 0..8),
        rounds in 0u32..12,
        prior_right in wild_float(),
        prior_wrong in wild_float(),
    ) {
        let Ok(answers) = table.answers() else { return Ok(()) };
        let majority = majority_vote(&answers);
        for item in 0..answers.items() {
            let (_, labels) = answers.of_item(item);
            if let Some(&first) = labels.first() {
                let row_sum: f64 = majority.posterior(item).unwrap().iter().sum();
                prop_assert!((row_sum - 1.0).abs() < 1e-9);
                if labels.iter().all(|&label| label == first) {
                    prop_assert_eq!(majority.decision(item), Some(Decision::Label(first)));
                }
            }
        }
        check_consensus(&answers, &majority, &gold, false)?;
        let defaults = weighted_majority_vote(&answers, WmvOptions::default(), &gold);
        check_consensus(&answers, &defaults, &gold, true)?;
        let options = WmvOptions { max_rounds: rounds, prior_right, prior_wrong };
        let wild = weighted_majority_vote(&answers, options, &gold);
        check_consensus(&answers, &wild, &gold, false)?;
        let weighted = weighted_vote(&answers, &weights);
        let finite = weights.iter().all(|weight| weight.is_finite() && weight.abs() < 100.0);
        check_consensus(&answers, &weighted, &gold, finite)?;
    }

    /// Dawid-Skene gives distributions over the table's labels with its
    /// default options, and no panic with any options.
    #[test]
    fn dawid_skene_gives_distributions(
        table in table(),
        gold in gold(),
        iterations in 0u32..30,
        tolerance in wild_float(),
        smoothing in wild_float(),
    ) {
        let Ok(answers) = table.answers() else { return Ok(()) };
        let defaults = DsOptions { max_iterations: 30, ..DsOptions::default() };
        let model = fit(&answers, defaults);
        check_consensus(&answers, &model.consensus, &gold, true)?;
        if answers.classes() > 0 {
            for worker in 0..answers.workers() + 2 {
                let confusion = model.worker_confusion(worker);
                prop_assert_eq!(confusion.is_some(), worker < answers.workers());
            }
        }
        let options = DsOptions { max_iterations: iterations, tolerance, smoothing };
        let wild = fit(&answers, options);
        check_consensus(&answers, &wild.consensus, &gold, false)?;
        let labels: Vec<String> = names(table.labels);
        let _ = batch::run(names(table.items), names(table.workers), labels, &table.triples, &gold);
    }

    /// The median of finite numbers lies between their extremes; NaN and
    /// infinities do not panic.
    #[test]
    fn medians_lie_between_the_extremes(
        values in vec(prop_oneof![
            4 => -1e6f64..1e6,
            1 => -1e300f64..1e300,
            1 => Just(f64::MIN_POSITIVE),
            1 => Just(-0.0),
        ], 0..9),
        wild in vec(wild_float(), 0..5),
    ) {
        let mut sorted = values.clone();
        match median(&mut sorted) {
            None => prop_assert!(values.is_empty()),
            Some(middle) => {
                let low = values.iter().copied().fold(f64::INFINITY, f64::min);
                let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                prop_assert!(low <= middle && middle <= high, "median {} of {:?}", middle, values);
            }
        }
        let mut wild = wild;
        let _ = median(&mut wild);
    }

    /// Medians per item and their error take any table and values.
    #[test]
    fn medians_per_item_are_total(
        table in table(),
        values in vec(wild_float(), 0..12),
        truth in vec((prop_oneof![0u32..8, any::<u32>()], wild_float()), 0..5),
    ) {
        let Ok(answers) = table.answers() else { return Ok(()) };
        let estimates = medians(&answers, &values);
        prop_assert_eq!(estimates.len(), answers.items());
        if let Some(error) = mean_absolute_error(&estimates, &truth) {
            prop_assert!(error >= 0.0 || error.is_nan());
        }
    }
}

/// Found by `medians_lie_between_the_extremes`: the mean of the two middle
/// values overflowed when both were near `f64::MAX` (a numeric answer may
/// be any finite JSON number), and the live decision's answer became `null`
/// (`json!(inf)`).
#[test]
fn the_median_of_huge_numbers_is_finite() {
    assert_eq!(median(&mut [f64::MAX, f64::MAX]), Some(f64::MAX));
    assert_eq!(median(&mut [-f64::MAX, f64::MAX]), Some(0.0));
    assert_eq!(median(&mut [1.0, 2.0]), Some(1.5));
    // Found by `unanimous_votes_decide_their_answer`: equal subnormal
    // middles must come back unchanged.
    let tiny = 4.8761255581947e-309;
    assert_eq!(median(&mut [tiny, tiny, tiny, tiny]), Some(tiny));
}

/// Spans anywhere: inside a short text, past it, empty, reversed, at the
/// end of `usize`, with any label id.
fn wild_span() -> impl Strategy<Value = Span> {
    let position = prop_oneof![
        6 => 0usize..300,
        1 => Just(usize::MAX),
        1 => Just(usize::MAX - 1),
        1 => Just(1usize << 40),
        1 => any::<usize>(),
    ];
    let label = prop_oneof![4 => 0u32..4, 1 => Just(u32::MAX), 1 => any::<u32>()];
    (position.clone(), position, label).prop_map(|(start, end, label)| Span { start, end, label })
}

fn covered(spans: &[Span]) -> std::collections::BTreeSet<(usize, u32)> {
    spans
        .iter()
        .flat_map(|span| (span.start..span.end).map(move |token| (token, span.label)))
        .collect()
}

proptest! {
    #![proptest_config(config(1000))]

    /// The span vote takes any spans, weights and text length: an error,
    /// or sorted, disjoint spans inside the text.
    #[test]
    fn span_votes_are_total(
        length in prop_oneof![4 => 0usize..400, 1 => Just(usize::MAX), 1 => any::<usize>()],
        annotations in vec((wild_float(), vec(wild_span(), 0..5)), 0..5),
    ) {
        let annotations: Vec<Annotation<'_>> = annotations
            .iter()
            .map(|(weight, spans)| Annotation { weight: *weight, spans })
            .collect();
        if let Ok(result) = vote_spans(length, &annotations) {
            for span in &result {
                prop_assert!(span.start < span.end && span.end <= length, "{:?}", span);
            }
            for pair in result.windows(2) {
                prop_assert!(pair[0].end <= pair[1].start, "{:?}", pair);
            }
            for annotation in &annotations {
                let (shared, union) = overlap(annotation.spans, &result);
                prop_assert!(shared <= union);
            }
        }
    }

    /// One annotator with one label: the vote returns their tokens.
    #[test]
    fn a_lone_annotator_wins_every_token(
        spans in vec((0usize..300, 1usize..30), 0..6),
        weight in 0.01f64..10.0,
        label in 0u32..4,
    ) {
        let spans: Vec<Span> = spans
            .iter()
            .map(|&(start, len)| Span { start, end: start + len, label })
            .collect();
        let result = vote_spans(400, &[Annotation { weight, spans: &spans }]).unwrap();
        prop_assert_eq!(covered(&result), covered(&spans));
    }

    /// The text medoid takes any answers and weights: an index among the
    /// answers and a similarity in [0, 1]; distances are symmetric
    /// and in [0, 1], 0 for equal texts.
    #[test]
    fn text_medoids_are_total(
        texts in vec(prop_oneof![".{0,300}", "[ab ]{0,20}", "[aA]{0,5}"], 0..7),
        weights in vec(wild_float(), 0..8),
    ) {
        match medoid(&texts, &weights) {
            None => prop_assert!(texts.is_empty()),
            Some((index, similarity)) => {
                prop_assert!(index < texts.len());
                prop_assert!((-1e-9..=1.0 + 1e-9).contains(&similarity), "similarity {}", similarity);
            }
        }
        prop_assert_eq!(closest_text(&texts).is_some(), !texts.is_empty());
        for first in texts.iter().take(3) {
            prop_assert_eq!(normalized_edit_distance(first, first), 0.0);
            for second in texts.iter().take(3) {
                let distance = normalized_edit_distance(first, second);
                prop_assert!((0.0..=1.0).contains(&distance));
                prop_assert_eq!(distance, normalized_edit_distance(second, first));
            }
        }
    }
}
