//! The work engine over the public API: project, import, the worker's side
//! of a task (request, heartbeat, submit, skip, expiry), the live queue, and
//! the overlap invariants under concurrency, on both stores and across two
//! server processes sharing PostgreSQL.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crowdroom::auth::Role;
use crowdroom_tests::client::LiveClient;
use crowdroom_tests::process::ServerProcess;
use crowdroom_tests::{Backend, TestDb, TestServer, both_stores, http};
use serde_json::{Value, json};

both_stores! {
    import_and_export_every_format => import_and_export;
    worker_flow => worker_flow;
    many_workers_at_once_keep_the_invariants => many_workers_at_once;
}

fn project(overlap: u32, ttl_seconds: u64) -> Value {
    json!({
        "instructions": "Is the sentence positive?",
        "answer_schema": {"kind": "single_choice", "options": ["pos", "neg"]},
        "overlap_min": overlap, "overlap_max": overlap + 2,
        "reservation_ttl_seconds": ttl_seconds, "reservation_cap_seconds": 3600,
        "pay_per_answer": 20000
    })
}

/// Configures the project and imports `count` tasks as JSONL; returns the owner token.
async fn setup(
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
    assert_eq!(submitted["result"]["progress"]["answers"], 1);
    assert_eq!(submitted["result"]["progress"]["pending_earnings"], 20000);
    let twice = ann
        .request("task.submit", json!({"task_id": task, "answer": "neg"}))
        .await;
    assert_eq!(twice["error"]["code"], "reservation_expired");
    // Skipping gives the slot back and the task is not offered again.
    let next = ann.request("task.request", json!({})).await;
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

/// Workers loop request → submit until there is no work; returns every
/// (task, worker) they were acknowledged for.
async fn crowd(bases: Vec<String>, tokens: Vec<(String, String)>) -> Vec<(i64, String)> {
    let mut handles = Vec::new();
    for (index, (user, token)) in tokens.into_iter().enumerate() {
        let base = bases[index % bases.len()].clone();
        handles.push(tokio::spawn(async move {
            let mut client = LiveClient::connect(&base, "r1", &token).await;
            let mut done = Vec::new();
            loop {
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
    let answers = crowd(vec![server.ws_url("")], tokens).await;
    check_invariants(&answers);
    let tasks = http::get(
        &server.http_url("/api/v1/rooms/r1/tasks?limit=100"),
        Some(&owner),
    )
    .await
    .json();
    for task in tasks["tasks"].as_array().unwrap() {
        assert_eq!(
            (task["answered"].as_i64(), task["reserved"].as_i64()),
            (Some(OVERLAP as i64), Some(0)),
            "{task}"
        );
        assert_eq!(task["state"], "complete");
    }
    server.stop().await;
}

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
    let bases = vec![
        format!("ws://{}", first.addr),
        format!("ws://{}", second.addr),
    ];
    let answers = crowd(bases, tokens).await;
    check_invariants(&answers);
    first.terminate().await;
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
async fn quality_room(
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
async fn answer_next(client: &mut LiveClient, answer: &str) -> (String, Value) {
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
async fn onboarding_gold_comes_first_and_bad_workers_are_paused() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let base = server.ws_url("");
    let owner = quality_room(&server, "r1", 5, 0, 6, 3).await;
    // A good worker: five onboarding gold tasks with feedback, then regular work.
    let good = server.token("r1", "good", Role::Worker).await;
    let mut good = LiveClient::connect(&base, "r1", &good).await;
    for _ in 0..5 {
        let (external, result) = answer_next(&mut good, "pos").await;
        assert!(
            external.starts_with('g'),
            "onboarding serves gold first, got {external}"
        );
        assert_eq!(result["correct"], true, "{result}");
    }
    let (external, result) = answer_next(&mut good, "neg").await;
    assert!(
        external.starts_with('r'),
        "after onboarding, regular work: {external}"
    );
    assert!(
        result["correct"].is_null(),
        "no gold feedback outside onboarding"
    );
    // A bad worker: wrong on all five gold answers is paused by the fifth.
    let bad = server.token("r1", "bad", Role::Worker).await;
    let mut bad = LiveClient::connect(&base, "r1", &bad).await;
    let mut paused = Value::Null;
    for _ in 0..5 {
        let (_, result) = answer_next(&mut bad, "neg").await;
        assert_eq!(result["correct"], false);
        paused = result["paused"].clone();
    }
    assert!(paused.as_str().unwrap().contains("accuracy"), "{paused}");
    let refused = bad.request("task.request", json!({})).await;
    assert_eq!(refused["result"]["reason"], "paused", "{refused}");
    // Moderators see the records, and can lift the pause.
    let workers = http::get(&server.http_url("/api/v1/rooms/r1/workers"), Some(&owner))
        .await
        .json();
    let record = workers["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["worker"] == "bad")
        .unwrap()
        .clone();
    assert_eq!(
        (
            record["gold_total"].as_i64(),
            record["gold_correct"].as_i64(),
            record["verdict"].as_bool()
        ),
        (Some(5), Some(0), Some(true))
    );
    assert!(record["accuracy"].as_f64().unwrap() < 0.2);
    let lifted = http::request(
        "DELETE",
        &server.http_url("/api/v1/rooms/r1/workers/bad/pause"),
        Some(&owner),
        None,
    )
    .await;
    assert_eq!(lifted.json()["unpaused"], true);
    assert!(bad.request("task.request", json!({})).await["result"]["task"].is_object());
    // Workers cannot see the table.
    let token = server.token("r1", "good", Role::Worker).await;
    assert_eq!(
        http::get(&server.http_url("/api/v1/rooms/r1/workers"), Some(&token))
            .await
            .status,
        403
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fast_answer_rule_pauses_speeders() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    quality_room(&server, "r1", 0, 60_000, 0, 8).await;
    let token = server.token("r1", "speedy", Role::Worker).await;
    let mut speedy = LiveClient::connect(&server.ws_url(""), "r1", &token).await;
    let mut paused = Value::Null;
    for _ in 0..5 {
        paused = answer_next(&mut speedy, "pos").await.1["paused"].clone();
    }
    assert!(paused.as_str().unwrap().contains("faster"), "{paused}");
    assert_eq!(
        speedy.request("task.request", json!({})).await["result"]["reason"],
        "paused"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consensus_completes_raises_overlap_or_escalates() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let base = server.ws_url("");
    let owner = server.token("r1", "olivia", Role::Owner).await;
    let config = json!({
        "answer_schema": {"kind": "single_choice", "options": ["pos", "neg"]},
        "overlap_min": 2, "overlap_max": 3, "min_confidence": 0.7, "onboarding_gold": 0, "gold_rate": 0.0,
        "min_lead_time_ms": 0
    });
    let put = http::request(
        "PUT",
        &server.http_url("/api/v1/rooms/r1/project"),
        Some(&owner),
        Some(config),
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let tasks_url = server.http_url("/api/v1/rooms/r1/tasks");
    let mut workers = Vec::new();
    for name in ["a", "b", "c"] {
        let token = server.token("r1", name, Role::Worker).await;
        workers.push(LiveClient::connect(&base, "r1", &token).await);
    }
    // Agreement: two newcomers agree, posterior 0.8 >= 0.7: complete.
    http::post_raw(&tasks_url, &owner, r#"[{"id":"agree","data":{}}]"#).await;
    answer_next(&mut workers[0], "pos").await;
    let (_, result) = answer_next(&mut workers[1], "pos").await;
    assert_eq!(result["submitted"]["task_state"], "complete", "{result}");
    // A tie is not broken: the overlap rises to 3; the third answer gives
    // 2:1, posterior 2/3 < 0.7 at the maximum overlap: review.
    http::post_raw(&tasks_url, &owner, r#"[{"id":"split","data":{}}]"#).await;
    answer_next(&mut workers[0], "pos").await;
    let (_, result) = answer_next(&mut workers[1], "neg").await;
    assert_eq!(
        result["submitted"]["task_state"], "open",
        "a tie asks for one more answer: {result}"
    );
    let (external, result) = answer_next(&mut workers[2], "pos").await;
    assert_eq!(external, "split");
    assert_eq!(result["submitted"]["task_state"], "review", "{result}");
    let export = http::get(
        &server.http_url("/api/v1/rooms/r1/export?format=json"),
        Some(&owner),
    )
    .await
    .json();
    let rows = export.as_array().unwrap();
    let agree = rows
        .iter()
        .find(|row| row["external_id"] == "agree")
        .unwrap();
    assert_eq!(
        (agree["consensus"].clone(), agree["method"].clone()),
        (json!("pos"), json!("wmv"))
    );
    assert!(
        (agree["confidence"].as_f64().unwrap() - 0.8).abs() < 1e-9,
        "{agree}"
    );
    let split = rows
        .iter()
        .find(|row| row["external_id"] == "split")
        .unwrap();
    assert_eq!(split["state"], "review");
    assert_eq!(split["answers"].as_array().unwrap().len(), 3);
    // Agreement with the confident consensus counts toward the workers' records.
    let a = http::get(&server.http_url("/api/v1/rooms/r1/workers/a"), Some(&owner))
        .await
        .json();
    assert_eq!(
        (a["agree"].as_i64(), a["disagree"].as_i64()),
        (Some(1), Some(0)),
        "{a}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_are_written_into_the_task_document_and_reviews_are_final() {
    use crowdroom_crdt::schema;
    use crowdroom_tests::client::{Incoming, YjsClient};
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let base = server.ws_url("");
    let owner = server.token("r1", "olivia", Role::Owner).await;
    let core = server.token("r1", "cora", Role::Core).await;
    let config = json!({
        "answer_schema": {"kind": "single_choice", "options": ["pos", "neg"]},
        "overlap_min": 1, "overlap_max": 1, "min_confidence": 0.7, "onboarding_gold": 0, "min_lead_time_ms": 0
    });
    http::request(
        "PUT",
        &server.http_url("/api/v1/rooms/r1/project"),
        Some(&owner),
        Some(config),
    )
    .await;
    http::post_raw(
        &server.http_url("/api/v1/rooms/r1/tasks"),
        &owner,
        r#"[{"id":"only","data":{}}]"#,
    )
    .await;
    let token = server.token("r1", "wes", Role::Worker).await;
    let mut wes = LiveClient::connect(&base, "r1", &token).await;
    // One newcomer's vote is 2/3 confident, below 0.7, at the maximum overlap: review.
    let (_, result) = answer_next(&mut wes, "pos").await;
    assert_eq!(result["submitted"]["task_state"], "review", "{result}");
    let task = result["submitted"]["task_id"].as_i64().unwrap();
    // The core team opens the task's shared document: the server wrote the decision in.
    let mut doc = YjsClient::connect(&base, "r1", &format!("task-{task}"), &core).await;
    let labels = |doc: &YjsClient| schema::read(&doc.doc).labels;
    while labels(&doc).get("state") != Some(&json!("review")) {
        assert!(!matches!(doc.next().await, Incoming::Closed(_)));
    }
    assert_eq!(labels(&doc).get("consensus"), Some(&json!("pos")));
    // Workers cannot review; a rejection needs a reason; a correction must fit the schema.
    let review_url = server.http_url(&format!("/api/v1/rooms/r1/tasks/{task}/review"));
    assert_eq!(
        http::request(
            "POST",
            &review_url,
            Some(&token),
            Some(json!({"decision": "accept"}))
        )
        .await
        .status,
        403
    );
    assert_eq!(
        http::request(
            "POST",
            &review_url,
            Some(&core),
            Some(json!({"decision": "reject"}))
        )
        .await
        .status,
        400
    );
    assert_eq!(
        http::request(
            "POST",
            &review_url,
            Some(&core),
            Some(json!({"decision": "correct", "answer": "meh"}))
        )
        .await
        .status,
        400
    );
    // The correction is final and shows live in the document.
    let corrected = http::request(
        "POST",
        &review_url,
        Some(&core),
        Some(json!({"decision": "correct", "answer": "neg", "reason": "sarcasm"})),
    )
    .await;
    assert_eq!(corrected.status, 200, "{}", corrected.body);
    while schema::read(&doc.doc)
        .review
        .as_ref()
        .map(|review| review.state)
        != Some(schema::ReviewState::Corrected)
    {
        assert!(!matches!(doc.next().await, Incoming::Closed(_)));
    }
    let read = schema::read(&doc.doc);
    assert_eq!(read.labels.get("consensus"), Some(&json!("neg")));
    assert_eq!(
        read.review.as_ref().map(|review| review.reviewer.as_str()),
        Some("cora")
    );
    // The audit trail and the export agree.
    let trail = http::get(
        &server.http_url(&format!("/api/v1/rooms/r1/tasks/{task}/reviews")),
        Some(&owner),
    )
    .await
    .json();
    assert_eq!(trail["reviews"][0]["previous"], "pos", "{trail}");
    assert_eq!(trail["reviews"][0]["answer"], "neg");
    assert_eq!(trail["reviews"][0]["reason"], "sarcasm");
    let export = http::get(
        &server.http_url("/api/v1/rooms/r1/export?format=json"),
        Some(&owner),
    )
    .await
    .json();
    assert_eq!(
        (
            export[0]["consensus"].clone(),
            export[0]["method"].clone(),
            export[0]["state"].clone()
        ),
        (json!("neg"), json!("review"), json!("complete"))
    );
    // A restart reloads the document with the decision in it.
    drop(doc);
    let db = server.stop().await;
    let server = TestServer::start_on(db, crowdroom_tests::fast_settings()).await;
    let doc = YjsClient::connect(&server.ws_url(""), "r1", &format!("task-{task}"), &core).await;
    assert_eq!(
        schema::read(&doc.doc).labels.get("consensus"),
        Some(&json!("neg"))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_dawid_skene_is_published_where_it_beats_voting_on_gold() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let mut settings = crowdroom_tests::fast_settings();
    settings.rooms.batch_every = 5;
    let server = TestServer::start_on(db, settings).await;
    let base = server.ws_url("");
    let owner = server.token("r1", "olivia", Role::Owner).await;
    let config = json!({
        "answer_schema": {"kind": "single_choice", "options": ["a", "b"]},
        "overlap_min": 5, "overlap_max": 5, "min_confidence": 0.0, "onboarding_gold": 10, "gold_rate": 0.0,
        "min_lead_time_ms": 0, "min_accuracy": 0.0
    });
    http::request(
        "PUT",
        &server.http_url("/api/v1/rooms/r1/project"),
        Some(&owner),
        Some(config),
    )
    .await;
    let mut lines = String::new();
    for i in 0..10 {
        let truth = if i % 2 == 0 { "a" } else { "b" };
        lines.push_str(&format!(
            "{{\"id\":\"g{i}\",\"data\":{{\"truth\":\"{truth}\"}},\"gold\":\"{truth}\"}}\n"
        ));
    }
    for i in 0..20 {
        let truth = if i % 2 == 0 { "a" } else { "b" };
        lines.push_str(&format!(
            "{{\"id\":\"r{i}\",\"data\":{{\"truth\":\"{truth}\"}}}}\n"
        ));
    }
    http::post_raw(&server.http_url("/api/v1/rooms/r1/tasks"), &owner, &lines).await;
    // Two careful workers answer the truth; three spammers always say "a".
    for (name, careful) in [
        ("c1", true),
        ("c2", true),
        ("s1", false),
        ("s2", false),
        ("s3", false),
    ] {
        let token = server.token("r1", name, Role::Worker).await;
        let mut client = LiveClient::connect(&base, "r1", &token).await;
        loop {
            let granted = client.request("task.request", json!({})).await;
            let Some(task) = granted["result"]["task"]["id"].as_i64() else {
                break;
            };
            let answer = if careful {
                granted["result"]["task"]["data"]["truth"].clone()
            } else {
                json!("a")
            };
            let submitted = client
                .request("task.submit", json!({"task_id": task, "answer": answer}))
                .await;
            assert_eq!(submitted["ok"], true, "{submitted}");
        }
    }
    // As answers arrive, the room re-reads the project in the background.
    crowdroom_tests::eventually(
        "background Dawid-Skene to relabel the regular tasks",
        || async {
            let tasks = http::get(
                &server.http_url("/api/v1/rooms/r1/tasks?limit=100"),
                Some(&owner),
            )
            .await
            .json();
            tasks["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|task| task["gold"].is_null())
                .all(|task| task["method"] == "ds")
        },
    )
    .await;
    let report = http::request(
        "POST",
        &server.http_url("/api/v1/rooms/r1/consensus"),
        Some(&owner),
        None,
    )
    .await
    .json();
    assert_eq!(report["gold_items"], 10, "{report}");
    assert_eq!(report["published"], "ds", "{report}");
    assert!(
        report["ds_accuracy"].as_f64().unwrap() > report["wmv_accuracy"].as_f64().unwrap(),
        "{report}"
    );
    // The export reads the crowd as Dawid-Skene does: every regular task right.
    let export = http::get(
        &server.http_url("/api/v1/rooms/r1/export?format=json"),
        Some(&owner),
    )
    .await
    .json();
    for row in export
        .as_array()
        .unwrap()
        .iter()
        .filter(|row| row["gold"].is_null())
    {
        assert_eq!(row["consensus"], row["data"]["truth"], "{row}");
        assert_eq!(row["method"], "ds", "{row}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_assignment_fills_the_core_team_capacity() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let owner = setup(&server, "r1", 2, 300, 5).await;
    let cora = server.token("r1", "cora", Role::Core).await;
    let carl = server.token("r1", "carl", Role::Core).await;
    let mut cora_live = LiveClient::connect(&server.ws_url(""), "r1", &cora).await;
    // Cora already answered one task: she must not get it again.
    let (done, _) = answer_next(&mut cora_live, "pos").await;
    let body =
        json!({"members": [{"user": "cora", "capacity": 3}, {"user": "carl", "capacity": 4}]});
    let response = http::request(
        "POST",
        &server.http_url("/api/v1/rooms/r1/assign"),
        Some(&owner),
        Some(body),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    let assigned = response.json()["assigned"].as_array().unwrap().clone();
    // 5 tasks x 2 slots = 10, one slot used by Cora's answer: 9 free; capacity 7.
    assert_eq!(assigned.len(), 7, "{assigned:?}");
    let mine: Vec<_> = assigned.iter().filter(|a| a["user"] == "cora").collect();
    assert_eq!(mine.len(), 3);
    let listed = http::get(
        &server.http_url("/api/v1/rooms/r1/tasks?limit=10"),
        Some(&owner),
    )
    .await
    .json();
    let done_id = listed["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|task| task["external_id"] == done.as_str())
        .unwrap()["id"]
        .clone();
    assert!(
        mine.iter().all(|a| a["task_id"] != done_id),
        "never a task she answered"
    );
    assert!(cora_live.event("task.assigned").await["data"]["reservation"]["task_id"].is_i64());
    // Per task, live reservations plus answers never exceed the overlap.
    for task in listed["tasks"].as_array().unwrap() {
        assert!(
            task["reserved"].as_i64().unwrap() + task["answered"].as_i64().unwrap()
                <= task["overlap_target"].as_i64().unwrap()
        );
    }
    // The assigned work is what they get when they ask.
    let mut carl_live = LiveClient::connect(&server.ws_url(""), "r1", &carl).await;
    let granted = carl_live.request("task.request", json!({})).await;
    let task = granted["result"]["task"]["id"].clone();
    assert!(
        assigned
            .iter()
            .any(|a| a["user"] == "carl" && a["task_id"] == task),
        "{granted}"
    );
    let workers_only = http::request(
        "POST",
        &server.http_url("/api/v1/rooms/r1/assign"),
        Some(&carl),
        Some(json!({"members": []})),
    )
    .await;
    assert_eq!(workers_only.status, 403);
    server.stop().await;
}
