//! Dawid-Skene (1979): every worker has a confusion matrix
//! `P(observed label | true label)`, every item a latent true label drawn from
//! class priors, fitted by EM from majority-vote posteriors.
//!
//! Why this shape: it is the estimator that beats majority vote on every
//! benchmark we track (it learns that a worker who always says "no" says
//! little), and with flat tables it is cheap. Each iteration is one pass
//! over the answers that does the E-step of an item (the product of the
//! class prior and its answers' confusion rows, normalized per item) and at
//! once adds that posterior into the next M-step's counts, so the answers
//! are read once per iteration. The confusions are normalized once per
//! iteration (workers × K² cells); no logarithm or exponential is taken per
//! answer. Label counts up to 8 get a copy of the pass with the row length
//! fixed at compile time. It runs on the calling thread: the live engine
//! decides where (a blocking task), not this module.
//!
//! Smoothing: counts get `smoothing` pseudo-counts per cell (a symmetric
//! Dirichlet prior, so EM is MAP-EM): a worker seen on three items cannot get
//! a probability of exactly 0, which would veto a label forever. The default
//! 0.01 is small enough that well-observed workers are unaffected.
//!
//! Stopping: when the marginal log-likelihood per answer gains less than
//! `tolerance` (default 1e-8) in an iteration, or after `max_iterations`
//! (default 200) iterations. EM converges linearly, slowly when items sit
//! near 0.5: on zheng2017-d_product a looser 1e-6 stops at iteration 38
//! with a few items still on the wrong side of where the fixed point puts
//! them. An iteration is cheap (about 0.07 ms for d_product's 25k answers
//! in a release build), so the defaults favour converging.

use super::{Answers, Consensus, vote};

/// Options of [`dawid_skene`].
#[derive(Debug, Clone, Copy)]
pub struct DsOptions {
    /// EM iterations at most.
    pub max_iterations: u32,
    /// Stop when the log-likelihood per answer gains less than this.
    pub tolerance: f64,
    /// Pseudo-count added to every confusion cell and class prior.
    pub smoothing: f64,
}

impl Default for DsOptions {
    fn default() -> DsOptions {
        DsOptions {
            max_iterations: 200,
            tolerance: 1e-8,
            smoothing: 0.01,
        }
    }
}

/// A fitted Dawid-Skene model.
#[derive(Debug, Clone)]
pub struct DsModel {
    /// Item posteriors (the answer).
    pub consensus: Consensus,
    /// `[worker][true][observed]`, each `[worker][true]` row sums to one.
    pub confusion: Vec<f64>,
    /// Class priors.
    pub priors: Vec<f64>,
    /// Marginal log-likelihood per answer at the last E-step.
    pub log_likelihood: f64,
}

impl DsModel {
    /// The confusion matrix of one worker, `[true][observed]` row-major.
    pub fn worker_confusion(&self, worker: usize) -> Option<&[f64]> {
        let classes = self.priors.len();
        self.confusion
            .get(worker * classes * classes..(worker + 1) * classes * classes)
    }
}

/// Runs Dawid-Skene EM and returns the posteriors.
pub fn dawid_skene(answers: &Answers, options: DsOptions) -> Consensus {
    fit(answers, options).consensus
}

/// Runs Dawid-Skene EM and returns the whole model.
pub fn fit(answers: &Answers, options: DsOptions) -> DsModel {
    let initial = vote::majority_vote(answers);
    // Small label counts get a pass with the row length known at compile
    // time (rows are arrays kept in registers); others share one pass.
    let pass: Pass = match answers.classes() {
        0 => {
            return DsModel {
                consensus: initial,
                confusion: Vec::new(),
                priors: Vec::new(),
                log_likelihood: 0.0,
            };
        }
        2 => pass_fixed::<2>,
        3 => pass_fixed::<3>,
        4 => pass_fixed::<4>,
        5 => pass_fixed::<5>,
        6 => pass_fixed::<6>,
        7 => pass_fixed::<7>,
        8 => pass_fixed::<8>,
        _ => pass_any,
    };
    fit_with(answers, initial, options, pass)
}

