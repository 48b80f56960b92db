//! What the owner sees of the crowd's room after a restart, over REST
//! (and SQL for reservations and skips, which nothing public lists), and
//! the checks of it against what the server acknowledged.

use std::collections::{HashMap, HashSet};

use crowdroom::ids::now_ms;
use crowdroom_tests::http;
use serde_json::{Value, json};
use sqlx::{Connection, Row};

use super::{Acked, OVERLAP, PAY, ROOM, TASKS, TTL_SECONDS, WORKERS, truth};

/// The owner's view of the room over REST.
pub(super) struct Api {
    pub(super) base: String,
    pub(super) owner: String,
}

impl Api {
    async fn get(&self, path: &str) -> Value {
        let url = format!("{}/api/v1/rooms/{ROOM}{path}", self.base);
        let response = http::get(&url, Some(&self.owner)).await;
        assert_eq!(response.status, 200, "GET {path}: {}", response.body);
        response.json()
    }

    pub(super) async fn setup_project(&self) {
        let project = json!({
            "instructions": "Is the sentence positive?",
            "answer_schema": {"kind": "single_choice", "options": ["pos", "neg"]},
            "overlap_min": OVERLAP, "overlap_max": OVERLAP + 2,
            "gold_rate": 0.0, "onboarding_gold": 0, "min_lead_time_ms": 0,
            "reservation_ttl_seconds": TTL_SECONDS, "reservation_cap_seconds": 3600,
            "pay_per_answer": PAY
        });
        let url = format!("{}/api/v1/rooms/{ROOM}/project", self.base);
        let response = http::request("PUT", &url, Some(&self.owner), Some(project)).await;
        assert_eq!(response.status, 200, "{}", response.body);
        let lines: String = (0..TASKS)
            .map(|i| format!("{{\"id\":\"t{i}\",\"data\":{{\"text\":\"sentence {i}\"}}}}\n"))
            .collect();
        let url = format!("{}/api/v1/rooms/{ROOM}/tasks", self.base);
        let response = http::post_raw(&url, &self.owner, &lines).await;
        assert_eq!(response.status, 200, "{}", response.body);
        assert_eq!(
            response.json()["inserted"],
            TASKS as u64,
            "{}",
            response.body
        );
    }
}

/// One task as the review view shows it.
#[derive(Debug)]
pub(super) struct StoredTask {
    pub(super) state: String,
    consensus: Value,
    overlap_target: i64,
    answered: i64,
    reserved: i64,
    /// (worker, answer id), in the order stored.
    answers: Vec<(String, i64)>,
}

/// What the store holds, read over REST (and SQL where nothing public shows it).
pub(super) struct Stored {
    pub(super) tasks: HashMap<i64, StoredTask>,
    /// (task, worker) of every reservation.
    pub(super) reservations: HashSet<(i64, String)>,
}

/// Checks the store against what was acknowledged; returns what it read.
pub(super) async fn check_store(api: &Api, url: &str, acked: &Acked) -> Stored {
    let listed = api.get("/tasks?limit=1000").await;
    let mut tasks = HashMap::new();
    for task in listed["tasks"].as_array().unwrap() {
        let id = task["id"].as_i64().unwrap();
        let view = api.get(&format!("/tasks/{id}")).await;
        let reviews = view["reviews"].as_array().unwrap();
        assert!(reviews.is_empty(), "task {id} was never reviewed: {view}");
        let answers = view["answers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|answer| {
                let worker = answer["worker"].as_str().unwrap().to_owned();
                (worker, answer["answer_id"].as_i64().unwrap())
            })
            .collect();
        let task = &view["task"];
        tasks.insert(
            id,
            StoredTask {
                state: task["state"].as_str().unwrap().to_owned(),
                consensus: task["consensus"].clone(),
                overlap_target: task["overlap_target"].as_i64().unwrap(),
                answered: task["answered"].as_i64().unwrap(),
                reserved: task["reserved"].as_i64().unwrap(),
                answers,
            },
        );
    }
    assert_eq!(tasks.len(), TASKS, "{listed}");
    let (reservations, skipped) = read_reservations_and_skips(url).await;
    let mut reserved: HashMap<i64, i64> = HashMap::new();
    for (task, _) in &reservations {
        *reserved.entry(*task).or_default() += 1;
    }

    let mut stored_answers: HashMap<(i64, String), i64> = HashMap::new();
    for (id, task) in &tasks {
        for (worker, answer_id) in &task.answers {
            let earlier = stored_answers.insert((*id, worker.clone()), *answer_id);
            assert!(
                earlier.is_none(),
                "{worker} answered task {id} twice: {task:?}"
            );
        }
        assert_eq!(
            task.answered,
            task.answers.len() as i64,
            "task {id}: `answered` counts its answers: {task:?}"
        );
        assert_eq!(
            task.reserved,
            reserved.get(id).copied().unwrap_or(0),
            "task {id}: `reserved` counts its live reservations: {task:?}"
        );
        assert!(
            task.answered + task.reserved <= task.overlap_target,
            "task {id} is over its overlap: {task:?}"
        );
        match task.state.as_str() {
            "complete" => {
                assert_eq!(task.answered, task.overlap_target, "task {id}: {task:?}");
                assert_eq!(task.consensus, truth(*id), "task {id}: {task:?}");
            }
            "open" => assert!(task.consensus.is_null(), "task {id}: {task:?}"),
            other => panic!("task {id} is {other}: every answer agreed: {task:?}"),
        }
    }
    for answer in &acked.answers {
        let key = (answer.task, answer.worker.clone());
        assert_eq!(
            stored_answers.get(&key),
            Some(&answer.answer_id),
            "acknowledged answer {answer:?} is stored"
        );
    }
    for grant in &acked.grants {
        assert!(
            stored_answers.contains_key(grant)
                || reservations.contains(grant)
                || skipped.contains(grant),
            "acknowledged grant {grant:?} left no answer, reservation or skip"
        );
    }
    check_decided_once(api, &tasks).await;
    check_ledger(api, &tasks).await;
    Stored {
        tasks,
        reservations,
    }
}

