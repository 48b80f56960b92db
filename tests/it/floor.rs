//! The pay floor: at a payout (and daily), a worker whose rate since the
//! last check is below the project's target is topped up to it, counting
//! the time of answers not rejected through their fault and of
//! reservations freed by a moderator; booked once, explained in the audit
//! trail, paid with the payout, shown in the summary.

use std::time::Duration;

use crowdroom::auth::Role;
use crowdroom::ids::{RoomId, now_ms};
use crowdroom::store::{DAILY_MS, FloorReason, GRACE_MS};
use crowdroom_tests::client::LiveClient;
use crowdroom_tests::{Backend, TestServer, both_stores, http};
use serde_json::{Value, json};

use crate::ledger::post;

both_stores! {
    pay_floor_tops_up_below_target_workers => pay_floor_tops_up_below_target_workers;
}

/// 1,000 micro-units per millisecond (3,600 an hour): the floor owes
/// exactly that for the time counted.
const TARGET: i64 = 3_600_000_000;
const PER_MS: i64 = TARGET / 3_600_000;

async fn get(server: &TestServer, path: &str, token: &str) -> Value {
    let response = http::get(&server.http_url(path), Some(token)).await;
    assert_eq!(response.status, 200, "{path}: {}", response.body);
    response.json()
}

/// The lead time of `worker`'s answer to each task, from the task pages.
async fn lead_times(server: &TestServer, owner: &str, tasks: &[i64]) -> Vec<i64> {
    let mut leads = Vec::new();
    for task in tasks {
        let detail = get(server, &format!("/api/v1/rooms/r1/tasks/{task}"), owner).await;
        let answers = detail["answers"].as_array().cloned().unwrap_or_default();
        assert_eq!(answers.len(), 1, "{detail}");
        leads.push(answers[0]["lead_time_ms"].as_i64().unwrap_or(-1));
    }
    leads
}

/// The entry of the answer to `task`.
async fn entry_of(server: &TestServer, owner: &str, task: i64) -> i64 {
    let detail = get(server, &format!("/api/v1/rooms/r1/tasks/{task}"), owner).await;
    let answer = detail["answers"][0]["answer_id"].as_i64().unwrap_or(-1);
    let ledger = get(server, "/api/v1/rooms/r1/ledger?worker=wes", owner).await;
    let entries = ledger["entries"].as_array().cloned().unwrap_or_default();
    entries
        .iter()
        .find(|entry| entry["answer_id"] == answer)
        .and_then(|entry| entry["id"].as_i64())
        .unwrap_or_else(|| panic!("no entry for answer {answer}: {ledger}"))
}

async fn answer(wes: &mut LiveClient) -> i64 {
    let granted = wes.request("task.request", json!({})).await;
    let task = granted["result"]["task"]["id"].as_i64().unwrap_or(-1);
    // Some lead time to count.
    tokio::time::sleep(Duration::from_millis(40)).await;
    let submitted = wes
        .request("task.submit", json!({"task_id": task, "answer": "pos"}))
        .await;
    assert_eq!(submitted["ok"], true, "{submitted}");
    task
}

