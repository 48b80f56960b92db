//! The work engine over the public API: project, import, the worker's side
//! of a task (request, heartbeat, submit, skip, expiry), the live queue, and
//! the overlap invariants under concurrency, on both stores and across two
//! server processes sharing PostgreSQL.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crowdroom::auth::Role;
use crowdroom_tests::client::LiveClient;
use crowdroom_tests::process::ServerProcess;
use crowdroom_tests::{Backend, TestDb, TestServer, both_stores, decided, http};
use serde_json::{Value, json};

both_stores! {
    import_and_export_every_format => import_and_export;
    worker_flow => worker_flow;
    many_workers_at_once_keep_the_invariants => many_workers_at_once;
}

pub(crate) fn project(overlap: u32, ttl_seconds: u64) -> Value {
    json!({
        "instructions": "Is the sentence positive?",
        "answer_schema": {"kind": "single_choice", "options": ["pos", "neg"]},
        "overlap_min": overlap, "overlap_max": overlap + 2,
        "reservation_ttl_seconds": ttl_seconds, "reservation_cap_seconds": 3600,
        "pay_per_answer": 20000
    })
}

/// Configures the project and imports `count` tasks as JSONL; returns the owner token.
pub(crate) async fn setup(
    server: &TestServer,
    room: &str,
    overlap: u32,
    ttl_seconds: u64,
    count: usize,
) -> String {
    let owner = server.token(room, "olivia", Role::Owner).await;
    let url = server.http_url(&format!("/api/v1/rooms/{room}/project"));
    let response = http::request(
        "PUT",
        &url,
        Some(&owner),
        Some(project(overlap, ttl_seconds)),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    let lines: String = (0..count)
        .map(|i| format!("{{\"id\":\"t{i}\",\"data\":{{\"text\":\"sentence {i}\"}}}}\n"))
        .collect();
    let url = server.http_url(&format!("/api/v1/rooms/{room}/tasks"));
    let response = http::post_raw(&url, &owner, &lines).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        response.json()["inserted"],
        count as u64,
        "{}",
        response.body
    );
    owner
}

