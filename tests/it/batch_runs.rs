//! Runs of answers and of grants in one group-commit batch, on SQLite and
//! PostgreSQL: the batch writes a run set-based (a few statements whatever
//! its length), and each answer or grant must still come out as if it had
//! been committed alone, in order; the batch may run answers and grants
//! ahead of other writes, never ahead of their worker's own earlier write.

use crowdroom::auth::Role;
use crowdroom::ids::{RoomId, UserId};
use crowdroom::store::{Standing, Submitted, WorkAsk, WorkerTask, WriteOp, WriteOutcome};
use crowdroom::{Error, Result, Store};
use crowdroom_tests::{Backend, TestDb, both_stores};
use crowdroom_work::project::{NewTask, ProjectConfig};
use serde_json::json;

both_stores! {
    a_run_judges_each_answer_in_order => judged_in_order;
    a_run_settles_a_task_at_its_last_answer => settles_at_last;
    an_answer_never_overtakes_its_workers_earlier_write => keeps_worker_order;
    a_run_of_grants_fills_slots_in_order_and_drops_expired_holds => grants_in_order;
    a_run_of_grants_skips_what_each_worker_answered => grants_skip_answered;
}

/// A room with `tasks` tasks (ids t0, t1, ...) of overlap `overlap`, and
/// the workers, each holding a reservation of every task.
async fn room_with_reservations(
    backend: Backend,
    project: &ProjectConfig,
    tasks: usize,
    overlap: u32,
    workers: &[&str],
) -> Option<(TestDb, Store, RoomId, Vec<i64>)> {
    let db = TestDb::new(backend).await?;
    let store = Store::open(&db.url).await.unwrap();
    let room = RoomId::parse("r").unwrap();
    store.create_room(&room, "Room").await.unwrap();
    store.put_project(&room, project).await.unwrap();
    let new: Vec<NewTask> = (0..tasks)
        .map(|i| NewTask {
            id: format!("t{i}"),
            data: json!({"text": i}),
            skills: vec!["de".to_owned()],
            gold: None,
            tags: Vec::new(),
        })
        .collect();
    store.insert_tasks(&room, &new, overlap).await.unwrap();
    let ids: Vec<i64> = store
        .open_tasks(&room, 1_000)
        .await
        .unwrap()
        .iter()
        .map(|task| task.id)
        .collect();
    assert_eq!(ids.len(), tasks);
    for worker in workers {
        let worker = add_worker(&store, &room, worker).await;
        let grants: Vec<WriteOp> = ids
            .iter()
            .map(|task| WriteOp::Grant {
                room: room.clone(),
                task: *task,
                worker: worker.clone(),
                ttl_ms: 60_000,
                cap_ms: 600_000,
            })
            .collect();
        for outcome in store.write_batch(&grants).await.unwrap() {
            assert!(
                matches!(outcome, Ok(WriteOutcome::Granted(Some(_)))),
                "{outcome:?}"
            );
        }
    }
    Some((db, store, room, ids))
}

async fn add_worker(store: &Store, room: &RoomId, name: &str) -> UserId {
    let worker = UserId::parse(name).unwrap();
    store.ensure_user(&worker, "W").await.unwrap();
    store
        .set_member_role(room, &worker, Role::Worker)
        .await
        .unwrap();
    worker
}

fn submit(
    room: &RoomId,
    task: i64,
    worker: &str,
    answer: &str,
    project: &ProjectConfig,
) -> WriteOp {
    WriteOp::Submit {
        room: room.clone(),
        task,
        worker: UserId::parse(worker).unwrap(),
        answer: json!(answer),
        rules: project.submit_rules(),
    }
}

fn submitted(outcome: &Result<WriteOutcome>) -> &Submitted {
    match outcome {
        Ok(WriteOutcome::Submitted(done)) => done,
        other => panic!("not submitted: {other:?}"),
    }
}

