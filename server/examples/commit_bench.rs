//! Durability benchmark: acknowledged writes per second through the group
//! committer, with SQLite's `synchronous=FULL` (or PostgreSQL).
//!
//! `--kind updates`: `--count` document updates (`--bytes` each, spread over
//! `--docs` documents), `--concurrency` waiting for their commit at a time,
//! as the room actors queue them for the y-websocket echo (the ack).
//!
//! `--kind answers`: a single-choice project with overlap 3, `--count`
//! answers to `--count / 3` tasks from rotating workers, decided in memory
//! (`WorkState`) as a room does. Every reservation is committed first (not
//! timed); then each answer is one `Work` write through the committer, as
//! `task.submit` queues it: the answer, its ledger entry, the worker's
//! record, the reservation it consumes and the task's counts. Consensus is
//! not in it: the consensus actor decides due tasks after the commit, off
//! the committer. Only the answers are timed.
//!
//! cargo run --release -p crowdroom --example commit_bench -- --kind updates --count 200000
//! cargo run --release -p crowdroom --example commit_bench -- --kind answers --count 60000

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use crowdroom::Store;
use crowdroom::committer::CommitHandle;
use crowdroom::ids::{DocName, RoomId};
use crowdroom::metrics::Metrics;
use crowdroom::store::{ProcessId, RoomLease, WriteOp, WriteOutcome};
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
                    matches!(outcome, WriteOutcome::Appended | WriteOutcome::Worked(_)),
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
    let mut state = store.load_state(room).await?.state;
    // The room's lease: its work writes are fenced by it, as a room's are.
    let owner = ProcessId::random();
    let now = crowdroom::ids::now_ms();
    let epoch = store
        .take_lease(room, owner.as_str(), now, now.saturating_add(86_400_000))
        .await?
        .ok_or_else(|| anyhow::anyhow!("the room's lease is held"))?;
    let lease = RoomLease { owner, epoch };
    let workers: Vec<String> = (0..WORKERS).map(|worker| format!("w{worker}")).collect();
    // Task t's answers come from workers t, t+1, t+2 (mod WORKERS): each
    // answer is decided in memory as the room does (a grant of that task,
    // then the answer), the grants committed now, untimed, and each
    // answer's effects kept as one write, as `task.submit` queues it.
    let now = crowdroom::ids::now_ms();
    let mut grants = Vec::with_capacity(count);
    let mut submits = Vec::with_capacity(count);
    let ids = state_task_ids(store, room).await?;
    for index in 0..count {
        let Some(&task) = ids.get(index / 3) else {
            break;
        };
        let worker = &workers[(index / 3 + index % 3) % WORKERS];
        let granted = state.assign(worker, task, now)?;
        anyhow::ensure!(granted.value.is_some(), "answer {index}: no slot");
        grants.extend(granted.effects);
        let answer = serde_json::json!(if index % 4 == 0 { "neg" } else { "pos" });
        let submitted = state.submit(worker, task, &answer, now + 5_000)?;
        submits.push(WriteOp::Work {
            room: room.clone(),
            lease: lease.clone(),
            effects: submitted.effects,
        });
    }
    for chunk in grants.chunks(5_000) {
        committer
            .write(WriteOp::Work {
                room: room.clone(),
                lease: lease.clone(),
                effects: chunk.to_vec(),
            })
            .await?;
    }
    println!(
        "set up {tasks} tasks and {count} reservations in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(submits)
}

/// Every task id of the room, in order.
async fn state_task_ids(store: &Store, room: &RoomId) -> anyhow::Result<Vec<i64>> {
    let mut ids = Vec::new();
    let mut after = 0;
    loop {
        let page = store.tasks(room, None, after, 1000).await?;
        let Some(last) = page.last().map(|task| task.id) else {
            break;
        };
        ids.extend(page.iter().map(|task| task.id));
        after = last;
    }
    Ok(ids)
}