async fn worker_flow(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let base = server.ws_url("");
    let owner = setup(&server, "r1", 2, 300, 3).await;
    // A re-import skips known ids; bad tasks are reported, not fatal.
    let body = "[{\"id\":\"t0\",\"data\":1},{\"id\":\"g1\",\"data\":2,\"gold\":\"pos\"},{\"id\":\"g2\",\"data\":3,\"gold\":\"maybe\"},{\"nope\":1}]";
    let report = http::post_raw(&server.http_url("/api/v1/rooms/r1/tasks"), &owner, body)
        .await
        .json();
    assert_eq!(
        (
            report["inserted"].as_u64(),
            report["duplicates"].as_u64(),
            report["rejected"].as_u64()
        ),
        (Some(1), Some(1), Some(2)),
        "{report}"
    );

    let ann = server.token("r1", "ann", Role::Worker).await;
    let bob = server.token("r1", "bob", Role::Worker).await;
    let viewer = server.token("r1", "vic", Role::Viewer).await;
    let mut ann = LiveClient::connect(&base, "r1", &ann).await;
    let mut bob = LiveClient::connect(&base, "r1", &bob).await;
    let mut vic = LiveClient::connect(&base, "r1", &viewer).await;
    assert_eq!(
        vic.request("task.request", json!({})).await["error"]["code"],
        "forbidden"
    );

    let granted = ann.request("task.request", json!({})).await;
    assert_eq!(granted["ok"], true, "{granted}");
    let task = granted["result"]["task"]["id"].as_i64().unwrap();
    assert!(
        granted["result"]["task"]["data"]["text"].is_string()
            || granted["result"]["task"]["data"].is_number()
    );
    assert!(
        granted["result"]["task"].get("gold").is_none(),
        "workers never see gold answers"
    );
    let expires = granted["result"]["reservation"]["expires_at"]
        .as_i64()
        .unwrap();
    // Asking again returns the same reservation.
    let again = ann.request("task.request", json!({})).await;
    assert_eq!(again["result"]["task"]["id"], task);
    let extended = ann
        .request("task.heartbeat", json!({"task_id": task}))
        .await;
    assert!(
        extended["result"]["expires_at"].as_i64().unwrap() >= expires,
        "{extended}"
    );
    // Answers are checked against the schema; a worker without the reservation is refused.
    let invalid = ann
        .request("task.submit", json!({"task_id": task, "answer": "maybe"}))
        .await;
    assert_eq!(invalid["error"]["code"], "bad_request");
    let foreign = bob
        .request("task.submit", json!({"task_id": task, "answer": "pos"}))
        .await;
    assert_eq!(foreign["error"]["code"], "reservation_expired");
    let submitted = ann
        .request("task.submit", json!({"task_id": task, "answer": "pos"}))
        .await;
    assert_eq!(submitted["ok"], true, "{submitted}");
    // The acknowledgement carries no progress: it follows in `queue.mine`
    // (after the earlier requests' pushes, which still show the reservation).
    assert!(submitted["result"].get("progress").is_none(), "{submitted}");
    let mine = loop {
        let mine = ann.event("queue.mine").await;
        if mine["data"]["mine"].is_null() {
            break mine;
        }
        assert_eq!(mine["data"]["progress"]["answers"], 0, "{mine}");
    };
    assert_eq!(mine["data"]["progress"]["answers"], 1, "{mine}");
    assert_eq!(mine["data"]["progress"]["pending_earnings"], 20000);
    let twice = ann
        .request("task.submit", json!({"task_id": task, "answer": "neg"}))
        .await;
    assert_eq!(twice["error"]["code"], "reservation_expired");
    // Skipping gives the slot back and the task is not offered again.
    let next = ann.request("task.request", json!({})).await;
    // A grant carries the worker's progress, read with the reservation.
    assert_eq!(next["result"]["progress"]["answers"], 1, "{next}");
    assert_eq!(next["result"]["progress"]["earnings"]["pending"], 20000);
    let skipped = next["result"]["task"]["id"].as_i64().unwrap();
    assert_ne!(skipped, task, "a worker never gets a task they answered");
    assert_eq!(
        ann.request("task.skip", json!({"task_id": skipped})).await["ok"],
        true
    );
    let after_skip = ann.request("task.request", json!({})).await;
    let third = after_skip["result"]["task"]["id"].as_i64().unwrap();
    assert!(third != task && third != skipped);
    // The queue: everyone watching gets counts pushed.
    let counts = bob.event("queue.counts").await;
    assert!(counts["data"]["total"].as_i64().unwrap() >= 4, "{counts}");
    let queue = bob.request("queue.get", json!({})).await;
    assert_eq!(queue["result"]["counts"]["answers"], 1, "{queue}");
    assert!(queue["result"]["mine"].is_null());
    let listed = http::get(
        &server.http_url("/api/v1/rooms/r1/tasks?limit=10"),
        Some(&owner),
    )
    .await
    .json();
    assert_eq!(listed["tasks"].as_array().unwrap().len(), 4);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_reservations_free_the_slot_at_once() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let base = server.ws_url("");
    setup(&server, "r1", 1, 1, 1).await;
    let ann = server.token("r1", "ann", Role::Worker).await;
    let bob = server.token("r1", "bob", Role::Worker).await;
    let mut ann = LiveClient::connect(&base, "r1", &ann).await;
    let mut bob = LiveClient::connect(&base, "r1", &bob).await;
    let granted = ann.request("task.request", json!({})).await;
    let task = granted["result"]["task"]["id"].as_i64().unwrap();
    assert_eq!(
        bob.request("task.request", json!({})).await["result"]["reason"],
        "no_work"
    );
    // Ann's reservation lapses: she is told, and Bob gets the slot.
    let expired = ann.event("task.expired").await;
    assert_eq!(expired["data"]["task_id"], task);
    let granted = bob.request("task.request", json!({})).await;
    assert_eq!(granted["result"]["task"]["id"], task, "{granted}");
    let late = ann
        .request("task.submit", json!({"task_id": task, "answer": "pos"}))
        .await;
    assert_eq!(late["error"]["code"], "reservation_expired");
    assert_eq!(
        bob.request("task.submit", json!({"task_id": task, "answer": "neg"}))
            .await["ok"],
        true
    );
    server.stop().await;
}