/// Each completed task was decided exactly once: deciding it adds one
/// agreement to each of its workers' records (every answer agreed), so a
/// worker's `agree` is the number of their answers on completed tasks, no
/// more (decided twice) and no fewer (completed without a decision).
async fn check_decided_once(api: &Api, tasks: &HashMap<i64, StoredTask>) {
    let mut on_complete: HashMap<String, i64> = HashMap::new();
    let mut answered: HashMap<String, i64> = HashMap::new();
    for task in tasks.values() {
        for (worker, _) in &task.answers {
            *answered.entry(worker.clone()).or_default() += 1;
            if task.state == "complete" {
                *on_complete.entry(worker.clone()).or_default() += 1;
            }
        }
    }
    let records = api.get("/workers").await;
    let records = records["workers"].as_array().unwrap();
    assert_eq!(records.len(), WORKERS, "{records:?}");
    for record in records {
        let worker = record["worker"].as_str().unwrap();
        assert_eq!(
            (
                record["agree"].as_i64(),
                record["disagree"].as_i64(),
                record["answers"].as_i64()
            ),
            (
                Some(on_complete.get(worker).copied().unwrap_or(0)),
                Some(0),
                Some(answered.get(worker).copied().unwrap_or(0))
            ),
            "{worker}'s record (agree, disagree, answers): {record}"
        );
    }
}

/// Every stored answer booked exactly one pending entry.
async fn check_ledger(api: &Api, tasks: &HashMap<i64, StoredTask>) {
    let mut answered: HashMap<String, i64> = HashMap::new();
    for task in tasks.values() {
        for (worker, _) in &task.answers {
            *answered.entry(worker.clone()).or_default() += 1;
        }
    }
    let summary = api.get("/ledger/summary").await;
    let lines = summary["workers"].as_array().unwrap();
    for line in lines {
        let worker = line["worker"].as_str().unwrap();
        assert_eq!(
            line["pending"].as_i64(),
            Some(PAY * answered.get(worker).copied().unwrap_or(0)),
            "{worker}'s pending pay: {line}"
        );
    }
    let paid: HashSet<&str> = lines
        .iter()
        .filter_map(|line| line["worker"].as_str())
        .collect();
    for worker in answered.keys() {
        assert!(paid.contains(worker.as_str()), "{worker} is in the ledger");
    }
}

/// Reservations and skips: nothing public lists them all.
async fn read_reservations_and_skips(
    url: &str,
) -> (HashSet<(i64, String)>, HashSet<(i64, String)>) {
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connect");
    let now = now_ms();
    let mut reservations = HashSet::new();
    let rows = sqlx::query("SELECT task_id, worker_id, expires_at FROM reservations")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    for row in rows {
        let task: i64 = row.try_get("task_id").unwrap();
        let worker: String = row.try_get("worker_id").unwrap();
        let expires_at: i64 = row.try_get("expires_at").unwrap();
        assert!(
            expires_at > now,
            "{worker}'s reservation of task {task} expired during the test"
        );
        reservations.insert((task, worker));
    }
    let rows = sqlx::query("SELECT task_id, worker_id FROM skips")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let skips = rows
        .iter()
        .map(|row| {
            (
                row.try_get("task_id").unwrap(),
                row.try_get("worker_id").unwrap(),
            )
        })
        .collect();
    conn.close().await.unwrap();
    (reservations, skips)
}

/// The export shows the same answers as the review view, once each.
pub(super) async fn check_export(api: &Api, stored: &Stored) {
    let url = format!("{}/api/v1/rooms/{ROOM}/export?format=jsonl", api.base);
    let export = http::get(&url, Some(&api.owner)).await;
    assert_eq!(export.status, 200, "{}", export.body);
    let mut rows = 0;
    for line in export.body.lines() {
        let row: Value = serde_json::from_str(line).unwrap();
        let id = row["task_id"].as_i64().unwrap();
        let task = &stored.tasks[&id];
        let mut exported: Vec<&str> = row["answers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|answer| answer["worker"].as_str().unwrap())
            .collect();
        let mut expected: Vec<&str> = task.answers.iter().map(|(w, _)| w.as_str()).collect();
        exported.sort_unstable();
        expected.sort_unstable();
        assert_eq!(exported, expected, "task {id}'s exported answers");
        assert_eq!(row["state"], "complete", "{row}");
        assert_eq!(row["consensus"], truth(id), "{row}");
        rows += 1;
    }
    assert_eq!(rows, TASKS);
}

/// The end: every task decided once at its overlap, nothing reserved.
pub(super) fn check_all_decided(stored: &Stored) {
    assert_eq!(stored.tasks.len(), TASKS);
    for (id, task) in &stored.tasks {
        assert_eq!(task.state, "complete", "task {id} ends decided: {task:?}");
        assert_eq!(
            (task.answered, task.reserved, task.overlap_target),
            (OVERLAP, 0, OVERLAP),
            "task {id}: {task:?}"
        );
    }
    assert!(stored.reservations.is_empty(), "{:?}", stored.reservations);
}