async fn judged_in_order(backend: Backend) {
    // Every answer comes faster than the minimum lead time: the fast-answer
    // rule pauses a worker after their fifth such answer, not before.
    let project = ProjectConfig {
        min_lead_time_ms: 3_600_000,
        ..ProjectConfig::default()
    };
    let Some((_db, store, room, ids)) =
        room_with_reservations(backend, &project, 7, 1, &["ann"]).await
    else {
        return;
    };
    let ops: Vec<WriteOp> = ids
        .iter()
        .map(|task| submit(&room, *task, "ann", "yes", &project))
        .collect();
    let outcomes = store.write_batch(&ops).await.unwrap();
    let paused: Vec<Option<&str>> = outcomes
        .iter()
        .map(|outcome| {
            let done = submitted(outcome);
            assert!(done.check.too_fast && done.check.correct.is_none());
            done.check.paused.as_deref()
        })
        .collect();
    assert!(paused[..4].iter().all(Option::is_none), "{paused:?}");
    assert!(
        paused[4].is_some_and(|reason| reason.contains("faster")),
        "the fifth answer pauses: {paused:?}"
    );
    assert!(paused[5..].iter().all(Option::is_none), "{paused:?}");
    // One answer per task: each is that task's last (overlap 1), settled.
    for (outcome, task) in outcomes.iter().zip(&ids) {
        let done = submitted(outcome);
        assert_eq!(done.task_id, *task);
        assert!(done.settled.is_some(), "{done:?}");
    }
    let ann = UserId::parse("ann").unwrap();
    let view = store.worker_view(&room, &ann).await.unwrap();
    assert_eq!((view.quality.answers, view.quality.fast_answers), (7, 7));
    assert!(view.quality.paused.is_some());
    assert!(view.reservation.is_none());
    // The per-skill record got the same counts as the overall one.
    let records = store.workers_quality(&room).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].answers, 7);
}

async fn settles_at_last(backend: Backend) {
    let project = ProjectConfig {
        min_lead_time_ms: 0,
        overlap_min: 3,
        overlap_max: 3,
        ..ProjectConfig::default()
    };
    let Some((_db, store, room, ids)) =
        room_with_reservations(backend, &project, 1, 3, &["ann", "bob", "cy"]).await
    else {
        return;
    };
    let task = ids[0];
    let ops = [
        submit(&room, task, "ann", "yes", &project),
        submit(&room, task, "bob", "yes", &project),
        submit(&room, task, "cy", "yes", &project),
    ];
    let outcomes = store.write_batch(&ops).await.unwrap();
    let settled: Vec<bool> = outcomes
        .iter()
        .map(|outcome| submitted(outcome).settled.is_some())
        .collect();
    assert_eq!(
        settled,
        [false, false, true],
        "only the third answer settles"
    );
    let last = submitted(&outcomes[2]);
    let decided = last.settled.as_ref().unwrap();
    assert_eq!(decided.state, last.task_state);
    assert_ne!(decided.state, "open");
    let open = store.open_tasks(&room, 10).await.unwrap();
    assert!(open.is_empty(), "the task is settled: {open:?}");
}

