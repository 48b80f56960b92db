//! A room's work state loaded from the store (`Store::load_work`, then
//! `WorkState::load`) agrees with the store: each task's counts and state,
//! each worker's reservation, record, pause, earnings, skills, answers and
//! skips, the room's counts; and every grant decided from the loaded
//! memory is one the SQL path could make.

use std::collections::BTreeSet;

use crowdroom::auth::Role;
use crowdroom::ids::{RoomId, UserId, now_ms};
use crowdroom_tests::client::LiveClient;
use crowdroom_tests::{Backend, TestServer, both_stores, http};
use crowdroom_work::queue::{Grant, Refusal, TaskState};
use serde_json::{Value, json};
use sqlx::{AnyConnection, Connection, Row};

both_stores! {
    loaded_work_state_agrees_with_the_store => loaded_state;
}

const ROOM: &str = "loaded";
const WORKERS: [&str; 5] = ["ann", "bob", "cat", "dan", "eve"];

async fn take(client: &mut LiveClient) -> i64 {
    let granted = client.request("task.request", json!({})).await;
    assert_eq!(granted["ok"], true, "{granted}");
    granted["result"]["task"]["id"].as_i64().unwrap()
}

async fn answer(client: &mut LiveClient) -> i64 {
    let task = take(client).await;
    let reply = client
        .request("task.submit", json!({"task_id": task, "answer": "pos"}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    task
}

async fn skip(client: &mut LiveClient) -> i64 {
    let task = take(client).await;
    let reply = client.request("task.skip", json!({"task_id": task})).await;
    assert_eq!(reply["ok"], true, "{reply}");
    task
}

async fn ids(conn: &mut AnyConnection, sql: &str, worker: &str) -> BTreeSet<i64> {
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(ROOM)
        .bind(worker)
        .fetch_all(conn)
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<i64, _>(0).unwrap())
        .collect()
}

/// What the store keeps of a worker, as its REST reads and tables say.
struct Stored {
    /// Their live reservation: (task, expiry).
    reservation: Option<(i64, i64)>,
    quality: crowdroom::store::WorkerQuality,
    earnings: crowdroom::store::Earnings,
    skills: Vec<String>,
}

async fn stored_view(
    store: &crowdroom::Store,
    conn: &mut AnyConnection,
    room: &RoomId,
    user: &UserId,
    now: i64,
) -> Stored {
    let reservation = sqlx::query(
        "SELECT task_id, expires_at FROM reservations \
         WHERE room_id = $1 AND worker_id = $2 AND expires_at > $3",
    )
    .bind(room.as_str())
    .bind(user.as_str())
    .bind(now)
    .fetch_optional(conn)
    .await
    .unwrap()
    .map(|row| (row.try_get(0).unwrap(), row.try_get(1).unwrap()));
    let earnings = store
        .ledger_summary(room, 0)
        .await
        .unwrap()
        .workers
        .into_iter()
        .find(|earnings| earnings.worker == user.as_str())
        .unwrap_or_default();
    let mut skills = store.member_skills(room, user).await.unwrap();
    skills.sort();
    Stored {
        reservation,
        quality: store.worker_quality(room, user).await.unwrap(),
        earnings,
        skills,
    }
}

/// Open tasks `worker` answered / skipped, as the store keeps them.
const ANSWERED: &str = "SELECT a.task_id FROM answers a JOIN tasks t ON t.id = a.task_id \
     WHERE a.room_id = $1 AND a.worker_id = $2 AND t.state = 'open'";
const SKIPPED: &str = "SELECT s.task_id FROM skips s JOIN tasks t ON t.id = s.task_id \
     WHERE t.room_id = $1 AND s.worker_id = $2 AND t.state = 'open'";
/// The tasks the SQL path could grant `worker` now (skills aside): open,
/// a free slot, not answered, skipped or held by them.
const GRANTABLE: &str = "SELECT t.id FROM tasks t WHERE t.room_id = $1 AND t.state = 'open' \
     AND t.reserved + t.answered < t.overlap_target \
     AND NOT EXISTS (SELECT 1 FROM answers a WHERE a.task_id = t.id AND a.worker_id = $2) \
     AND NOT EXISTS (SELECT 1 FROM skips s WHERE s.task_id = t.id AND s.worker_id = $2) \
     AND NOT EXISTS (SELECT 1 FROM reservations r WHERE r.task_id = t.id AND r.worker_id = $2)";

async fn loaded_state(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let owner = server.token(ROOM, "olivia", Role::Owner).await;
    let api = |path: &str| server.http_url(&format!("/api/v1/rooms/{ROOM}{path}"));
    let project = json!({
        "answer_schema": {"kind": "single_choice", "options": ["pos", "neg"]},
        "overlap_min": 2, "overlap_max": 2, "onboarding_gold": 1, "gold_rate": 0.0,
        "reservation_ttl_seconds": 300, "reservation_cap_seconds": 3600,
        "pay_per_answer": 20000, "min_lead_time_ms": 0
    });
    let response = http::request("PUT", &api("/project"), Some(&owner), Some(project)).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let mut lines = String::new();
    for i in 0..8 {
        lines.push_str(&format!("{{\"id\":\"t{i}\",\"data\":{{\"n\":{i}}}}}\n"));
    }
    for i in 0..3 {
        lines.push_str(&format!(
            "{{\"id\":\"f{i}\",\"data\":{{\"n\":{i}}},\"skills\":[\"fr\"],\"tags\":[\"law\"]}}\n"
        ));
    }
    lines.push_str("{\"id\":\"g0\",\"data\":{\"n\":0},\"gold\":\"pos\"}\n");
    let response = http::post_raw(&api("/tasks"), &owner, &lines).await;
    assert_eq!(response.json()["inserted"], 12, "{}", response.body);

    let base = server.ws_url("");
    let mut clients = Vec::new();
    for name in WORKERS {
        let token = server.token(ROOM, name, Role::Worker).await;
        clients.push(LiveClient::connect(&base, ROOM, &token).await);
    }
    let put = |path: String, body: Value| {
        let owner = owner.clone();
        async move {
            let response = http::request("PUT", &path, Some(&owner), Some(body)).await;
            assert_eq!(response.status, 200, "{}", response.body);
        }
    };
    put(api("/members/ann/skills"), json!({"skills": ["fr", "de"]})).await;
    put(api("/members/bob/interests"), json!({"interests": ["law"]})).await;
    let [ann, bob, cat, dan, eve] = &mut clients[..] else {
        unreachable!()
    };
    // Ann answers three (gold first: onboarding), then holds one.
    for _ in 0..3 {
        answer(ann).await;
    }
    take(ann).await;
    // Bob answers, skips, answers, skips.
    answer(bob).await;
    skip(bob).await;
    answer(bob).await;
    skip(bob).await;
    // Cat answers one and holds one; Dan holds one and is paused; Eve
    // answers one.
    answer(cat).await;
    take(cat).await;
    take(dan).await;
    let response = http::request(
        "POST",
        &api("/workers/dan/pause"),
        Some(&owner),
        Some(json!({"reason": "checking"})),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    answer(eve).await;
    // One of Ann's answers is rejected: its lead time no longer counts in
    // her pay's hourly rate (the load subtracts it).
    let entries = http::request("GET", &api("/ledger?worker=ann"), Some(&owner), None).await;
    assert_eq!(entries.status, 200, "{}", entries.body);
    let entry = entries.json()["entries"][0]["id"].as_i64().unwrap();
    let rejected = http::request(
        "POST",
        &api(&format!("/ledger/{entry}/reject")),
        Some(&owner),
        Some(json!({"reason": "off topic"})),
    )
    .await;
    assert_eq!(rejected.status, 200, "{}", rejected.body);

    let room = RoomId::parse(ROOM).unwrap();
    let store = &server.store;
    let rows = store.load_work(&room).await.unwrap();
    let now = now_ms();
    let loaded = rows.clone().into_state().unwrap();
    let mut state = loaded.state;
    assert_eq!(state.project().overlap_min, 2);

    // Tasks: counts, reservations and states as stored.
    let listed = store.tasks(&room, None, 0, 1000).await.unwrap();
    assert_eq!(listed.len(), 12);
    assert_eq!(rows.tasks.len(), listed.len());
    let mut decided = 0;
    for task in &listed {
        let row = rows.tasks.iter().find(|row| row.id == task.id).unwrap();
        assert_eq!(i64::from(row.answered), task.answered, "{}", task.id);
        assert_eq!(i64::from(row.overlap_target), task.overlap_target);
        assert_eq!((&row.skills, &row.gold), (&task.skills, &task.gold));
        let reserved = rows
            .reservations
            .iter()
            .filter(|held| held.reservation.task_id == task.id)
            .count();
        assert_eq!(reserved as i64, task.reserved, "task {}", task.id);
        let expected = match task.state.as_str() {
            "open" if task.answered >= task.overlap_target => TaskState::Deciding,
            "open" => TaskState::Open,
            "complete" => TaskState::Complete,
            "review" => TaskState::Review,
            "rejected" => TaskState::Rejected,
            other => panic!("state {other}"),
        };
        decided += usize::from(task.state != "open");
        assert_eq!(state.task_state(task.id).unwrap(), expected, "{}", task.id);
    }
    assert!(
        decided > 0,
        "some tasks reached their overlap and were decided"
    );
    assert_eq!(rows.reservations.len(), 3);
    let counts = state.counts(now);
    let stored = store.queue_counts(&room).await.unwrap();
    assert_eq!(
        (
            counts.total,
            counts.open,
            counts.complete,
            counts.review,
            counts.reserved,
            counts.answers
        ),
        (
            stored.total,
            stored.open,
            stored.complete,
            stored.review,
            stored.reserved,
            stored.answers
        )
    );
    assert_eq!((counts.reserved, counts.answers), (3, 7));

    // Workers: what the store's view says, and their open answers and skips.
    let mut conn = AnyConnection::connect(&server.db.url).await.unwrap();
    for name in WORKERS {
        let user = UserId::parse(name).unwrap();
        let view = state.view(name, now);
        let stored = stored_view(store, &mut conn, &room, &user, now).await;
        assert_eq!(
            view.reservation.map(|held| (held.task_id, held.expires_at)),
            stored.reservation,
            "{name}"
        );
        let record = view.record;
        assert_eq!(
            (
                view.answers,
                record.gold_correct,
                record.gold_total,
                record.agree,
                record.disagree
            ),
            (
                stored.quality.answers,
                stored.quality.gold_correct,
                stored.quality.gold_total,
                stored.quality.agree,
                stored.quality.disagree
            ),
            "{name}"
        );
        assert_eq!(view.paused, stored.quality.paused, "{name}");
        let earnings = view.earnings;
        assert_eq!(
            (
                earnings.pending,
                earnings.approved,
                earnings.paid,
                earnings.rejected
            ),
            (
                stored.earnings.pending,
                stored.earnings.approved,
                stored.earnings.paid,
                stored.earnings.rejected
            ),
            "{name}"
        );
        assert_eq!(view.hourly_rate, stored.earnings.hourly_rate, "{name}");
        let mut skills = state.skills_of(name);
        skills.sort();
        assert_eq!(skills, stored.skills, "{name}");
        let row = rows.workers.iter().find(|row| row.id == name);
        // The rows may hold answers of decided tasks too (the queue drops
        // them); those of open tasks must all be there.
        let open = |task: &i64| listed.iter().any(|t| t.id == *task && t.state == "open");
        let (answered, skipped) = row.map_or((BTreeSet::new(), BTreeSet::new()), |row| {
            (
                row.answered.iter().copied().filter(open).collect(),
                row.skipped.iter().copied().collect(),
            )
        });
        assert_eq!(answered, ids(&mut conn, ANSWERED, name).await, "{name}");
        assert_eq!(skipped, ids(&mut conn, SKIPPED, name).await, "{name}");
    }
    assert_eq!(state.view("dan", now).paused.as_deref(), Some("checking"));
    assert!(state.view("dan", now).reservation.is_some());
    let bob_row = rows.workers.iter().find(|row| row.id == "bob").unwrap();
    assert_eq!(bob_row.interests, ["law"]);

    // Grants from memory: every one is a task the SQL path could grant,
    // and a worker is offered each such task they have the skills for
    // (skipping each in memory to see the next).
    for name in ["bob", "eve", "ann"] {
        let mut grantable = ids(&mut conn, GRANTABLE, name).await;
        let skills = state.skills_of(name);
        let mut granted = BTreeSet::new();
        loop {
            let outcome = state.request(name, 0.99, now).unwrap();
            match outcome.value {
                Grant::Granted(held) => {
                    assert!(
                        grantable.contains(&held.task_id),
                        "{name} granted {} from memory, which SQL would not grant",
                        held.task_id
                    );
                    let task = listed.iter().find(|t| t.id == held.task_id).unwrap();
                    assert!(task.skills.iter().all(|skill| skills.contains(skill)));
                    assert!(granted.insert(held.task_id), "granted twice");
                    state.skip(name, held.task_id, now).unwrap();
                }
                Grant::Held(held) => {
                    // Ann holds a reservation: memory gives it back, as SQL does.
                    let user = UserId::parse(name).unwrap();
                    let stored = stored_view(store, &mut conn, &room, &user, now).await;
                    assert_eq!(Some(held.task_id), stored.reservation.map(|r| r.0));
                    // Given back, SQL could grant it to them again.
                    state.release(name, now).unwrap();
                    grantable.insert(held.task_id);
                }
                Grant::Refused(Refusal::NoWork) => break,
                Grant::Refused(other) => panic!("{name} refused: {other:?}"),
            }
        }
        let regular: BTreeSet<i64> = grantable
            .iter()
            .copied()
            .filter(|id| {
                listed.iter().any(|task| {
                    task.id == *id
                        && task.gold.is_none()
                        && task.skills.iter().all(|skill| skills.contains(skill))
                })
            })
            .collect();
        assert!(
            regular.is_subset(&granted),
            "{name}: SQL could grant {regular:?}, memory granted {granted:?}"
        );
    }
    // A paused worker holding a reservation gets it back, nothing new.
    let outcome = state.request("dan", 0.99, now).unwrap();
    assert!(
        matches!(outcome.value, Grant::Held(_)),
        "{:?}",
        outcome.value
    );
}
