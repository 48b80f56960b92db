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

/// Most character pairs (length × length, summed over every pair of
/// answers) one medoid search compares in full. The bit-parallel distance
/// does 64 of them per step, so this is tens of milliseconds; past it,
/// every pair is compared on an equal prefix that fits, so many long
/// answers cost no more than a few.
const PAIR_BUDGET: u64 = 400_000_000;

/// Index of the answer with the least mean normalized edit distance to
/// the others; `None` when there is no answer.
pub fn closest_text<S: AsRef<str>>(answers: &[S]) -> Option<usize> {
    closest_text_weighted(answers, &vec![1.0; answers.len()])
}

/// As [`closest_text`], each other answer's distance weighted by its
/// worker's weight (e.g. their estimated accuracy). `weights` shorter than
/// `answers` count the missing ones as 1.
pub fn closest_text_weighted<S: AsRef<str>>(answers: &[S], weights: &[f64]) -> Option<usize> {
    medoid(answers, weights).map(|(index, _)| index)
}

/// The medoid (as [`closest_text_weighted`]) and its mean unweighted
/// similarity (1 - distance) to the other answers, 1 when it is alone.
/// Its time is bounded by [`PAIR_BUDGET`] whatever the answers' number and
/// length.
pub fn medoid<S: AsRef<str>>(answers: &[S], weights: &[f64]) -> Option<(usize, f64)> {
    let mut normalized: Vec<Vec<char>> = answers
        .iter()
        .map(|answer| normalize(answer.as_ref()))
        .collect();
    truncate_to_budget(&mut normalized);
    let weight = |index: usize| {
        let weight = weights.get(index).copied().unwrap_or(1.0);
        if weight.is_finite() {
            weight.max(0.0)
        } else {
            0.0
        }
    };
    let count = normalized.len();
    let mut distances = vec![0.0; count * count];
    let mut totals = vec![0.0; count];
    for first in 0..count {
        for second in first + 1..count {
            let (Some(a), Some(b)) = (normalized.get(first), normalized.get(second)) else {
                continue;
            };
            let distance = normalized_distance(a, b);
            if let Some(cell) = distances.get_mut(first * count + second) {
                *cell = distance;
            }
            if let Some(cell) = distances.get_mut(second * count + first) {
                *cell = distance;
            }
            if let Some(total) = totals.get_mut(first) {
                *total += weight(second) * distance;
            }
            if let Some(total) = totals.get_mut(second) {
                *total += weight(first) * distance;
            }
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
    let (chosen, _) = best?;
    let similarity = if count <= 1 {
        1.0
    } else {
        let row = distances
            .get(chosen * count..(chosen + 1) * count)
            .unwrap_or(&[]);
        row.iter()
            .enumerate()
            .filter(|(index, _)| *index != chosen)
            .map(|(_, distance)| 1.0 - distance)
            .sum::<f64>()
            / (count - 1) as f64
    };
    Some((chosen, similarity))
}

/// Shortens every answer to one common prefix length when comparing them
/// all in full would exceed [`PAIR_BUDGET`].
fn truncate_to_budget(texts: &mut [Vec<char>]) {
    let cells = |texts: &[Vec<char>]| -> u64 {
        let mut sum = 0u64;
        for (index, first) in texts.iter().enumerate() {
            for second in texts.iter().skip(index + 1) {
                sum = sum.saturating_add((first.len() as u64).saturating_mul(second.len() as u64));
            }
        }
        sum
    };
    if cells(texts) <= PAIR_BUDGET {
        return;
    }
    let pairs = (texts.len() as u64).saturating_mul(texts.len().saturating_sub(1) as u64) / 2;
    let side = (PAIR_BUDGET / pairs.max(1)).isqrt();
    let side = usize::try_from(side).unwrap_or(usize::MAX).max(1);
    for text in texts.iter_mut() {
        text.truncate(side);
    }
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

/// Edit distance by Myers' bit-parallel algorithm (blocks of 64 rows, as
/// in Myers 1999, "A fast bit-vector algorithm for approximate string
/// matching"): 64 cells of the dynamic-programming table per step, so two
/// 10,000-character answers take about 1.6 million steps, not 100 million.
fn levenshtein(pattern: &[char], text: &[char]) -> usize {
    if pattern.is_empty() {
        return text.len();
    }
    let blocks = pattern.len().div_ceil(64);
    // Which rows of each block hold each character of the pattern.
    let mut peq: std::collections::HashMap<char, Vec<u64>> = std::collections::HashMap::new();
    for (row, &character) in pattern.iter().enumerate() {
        let masks = peq.entry(character).or_insert_with(|| vec![0; blocks]);
        if let Some(mask) = masks.get_mut(row / 64) {
            *mask |= 1 << (row % 64);
        }
    }
    let mut positive = vec![u64::MAX; blocks];
    let mut negative = vec![0u64; blocks];
    let last_bit = 1u64 << ((pattern.len() - 1) % 64);
    let mut score = pattern.len();
    let none = vec![0u64; blocks];
    for character in text {
        let equal = peq.get(character).unwrap_or(&none);
        // The top row of the table grows by one per column.
        let mut carry: i8 = 1;
        for (block, ((pv, mv), &eq)) in positive
            .iter_mut()
            .zip(negative.iter_mut())
            .zip(equal)
            .enumerate()
        {
            let high = if block + 1 == blocks {
                last_bit
            } else {
                1 << 63
            };
            carry = advance_block(pv, mv, eq, carry, high);
        }
        score = match carry {
            1 => score + 1,
            -1 => score.saturating_sub(1),
            _ => score,
        };
    }
    score
}

/// One block's step for one text character: updates the block's vertical
/// deltas from its equality mask and the horizontal delta entering from
/// the block above, and returns the one leaving through `high`.
fn advance_block(positive: &mut u64, negative: &mut u64, equal: u64, carry: i8, high: u64) -> i8 {
    let (pv, mv) = (*positive, *negative);
    let xv = equal | mv;
    let equal = if carry < 0 { equal | 1 } else { equal };
    let xh = ((equal & pv).wrapping_add(pv) ^ pv) | equal;
    let mut ph = mv | !(xh | pv);
    let mut mh = pv & xh;
    let out = if ph & high != 0 {
        1
    } else if mh & high != 0 {
        -1
    } else {
        0
    };
    ph <<= 1;
    mh <<= 1;
    match carry {
        c if c < 0 => mh |= 1,
        c if c > 0 => ph |= 1,
        _ => {}
    }
    *positive = mh | !(xv | ph);
    *negative = ph & xv;
    out
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

    /// The textbook table, to check the bit-parallel distance against.
    fn table_distance(first: &[char], second: &[char]) -> usize {
        let mut previous: Vec<usize> = (0..=second.len()).collect();
        for (row, a) in first.iter().enumerate() {
            let mut current = vec![row + 1; second.len() + 1];
            for (column, b) in second.iter().enumerate() {
                current[column + 1] = (previous[column] + usize::from(a != b))
                    .min(previous[column + 1] + 1)
                    .min(current[column] + 1);
            }
            previous = current;
        }
        previous[second.len()]
    }

    #[test]
    fn bit_parallel_distance_matches_the_table() {
        use rand::{Rng, SeedableRng};
        let seed = rand::random::<u64>();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        for _ in 0..400 {
            // Lengths around the 64-row block edges, small alphabets so
            // that matches are common.
            let text = |rng: &mut rand::rngs::StdRng| -> Vec<char> {
                let length = rng.random_range(0..200);
                let alphabet = rng.random_range(1..5u32);
                (0..length)
                    .map(|_| char::from_u32(97 + rng.random_range(0..alphabet)).unwrap())
                    .collect()
            };
            let (first, second) = (text(&mut rng), text(&mut rng));
            assert_eq!(
                levenshtein(&first, &second),
                table_distance(&first, &second),
                "seed {seed}: {first:?} vs {second:?}"
            );
        }
    }

    #[test]
    fn long_answers_are_compared_within_the_budget() {
        // Fifty 10,000-character answers: in full, 1,225 pairs of 10^8
        // cells; within the budget, a prefix of each.
        let answers: Vec<String> = (0..50)
            .map(|index| format!("{}{}", "lorem ipsum ".repeat(833), index))
            .collect();
        let (chosen, similarity) = medoid(&answers, &[]).unwrap();
        assert!(chosen < 50);
        assert!(similarity > 0.99, "{similarity}");
        let mut texts: Vec<Vec<char>> = answers.iter().map(|a| normalize(a)).collect();
        truncate_to_budget(&mut texts);
        assert!(
            texts[0].len() < 10_000 && texts[0].len() >= 500,
            "{}",
            texts[0].len()
        );
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