async fn keeps_worker_order(backend: Backend) {
    let project = ProjectConfig {
        min_lead_time_ms: 0,
        ..ProjectConfig::default()
    };
    let Some((_db, store, room, ids)) =
        room_with_reservations(backend, &project, 2, 2, &["ann", "bob"]).await
    else {
        return;
    };
    let (ann, bob) = (UserId::parse("ann").unwrap(), UserId::parse("bob").unwrap());
    let elsewhere = RoomId::parse("elsewhere").unwrap();
    let ops = [
        // Bob gives t0 back, then answers it: the answer must see the skip.
        WriteOp::Skip {
            room: room.clone(),
            task: ids[0],
            worker: bob.clone(),
        },
        submit(&room, ids[0], "bob", "no", &project),
        // Ann's answer may run first; it concerns nobody else's writes.
        submit(&room, ids[0], "ann", "yes", &project),
        // An answer from a room the reservation is not in is refused.
        submit(&elsewhere, ids[1], "bob", "no", &project),
        // So is giving it back from there: Bob still holds it.
        WriteOp::Skip {
            room: elsewhere.clone(),
            task: ids[1],
            worker: bob.clone(),
        },
        submit(&room, ids[1], "bob", "no", &project),
    ];
    let outcomes = store.write_batch(&ops).await.unwrap();
    assert!(
        matches!(outcomes[0], Ok(WriteOutcome::Skipped)),
        "{outcomes:?}"
    );
    assert!(
        matches!(outcomes[1], Err(Error::ReservationLost)),
        "{outcomes:?}"
    );
    assert_eq!(submitted(&outcomes[2]).task_id, ids[0]);
    assert!(
        matches!(outcomes[3], Err(Error::ReservationLost)),
        "{outcomes:?}"
    );
    assert!(
        matches!(outcomes[4], Err(Error::NotFound(_))),
        "{outcomes:?}"
    );
    assert_eq!(submitted(&outcomes[5]).task_id, ids[1]);
    let view = store.worker_view(&room, &ann).await.unwrap();
    assert_eq!(view.quality.answers, 1);
    let view = store.worker_view(&room, &bob).await.unwrap();
    assert_eq!(view.quality.answers, 1);
    // Bob skipped one task and answered the other: he holds nothing.
    assert_eq!(
        view.reservation.map(|(reservation, _)| reservation.task_id),
        None
    );
}

fn ask(room: &RoomId, worker: &str, ttl_ms: i64) -> WorkAsk {
    WorkAsk {
        room: room.clone(),
        worker: UserId::parse(worker).unwrap(),
        skills: vec!["de".to_owned()],
        gold: false,
        ttl_ms,
        cap_ms: 600_000,
        standing: Standing::default(),
    }
}

fn grant_first(room: &RoomId, worker: &str, ranked: &[WorkerTask], ttl_ms: i64) -> WriteOp {
    WriteOp::GrantFirst {
        ask: ask(room, worker, ttl_ms),
        ranked: ranked.to_vec(),
    }
}

/// The external id of the task each grant got (None: no grant).
fn granted(outcomes: &[Result<WriteOutcome>]) -> Vec<Option<String>> {
    outcomes
        .iter()
        .map(|outcome| match outcome {
            Ok(WriteOutcome::Matched(found)) => {
                found.as_ref().map(|(_, task)| task.external_id.clone())
            }
            other => panic!("not a grant: {other:?}"),
        })
        .collect()
}