const TASKS: usize = 12;
const OVERLAP: u32 = 3;
const WORKERS: usize = 16;

/// Workers spread over `bases` loop request → submit until there is no
/// work, or each has answered `limit` tasks; returns every (task, worker)
/// they were acknowledged for.
async fn crowd(
    bases: Vec<String>,
    tokens: Vec<(String, String)>,
    limit: usize,
) -> Vec<(i64, String)> {
    let mut handles = Vec::new();
    for (index, (user, token)) in tokens.into_iter().enumerate() {
        let base = bases[index % bases.len()].clone();
        handles.push(tokio::spawn(async move {
            let mut client = LiveClient::connect(&base, "r1", &token).await;
            let mut done = Vec::new();
            while done.len() < limit {
                let granted = client.request("task.request", json!({})).await;
                assert_eq!(granted["ok"], true, "{granted}");
                let Some(task) = granted["result"]["task"]["id"].as_i64() else {
                    break;
                };
                let submitted = client
                    .request("task.submit", json!({"task_id": task, "answer": "pos"}))
                    .await;
                assert_eq!(submitted["ok"], true, "{submitted}");
                done.push((task, user.clone()));
            }
            done
        }));
    }
    let mut all = Vec::new();
    for handle in handles {
        all.extend(
            tokio::time::timeout(Duration::from_secs(60), handle)
                .await
                .expect("crowd finished")
                .unwrap(),
        );
    }
    all
}

fn check_invariants(answers: &[(i64, String)]) {
    let mut per_task: HashMap<i64, Vec<&String>> = HashMap::new();
    for (task, worker) in answers {
        per_task.entry(*task).or_default().push(worker);
    }
    assert_eq!(per_task.len(), TASKS, "every task was answered");
    for (task, workers) in &per_task {
        assert_eq!(
            workers.len(),
            OVERLAP as usize,
            "task {task} got exactly its overlap"
        );
        let distinct: HashSet<_> = workers.iter().collect();
        assert_eq!(
            distinct.len(),
            workers.len(),
            "task {task}: a worker answered twice"
        );
    }
}

async fn many_workers_at_once(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let owner = setup(&server, "r1", OVERLAP, 300, TASKS).await;
    let mut tokens = Vec::new();
    for i in 0..WORKERS {
        tokens.push((
            format!("w{i}"),
            server.token("r1", &format!("w{i}"), Role::Worker).await,
        ));
    }
    let answers = crowd(vec![server.ws_url("")], tokens, usize::MAX).await;
    check_invariants(&answers);
    for task in &decided(&server, "r1", &owner).await {
        assert_eq!(
            (task["answered"].as_i64(), task["reserved"].as_i64()),
            (Some(OVERLAP as i64), Some(0)),
            "{task}"
        );
        assert_eq!(task["state"], "complete");
    }
    server.stop().await;
}

