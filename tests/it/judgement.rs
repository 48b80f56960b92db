//! The work engine's judgement: onboarding gold and pausing, the fast-answer
//! rule, live consensus and dynamic overlap, decisions in the task's shared
//! document and final reviews, and batch Dawid-Skene (batch assignment and
//! interests: `matching.rs`).

use crowdroom::auth::Role;
use crowdroom_tests::client::LiveClient;
use crowdroom_tests::{Backend, TestDb, TestServer, decided, http};
use serde_json::{Value, json};

use super::work::{answer_next, quality_room};

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
    let granted = bad.request("task.request", json!({})).await;
    assert!(granted["result"]["task"].is_object(), "{granted}");
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
    // The acknowledgement never waits for the decision.
    assert_eq!(result["submitted"]["task_state"], "deciding", "{result}");
    let tasks = decided(&server, "r1", &owner).await;
    assert_eq!(tasks[0]["state"], "complete", "{tasks:?}");
    // A tie is not broken: the overlap rises to 3; the third answer gives
    // 2:1, posterior 2/3 < 0.7 at the maximum overlap: review.
    http::post_raw(&tasks_url, &owner, r#"[{"id":"split","data":{}}]"#).await;
    answer_next(&mut workers[0], "pos").await;
    answer_next(&mut workers[1], "neg").await;
    let tasks = decided(&server, "r1", &owner).await;
    assert_eq!(
        (
            tasks[1]["state"].as_str(),
            tasks[1]["overlap_target"].as_i64()
        ),
        (Some("open"), Some(3)),
        "a tie asks for one more answer: {tasks:?}"
    );
    let (external, _) = answer_next(&mut workers[2], "pos").await;
    assert_eq!(external, "split");
    let tasks = decided(&server, "r1", &owner).await;
    assert_eq!(tasks[1]["state"], "review", "{tasks:?}");
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
    assert_eq!(result["submitted"]["task_state"], "deciding", "{result}");
    assert_eq!(decided(&server, "r1", &owner).await[0]["state"], "review");
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
    let owner = careful_workers_and_spammers(&server).await;
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

/// Room `r1` with a project of ten gold and twenty regular tasks, answered
/// by two careful workers (the truth) and three spammers (always "a"), so
/// that Dawid-Skene reads the crowd better than voting; returns the
/// owner's token.
pub(crate) async fn careful_workers_and_spammers(server: &TestServer) -> String {
    let base = server.ws_url("");
    let owner = server.token("r1", "olivia", Role::Owner).await;
    let config = json!({
        "answer_schema": {"kind": "single_choice", "options": ["a", "b"]},
        "overlap_min": 5, "overlap_max": 5, "min_confidence": 0.0, "onboarding_gold": 10, "gold_rate": 0.0,
        "min_lead_time_ms": 0, "min_accuracy": 0.0
    });
    let put = http::request(
        "PUT",
        &server.http_url("/api/v1/rooms/r1/project"),
        Some(&owner),
        Some(config),
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
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
    // Every decision is in before the caller looks.
    decided(server, "r1", &owner).await;
    owner
}
