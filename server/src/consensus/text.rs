//! Free-text answers (a transcription, a name, a short description): pick
//! the answer closest to the others, the medoid.
//!
//! Why a medoid and not a synthesized string: the result is always
//! something a worker actually wrote, so it can be shown and credited.
//!
//! Why normalized edit distance (Levenshtein over characters divided by the
//! longer length, in [0, 1]): crowd transcriptions of the same thing differ
//! by typos and small omissions, which edit distance counts exactly, while
//! token Jaccard treats "recieve" and "receive" as unrelated words and
//! ignores word order. Before comparing, answers are trimmed, runs of
//! whitespace become one space and letters are lower-cased, so "Paris " and
//! "paris" agree fully. The mean distance to the others decides; on a tie
//! the earlier answer wins (callers pass answers in submission order).

/// Index of the answer with the least mean normalized edit distance to
/// the others; `None` when there is no answer.
pub fn closest_text<S: AsRef<str>>(answers: &[S]) -> Option<usize> {
    closest_text_weighted(answers, &vec![1.0; answers.len()])
}

/// As [`closest_text`], each other answer's distance weighted by its
/// worker's weight (e.g. their estimated accuracy). `weights` shorter than
/// `answers` count the missing ones as 1.
pub fn closest_text_weighted<S: AsRef<str>>(answers: &[S], weights: &[f64]) -> Option<usize> {
    let normalized: Vec<Vec<char>> = answers
        .iter()
        .map(|answer| normalize(answer.as_ref()))
        .collect();
    let weight = |index: usize| weights.get(index).copied().unwrap_or(1.0).max(0.0);
    let count = normalized.len();
    let mut totals = vec![0.0; count];
    for first in 0..count {
        for second in first + 1..count {
            let distance = normalized_distance(&normalized[first], &normalized[second]);
            totals[first] += weight(second) * distance;
            totals[second] += weight(first) * distance;
        }
    }
    let all_weight: f64 = (0..count).map(weight).sum();
    let mut best: Option<(usize, f64)> = None;
    for (index, total) in totals.iter().enumerate() {
        let others = all_weight - weight(index);
        let mean = if others > 0.0 { total / others } else { 0.0 };
        if best.is_none_or(|(_, best_mean)| mean < best_mean - 1e-12) {
            best = Some((index, mean));
        }
    }
    best.map(|(index, _)| index)
}

/// Levenshtein distance over characters of the normalized strings, divided
/// by the longer length: 0 for equal strings, 1 for nothing in common.
pub fn normalized_edit_distance(first: &str, second: &str) -> f64 {
    normalized_distance(&normalize(first), &normalize(second))
}

fn normalized_distance(first: &[char], second: &[char]) -> f64 {
    let longer = first.len().max(second.len());
    if longer == 0 {
        return 0.0;
    }
    levenshtein(first, second) as f64 / longer as f64
}

/// Trimmed, single-spaced, lower-cased characters.
fn normalize(text: &str) -> Vec<char> {
    let mut characters = Vec::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !characters.is_empty() {
            characters.push(' ');
        }
        characters.extend(word.chars().flat_map(char::to_lowercase));
    }
    characters
}

/// Edit distance with two rows of the dynamic-programming table.
fn levenshtein(first: &[char], second: &[char]) -> usize {
    let mut previous: Vec<usize> = (0..=second.len()).collect();
    let mut current = vec![0; second.len() + 1];
    for (row, &a) in first.iter().enumerate() {
        current[0] = row + 1;
        for (column, &b) in second.iter().enumerate() {
            let substitution = previous[column] + usize::from(a != b);
            current[column + 1] = substitution
                .min(previous[column + 1] + 1)
                .min(current[column] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[second.len()]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn distance_is_normalized_and_ignores_case_and_spacing() {
        assert_eq!(normalized_edit_distance("kitten", "sitting"), 3.0 / 7.0);
        assert_eq!(normalized_edit_distance("  Paris ", "paris"), 0.0);
        assert_eq!(normalized_edit_distance("New   York", "new york"), 0.0);
        assert_eq!(normalized_edit_distance("", ""), 0.0);
        assert_eq!(normalized_edit_distance("abc", ""), 1.0);
        assert_eq!(normalized_edit_distance("été", "ete"), 2.0 / 3.0);
    }

    #[test]
    fn picks_the_answer_closest_to_the_others() {
        let answers = [
            "the quick brown fox",
            "the quick brown fax",
            "teh quick brown fox",
            "lorem ipsum",
            "the quick brown fox",
        ];
        assert_eq!(closest_text(&answers), Some(0));
        assert_eq!(closest_text(&["only"]), Some(0));
        assert_eq!(closest_text::<&str>(&[]), None);
        // Two answers are equally close to each other: the earlier wins.
        assert_eq!(closest_text(&["abc", "abd"]), Some(0));
    }

    #[test]
    fn weights_shift_the_choice() {
        let answers = ["cat", "cart", "dog", "dog"];
        assert_eq!(closest_text(&answers), Some(2));
        // Trusting the first two workers far more moves the medoid to them.
        assert_eq!(
            closest_text_weighted(&answers, &[10.0, 10.0, 0.1, 0.1]),
            Some(0)
        );
    }
}