/// Two processes share PostgreSQL, and one runs the room at a time (its
/// lease, server/src/rooms/lease.rs): while the first does, the second
/// refuses it (4013); once the first shuts down, the second takes it over
/// at once and the crowd finishes there, every task answered exactly its
/// overlap across both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_sharing_postgres_keep_the_invariants() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let server = TestServer::start_on(db, crowdroom_tests::fast_settings()).await;
    setup(&server, "r1", OVERLAP, 300, TASKS).await;
    let mut tokens = Vec::new();
    for i in 0..WORKERS {
        tokens.push((
            format!("w{i}"),
            server.token("r1", &format!("w{i}"), Role::Worker).await,
        ));
    }
    let first = ServerProcess::start(&server.db.url).await;
    let second = ServerProcess::start(&server.db.url).await;
    let (first_base, second_base) = (
        format!("ws://{}", first.addr),
        format!("ws://{}", second.addr),
    );
    let probe = &tokens[0].1;
    let watcher = LiveClient::connect(&first_base, "r1", probe).await;
    assert_eq!(
        crate::lease::live_join(&second_base, "r1", probe).await,
        Err(Some(crate::lease::ROOM_ELSEWHERE)),
        "the second process ran a room the first runs"
    );
    let early = tokens[..WORKERS / 2].to_vec();
    let mut answers = crowd(vec![first_base], early, 1).await;
    assert_eq!(answers.len(), WORKERS / 2);
    assert_eq!(
        crate::lease::live_join(&second_base, "r1", probe).await,
        Err(Some(crate::lease::ROOM_ELSEWHERE))
    );
    drop(watcher);
    assert!(first.terminate().await.success());
    answers.extend(crowd(vec![second_base], tokens, usize::MAX).await);
    check_invariants(&answers);
    second.terminate().await;
    server.stop().await;
}

async fn import_and_export(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let owner = setup(&server, "r1", 1, 300, 0).await;
    let tasks_url = server.http_url("/api/v1/rooms/r1/tasks");
    // CSV: quoted fields with commas and newlines, a gold column, skills.
    let csv = "id,text,gold,skills\nc1,\"Hello, world\",pos,\nc2,\"two\nlines\",,en;de\nc3,bad gold,maybe,\n";
    let report = http::post_typed(&tasks_url, &owner, "text/csv", csv).await;
    assert_eq!(report.status, 200, "{}", report.body);
    let report = report.json();
    assert_eq!(
        (report["inserted"].as_u64(), report["rejected"].as_u64()),
        (Some(2), Some(1)),
        "{report}"
    );
    // A larger JSONL import streams through in batches.
    let lines: String = (0..2500)
        .map(|i| format!("{{\"id\":\"j{i}\",\"data\":{{\"n\":{i}}}}}\n"))
        .collect();
    let report = http::post_typed(&tasks_url, &owner, "application/x-ndjson", &lines)
        .await
        .json();
    assert_eq!(report["inserted"], 2500, "{report}");
    let listed = http::get(
        &server.http_url("/api/v1/rooms/r1/tasks?limit=2"),
        Some(&owner),
    )
    .await
    .json();
    assert_eq!(listed["tasks"][0]["data"]["text"], "Hello, world");
    assert_eq!(listed["tasks"][0]["gold"], "pos");
    assert_eq!(listed["tasks"][1]["data"]["text"], "two\nlines");
    assert_eq!(listed["tasks"][1]["skills"], json!(["en", "de"]));

    // One answer, then every export format carries it.
    let token = server.token("r1", "ann", Role::Worker).await;
    let mut ann = LiveClient::connect(&server.ws_url(""), "r1", &token).await;
    let granted = ann.request("task.request", json!({})).await;
    let task = granted["result"]["task"]["id"].as_i64().unwrap();
    assert_eq!(
        ann.request("task.submit", json!({"task_id": task, "answer": "neg"}))
            .await["ok"],
        true
    );
    let jsonl = http::get(
        &server.http_url("/api/v1/rooms/r1/export?format=jsonl"),
        Some(&owner),
    )
    .await;
    let rows: Vec<Value> = jsonl
        .body
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(rows.len(), 2502);
    let answered = rows.iter().find(|row| row["task_id"] == task).unwrap();
    assert_eq!(answered["answers"][0]["worker"], "ann");
    assert_eq!(answered["answers"][0]["answer"], "neg");
    assert!(answered["answers"][0]["lead_time_ms"].is_i64());
    let json_export = http::get(
        &server.http_url("/api/v1/rooms/r1/export?format=json"),
        Some(&owner),
    )
    .await
    .json();
    assert_eq!(json_export.as_array().unwrap().len(), 2502);
    let csv_export = http::get(
        &server.http_url("/api/v1/rooms/r1/export?format=csv"),
        Some(&owner),
    )
    .await
    .body;
    let mut reader = csv_reader(&csv_export);
    assert_eq!(reader.len(), 2503, "header plus one row per task");
    let header = reader.remove(0);
    assert_eq!(header[0], "task_id");
    let row = reader
        .iter()
        .find(|row| row[0] == task.to_string())
        .unwrap();
    assert_eq!(row[6], "1");
    assert!(row[7].contains("\"neg\""), "{row:?}");
    // Workers cannot export (gold answers are in it); unknown formats are refused.
    assert_eq!(
        http::get(&server.http_url("/api/v1/rooms/r1/export"), Some(&token))
            .await
            .status,
        403
    );
    assert_eq!(
        http::get(
            &server.http_url("/api/v1/rooms/r1/export?format=xml"),
            Some(&owner)
        )
        .await
        .status,
        400
    );
    server.stop().await;
}