async fn pay_floor_tops_up_below_target_workers(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let owner = server.token("r1", "olivia", Role::Owner).await;
    let config = json!({
        "answer_schema": {"kind": "single_choice", "options": ["pos", "neg"]},
        "overlap_min": 1, "overlap_max": 1, "onboarding_gold": 0, "gold_rate": 0.0,
        "min_lead_time_ms": 0, "pay_per_answer": 0, "target_hourly_rate": TARGET,
        "auto_approve_seconds": 86_400
    });
    let put = http::request(
        "PUT",
        &server.http_url("/api/v1/rooms/r1/project"),
        Some(&owner),
        Some(config),
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let tasks: String = (0..5)
        .map(|i| format!("{{\"id\":\"t{i}\",\"data\":{{}}}}\n"))
        .collect();
    http::post_raw(&server.http_url("/api/v1/rooms/r1/tasks"), &owner, &tasks).await;
    let worker = server.token("r1", "wes", Role::Worker).await;
    let mut wes = LiveClient::connect(&server.ws_url(""), "r1", &worker).await;
    let mut olivia = LiveClient::connect(&server.ws_url(""), "r1", &owner).await;

    // Three answers: one approved, one rejected through no fault of the
    // worker (counted), one rejected as their fault (not counted).
    let (kept, broken, wrong) = (
        answer(&mut wes).await,
        answer(&mut wes).await,
        answer(&mut wes).await,
    );
    let approve = entry_of(&server, &owner, kept).await;
    let moved = post(
        &server,
        &format!("/api/v1/rooms/r1/ledger/{approve}/approve"),
        &owner,
        None,
    )
    .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    let no_fault = entry_of(&server, &owner, broken).await;
    let body = json!({"reason": "the task's text was missing", "no_fault": true});
    let moved = post(
        &server,
        &format!("/api/v1/rooms/r1/ledger/{no_fault}/reject"),
        &owner,
        Some(body),
    )
    .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(moved.json()["no_fault"], true);
    let fault = entry_of(&server, &owner, wrong).await;
    let body = json!({"reason": "not what the instructions ask"});
    let moved = post(
        &server,
        &format!("/api/v1/rooms/r1/ledger/{fault}/reject"),
        &owner,
        Some(body),
    )
    .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    // no_fault belongs to rejections only.
    let body = json!({"no_fault": true});
    let refused = post(
        &server,
        &format!("/api/v1/rooms/r1/ledger/{approve}/pay"),
        &owner,
        Some(body),
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.body);

    // A reservation a moderator frees: its time counts too.
    let granted = wes.request("task.request", json!({})).await;
    assert!(granted["result"]["task"]["id"].is_i64(), "{granted}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let released = olivia.request("mod.release", json!({"user": "wes"})).await;
    assert_eq!(released["ok"], true, "{released}");

    // Past the grace, the payout checks the floor first.
    tokio::time::sleep(Duration::from_millis(GRACE_MS as u64 + 200)).await;
    let paid = post(&server, "/api/v1/rooms/r1/ledger/payout", &owner, None).await;
    assert_eq!(paid.status, 200, "{}", paid.body);
    let payout = paid.json();
    let top_ups = payout["floor"]["top_ups"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(top_ups.len(), 1, "{payout}");
    let top = &top_ups[0];
    let leads = lead_times(&server, &owner, &[kept, broken]).await;
    let no_fault_ms = top["no_fault_ms"].as_i64().unwrap_or(-1);
    assert!((300..60_000).contains(&no_fault_ms), "{top}");
    let counted = leads.iter().sum::<i64>() + no_fault_ms;
    assert_eq!(top["worker"], "wes");
    assert_eq!(top["counted_ms"], counted, "{top} {leads:?}");
    assert_eq!(top["earned"], 0);
    let owed = counted * PER_MS;
    assert_eq!(top["amount"], owed, "{top}");
    // Paid with the payout: the approved answer's entry and the top-up.
    assert_eq!(
        payout["lines"],
        json!([{"worker": "wes", "entries": 2, "amount": owed, "top_up": owed}])
    );
    // The top-up's audit trail says why, and that it was paid.
    let entry = top["entry_id"].as_i64().unwrap_or(-1);
    let detail = get(
        &server,
        &format!("/api/v1/rooms/r1/ledger/{entry}"),
        &worker,
    )
    .await;
    assert_eq!(detail["entry"]["kind"], "topup");
    assert_eq!(detail["entry"]["state"], "paid");
    let events = detail["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(events.len(), 2, "{detail}");
    assert_eq!(events[0]["actor"], "system");
    assert!(
        events[0]["reason"]
            .as_str()
            .unwrap_or("")
            .starts_with("pay floor: 0.00 earned"),
        "{detail}"
    );
    assert_eq!(events[1]["state"], "paid");
    // The worker sees it in their summary.
    let summary = get(&server, "/api/v1/rooms/r1/ledger/summary", &worker).await;
    assert_eq!(summary["workers"][0]["top_ups"], owed, "{summary}");

    // A second payout finds nothing new: nothing is booked twice.
    let again = post(&server, "/api/v1/rooms/r1/ledger/payout", &owner, None).await;
    assert_eq!(again.status, 200, "{}", again.body);
    let again = again.json();
    assert_eq!(again["floor"]["top_ups"], json!([]), "{again}");
    assert_eq!(again["lines"], json!([]), "{again}");

    // The daily check: due only once the unchecked work is a day old.
    let last = answer(&mut wes).await;
    let room = RoomId::parse("r1").unwrap_or_else(|error| panic!("{error}"));
    let due = |now: i64| {
        let store = server.store.clone();
        async move {
            store
                .pay_floor_due(now)
                .await
                .unwrap_or_else(|error| panic!("{error}"))
        }
    };
    assert!(due(now_ms()).await.is_empty());
    assert_eq!(
        due(now_ms() + DAILY_MS + 10_000).await,
        vec![(room.clone(), TARGET)]
    );
    tokio::time::sleep(Duration::from_millis(GRACE_MS as u64 + 200)).await;
    let daily = server
        .store
        .pay_floor(&room, FloorReason::Daily, "system", TARGET)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let lead = lead_times(&server, &owner, &[last]).await[0];
    assert_eq!(daily.top_ups.len(), 1, "{daily:?}");
    assert_eq!(daily.top_ups[0].amount, lead * PER_MS);
    assert_eq!(daily.reason, "daily");
    assert!(
        due(now_ms() + DAILY_MS + 10_000).await.is_empty(),
        "checked"
    );
}