/// The EM loop around one of the passes.
fn fit_with(answers: &Answers, initial: Consensus, options: DsOptions, pass: Pass) -> DsModel {
    let classes = answers.classes();
    let width = classes as u32;
    let mut state = State {
        classes,
        offsets: answers.offsets(),
        cells: answers
            .answer_workers()
            .iter()
            .zip(answers.answer_labels())
            .map(|(&worker, &label)| worker * width + label)
            .collect(),
        posteriors: initial.posteriors,
        counts: vec![0.0; answers.workers() * classes * classes],
        table: vec![0.0; answers.workers() * classes * classes],
        class_totals: vec![0.0; classes],
        priors: vec![0.0; classes],
    };
    accumulate(&mut state);
    let per_answer = 1.0 / state.cells.len().max(1) as f64;
    let (mut previous, mut log_likelihood, mut iterations) =
        (f64::NEG_INFINITY, f64::NEG_INFINITY, 0);
    while iterations < options.max_iterations {
        iterations += 1;
        normalize(&mut state, options.smoothing);
        state.counts.fill(0.0);
        log_likelihood = pass(&mut state, false) * per_answer;
        if log_likelihood - previous < options.tolerance {
            break;
        }
        previous = log_likelihood;
    }
    // Passes do not store posteriors (a stream of items × K writes per
    // iteration, needed only once): repeat the last E-step, same table, storing them.
    if iterations > 0 {
        state.counts.fill(0.0);
        pass(&mut state, true);
    }
    // Refit the confusions on the final posteriors so the model matches them.
    normalize(&mut state, options.smoothing);
    let mut confusion = vec![0.0; state.table.len()];
    let cells = classes * classes;
    for (worker_table, worker_confusion) in state
        .table
        .chunks_exact(cells)
        .zip(confusion.chunks_exact_mut(cells))
    {
        for truth in 0..classes {
            for observed in 0..classes {
                worker_confusion[truth * classes + observed] =
                    worker_table[observed * classes + truth];
            }
        }
    }
    let consensus = Consensus::new(classes, state.posteriors, iterations);
    DsModel {
        consensus,
        confusion,
        priors: state.priors,
        log_likelihood,
    }
}

/// The E-step multiplies probabilities (normalized per item) instead of
/// adding logarithms, so no logarithm or exponential is taken per answer.
/// Underflow is ruled out by three constants: table probabilities are
/// raised to at least [`FLOOR`] (2^-40, about 1e-12, the same order as
/// Crowd-Kit's 1e-10 clip; with smoothing a real probability is far above
/// it); the largest score of an item is checked every [`RESCALE_EVERY`]
/// answers and multiplied by [`RESCALE`] until it is at least [`SMALL`].
/// Between two checks it can fall by at most 2^-640, from 2^-300 to
/// 2^-940, still a normal f64.
const FLOOR: f64 = f64::from_bits((1023 - 40) << 52);
const RESCALE_EVERY: usize = 16;
/// 2^-300.
const SMALL: f64 = f64::from_bits((1023 - 300) << 52);
/// 2^300.
const RESCALE: f64 = f64::from_bits((1023 + 300) << 52);

/// One EM iteration over all items; stores the posteriors only when asked.
/// Returns the total log-likelihood of the answers.
type Pass = fn(&mut State<'_>, bool) -> f64;

/// Everything one EM iteration reads and writes.
struct State<'a> {
    classes: usize,
    /// CSR offsets of the answers by item.
    offsets: &'a [u32],
    /// The table row of every answer: `worker * classes + observed label`.
    cells: Vec<u32>,
    /// `[item][true]`.
    posteriors: Vec<f64>,
    /// M-step counts, `[worker][observed][true]`, so an answer writes one contiguous row.
    counts: Vec<f64>,
    /// E-step probabilities `P(observed | true)`, `[worker][observed][true]`.
    table: Vec<f64>,
    /// Sum of posteriors per class (for the priors).
    class_totals: Vec<f64>,
    priors: Vec<f64>,
}

