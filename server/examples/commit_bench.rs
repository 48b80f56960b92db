//! Durability benchmark: acknowledged writes per second through the group
//! committer, with SQLite's `synchronous=FULL` (or PostgreSQL).
//!
//! `--kind updates`: `--count` document updates (`--bytes` each, spread over
//! `--docs` documents), `--concurrency` waiting for their commit at a time,
//! as the room actors queue them for the y-websocket echo (the ack).
//!
//! `--kind answers`: a single-choice project with overlap 3, `--count`
//! answers to `--count / 3` tasks from rotating workers. Every reservation
//! is granted first (not timed); then each answer is one `Submit` through
//! the committer, as `task.submit` does: the answer, the worker's quality
//! record, the ledger entry, and the consensus of every third answer, in the
//! batch's transaction. Only the submits are timed.
//!
//! cargo run --release -p crowdroom --example commit_bench -- --kind updates --count 200000
//! cargo run --release -p crowdroom --example commit_bench -- --kind answers --count 60000

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use crowdroom::Store;
use crowdroom::committer::CommitHandle;
use crowdroom::ids::{DocName, RoomId, UserId};
use crowdroom::metrics::Metrics;
use crowdroom::store::{WriteOp, WriteOutcome};
use crowdroom_work::project::{NewTask, ProjectConfig};
use crowdroom_work::schema::AnswerSchema;
use tokio_util::task::TaskTracker;

mod common;
use common::arg;

/// Distinct workers the answers rotate over.
const WORKERS: usize = 1000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let kind = arg("--kind", "updates");
    let count: usize = arg("--count", "100000").parse()?;
    let concurrency: usize = arg("--concurrency", "1024").parse()?;
    let bench = common::Bench::open().await?;
    let (store, room) = (bench.store.clone(), bench.room.clone());
    let tracker = TaskTracker::new();
    let committer = CommitHandle::spawn(store.clone(), Metrics::new(), &tracker);

    let ops: Vec<WriteOp> = match kind.as_str() {
        "updates" => {
            let bytes: usize = arg("--bytes", "60").parse()?;
            let docs: usize = arg("--docs", "200").parse()?;
            let names = (0..docs)
                .map(|doc| DocName::parse(&format!("doc-{doc}")))
                .collect::<Result<Vec<_>, _>>()?;
            let data = Bytes::from(vec![7u8; bytes]);
            (0..count)
                .map(|index| WriteOp::AppendUpdate {
                    room: room.clone(),
                    doc: names[index % docs].clone(),
                    data: data.clone(),
                })
                .collect()
        }
        "answers" => answers(&store, &committer, &room, count).await?,
        other => anyhow::bail!("--kind updates or answers, not {other}"),
    };

    let ops = Arc::new(ops);
    let next = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(std::sync::Mutex::new(Vec::with_capacity(count)));
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..concurrency {
        let (committer, ops, next, latencies) = (
            committer.clone(),
            ops.clone(),
            next.clone(),
            latencies.clone(),
        );
        handles.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(op) = ops.get(index) else { break };
                let asked = Instant::now();
                let outcome = committer.write(op.clone()).await?;
                anyhow::ensure!(
                    matches!(outcome, WriteOutcome::Appended | WriteOutcome::Submitted(_)),
                    "write {index} was not acknowledged: {outcome:?}"
                );
                mine.push(asked.elapsed());
            }
            if let Ok(mut all) = latencies.lock() {
                all.extend(mine);
            }
            anyhow::Ok(())
        }));
    }
    for handle in handles {
        handle.await??;
    }
    let elapsed = started.elapsed();
    let mut latencies: Vec<Duration> = latencies.lock().map(|all| all.clone()).unwrap_or_default();
    println!(
        "{} acknowledged {kind} ({:?}), {concurrency} outstanding: {:.0}/s over {:.2} s; latency {}",
        latencies.len(),
        store.backend(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        common::summary(&mut latencies),
    );
    drop(committer);
    tracker.close();
    tracker.wait().await;
    Ok(())
}

/// Sets up the project, its tasks and every reservation; returns the submits.
async fn answers(
    store: &Store,
    committer: &CommitHandle,
    room: &RoomId,
    count: usize,
) -> anyhow::Result<Vec<WriteOp>> {
    let project = ProjectConfig {
        answer_schema: AnswerSchema::SingleChoice {
            options: vec!["pos".into(), "neg".into()],
        },
        overlap_min: 3,
        overlap_max: 3,
        onboarding_gold: 0,
        gold_rate: 0.0,
        min_lead_time_ms: 0,
        ..ProjectConfig::default()
    };
    store.put_project(room, &project).await?;
    let tasks = count.div_ceil(3);
    let started = Instant::now();
    for chunk in (0..tasks).collect::<Vec<_>>().chunks(10_000) {
        let batch: Vec<NewTask> = chunk
            .iter()
            .map(|task| NewTask {
                id: format!("t{task}"),
                data: serde_json::json!({ "text": format!("sentence {task}") }),
                skills: Vec::new(),
                gold: None,
                tags: Vec::new(),
            })
            .collect();
        store
            .insert_tasks(room, &batch, project.overlap_min)
            .await?;
    }
    let ids: Vec<i64> = {
        let mut ids = Vec::with_capacity(tasks);
        let mut after = 0;
        loop {
            let page = store.tasks(room, None, after, 1000).await?;
            let Some(last) = page.last().map(|task| task.id) else {
                break;
            };
            ids.extend(page.iter().map(|task| task.id));
            after = last;
        }
        ids
    };
    let workers = (0..WORKERS)
        .map(|worker| UserId::parse(&format!("w{worker}")))
        .collect::<Result<Vec<_>, _>>()?;
    // Answer i is the (i % 3)-th of its task, by a worker no other answer
    // of that task has.
    let pairs: Vec<(i64, UserId)> = (0..count)
        .filter_map(|index| {
            let task = *ids.get(index / 3)?;
            let worker = workers[(index / 3 + index % 3) % WORKERS].clone();
            Some((task, worker))
        })
        .collect();
    let grants = Arc::new(pairs.clone());
    let next = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for _ in 0..256 {
        let (committer, grants, next, room) = (
            committer.clone(),
            grants.clone(),
            next.clone(),
            room.clone(),
        );
        handles.push(tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some((task, worker)) = grants.get(index) else {
                    break;
                };
                let op = WriteOp::Grant {
                    room: room.clone(),
                    task: *task,
                    worker: worker.clone(),
                    ttl_ms: 3_600_000,
                    cap_ms: 3_600_000,
                };
                anyhow::ensure!(
                    matches!(committer.write(op).await?, WriteOutcome::Granted(Some(_))),
                    "reservation {index} refused"
                );
            }
            anyhow::Ok(())
        }));
    }
    for handle in handles {
        handle.await??;
    }
    println!(
        "set up {tasks} tasks and {count} reservations in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let rules = project.submit_rules();
    Ok(pairs
        .into_iter()
        .enumerate()
        .map(|(index, (task, worker))| WriteOp::Submit {
            room: room.clone(),
            task,
            worker,
            answer: serde_json::json!(if index % 4 == 0 { "neg" } else { "pos" }),
            rules: rules.clone(),
        })
        .collect())
}
