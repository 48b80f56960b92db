//! The live queue's decisions in a room of 1,000,000 open tasks and 10,000
//! workers (issue 20's target: a grant decided in at most 5 µs), and what
//! that room's work state takes in memory (target: at most 200 MB).
//!
//! Run in release: `cargo bench -p crowdroom-work --bench queue`. The room
//! is built once (a few seconds); its memory is printed before the
//! benchmarks run: the growth of the process's resident set while it was
//! built, and [`WorkState::heap_bytes`], the estimate from the capacities
//! of its collections. The workspace forbids `unsafe`, so there is no
//! counting global allocator here.
//!
//! Each measured call is timed alone (`iter_custom`): what keeps the room
//! steady (releasing a grant, applying a due task's decision) runs outside
//! the timing.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use crowdroom_work::project::ProjectConfig;
use crowdroom_work::queue::{Decision, Grant, StoredState, TaskRow, Verdict, WorkState, WorkerRow};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// Tasks in the room.
const TASKS: usize = 1_000_000;
/// Workers in the room.
const WORKERS: usize = 10_000;
/// Distinct skills; each task needs up to two, each worker has two to five.
const SKILLS: usize = 8;
/// Distinct tags; a task has up to one, a worker up to two interests.
const TAGS: usize = 10;
/// One task in this many is gold.
const GOLD_EVERY: usize = 100;
/// Tasks added per call while the room is built, so the rows in flight
/// stay small next to the state being measured.
const CHUNK: usize = 10_000;
/// Answers given before the memory is measured again and the grant
/// benchmarked again.
const ANSWERS: usize = 1_000_000;

fn skill(at: usize) -> String {
    format!("skill-{at}")
}

fn project() -> ProjectConfig {
    ProjectConfig {
        onboarding_gold: 0,
        gold_rate: 0.1,
        min_lead_time_ms: 0,
        ..ProjectConfig::default()
    }
}

/// The process's resident set in bytes (Linux), None elsewhere.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn megabytes(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}

/// The room: tasks with 0 to 2 answers of a target of 3, workers with
/// skills and interests.
fn room(rng: &mut StdRng) -> WorkState {
    let mut state = WorkState::new(project());
    let gold: Value = json!("yes");
    for start in (0..TASKS).step_by(CHUNK) {
        let rows = (start..(start + CHUNK).min(TASKS))
            .map(|at| {
                let skills = match rng.random_range(0..4) {
                    0 | 1 => Vec::new(),
                    2 => vec![skill(rng.random_range(0..SKILLS))],
                    _ => vec![
                        skill(rng.random_range(0..SKILLS)),
                        skill(rng.random_range(0..SKILLS)),
                    ],
                };
                let tags = match rng.random_range(0..2) {
                    0 => Vec::new(),
                    _ => vec![format!("tag-{}", rng.random_range(0..TAGS))],
                };
                let is_gold = at % GOLD_EVERY == 0;
                TaskRow {
                    id: 1 + at as i64,
                    skills,
                    tags,
                    gold: is_gold.then(|| gold.clone()),
                    overlap_target: 3,
                    answered: if is_gold { 0 } else { rng.random_range(0..3) },
                    state: StoredState::Open,
                }
            })
            .collect();
        let due = state.add_tasks(rows).unwrap_or_default();
        assert!(due.is_empty(), "no task starts at its target");
    }
    for at in 0..WORKERS {
        let worker = format!("worker-{at}");
        let skills: Vec<String> = (0..rng.random_range(2..=5))
            .map(|_| skill(rng.random_range(0..SKILLS)))
            .collect();
        let interests: Vec<String> = (0..rng.random_range(0..=2))
            .map(|_| format!("tag-{}", rng.random_range(0..TAGS)))
            .collect();
        let set = state
            .set_skills(&worker, &skills)
            .and_then(|_| state.set_interests(&worker, &interests));
        assert!(set.is_ok());
    }
    state
}

/// One grant and answer by the `at`-th worker; returns the time the answer
/// took. A task the answer completes is replaced by a new one (`next_id`),
/// so the room keeps its million open tasks however long criterion runs.
fn answer_one(
    state: &mut WorkState,
    rng: &mut StdRng,
    at: usize,
    now: i64,
    next_id: &mut i64,
) -> Duration {
    let worker = format!("worker-{}", at % WORKERS);
    let task = match state
        .request(&worker, rng.random(), now)
        .map(|outcome| outcome.value)
    {
        Ok(Grant::Granted(reservation) | Grant::Held(reservation)) => reservation.task_id,
        _ => return Duration::ZERO,
    };
    let answer = json!("yes");
    let started = Instant::now();
    let submitted = state.submit(&worker, task, black_box(&answer), now + 1);
    let took = started.elapsed();
    if let Ok(outcome) = submitted
        && let Some(due) = outcome.value.due
    {
        let decision = Decision {
            verdict: Verdict::Complete,
            agreement: Vec::new(),
            consensus: None,
        };
        assert!(state.apply_decision(due.task, &decision, now + 1).is_ok());
        let task = TaskRow {
            id: *next_id,
            skills: vec![skill(rng.random_range(0..SKILLS))],
            tags: Vec::new(),
            gold: None,
            overlap_target: 3,
            answered: 0,
            state: StoredState::Open,
        };
        *next_id += 1;
        assert!(state.add_tasks(vec![task]).is_ok());
    }
    took
}