/// One EM iteration for `K` labels: for each item, the E-step (prior times
/// its answers' table rows, normalized) then its share of the next M-step
/// (the posterior added to each answer's count row).
fn pass_fixed<const K: usize>(state: &mut State<'_>, store: bool) -> f64 {
    let (table, _) = state.table.as_chunks::<K>();
    let (counts, _) = state.counts.as_chunks_mut::<K>();
    let (posteriors, _) = state.posteriors.as_chunks_mut::<K>();
    let mut priors = [0.0; K];
    priors.copy_from_slice(&state.priors);
    let mut totals = [0.0; K];
    let mut likelihood = LogProduct::new();
    for (window, posterior) in state.offsets.windows(2).zip(posteriors.iter_mut()) {
        let item_cells = &state.cells[window[0] as usize..window[1] as usize];
        let mut scores = priors;
        for chunk in item_cells.chunks(RESCALE_EVERY) {
            for &cell in chunk {
                for (score, probability) in scores.iter_mut().zip(&table[cell as usize]) {
                    *score *= probability;
                }
            }
            let mut largest = scores.iter().copied().fold(0.0, f64::max);
            while largest < SMALL {
                scores.iter_mut().for_each(|score| *score *= RESCALE);
                largest *= RESCALE;
                likelihood.rescaled += 1;
            }
        }
        let sum: f64 = scores.iter().sum();
        likelihood.multiply(sum);
        let inverse = 1.0 / sum;
        let mut row = [0.0; K];
        for ((probability, score), total) in row.iter_mut().zip(scores).zip(totals.iter_mut()) {
            *probability = score * inverse;
            *total += *probability;
        }
        for &cell in item_cells {
            for (count, probability) in counts[cell as usize].iter_mut().zip(row) {
                *count += probability;
            }
        }
        if store {
            *posterior = row;
        }
    }
    state.class_totals.copy_from_slice(&totals);
    likelihood.ln()
}

/// [`pass_fixed`] for any number of labels, with rows as slices.
fn pass_any(state: &mut State<'_>, store: bool) -> f64 {
    let classes = state.classes;
    let mut scores = vec![0.0; classes];
    let mut row = vec![0.0; classes];
    state.class_totals.fill(0.0);
    let mut likelihood = LogProduct::new();
    for (window, posterior) in state
        .offsets
        .windows(2)
        .zip(state.posteriors.chunks_exact_mut(classes))
    {
        let item_cells = &state.cells[window[0] as usize..window[1] as usize];
        scores.copy_from_slice(&state.priors);
        for chunk in item_cells.chunks(RESCALE_EVERY) {
            for &cell in chunk {
                let row = &state.table[cell as usize * classes..(cell as usize + 1) * classes];
                for (score, probability) in scores.iter_mut().zip(row) {
                    *score *= probability;
                }
            }
            let mut largest = scores.iter().copied().fold(0.0, f64::max);
            while largest < SMALL {
                scores.iter_mut().for_each(|score| *score *= RESCALE);
                largest *= RESCALE;
                likelihood.rescaled += 1;
            }
        }
        let sum: f64 = scores.iter().sum();
        likelihood.multiply(sum);
        let inverse = 1.0 / sum;
        for ((probability, score), total) in row
            .iter_mut()
            .zip(&scores)
            .zip(state.class_totals.iter_mut())
        {
            *probability = score * inverse;
            *total += *probability;
        }
        for &cell in item_cells {
            let counts = &mut state.counts[cell as usize * classes..(cell as usize + 1) * classes];
            for (count, probability) in counts.iter_mut().zip(&row) {
                *count += probability;
            }
        }
        if store {
            posterior.copy_from_slice(&row);
        }
    }
    likelihood.ln()
}

/// A sum of logarithms kept as a running product, taking a logarithm only
/// when the product leaves a safe range (rarely, not once per item).
struct LogProduct {
    logs: f64,
    product: f64,
    /// Times an item's scores were multiplied by [`RESCALE`].
    rescaled: u64,
}

impl LogProduct {
    fn new() -> LogProduct {
        LogProduct {
            logs: 0.0,
            product: 1.0,
            rescaled: 0,
        }
    }

    /// Adds `ln(value)` for a value in (0, number of labels].
    fn multiply(&mut self, value: f64) {
        if value < SMALL {
            self.logs += value.ln();
            return;
        }
        self.product *= value;
        if !(SMALL * SMALL..=RESCALE * RESCALE).contains(&self.product) {
            self.logs += self.product.ln();
            self.product = 1.0;
        }
    }

    fn ln(&self) -> f64 {
        self.logs + self.product.ln() - self.rescaled as f64 * RESCALE.ln()
    }
}

/// Adds every answer's item posterior into its count row (the first M-step).
fn accumulate(state: &mut State<'_>) {
    let classes = state.classes;
    state.class_totals.fill(0.0);
    for (window, posterior) in state
        .offsets
        .windows(2)
        .zip(state.posteriors.chunks_exact(classes))
    {
        for (total, probability) in state.class_totals.iter_mut().zip(posterior) {
            *total += probability;
        }
        for &cell in &state.cells[window[0] as usize..window[1] as usize] {
            let row = &mut state.counts[cell as usize * classes..(cell as usize + 1) * classes];
            for (count, probability) in row.iter_mut().zip(posterior) {
                *count += probability;
            }
        }
    }
}

