//! The crowd's pure model: who the simulated workers are (true accuracy,
//! think time), what the true labels are, and how a consensus scores
//! against them. No IO and no clock: everything takes an RNG, so tests pin
//! the distributions and a seed replays the same crowd.
//!
//! The truth never travels: tasks are imported with neutral data
//! (`{"text": "item 17 of room 3"}`), and the generator keeps each room's
//! labels by external id. A worker looks its task's label up here and
//! answers it with its accuracy, as a person who knows the answer with that
//! probability would. Gold tasks carry their label to the server (as a real
//! project's gold does), which never shows it to workers.

use std::time::Duration;

use rand::{Rng, SeedableRng};

/// Label names of the single-choice project; `--labels K` uses the first K.
pub const LABELS: [&str; 8] = ["a", "b", "c", "d", "e", "f", "g", "h"];
/// External ids are `i<n>` for every task.
const ID_PREFIX: &str = "i";

/// The population the workers are drawn from (from the command line).
#[derive(Debug, Clone, PartialEq)]
pub struct Population {
    /// Number of labels (2..=8).
    pub labels: usize,
    /// Honest workers' accuracy is Beta(alpha, beta): 8, 2 has mean 0.8.
    pub accuracy_alpha: f64,
    pub accuracy_beta: f64,
    /// Share of spammers, who answer uniformly at random (accuracy 1/K).
    pub spammer_share: f64,
    /// Think time is lognormal with this median...
    pub think_median: Duration,
    /// ...and this sigma (of the underlying normal).
    pub think_sigma: f64,
    /// Probability that a worker skips a task instead of answering it.
    pub skip_rate: f64,
}

/// One simulated worker's hidden traits.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Probability of answering the true label.
    pub accuracy: f64,
    pub spammer: bool,
    /// ln of the think-time median in seconds (the lognormal's mu).
    think_mu: f64,
    think_sigma: f64,
    labels: u8,
    skip_rate: f64,
}

/// What a worker does with a task once it has thought about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Answer(u8),
    Skip,
}

impl Profile {
    /// Draws a worker from the population.
    pub fn draw(population: &Population, rng: &mut impl Rng) -> Profile {
        let labels = population.labels.clamp(2, LABELS.len()) as u8;
        let spammer = rng.random::<f64>() < population.spammer_share;
        let accuracy = if spammer {
            1.0 / f64::from(labels)
        } else {
            beta(population.accuracy_alpha, population.accuracy_beta, rng)
        };
        Profile {
            accuracy,
            spammer,
            think_mu: population.think_median.as_secs_f64().max(1e-6).ln(),
            think_sigma: population.think_sigma.max(0.0),
            labels,
            skip_rate: population.skip_rate,
        }
    }

    /// One think time: lognormal around the population's median.
    pub fn think(&self, rng: &mut impl Rng) -> Duration {
        let seconds = (self.think_mu + self.think_sigma * normal(rng)).exp();
        // A day caps the (astronomically rare) tail so the Duration is valid.
        Duration::from_secs_f64(seconds.min(86_400.0))
    }

    /// Answers a task whose true label is `truth`: right with the worker's
    /// accuracy, else one of the wrong labels uniformly. Spammers pick any
    /// label uniformly, which is the same with accuracy 1/K.
    pub fn decide(&self, truth: u8, rng: &mut impl Rng) -> Verdict {
        if rng.random::<f64>() < self.skip_rate {
            return Verdict::Skip;
        }
        if self.spammer {
            return Verdict::Answer(rng.random_range(0..self.labels));
        }
        if rng.random::<f64>() < self.accuracy {
            return Verdict::Answer(truth);
        }
        // A wrong label, uniformly among the K - 1 others.
        let wrong = rng.random_range(0..self.labels - 1);
        Verdict::Answer(if wrong >= truth { wrong + 1 } else { wrong })
    }
}

/// A gap until the next chat message: exponential with mean `mean`, so
/// each worker chats as a Poisson process.
pub fn chat_gap(mean: Duration, rng: &mut impl Rng) -> Duration {
    // 1 - U is in (0, 1], so the logarithm is finite.
    let uniform = 1.0 - rng.random::<f64>();
    Duration::from_secs_f64((-uniform.ln() * mean.as_secs_f64()).min(86_400.0))
}

