//! Loading benchmark: how long a room of `--tasks` tasks takes to load
//! into its work state, and what that state holds.
//!
//! Builds the room with bulk SQL in a temporary SQLite database (the
//! import path would take minutes for a million tasks): 1% gold, target 3,
//! 0 to 2 answers each with their ledger entries, a quarter with one skill
//! and a quarter with two of 8, one of 10 tags; `--workers` workers with
//! three skills and a record each, half of them holding a reservation,
//! each having skipped one task, ten paused. Then, `--runs` times,
//! [`crowdroom::Store::load_state`] (what a room runs: the statements,
//! with the tasks built into the state while the standings are read), and
//! apart, [`crowdroom::Store::load_work`] (the statements and their
//! parsing) and [`crowdroom::store::WorkRows::into_state`]
//! (`WorkState::load`), with the state's estimated heap size and the
//! process's resident set before and after.
//!
//! CARGO_TARGET_DIR=$HOME/.cache/crowdroom/release cargo run --release -p crowdroom --example load_bench

use std::time::Instant;

use crowdroom::Store;
use crowdroom::ids::{RoomId, now_ms};
use crowdroom_work::project::{GOLD_OVERLAP, ProjectConfig};
use sqlx::Connection;

#[allow(dead_code)] // The other benchmarks use the rest.
mod common;
use common::arg;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let tasks: u64 = arg("--tasks", "1000000").parse()?;
    let workers: u64 = arg("--workers", "10000").parse()?;
    let runs: usize = arg("--runs", "3").parse()?;
    // `--dir` keeps the database there (to look at the statement with the
    // sqlite3 shell); by default it lives in a temporary folder.
    let dir = tempfile::tempdir()?;
    let kept = arg("--dir", "");
    let path = if kept.is_empty() {
        dir.path().join("load.db")
    } else {
        std::path::Path::new(&kept).join("load.db")
    };
    let url = format!("sqlite://{}", path.display());
    let store = Store::open(&url).await?;
    let room = RoomId::parse("bench")?;
    store.create_room(&room, "bench").await?;
    store.put_project(&room, &ProjectConfig::default()).await?;

    let started = Instant::now();
    let mut conn = sqlx::SqliteConnection::connect(&format!("{url}?mode=rw")).await?;
    let now = now_ms();
    let far = now + 3_600_000;
    let statements = [
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last}) \
             INSERT INTO tasks (room_id, external_id, data, skills, gold, overlap_target, answered, \
               created_at, tags) \
             SELECT 'bench', 't' || i, '{{\"text\":\"sentence ' || i || '\"}}', \
               CASE i % 4 WHEN 1 THEN '[\"s' || (i % 8) || '\"]' \
                 WHEN 2 THEN '[\"s' || (i % 8) || '\",\"s' || ((i + 1) % 8) || '\"]' ELSE '[]' END, \
               CASE WHEN i % 100 = 0 THEN '\"pos\"' END, \
               CASE WHEN i % 100 = 0 THEN {GOLD_OVERLAP} ELSE 3 END, \
               CASE WHEN i % 100 = 0 THEN 0 ELSE i % 3 END, {now}, '[\"g' || (i % 10) || '\"]' FROM n",
            last = tasks.saturating_sub(1)
        ),
        format!(
            "INSERT INTO answers (task_id, room_id, worker_id, answer, lead_time_ms, created_at) \
             SELECT id, 'bench', 'w' || ((id * 7) % {workers}), '\"pos\"', 5000, {now} \
             FROM tasks WHERE answered >= 1"
        ),
        format!(
            "INSERT INTO answers (task_id, room_id, worker_id, answer, lead_time_ms, created_at) \
             SELECT id, 'bench', 'w' || ((id * 7 + 1) % {workers}), '\"neg\"', 4000, {now} \
             FROM tasks WHERE answered >= 2"
        ),
        format!(
            "INSERT INTO ledger_entries (room_id, worker_id, kind, answer_id, amount, state, \
               created_by, created_at) \
             SELECT 'bench', worker_id, 'answer', id, 20000, 'pending', 'system', {now} FROM answers"
        ),
        "INSERT INTO worker_stats (room_id, worker_id, skill, gold_correct, gold_total, answers, \
           lead_time_total) \
         SELECT 'bench', worker_id, '', 4, 5, COUNT(*), SUM(lead_time_ms) FROM answers \
         GROUP BY worker_id"
            .to_owned(),
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last}) \
             INSERT INTO member_skills (room_id, user_id, skill) \
             SELECT 'bench', 'w' || i, 's' || (i % 8) FROM n \
             UNION SELECT 'bench', 'w' || i, 's' || ((i + 1) % 8) FROM n \
             UNION SELECT 'bench', 'w' || i, 's' || ((i + 3) % 8) FROM n",
            last = workers.saturating_sub(1)
        ),
        // Tasks 3k + 4 and 3k + 7 (0-based 3k + 3 and 3k + 6) have no
        // answers: worker k holds the first (half of them) and skipped the
        // second.
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last}) \
             INSERT INTO reservations (task_id, worker_id, room_id, created_at, expires_at, cap_at) \
             SELECT 3 * i + 4, 'w' || i, 'bench', {now}, {far}, {far} FROM n",
            last = (workers / 2).saturating_sub(1)
        ),
        "UPDATE tasks SET reserved = 1 WHERE id IN (SELECT task_id FROM reservations)".to_owned(),
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last}) \
             INSERT INTO skips (task_id, worker_id, created_at) \
             SELECT 3 * i + 7, 'w' || i, {now} FROM n",
            last = workers.saturating_sub(1)
        ),
        format!(
            "INSERT INTO paused_workers (room_id, worker_id, reason, paused_at) \
             SELECT 'bench', worker_id, 'too fast', {now} FROM worker_stats LIMIT 10"
        ),
        "ANALYZE".to_owned(),
    ];
    for statement in statements {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut conn)
            .await?;
    }
    conn.close().await?;
    println!(
        "built a room of {tasks} tasks and {workers} workers in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    for run in 1..=runs {
        let started = Instant::now();
        let loaded = store.load_state(&room).await?;
        println!(
            "run {run}: load_state {:.2} s; state ~{:.1} MB (heap_bytes); {} due; counts {:?}",
            started.elapsed().as_secs_f64(),
            loaded.state.heap_bytes() as f64 / 1e6,
            loaded.due.len(),
            loaded.state.counts(now_ms()),
        );
        drop(loaded);
        let before = resident_mb();
        let started = Instant::now();
        let rows = store.load_work(&room).await?;
        let read = started.elapsed();
        let (task_rows, worker_rows, reservation_rows) = (
            rows.tasks.len(),
            rows.workers.len(),
            rows.reservations.len(),
        );
        let with_rows = resident_mb();
        let built = Instant::now();
        let loaded = rows.into_state()?;
        let state = built.elapsed();
        let after = resident_mb();
        let counts = loaded.state.counts(now_ms());
        println!(
            "run {run}: load_work {:.2} s ({task_rows} tasks, {worker_rows} workers, \
             {reservation_rows} reservations), WorkState::load {:.2} s, total {:.2} s; \
             state ~{:.1} MB (heap_bytes); resident {before:.0} MB before, {with_rows:.0} MB \
             with the rows, {after:.0} MB with the state; {} due; counts {counts:?}",
            read.as_secs_f64(),
            state.as_secs_f64(),
            started.elapsed().as_secs_f64(),
            loaded.state.heap_bytes() as f64 / 1e6,
            loaded.due.len(),
        );
    }
    store.close().await;
    Ok(())
}

/// The process's resident set in MB (Linux), 0 elsewhere.
fn resident_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<f64>()
                        .ok()
                })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
