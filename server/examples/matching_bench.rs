//! Matching benchmark: grant latency with many open tasks and workers.
//!
//! Builds a SQLite (or PostgreSQL, `--database`) project with `--tasks`
//! open tasks, then `--workers` distinct workers ask for work, as the live
//! channel's `task.request` does (`CommitHandle::grant_best`: a ranking on a
//! reader, then the conditional grants through the group committer),
//! `--concurrency` at a time.
//! Prints p50/p90/p99/max of the grant latency and the throughput.
//!
//! cargo run --release -p crowdroom --example matching_bench -- --tasks 1000000 --workers 10000

use std::sync::Arc;
use std::time::Instant;

use crowdroom::committer::CommitHandle;
use crowdroom::ids::UserId;
use crowdroom::metrics::Metrics;
use crowdroom::store::{Standing, WorkAsk};
use crowdroom_work::project::{NewTask, ProjectConfig};
use tokio_util::task::TaskTracker;

mod common;
use common::arg;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let tasks: usize = arg("--tasks", "1000000").parse()?;
    let workers: usize = arg("--workers", "10000").parse()?;
    let concurrency: usize = arg("--concurrency", "64").parse()?;
    let bench = common::Bench::open().await?;
    let (store, room) = (bench.store.clone(), bench.room.clone());
    let project = ProjectConfig::default();
    store.put_project(&room, &project).await?;
    let started = Instant::now();
    let mut batch = Vec::with_capacity(10_000);
    for task in 0..tasks {
        batch.push(NewTask {
            id: format!("t{task}"),
            data: serde_json::json!({"n": task}),
            skills: Vec::new(),
            gold: None,
            tags: Vec::new(),
        });
        if batch.len() == 10_000 {
            store
                .insert_tasks(&room, &batch, project.overlap_min)
                .await?;
            batch.clear();
        }
    }
    store
        .insert_tasks(&room, &batch, project.overlap_min)
        .await?;
    println!(
        "inserted {tasks} tasks in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let tracker = TaskTracker::new();
    let committer = CommitHandle::spawn(store.clone(), Metrics::new(), &tracker);
    let latencies = Arc::new(tokio::sync::Mutex::new(Vec::with_capacity(workers)));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..concurrency {
        let (store, committer, room, latencies, next) = (
            store.clone(),
            committer.clone(),
            room.clone(),
            latencies.clone(),
            next.clone(),
        );
        let (ttl, cap) = (project.ttl_ms(), project.cap_ms());
        handles.push(tokio::spawn(async move {
            loop {
                let worker = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if worker >= workers {
                    return anyhow::Ok(());
                }
                let user = UserId::parse(&format!("w{worker}"))?;
                let asked = Instant::now();
                let ask = WorkAsk {
                    room: room.clone(),
                    worker: user,
                    skills: Vec::new(),
                    gold: false,
                    ttl_ms: ttl,
                    cap_ms: cap,
                    standing: Standing::default(),
                };
                let granted = committer.grant_best(&store, ask).await?.is_some();
                anyhow::ensure!(granted, "no task granted");
                latencies.lock().await.push(asked.elapsed());
            }
        }));
    }
    for handle in handles {
        handle.await??;
    }
    let elapsed = started.elapsed();
    let mut latencies = latencies.lock().await.clone();
    println!(
        "{} grants, {concurrency} at a time: {:.0} grants/s; latency {}",
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        common::summary(&mut latencies),
    );
    drop(committer);
    tracker.close();
    tracker.wait().await;
    Ok(())
}