/// A standard normal draw (Box-Muller).
pub fn normal(rng: &mut impl Rng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A Gamma(shape, 1) draw: Marsaglia and Tsang's method, boosted for shape < 1.
pub fn gamma(shape: f64, rng: &mut impl Rng) -> f64 {
    if shape < 1.0 {
        let boost = rng.random::<f64>().max(f64::MIN_POSITIVE).powf(1.0 / shape);
        return gamma(shape + 1.0, rng) * boost;
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u = rng.random::<f64>();
        if u < 1.0 - 0.0331 * x.powi(4) || u.ln() < 0.5 * x * x + d * (1.0 - v + v.ln()) {
            return d * v;
        }
    }
}

/// A Beta(alpha, beta) draw from two Gamma draws.
pub fn beta(alpha: f64, beta: f64, rng: &mut impl Rng) -> f64 {
    let x = gamma(alpha, rng);
    let y = gamma(beta, rng);
    if x + y > 0.0 { x / (x + y) } else { 0.5 }
}

/// One room's true labels, by external id.
///
/// Every task's external id is `i<n>`, gold or not, so a worker cannot tell
/// gold from its id (as the server promises); tasks `i<regular>` and up are
/// the gold ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truth {
    /// Label index of task `i<n>`.
    labels: Vec<u8>,
    /// Tasks below this number are regular, the rest gold.
    regular: usize,
}

impl Truth {
    /// The labels of room `room` (its index in the whole run), drawn
    /// uniformly from `labels` classes. The same seed and room give the same
    /// labels, so every shard of a run agrees.
    pub fn generate(seed: u64, room: usize, regular: usize, gold: usize, labels: usize) -> Truth {
        let classes = labels.clamp(2, LABELS.len()) as u8;
        let mut rng = rand::rngs::SmallRng::seed_from_u64(
            seed ^ 0x7275_7468_u64 ^ (room as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let labels = (0..regular + gold)
            .map(|_| rng.random_range(0..classes))
            .collect();
        Truth { labels, regular }
    }

    fn number(external_id: &str) -> Option<usize> {
        external_id.strip_prefix(ID_PREFIX)?.parse().ok()
    }

    /// The true label of a task, by the external id the server shows.
    pub fn label_of(&self, external_id: &str) -> Option<u8> {
        self.labels.get(Self::number(external_id)?).copied()
    }

    /// Whether the task is one of the room's gold tasks.
    pub fn is_gold(&self, external_id: &str) -> bool {
        Self::number(external_id)
            .is_some_and(|number| number >= self.regular && number < self.labels.len())
    }

    /// `(external id, label, gold)` of every task, for the import.
    pub fn tasks(&self) -> impl Iterator<Item = (String, u8, bool)> + '_ {
        self.labels.iter().enumerate().map(|(number, &label)| {
            (
                format!("{ID_PREFIX}{number}"),
                label,
                number >= self.regular,
            )
        })
    }
}

/// The label's index from its name.
pub fn label_index(name: &str) -> Option<u8> {
    LABELS
        .iter()
        .position(|label| *label == name)
        .and_then(|index| u8::try_from(index).ok())
}

/// How a room's (or the run's) consensus compares with the truth.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ConsensusScore {
    /// Regular tasks by state.
    pub open: u64,
    pub complete: u64,
    pub review: u64,
    /// Tasks with a consensus label (complete, or review with a best guess).
    pub decided: u64,
    /// Decided tasks whose label is the truth.
    pub correct: u64,
    /// Complete tasks whose label is the truth.
    pub complete_correct: u64,
    /// Answers the server holds, all tasks (gold included).
    pub answers: u64,
    /// Tasks the generator cannot place (an unknown external id): a mix-up.
    pub unknown: u64,
}

impl ConsensusScore {
    /// Adds one task of the server's listing.
    pub fn add(
        &mut self,
        truth: &Truth,
        external_id: &str,
        state: &str,
        consensus: Option<&str>,
        answered: u64,
    ) {
        self.answers += answered;
        if truth.is_gold(external_id) {
            return;
        }
        let Some(true_label) = truth.label_of(external_id) else {
            self.unknown += 1;
            return;
        };
        match state {
            "complete" => self.complete += 1,
            "review" => self.review += 1,
            _ => self.open += 1,
        }
        let Some(label) = consensus else { return };
        self.decided += 1;
        let right = label_index(label) == Some(true_label);
        self.correct += u64::from(right);
        if state == "complete" {
            self.complete_correct += u64::from(right);
        }
    }