/// The memory of a loaded room of [`TASKS`] open tasks that already have
/// three answers each (a target of five), spread over the workers: the
/// most a room of that size keeps of its answers (those of decided tasks
/// are not kept).
fn answered_room() {
    /// Answers each task has.
    const EACH: usize = 3;
    let tasks: Vec<TaskRow> = (0..TASKS)
        .map(|at| TaskRow {
            id: 1 + at as i64,
            skills: vec![skill(at % SKILLS)],
            tags: Vec::new(),
            gold: None,
            overlap_target: 5,
            answered: EACH as u32,
            state: StoredState::Open,
        })
        .collect();
    let mut workers: Vec<WorkerRow> = (0..WORKERS)
        .map(|at| WorkerRow {
            id: format!("worker-{at}"),
            skills: (0..SKILLS).map(skill).collect(),
            answered: Vec::with_capacity(TASKS * EACH / WORKERS + 1),
            ..WorkerRow::default()
        })
        .collect();
    for at in 0..TASKS * EACH {
        if let Some(worker) = workers.get_mut((at + at / TASKS) % WORKERS) {
            worker.answered.push(1 + (at % TASKS) as i64);
        }
    }
    let started = Instant::now();
    let loaded = WorkState::load(project(), tasks, workers, Vec::new());
    let took = started.elapsed();
    let Ok(loaded) = loaded else {
        panic!("the room does not load");
    };
    assert_eq!(loaded.state.counts(0).answers, (TASKS * EACH) as i64);
    println!(
        "room of {TASKS} open tasks with {EACH} answers each, {WORKERS} workers: loaded from rows in {took:.2?}, heap estimate {:.1} MB",
        megabytes(loaded.state.heap_bytes() as u64)
    );
}

fn bench(criterion: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(20);
    let before = resident_bytes();
    let started = Instant::now();
    let mut state = room(&mut rng);
    let built = started.elapsed();
    let after = resident_bytes();
    let counts = state.counts(0);
    println!(
        "room of {} tasks ({} open), {WORKERS} workers, built in {built:.2?}: resident set grew {:.1} MB, heap estimate {:.1} MB",
        counts.total,
        counts.open,
        megabytes(after.unwrap_or(0).saturating_sub(before.unwrap_or(0))),
        megabytes(state.heap_bytes() as u64),
    );

    let mut now = 1_000_000_i64;
    let mut next_id = 1 + TASKS as i64;
    let mut next = 0_usize;
    criterion.bench_function(
        "grant in a room of 1M open tasks and 10k workers",
        |bench| {
            bench.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let worker = format!("worker-{}", next % WORKERS);
                    next += 1;
                    let draw: f64 = rng.random();
                    let started = Instant::now();
                    let outcome = state.request(black_box(&worker), draw, now);
                    total += started.elapsed();
                    assert!(matches!(outcome.map(|o| o.value), Ok(Grant::Granted(_))));
                    assert!(state.release(&worker, now).is_ok());
                }
                total
            });
        },
    );

    criterion.bench_function(
        "submit in a room of 1M open tasks and 10k workers",
        |bench| {
            bench.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    now += 2;
                    total += answer_one(&mut state, &mut rng, next, now, &mut next_id);
                    next += 1;
                }
                total
            });
        },
    );

    for _ in 0..ANSWERS {
        now += 2;
        answer_one(&mut state, &mut rng, next, now, &mut next_id);
        next += 1;
    }
    let counts = state.counts(now);
    // The resident set is not measured again: the B-tree nodes freed by
    // completed tasks are reused by the allocator, so it says little.
    println!(
        "after {ANSWERS} more answers: {} tasks ({} open, {} complete), {} answers, heap estimate {:.1} MB",
        counts.total,
        counts.open,
        counts.complete,
        counts.answers,
        megabytes(state.heap_bytes() as u64),
    );

    criterion.bench_function(
        "grant after 1M more answers, 1M tasks still open",
        |bench| {
            bench.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let worker = format!("worker-{}", next % WORKERS);
                    next += 1;
                    let draw: f64 = rng.random();
                    let started = Instant::now();
                    let outcome = state.request(black_box(&worker), draw, now);
                    total += started.elapsed();
                    assert!(outcome.is_ok());
                    assert!(state.release(&worker, now).is_ok());
                }
                total
            });
        },
    );
}

/// The answered room is measured last: the memory it frees would be
/// reused by the room whose resident set is measured.
fn memory(_: &mut Criterion) {
    answered_room();
}

criterion_group!(benches, bench, memory);
criterion_main!(benches);