async fn grants_in_order(backend: Backend) {
    let project = ProjectConfig::default();
    let Some((_db, store, room, _)) = room_with_reservations(backend, &project, 2, 2, &[]).await
    else {
        return;
    };
    for worker in ["ann", "bob", "cy", "dee", "eve", "fay"] {
        add_worker(&store, &room, worker).await;
    }
    let ranked = store.rank_work(&ask(&room, "ann", 60_000)).await.unwrap();
    assert_eq!(ranked.len(), 2);
    let (first, second) = (ranked[0].external_id.clone(), ranked[1].external_id.clone());
    // Two slots per task. Bob's reservation expires at once.
    let outcomes = store
        .write_batch(&[
            grant_first(&room, "ann", &ranked, 60_000),
            grant_first(&room, "bob", &ranked, 0),
            grant_first(&room, "cy", &ranked, 60_000),
            // Ann holds the first task: her second ask gets the other one.
            grant_first(&room, "ann", &ranked, 60_000),
            grant_first(&room, "dee", &ranked, 60_000),
        ])
        .await
        .unwrap();
    assert_eq!(
        granted(&outcomes),
        [
            Some(first.clone()),
            Some(first.clone()),
            Some(second.clone()),
            Some(second.clone()),
            None
        ]
    );
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    // Heartbeats go in one statement: a live reservation is extended (the
    // same one twice in a run, too), an expired one is not found, nor a
    // live one from another room.
    let beat_in = |room: &RoomId, worker: &str, task: i64| WriteOp::Heartbeat {
        room: room.clone(),
        task,
        worker: UserId::parse(worker).unwrap(),
        ttl_ms: 120_000,
    };
    let beat = |worker: &str, task: i64| beat_in(&room, worker, task);
    let beats = store
        .write_batch(&[
            beat("ann", ranked[0].id),
            beat("bob", ranked[0].id),
            beat("ann", ranked[0].id),
            beat("cy", ranked[0].id),
            beat_in(&RoomId::parse("elsewhere").unwrap(), "ann", ranked[0].id),
        ])
        .await
        .unwrap();
    let expiry = |outcome: &Result<WriteOutcome>| match outcome {
        Ok(WriteOutcome::Extended(at)) => Some(*at),
        Err(Error::NotFound(_)) => None,
        other => panic!("not a heartbeat: {other:?}"),
    };
    let extended: Vec<Option<i64>> = beats.iter().map(expiry).collect();
    assert!(extended[0].is_some() && extended[2].is_some(), "{beats:?}");
    assert_eq!(extended[1], None, "Bob's reservation expired: {beats:?}");
    assert_eq!(extended[3], None, "Cy holds the other task: {beats:?}");
    assert_eq!(extended[4], None, "not this room's: {beats:?}");
    // Both tasks look full; the first holds Bob's expired reservation,
    // which is dropped to make room for Eve. Then the tasks are full.
    let outcomes = store
        .write_batch(&[
            grant_first(&room, "eve", &ranked, 60_000),
            grant_first(&room, "fay", &ranked, 60_000),
        ])
        .await
        .unwrap();
    assert_eq!(granted(&outcomes), [Some(first), None]);
    // Bob's reservation is gone: the room's sweep finds nothing left.
    let swept = store
        .write_batch(&[WriteOp::Sweep { room: room.clone() }])
        .await
        .unwrap();
    assert!(
        matches!(&swept[0], Ok(WriteOutcome::Swept(gone)) if gone.is_empty()),
        "{swept:?}"
    );
    // The tasks' counts agree: nothing is left to rank for a newcomer.
    let left = store.rank_work(&ask(&room, "fay", 60_000)).await.unwrap();
    assert!(left.is_empty(), "{left:?}");
}

async fn grants_skip_answered(backend: Backend) {
    let project = ProjectConfig {
        min_lead_time_ms: 0,
        ..ProjectConfig::default()
    };
    // Three slots per task; Ann holds both tasks and answers both.
    let Some((_db, store, room, ids)) =
        room_with_reservations(backend, &project, 2, 3, &["ann"]).await
    else {
        return;
    };
    add_worker(&store, &room, "bob").await;
    add_worker(&store, &room, "cy").await;
    let ranked = store.rank_work(&ask(&room, "bob", 60_000)).await.unwrap();
    assert_eq!(ranked.len(), 2);
    let answered = store
        .write_batch(&[
            submit(&room, ids[0], "ann", "yes", &project),
            submit(&room, ids[1], "ann", "yes", &project),
        ])
        .await
        .unwrap();
    assert_eq!(submitted(&answered[1]).task_id, ids[1]);
    // A stale ranking offers Ann both tasks again: she answered them, so
    // she gets neither, while Bob and Cy, in the same run, take the slots
    // her answers left free.
    let outcomes = store
        .write_batch(&[
            grant_first(&room, "ann", &ranked, 60_000),
            grant_first(&room, "bob", &ranked, 60_000),
            grant_first(&room, "cy", &ranked, 60_000),
        ])
        .await
        .unwrap();
    let first = ranked[0].external_id.clone();
    assert_eq!(granted(&outcomes), [None, Some(first.clone()), Some(first)]);
}