    pub fn merge(&mut self, other: &ConsensusScore) {
        self.open += other.open;
        self.complete += other.complete;
        self.review += other.review;
        self.decided += other.decided;
        self.correct += other.correct;
        self.complete_correct += other.complete_correct;
        self.answers += other.answers;
        self.unknown += other.unknown;
    }

    /// Share of decided tasks whose consensus is the truth.
    pub fn accuracy(&self) -> Option<f64> {
        (self.decided > 0).then(|| self.correct as f64 / self.decided as f64)
    }

    /// The same over complete tasks only.
    pub fn complete_accuracy(&self) -> Option<f64> {
        (self.complete > 0).then(|| self.complete_correct as f64 / self.complete as f64)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;

    fn population() -> Population {
        Population {
            labels: 3,
            accuracy_alpha: 8.0,
            accuracy_beta: 2.0,
            spammer_share: 0.1,
            think_median: Duration::from_secs(8),
            think_sigma: 0.8,
            skip_rate: 0.0,
        }
    }

    fn mean(values: &[f64]) -> f64 {
        values.iter().sum::<f64>() / values.len() as f64
    }

    #[test]
    fn beta_and_gamma_have_their_means() {
        let mut rng = SmallRng::seed_from_u64(1);
        let draws: Vec<f64> = (0..20_000).map(|_| beta(8.0, 2.0, &mut rng)).collect();
        assert!((mean(&draws) - 0.8).abs() < 0.01, "{}", mean(&draws));
        assert!(draws.iter().all(|p| (0.0..=1.0).contains(p)));
        // Var of Beta(8, 2) = ab / ((a+b)^2 (a+b+1)) = 16 / 1100.
        let var = mean(&draws.iter().map(|p| (p - 0.8).powi(2)).collect::<Vec<_>>());
        assert!((var - 16.0 / 1100.0).abs() < 0.002, "{var}");
        let small: Vec<f64> = (0..20_000).map(|_| gamma(0.5, &mut rng)).collect();
        assert!((mean(&small) - 0.5).abs() < 0.03, "{}", mean(&small));
    }

    #[test]
    fn think_time_is_lognormal_around_the_median() {
        let mut rng = SmallRng::seed_from_u64(2);
        let profile = Profile::draw(&population(), &mut rng);
        let mut draws: Vec<f64> = (0..20_001)
            .map(|_| profile.think(&mut rng).as_secs_f64())
            .collect();
        draws.sort_by(f64::total_cmp);
        let median = draws[draws.len() / 2];
        assert!((median - 8.0).abs() < 0.25, "median {median}");
        // The mean of a lognormal is median * exp(sigma^2 / 2) = 8 * 1.377.
        assert!((mean(&draws) - 8.0 * 0.32f64.exp()).abs() < 0.3);
        let fixed = Profile {
            think_sigma: 0.0,
            ..profile
        };
        assert_eq!(fixed.think(&mut rng), Duration::from_secs_f64(8.0));
    }

    #[test]
    fn workers_answer_with_their_accuracy() {
        let mut rng = SmallRng::seed_from_u64(3);
        let honest = Profile {
            accuracy: 0.7,
            spammer: false,
            think_mu: 0.0,
            think_sigma: 0.0,
            labels: 3,
            skip_rate: 0.0,
        };
        let mut right = 0;
        let mut wrong_labels = [0u32; 3];
        for _ in 0..30_000 {
            match honest.decide(1, &mut rng) {
                Verdict::Answer(1) => right += 1,
                Verdict::Answer(label) => wrong_labels[usize::from(label)] += 1,
                Verdict::Skip => panic!("skip rate is 0"),
            }
        }
        assert!((f64::from(right) / 30_000.0 - 0.7).abs() < 0.01);
        assert_eq!(wrong_labels[1], 0, "a wrong answer is never the truth");
        // The two wrong labels share the errors evenly.
        assert!((f64::from(wrong_labels[0]) / f64::from(wrong_labels[2]) - 1.0).abs() < 0.1);
        let spammer = Profile {
            spammer: true,
            skip_rate: 0.5,
            ..honest
        };
        let answers: Vec<Verdict> = (0..30_000).map(|_| spammer.decide(0, &mut rng)).collect();
        let skips = answers.iter().filter(|v| **v == Verdict::Skip).count();
        let right = answers.iter().filter(|v| **v == Verdict::Answer(0)).count();
        assert!((skips as f64 / 30_000.0 - 0.5).abs() < 0.02);
        assert!((right as f64 / (30_000 - skips) as f64 - 1.0 / 3.0).abs() < 0.02);
    }

    #[test]
    fn the_population_has_its_spammers() {
        let mut rng = SmallRng::seed_from_u64(4);
        let profiles: Vec<Profile> = (0..10_000)
            .map(|_| Profile::draw(&population(), &mut rng))
            .collect();
        let spammers = profiles.iter().filter(|p| p.spammer).count();
        assert!((spammers as f64 / 10_000.0 - 0.1).abs() < 0.015);
        assert!(
            profiles
                .iter()
                .filter(|p| p.spammer)
                .all(|p| (p.accuracy - 1.0 / 3.0).abs() < 1e-12)
        );
        let honest: Vec<f64> = profiles
            .iter()
            .filter(|p| !p.spammer)
            .map(|p| p.accuracy)
            .collect();
        assert!((mean(&honest) - 0.8).abs() < 0.01);
    }

    #[test]
    fn chat_gaps_are_exponential() {
        let mut rng = SmallRng::seed_from_u64(5);
        let gaps: Vec<f64> = (0..20_000)
            .map(|_| chat_gap(Duration::from_secs(120), &mut rng).as_secs_f64())
            .collect();
        assert!((mean(&gaps) - 120.0).abs() < 3.0, "{}", mean(&gaps));
        // P(gap > mean) = 1/e for an exponential.
        let over = gaps.iter().filter(|gap| **gap > 120.0).count() as f64 / 20_000.0;
        assert!((over - (-1.0f64).exp()).abs() < 0.015);
    }

    #[test]
    fn the_truth_map_is_deterministic_and_keyed_by_external_id() {
        let truth = Truth::generate(7, 3, 100, 10, 3);
        assert_eq!(truth, Truth::generate(7, 3, 100, 10, 3));
        assert_ne!(truth, Truth::generate(7, 4, 100, 10, 3), "rooms differ");
        let tasks: Vec<(String, u8, bool)> = truth.tasks().collect();
        assert_eq!(tasks.len(), 110);
        assert_eq!(tasks.iter().filter(|(_, _, gold)| *gold).count(), 10);
        for (id, label, gold) in &tasks {
            assert_eq!(truth.label_of(id), Some(*label), "{id}");
            assert_eq!(truth.is_gold(id), *gold);
            assert!(*label < 3);
        }
        assert_eq!(tasks[0].0, "i0");
        assert!(!tasks[99].2 && tasks[100].2, "the last 10 are gold");
        assert_eq!(truth.label_of("i110"), None);
        assert!(!truth.is_gold("i110"));
        assert_eq!(truth.label_of("x1"), None);
        assert_eq!(truth.label_of("i"), None);
        // Roughly uniform classes.
        let ones = tasks.iter().filter(|(_, label, _)| *label == 1).count();
        assert!((20..=55).contains(&ones), "{ones}");
    }

    #[test]
    fn consensus_is_scored_against_the_truth() {
        let truth = Truth::generate(1, 0, 4, 1, 2);
        let name = |id: &str| LABELS[usize::from(truth.label_of(id).unwrap())];
        let wrong = |id: &str| LABELS[1 - usize::from(truth.label_of(id).unwrap())];
        let mut score = ConsensusScore::default();
        score.add(&truth, "i0", "complete", Some(name("i0")), 3);
        score.add(&truth, "i1", "complete", Some(wrong("i1")), 3);
        score.add(&truth, "i2", "review", Some(name("i2")), 5);
        score.add(&truth, "i3", "open", None, 1);
        score.add(&truth, "i4", "open", None, 7);
        score.add(&truth, "zz", "open", None, 0);
        assert_eq!(
            (score.complete, score.review, score.open, score.unknown),
            (2, 1, 1, 1)
        );
        assert_eq!(score.answers, 19, "gold answers count as answers");
        assert_eq!((score.decided, score.correct), (3, 2));
        assert_eq!(score.accuracy(), Some(2.0 / 3.0));
        assert_eq!(score.complete_accuracy(), Some(0.5));
        let mut total = ConsensusScore::default();
        total.merge(&score);
        total.merge(&score);
        assert_eq!((total.decided, total.answers), (6, 38));
        assert_eq!(ConsensusScore::default().accuracy(), None);
        assert_eq!(label_index("c"), Some(2));
        assert_eq!(label_index("zz"), None);
    }
}