/// The M-step: smoothed counts to `table[worker][observed][true] =
/// P(observed | true)` (normalized over observed labels, floored at
/// [`FLOOR`]) and class priors.
fn normalize(state: &mut State<'_>, smoothing: f64) {
    let classes = state.classes;
    let cells = classes * classes;
    let uniform = 1.0 / classes as f64;
    for (counts, table) in state
        .counts
        .chunks_exact(cells)
        .zip(state.table.chunks_exact_mut(cells))
    {
        for truth in 0..classes {
            let total: f64 = (0..classes)
                .map(|observed| counts[observed * classes + truth])
                .sum::<f64>()
                + smoothing * classes as f64;
            for observed in 0..classes {
                let cell = observed * classes + truth;
                table[cell] = if total > 0.0 {
                    ((counts[cell] + smoothing) / total).max(FLOOR)
                } else {
                    uniform
                };
            }
        }
    }
    let items: f64 = state.class_totals.iter().sum::<f64>() + smoothing * classes as f64;
    for (prior, total) in state.priors.iter_mut().zip(&state.class_totals) {
        *prior = if items > 0.0 {
            ((total + smoothing) / items).max(FLOOR)
        } else {
            uniform
        };
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::consensus::{AnswersBuilder, Decision};

    #[test]
    fn learns_that_a_contrarian_worker_is_informative() {
        // Workers a and b are right; c always says the opposite. MV ties
        // nothing here, but DS must learn c's flipped confusion and be sure.
        let mut builder = AnswersBuilder::new();
        for item in 0..40 {
            let truth = if item % 3 == 0 { "yes" } else { "no" };
            let flipped = if truth == "yes" { "no" } else { "yes" };
            let name = item.to_string();
            builder.push(&name, "a", truth);
            builder.push(&name, "b", if item % 10 == 0 { flipped } else { truth });
            builder.push(&name, "c", flipped);
        }
        let answers = builder.build().unwrap();
        let model = fit(&answers, DsOptions::default());
        let yes = answers
            .label_names()
            .iter()
            .position(|label| label == "yes")
            .unwrap() as u32;
        for item in 0..40 {
            let expected = if item % 3 == 0 { yes } else { 1 - yes };
            assert_eq!(
                model.consensus.decision(item),
                Some(Decision::Label(expected)),
                "item {item}"
            );
            assert!(model.consensus.confidence(item) > 0.9);
        }
        let worker_c = answers
            .worker_names()
            .iter()
            .position(|worker| worker == "c")
            .unwrap();
        let confusion = model.worker_confusion(worker_c).unwrap();
        assert!(
            confusion[yes as usize * 2 + (1 - yes as usize)] > 0.9,
            "c flips yes: {confusion:?}"
        );
        assert!((model.priors.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(model.consensus.iterations() >= 2);
        assert!(model.log_likelihood.is_finite());
    }

    #[test]
    fn the_fixed_and_general_passes_agree() {
        let spec =
            crate::consensus::synthetic::SyntheticSpec::parse("300x4,workers=30,classes=3,seed=3")
                .unwrap();
        let dataset = crate::consensus::synthetic::generate(spec).unwrap();
        let answers = &dataset.answers;
        let fixed = fit(answers, DsOptions::default());
        let general = fit_with(
            answers,
            vote::majority_vote(answers),
            DsOptions::default(),
            pass_any,
        );
        assert_eq!(fixed.consensus.iterations(), general.consensus.iterations());
        for (first, second) in fixed
            .consensus
            .posteriors
            .iter()
            .zip(&general.consensus.posteriors)
        {
            assert!((first - second).abs() < 1e-12);
        }
        assert!((fixed.log_likelihood - general.log_likelihood).abs() < 1e-12);
        assert!(
            fixed
                .consensus
                .accuracy(&dataset.categorical_gold())
                .unwrap()
                > 0.8
        );
    }

    #[test]
    fn stops_at_max_iterations_and_handles_empty_input() {
        let answers = AnswersBuilder::new().build().unwrap();
        let consensus = dawid_skene(&answers, DsOptions::default());
        assert_eq!(consensus.items(), 0);
        let mut builder = AnswersBuilder::new();
        builder.push("i", "w", "x");
        builder.push("i", "v", "y");
        let answers = builder.build().unwrap();
        let consensus = dawid_skene(
            &answers,
            DsOptions {
                max_iterations: 1,
                ..DsOptions::default()
            },
        );
        assert_eq!(consensus.iterations(), 1);
        let row = consensus.posterior(0).unwrap();
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
}
