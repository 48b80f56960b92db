//! Span annotations (named entities, highlighted evidence): token-level
//! weighted voting.
//!
//! Why per token: workers rarely agree on exact boundaries ("the Paris
//! office" vs "Paris"), so whole-span matching finds no majority where
//! there plainly is one. Each worker votes on every token of the text: for
//! the label of a span covering it, or for "nothing" by not covering it. A
//! token keeps a label when that label has more than half of the total
//! weight of the workers who annotated the text; runs of consecutive
//! tokens with the same kept label become the output spans.
//!
//! Limitation: two adjacent entities of the same label come out as one
//! span, because the token votes carry no boundary; a BIO-style vote
//! would be needed to separate them.

use crate::error::{Error, Result};

/// A labelled range of tokens (or characters) `start..end`, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub label: u32,
}

/// One worker's spans over the text, and the weight of their vote.
#[derive(Debug, Clone, Copy)]
pub struct Annotation<'a> {
    pub weight: f64,
    pub spans: &'a [Span],
}

/// The spans whose tokens got a weighted majority, in text order. `length`
/// is the number of tokens; a span outside `0..length`, an empty span or a
/// negative or non-finite weight is an error.
///
/// The vote sweeps the spans' boundaries, not the tokens: between two
/// consecutive boundaries every token has the same votes, so time and
/// memory follow the number of spans, whatever `length` and the label ids
/// are (a dense table of tokens × labels let one span ending near
/// `u64::MAX` overflow it, and one ending at a billion allocate gigabytes).
pub fn vote_spans(length: usize, annotations: &[Annotation<'_>]) -> Result<Vec<Span>> {
    let mut total_weight = 0.0;
    for annotation in annotations {
        if !annotation.weight.is_finite() || annotation.weight < 0.0 {
            return Err(Error::Invalid(format!(
                "span weight {} must be a finite number >= 0",
                annotation.weight
            )));
        }
        total_weight += annotation.weight;
        for span in annotation.spans {
            if span.start >= span.end || span.end > length {
                return Err(Error::Invalid(format!(
                    "span {}..{} is empty or outside the text of {length} tokens",
                    span.start, span.end
                )));
            }
        }
    }
    // Each worker's spans, overlaps of one label merged (they count once
    // per token), become +weight at the start and -weight at the end.
    let mut events: Vec<(usize, u32, f64)> = Vec::new();
    for annotation in annotations {
        for span in merged(annotation.spans) {
            events.push((span.start, span.label, annotation.weight));
            events.push((span.end, span.label, -annotation.weight));
        }
    }
    events.sort_unstable_by_key(|&(position, label, _)| (position, label));
    let majority = total_weight / 2.0;
    let mut active: std::collections::BTreeMap<u32, f64> = std::collections::BTreeMap::new();
    let mut result: Vec<Span> = Vec::new();
    let mut index = 0;
    while let Some(&(position, _, _)) = events.get(index) {
        while let Some(&(at, label, weight)) = events.get(index)
            && at == position
        {
            let entry = active.entry(label).or_insert(0.0);
            *entry += weight;
            if *entry <= 1e-12 {
                active.remove(&label);
            }
            index += 1;
        }
        let Some(&(next, _, _)) = events.get(index) else {
            break;
        };
        // On equal weight the higher label wins, as it always has.
        let winner = active
            .iter()
            .filter(|&(_, &weight)| weight > majority + 1e-12)
            .max_by(|first, second| first.1.total_cmp(second.1))
            .map(|(&label, _)| label);
        let Some(label) = winner else { continue };
        match result.last_mut() {
            Some(last) if last.label == label && last.end == position => last.end = next,
            _ => result.push(Span {
                start: position,
                end: next,
                label,
            }),
        }
    }
    Ok(result)
}

/// How many (token, label) pairs two annotations share, and how many
/// either has: the parts of their Jaccard agreement, from their merged
/// intervals rather than token by token.
pub fn overlap(first: &[Span], second: &[Span]) -> (usize, usize) {
    let (first, second) = (merged(first), merged(second));
    let size = |spans: &[Span]| -> usize {
        spans
            .iter()
            .map(|span| span.end.saturating_sub(span.start))
            .fold(0, usize::saturating_add)
    };
    let (mut shared, mut left, mut right) = (0usize, 0, 0);
    while let (Some(a), Some(b)) = (first.get(left), second.get(right)) {
        if a.label == b.label {
            let (start, end) = (a.start.max(b.start), a.end.min(b.end));
            shared = shared.saturating_add(end.saturating_sub(start));
        }
        if (a.label, a.end) <= (b.label, b.end) {
            left += 1;
        } else {
            right += 1;
        }
    }
    let union = size(&first)
        .saturating_sub(shared)
        .saturating_add(size(&second));
    (shared, union)
}

/// The spans sorted by label and start, each label's overlapping or
/// touching spans merged into one.
fn merged(spans: &[Span]) -> Vec<Span> {
    let mut sorted = spans.to_vec();
    sorted.sort_unstable_by_key(|span| (span.label, span.start));
    let mut out: Vec<Span> = Vec::with_capacity(sorted.len());
    for span in sorted {
        match out.last_mut() {
            Some(last) if last.label == span.label && span.start <= last.end => {
                last.end = last.end.max(span.end);
            }
            _ => out.push(span),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn span(start: usize, end: usize, label: u32) -> Span {
        Span { start, end, label }
    }

    #[test]
    fn majority_of_tokens_decides_boundaries() {
        // Three workers mark "Paris" (tokens 2..4) with slightly different boundaries.
        let first = [span(2, 4, 0)];
        let second = [span(1, 4, 0), span(6, 7, 1)];
        let third = [span(2, 5, 0)];
        let annotations = [
            Annotation {
                weight: 1.0,
                spans: &first,
            },
            Annotation {
                weight: 1.0,
                spans: &second,
            },
            Annotation {
                weight: 1.0,
                spans: &third,
            },
        ];
        assert_eq!(vote_spans(8, &annotations).unwrap(), vec![span(2, 4, 0)]);
    }

    #[test]
    fn weights_and_abstentions_count() {
        let marked = [span(0, 3, 0)];
        // One heavy worker against two who marked nothing.
        let heavy = [
            Annotation {
                weight: 3.0,
                spans: &marked,
            },
            Annotation {
                weight: 1.0,
                spans: &[],
            },
            Annotation {
                weight: 1.0,
                spans: &[],
            },
        ];
        assert_eq!(vote_spans(3, &heavy).unwrap(), vec![span(0, 3, 0)]);
        let light = [
            Annotation {
                weight: 1.0,
                spans: &marked,
            },
            Annotation {
                weight: 1.0,
                spans: &[],
            },
        ];
        assert_eq!(
            vote_spans(3, &light).unwrap(),
            vec![],
            "exactly half is not a majority"
        );
        // Overlapping spans of one worker count once.
        let overlapping = [span(0, 2, 0), span(1, 3, 0)];
        let once = [
            Annotation {
                weight: 1.0,
                spans: &overlapping,
            },
            Annotation {
                weight: 1.0,
                spans: &[],
            },
        ];
        assert_eq!(vote_spans(3, &once).unwrap(), vec![]);
    }

    /// Token by token, as the vote is defined: the reference for the sweep.
    fn vote_per_token(length: usize, annotations: &[Annotation<'_>]) -> Vec<Span> {
        let total: f64 = annotations.iter().map(|a| a.weight).sum();
        let mut result: Vec<Span> = Vec::new();
        for token in 0..length {
            let mut weights = std::collections::BTreeMap::<u32, f64>::new();
            for annotation in annotations {
                let labels: std::collections::BTreeSet<u32> = annotation
                    .spans
                    .iter()
                    .filter(|span| span.start <= token && token < span.end)
                    .map(|span| span.label)
                    .collect();
                for label in labels {
                    *weights.entry(label).or_default() += annotation.weight;
                }
            }
            let winner = weights
                .iter()
                .filter(|&(_, &weight)| weight > total / 2.0 + 1e-12)
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(&label, _)| label);
            let Some(label) = winner else { continue };
            match result.last_mut() {
                Some(last) if last.label == label && last.end == token => last.end += 1,
                _ => result.push(span(token, token + 1, label)),
            }
        }
        result
    }

    #[test]
    fn the_sweep_matches_the_vote_token_by_token() {
        use rand::{Rng, SeedableRng};
        let seed = rand::random::<u64>();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        for _ in 0..300 {
            let length = rng.random_range(1..40);
            let workers = rng.random_range(1..6);
            let spans: Vec<Vec<Span>> = (0..workers)
                .map(|_| {
                    (0..rng.random_range(0..5))
                        .map(|_| {
                            let start = rng.random_range(0..length);
                            let end = rng.random_range(start + 1..=length);
                            span(start, end, rng.random_range(0..3))
                        })
                        .collect()
                })
                .collect();
            let annotations: Vec<Annotation<'_>> = spans
                .iter()
                .map(|spans| Annotation {
                    weight: f64::from(rng.random_range(1..4u8)),
                    spans,
                })
                .collect();
            assert_eq!(
                vote_spans(length, &annotations).unwrap(),
                vote_per_token(length, &annotations),
                "seed {seed}: {spans:?}"
            );
        }
    }

    #[test]
    fn far_offsets_cost_nothing() {
        // A span ending near usize::MAX once overflowed a table of tokens.
        let far = [span(0, usize::MAX, 0)];
        let annotations = [
            Annotation {
                weight: 1.0,
                spans: &far,
            },
            Annotation {
                weight: 1.0,
                spans: &far,
            },
        ];
        assert_eq!(
            vote_spans(usize::MAX, &annotations).unwrap(),
            vec![span(0, usize::MAX, 0)]
        );
        assert_eq!(overlap(&far, &far), (usize::MAX, usize::MAX));
    }

    #[test]
    fn different_labels_split_spans() {
        let spans = [span(0, 2, 0), span(2, 4, 1)];
        let annotations = [Annotation {
            weight: 1.0,
            spans: &spans,
        }];
        assert_eq!(
            vote_spans(4, &annotations).unwrap(),
            vec![span(0, 2, 0), span(2, 4, 1)]
        );
        assert_eq!(vote_spans(0, &[]).unwrap(), vec![]);
    }

    #[test]
    fn rejects_bad_spans_and_weights() {
        assert!(
            vote_spans(
                3,
                &[Annotation {
                    weight: 1.0,
                    spans: &[span(2, 4, 0)]
                }]
            )
            .is_err()
        );
        assert!(
            vote_spans(
                3,
                &[Annotation {
                    weight: 1.0,
                    spans: &[span(2, 2, 0)]
                }]
            )
            .is_err()
        );
        assert!(
            vote_spans(
                3,
                &[Annotation {
                    weight: f64::NAN,
                    spans: &[]
                }]
            )
            .is_err()
        );
    }
}