/// A minimal RFC 4180 reader for checking the export (quotes, commas, newlines).
fn csv_reader(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

/// Configures a project with gold rules and imports gold and regular tasks.
pub(crate) async fn quality_room(
    server: &TestServer,
    room: &str,
    onboarding: u32,
    min_lead_time_ms: u64,
    gold: usize,
    regular: usize,
) -> String {
    let owner = server.token(room, "olivia", Role::Owner).await;
    let config = json!({
        "answer_schema": {"kind": "single_choice", "options": ["pos", "neg"]},
        "overlap_min": 1, "overlap_max": 1, "onboarding_gold": onboarding, "gold_rate": 0.0,
        "min_accuracy": 0.6, "min_lead_time_ms": min_lead_time_ms
    });
    let response = http::request(
        "PUT",
        &server.http_url(&format!("/api/v1/rooms/{room}/project")),
        Some(&owner),
        Some(config),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    let mut lines = String::new();
    for i in 0..gold {
        lines.push_str(&format!(
            "{{\"id\":\"g{i}\",\"data\":{{}},\"gold\":\"pos\"}}\n"
        ));
    }
    for i in 0..regular {
        lines.push_str(&format!("{{\"id\":\"r{i}\",\"data\":{{}}}}\n"));
    }
    let response = http::post_raw(
        &server.http_url(&format!("/api/v1/rooms/{room}/tasks")),
        &owner,
        &lines,
    )
    .await;
    assert_eq!(
        response.json()["inserted"],
        (gold + regular) as u64,
        "{}",
        response.body
    );
    owner
}

/// Requests a task and answers it; returns (external id, submit result).
pub(crate) async fn answer_next(client: &mut LiveClient, answer: &str) -> (String, Value) {
    let granted = client.request("task.request", json!({})).await;
    let external = granted["result"]["task"]["external_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no task: {granted}"))
        .to_owned();
    let task = granted["result"]["task"]["id"].as_i64().unwrap();
    let submitted = client
        .request("task.submit", json!({"task_id": task, "answer": answer}))
        .await;
    assert_eq!(submitted["ok"], true, "{submitted}");
    (external, submitted["result"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tab_sees_the_workers_reservation_progress_and_earnings() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    setup(&server, "r1", 1, 300, 2).await;
    let token = server.token("r1", "ann", Role::Worker).await;
    let mut acting = LiveClient::connect(&server.ws_url(""), "r1", &token).await;
    let mut watching = LiveClient::connect(&server.ws_url(""), "r1", &token).await;
    let granted = acting.request("task.request", json!({})).await;
    let task = granted["result"]["task"]["id"].as_i64().unwrap();
    let mine = watching.event("queue.mine").await;
    assert_eq!(mine["data"]["mine"]["task"]["id"], task, "{mine}");
    assert!(mine["data"]["mine"]["reservation"]["expires_at"].is_i64());
    acting
        .request("task.submit", json!({"task_id": task, "answer": "pos"}))
        .await;
    let mine = watching.event("queue.mine").await;
    assert!(mine["data"]["mine"].is_null(), "{mine}");
    assert_eq!(mine["data"]["progress"]["answers"], 1);
    assert_eq!(mine["data"]["progress"]["earnings"]["pending"], 20_000);
    server.stop().await;
}
