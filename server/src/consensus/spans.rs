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
pub fn vote_spans(length: usize, annotations: &[Annotation<'_>]) -> Result<Vec<Span>> {
    let mut labels = 0usize;
    let mut total_weight = 0.0;
    for annotation in annotations {
        if !annotation.weight.is_finite() || annotation.weight < 0.0 {
            return Err(Error::BadRequest(format!(
                "span weight {} must be a finite number >= 0",
                annotation.weight
            )));
        }
        total_weight += annotation.weight;
        for span in annotation.spans {
            if span.start >= span.end || span.end > length {
                return Err(Error::BadRequest(format!(
                    "span {}..{} is empty or outside the text of {length} tokens",
                    span.start, span.end
                )));
            }
            labels = labels.max(span.label as usize + 1);
        }
    }
    // Per label, a difference array of weights: +w at start, -w at end.
    let mut coverage = vec![0.0; labels * (length + 1)];
    let mut merged = Vec::new();
    for annotation in annotations {
        merged.clear();
        merged.extend_from_slice(annotation.spans);
        merged.sort_unstable_by_key(|span| (span.label, span.start));
        // Overlapping spans of one worker and label count once per token.
        let mut open: Option<Span> = None;
        for &span in merged.iter() {
            match open {
                Some(ref mut current)
                    if current.label == span.label && span.start <= current.end =>
                {
                    current.end = current.end.max(span.end);
                }
                _ => {
                    if let Some(done) = open.replace(span) {
                        add(&mut coverage, length, done, annotation.weight);
                    }
                }
            }
        }
        if let Some(done) = open {
            add(&mut coverage, length, done, annotation.weight);
        }
    }
    for row in coverage.chunks_exact_mut(length + 1) {
        for index in 1..row.len() {
            row[index] += row[index - 1];
        }
    }
    let majority = total_weight / 2.0;
    let mut result: Vec<Span> = Vec::new();
    for token in 0..length {
        let winner = (0..labels)
            .map(|label| (label, coverage[label * (length + 1) + token]))
            .filter(|&(_, weight)| weight > majority + 1e-12)
            .max_by(|first, second| first.1.total_cmp(&second.1))
            .map(|(label, _)| label as u32);
        let Some(label) = winner else { continue };
        match result.last_mut() {
            Some(last) if last.label == label && last.end == token => last.end = token + 1,
            _ => result.push(Span {
                start: token,
                end: token + 1,
                label,
            }),
        }
    }
    Ok(result)
}

fn add(coverage: &mut [f64], length: usize, span: Span, weight: f64) {
    let row = span.label as usize * (length + 1);
    coverage[row + span.start] += weight;
    coverage[row + span.end] -= weight;
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
