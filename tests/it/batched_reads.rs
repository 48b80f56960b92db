//! The reads that go a batch at a time (`store/batch.rs`: workers' views,
//! queue counts, expired-reservation checks), asked by many callers at
//! once on SQLite and PostgreSQL: each caller gets its own key's answer,
//! whichever batch it went in.

use crowdroom::Store;
use crowdroom::auth::Role;
use crowdroom::ids::{RoomId, UserId};
use crowdroom::store::{WriteOp, WriteOutcome};
use crowdroom_tests::{Backend, TestDb, both_stores};
use crowdroom_work::project::NewTask;
use futures_util::future::join_all;
use serde_json::json;

both_stores! {
    batched_reads_answer_each_caller => batched_reads;
}

/// Workers per room: enough that many views wait for one batch.
const WORKERS: usize = 40;

fn task(id: String) -> NewTask {
    NewTask {
        id,
        data: json!({"text": "x"}),
        skills: Vec::new(),
        gold: None,
        tags: Vec::new(),
    }
}

async fn batched_reads(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = Store::open(&db.url).await.unwrap();
    let busy = RoomId::parse("busy").unwrap();
    let quiet = RoomId::parse("quiet").unwrap();
    store.create_room(&busy, "Busy").await.unwrap();
    store.create_room(&quiet, "Quiet").await.unwrap();
    let workers: Vec<UserId> = (0..WORKERS)
        .map(|at| UserId::parse(&format!("w{at}")).unwrap())
        .collect();
    for worker in &workers {
        store.ensure_user(worker, "W").await.unwrap();
        store
            .set_member_role(&busy, worker, Role::Worker)
            .await
            .unwrap();
    }
    let tasks: Vec<NewTask> = (0..WORKERS).map(|at| task(format!("t{at}"))).collect();
    store.insert_tasks(&busy, &tasks, 1).await.unwrap();
    let ids: Vec<i64> = store
        .tasks(&busy, None, 0, 1000)
        .await
        .unwrap()
        .iter()
        .map(|task| task.id)
        .collect();
    // Every even worker holds a live reservation of their own task; the
    // last one's has already expired (ttl 0).
    let mut grants = Vec::new();
    for (at, worker) in workers.iter().enumerate().filter(|(at, _)| at % 2 == 0) {
        let ttl_ms = if at == WORKERS - 2 { 0 } else { 60_000 };
        grants.push(WriteOp::Grant {
            room: busy.clone(),
            task: ids[at],
            worker: worker.clone(),
            ttl_ms,
            cap_ms: 600_000,
        });
    }
    for outcome in store.write_batch(&grants).await.unwrap() {
        assert!(matches!(outcome, Ok(WriteOutcome::Granted(Some(_)))));
    }

    // All the views at once: each is its worker's own.
    let views = join_all(
        workers
            .iter()
            .map(|worker| store.worker_view(&busy, worker)),
    )
    .await;
    for (at, view) in views.into_iter().enumerate() {
        let view = view.unwrap();
        assert_eq!(view.quality.worker, workers[at].as_str());
        let held = view.reservation.map(|(reservation, _)| reservation.task_id);
        let live = at % 2 == 0 && at != WORKERS - 2;
        assert_eq!(held, live.then_some(ids[at]), "worker {at}");
    }
    // A worker of another room asked in the same breath: nothing there.
    let (elsewhere, own) = tokio::join!(
        store.worker_view(&quiet, &workers[0]),
        store.worker_view(&busy, &workers[0])
    );
    assert!(elsewhere.unwrap().reservation.is_none());
    assert_eq!(own.unwrap().reservation.unwrap().0.task_id, ids[0]);

    // Counts of both rooms at once; the quiet one has no tasks at all.
    let (busy_counts, quiet_counts) =
        tokio::join!(store.queue_counts(&busy), store.queue_counts(&quiet));
    let (busy_counts, quiet_counts) = (busy_counts.unwrap(), quiet_counts.unwrap());
    assert_eq!(
        (busy_counts.total, busy_counts.open, busy_counts.reserved),
        (WORKERS as i64, WORKERS as i64, WORKERS as i64 / 2 - 1)
    );
    // `held` counts the expired reservation too, until it is swept.
    assert_eq!(busy_counts.held, WORKERS as i64 / 2);
    assert_eq!(
        (quiet_counts.total, quiet_counts.reserved, quiet_counts.held),
        (0, 0, 0)
    );

    // Only the busy room has something to sweep, until it is swept.
    let (busy_expired, quiet_expired) = tokio::join!(
        store.has_expired_reservations(&busy),
        store.has_expired_reservations(&quiet)
    );
    assert!(busy_expired.unwrap());
    assert!(!quiet_expired.unwrap());
    let swept = store
        .write_batch(&[WriteOp::Sweep { room: busy.clone() }])
        .await
        .unwrap();
    assert!(matches!(&swept[0], Ok(WriteOutcome::Swept(gone)) if gone.len() == 1));
    assert!(!store.has_expired_reservations(&busy).await.unwrap());
    store.close().await;
}
