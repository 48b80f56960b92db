//! Numeric answers (a score, a count, a price): the per-item median.
//!
//! Why the median and not the mean: one worker typing 1000 for 10, or a
//! spammer answering the extreme of the scale, moves a mean arbitrarily
//! far; the median moves by at most one rank. With an even number of
//! answers it is the mean of the two middle values.

use super::Answers;
use crate::error::{Error, Result};

/// The median of `values` (reordered in place); `None` when empty. NaN
/// sorts above every number (`f64::total_cmp`), so callers should not pass it.
pub fn median(values: &mut [f64]) -> Option<f64> {
    let length = values.len();
    if length == 0 {
        return None;
    }
    let middle = length / 2;
    let (lower, upper, _) = values.select_nth_unstable_by(middle, f64::total_cmp);
    let upper = *upper;
    if length % 2 == 1 {
        return Some(upper);
    }
    let below = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // (MAX + MAX) / 2 would be infinite, and halving each first is not
    // exact for subnormal numbers: the gap's half, from the lower one, is
    // exact for equal values and overflows only when the gap does.
    let middle = below + (upper - below) / 2.0;
    Some(if middle.is_finite() {
        middle
    } else {
        below / 2.0 + upper / 2.0
    })
}

/// The numeric value of every label name; an error names the first label
/// that is not a finite number.
pub fn label_values(answers: &Answers) -> Result<Vec<f64>> {
    answers
        .label_names()
        .iter()
        .map(|name| parse_number(name))
        .collect()
}

/// Parses one numeric answer or gold value.
pub fn parse_number(text: &str) -> Result<f64> {
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        _ => Err(Error::Invalid(format!("{text:?} is not a number"))),
    }
}

/// The median answer of every item (NaN for an item without answers).
pub fn medians(answers: &Answers, values: &[f64]) -> Vec<f64> {
    let mut scratch = Vec::new();
    (0..answers.items())
        .map(|item| {
            let (_, labels) = answers.of_item(item);
            scratch.clear();
            scratch.extend(
                labels
                    .iter()
                    .filter_map(|&label| values.get(label as usize)),
            );
            median(&mut scratch).unwrap_or(f64::NAN)
        })
        .collect()
}

/// Mean absolute error of `estimates` on gold `(item, value)` pairs whose
/// item has an estimate; `None` without any.
pub fn mean_absolute_error(estimates: &[f64], gold: &[(u32, f64)]) -> Option<f64> {
    let errors: Vec<f64> = gold
        .iter()
        .filter_map(|&(item, truth)| {
            estimates
                .get(item as usize)
                .filter(|value| value.is_finite())
                .map(|value| (value - truth).abs())
        })
        .collect();
    (!errors.is_empty()).then(|| errors.iter().sum::<f64>() / errors.len() as f64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::consensus::AnswersBuilder;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&mut [3.0, -1.0, 1000.0]), Some(3.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut [7.0]), Some(7.0));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn medians_per_item_and_error() {
        let mut builder = AnswersBuilder::new();
        for (item, worker, value) in [
            ("a", "1", "10"),
            ("a", "2", "12"),
            ("a", "3", "-90"),
            ("b", "1", "5"),
            ("b", "2", "6"),
        ] {
            builder.push(item, worker, value);
        }
        let answers = builder.build().unwrap();
        let values = label_values(&answers).unwrap();
        let estimates = medians(&answers, &values);
        assert_eq!(estimates, vec![10.0, 5.5]);
        assert_eq!(
            mean_absolute_error(&estimates, &[(0, 11.0), (1, 5.5), (9, 0.0)]),
            Some(0.5)
        );
        assert_eq!(mean_absolute_error(&estimates, &[]), None);
    }

    #[test]
    fn rejects_non_numbers() {
        let mut builder = AnswersBuilder::new();
        builder.push("a", "1", "ten");
        assert!(label_values(&builder.build().unwrap()).is_err());
        assert!(parse_number("inf").is_err());
        assert_eq!(parse_number(" -2.5 ").unwrap(), -2.5);
    }
}
