//! The fair-pay ledger: answers booked pending, moves with reasons and an
//! audit trail, disputes, reversals, payment, idempotent bonuses, the
//! summary with hourly rates, auto-approval, and what workers may see.

use crowdroom::auth::Role;
use crowdroom_tests::client::LiveClient;
use crowdroom_tests::{Backend, TestServer, both_stores, eventually, http};
use serde_json::{Value, json};

both_stores! {
    ledger_lifecycle => ledger_lifecycle;
}

pub(crate) async fn room_with_answers(
    server: &TestServer,
    room: &str,
    pay: i64,
    auto_approve_seconds: u64,
    answers: usize,
) -> (String, String, LiveClient) {
    let owner = server.token(room, "olivia", Role::Owner).await;
    let config = json!({
        "answer_schema": {"kind": "single_choice", "options": ["pos", "neg"]},
        "overlap_min": 1, "overlap_max": 1, "onboarding_gold": 0, "gold_rate": 0.0, "min_lead_time_ms": 0,
        "pay_per_answer": pay, "target_hourly_rate": 15_000_000, "auto_approve_seconds": auto_approve_seconds
    });
    let put = http::request(
        "PUT",
        &server.http_url(&format!("/api/v1/rooms/{room}/project")),
        Some(&owner),
        Some(config),
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let tasks: String = (0..answers)
        .map(|i| format!("{{\"id\":\"t{i}\",\"data\":{{}}}}\n"))
        .collect();
    http::post_raw(
        &server.http_url(&format!("/api/v1/rooms/{room}/tasks")),
        &owner,
        &tasks,
    )
    .await;
    let token = server.token(room, "wes", Role::Worker).await;
    let mut wes = LiveClient::connect(&server.ws_url(""), room, &token).await;
    for _ in 0..answers {
        let granted = wes.request("task.request", json!({})).await;
        let task = granted["result"]["task"]["id"].as_i64().unwrap();
        assert_eq!(
            wes.request("task.submit", json!({"task_id": task, "answer": "pos"}))
                .await["ok"],
            true
        );
    }
    (owner, token, wes)
}

pub(crate) async fn post(
    server: &TestServer,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> http::Response {
    http::request("POST", &server.http_url(path), Some(token), body).await
}

async fn ledger_lifecycle(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (owner, worker, mut wes) = room_with_answers(&server, "r1", 20_000, 86_400, 2).await;
    let other = server.token("r1", "wanda", Role::Worker).await;
    // The worker sees their own entries, pending; another worker sees none of them.
    let mine = http::get(&server.http_url("/api/v1/rooms/r1/ledger"), Some(&worker))
        .await
        .json();
    let entries = mine["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|entry| entry["state"] == "pending"
        && entry["amount"] == 20_000
        && entry["kind"] == "answer"));
    let (first, second) = (
        entries[1]["id"].as_i64().unwrap(),
        entries[0]["id"].as_i64().unwrap(),
    );
    assert_eq!(
        http::get(&server.http_url("/api/v1/rooms/r1/ledger"), Some(&other))
            .await
            .json()["entries"],
        json!([])
    );
    assert_eq!(
        post(
            &server,
            &format!("/api/v1/rooms/r1/ledger/{first}/approve"),
            &worker,
            None
        )
        .await
        .status,
        403
    );

    // Approve one; reject the other, which needs a reason the worker sees live.
    let approved = post(
        &server,
        &format!("/api/v1/rooms/r1/ledger/{first}/approve"),
        &owner,
        None,
    )
    .await;
    assert_eq!(approved.json()["state"], "approved", "{}", approved.body);
    assert_eq!(
        wes.event("ledger.updated").await["data"]["state"],
        "approved"
    );
    let no_reason = post(
        &server,
        &format!("/api/v1/rooms/r1/ledger/{second}/reject"),
        &owner,
        None,
    )
    .await;
    assert_eq!(
        (no_reason.status, no_reason.code().as_str()),
        (400, "bad_request")
    );
    let rejected = post(
        &server,
        &format!("/api/v1/rooms/r1/ledger/{second}/reject"),
        &owner,
        Some(json!({"reason": "ignored the instructions"})),
    )
    .await;
    assert_eq!(rejected.json()["state"], "rejected");
    let seen = wes.event("ledger.updated").await;
    assert_eq!(
        seen["data"]["state_reason"], "ignored the instructions",
        "{seen}"
    );
    // The worker disputes; a moderator denies; then reverses it after all.
    let disputed = post(
        &server,
        &format!("/api/v1/rooms/r1/ledger/{second}/dispute"),
        &worker,
        Some(json!({"reason": "I followed them"})),
    )
    .await;
    assert_eq!(disputed.json()["state"], "disputed", "{}", disputed.body);
    assert_eq!(
        post(
            &server,
            &format!("/api/v1/rooms/r1/ledger/{second}/dispute"),
            &other,
            Some(json!({"reason": "x"}))
        )
        .await
        .status,
        403
    );
    post(
        &server,
        &format!("/api/v1/rooms/r1/ledger/{second}/deny"),
        &owner,
        Some(json!({"reason": "checked again"})),
    )
    .await;
    let reversed = post(
        &server,
        &format!("/api/v1/rooms/r1/ledger/{second}/reverse"),
        &owner,
        Some(json!({"reason": "new guideline"})),
    )
    .await;
    assert_eq!(reversed.json()["state"], "approved");
    // Paid is final; a move from the wrong state is refused.
    assert_eq!(
        post(
            &server,
            &format!("/api/v1/rooms/r1/ledger/{first}/pay"),
            &owner,
            None
        )
        .await
        .json()["state"],
        "paid"
    );
    let again = post(
        &server,
        &format!("/api/v1/rooms/r1/ledger/{first}/pay"),
        &owner,
        None,
    )
    .await;
    assert_eq!(
        (again.status, again.code().as_str()),
        (409, "invalid_state")
    );
    // The audit trail: every state, with who and why.
    let trail = http::get(
        &server.http_url(&format!("/api/v1/rooms/r1/ledger/{second}")),
        Some(&worker),
    )
    .await
    .json();
    let states: Vec<&str> = trail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        ["pending", "rejected", "disputed", "rejected", "approved"]
    );
    assert_eq!(trail["events"][2]["actor"], "wes");
    assert_eq!(trail["events"][4]["reason"], "new guideline");
    // One state's entries: the list filtered by the server.
    let approved = http::get(
        &server.http_url("/api/v1/rooms/r1/ledger?state=approved"),
        Some(&owner),
    )
    .await
    .json();
    let approved = approved["entries"].as_array().unwrap();
    assert!(
        approved.iter().any(|entry| entry["id"] == second),
        "{approved:?}"
    );
    assert!(approved.iter().all(|entry| entry["state"] == "approved"));
    let pending = http::get(
        &server.http_url("/api/v1/rooms/r1/ledger?state=pending"),
        Some(&owner),
    )
    .await
    .json();
    assert!(
        pending["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|entry| entry["state"] == "pending" && entry["id"] != second)
    );
    let unknown = http::get(
        &server.http_url("/api/v1/rooms/r1/ledger?state=lost"),
        Some(&owner),
    )
    .await;
    assert_eq!(unknown.status, 400, "{}", unknown.body);

    // Bonuses: a reason and an idempotency key; the same key pays once.
    let bonus = json!({"worker": "wes", "amount": 5_000, "reason": "great spans", "idempotency_key": "b-1"});
    let first_bonus = post(
        &server,
        "/api/v1/rooms/r1/ledger/bonus",
        &owner,
        Some(bonus.clone()),
    )
    .await;
    assert_eq!(first_bonus.status, 201, "{}", first_bonus.body);
    let repeat = post(
        &server,
        "/api/v1/rooms/r1/ledger/bonus",
        &owner,
        Some(bonus),
    )
    .await;
    assert_eq!(repeat.status, 200);
    assert_eq!(
        repeat.json()["entry"]["id"],
        first_bonus.json()["entry"]["id"]
    );
    let no_key = post(
        &server,
        "/api/v1/rooms/r1/ledger/bonus",
        &owner,
        Some(json!({"worker": "wes", "amount": 1, "reason": "x", "idempotency_key": ""})),
    )
    .await;
    assert_eq!(no_key.status, 400);

    // The summary: per state totals and an hourly rate; workers see their own line.
    let summary = http::get(
        &server.http_url("/api/v1/rooms/r1/ledger/summary"),
        Some(&owner),
    )
    .await
    .json();
    let line = summary["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|line| line["worker"] == "wes")
        .unwrap()
        .clone();
    assert_eq!(
        (
            line["paid"].as_i64(),
            line["approved"].as_i64(),
            line["rejected"].as_i64()
        ),
        (Some(20_000), Some(25_000), Some(0)),
        "{line}"
    );
    assert!(line["hourly_rate"].as_i64().unwrap() > 0);
    let own = http::get(
        &server.http_url("/api/v1/rooms/r1/ledger/summary"),
        Some(&other),
    )
    .await
    .json();
    assert_eq!(own["workers"], json!([]));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_approval_and_pay_below_target() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    // Auto-approve at once (by the background pass); pay nothing: far below
    // the target hourly rate.
    let (owner, worker, _wes) = room_with_answers(&server, "r1", 0, 0, 1).await;
    let url = server.http_url("/api/v1/rooms/r1/ledger");
    eventually("the entry is auto-approved", || async {
        http::get(&url, Some(&worker)).await.json()["entries"][0]["state"] == "approved"
    })
    .await;
    let mine = http::get(&url, Some(&worker)).await.json();
    assert_eq!(mine["entries"][0]["state"], "approved", "{mine}");
    let id = mine["entries"][0]["id"].as_i64().unwrap();
    let trail = http::get(
        &server.http_url(&format!("/api/v1/rooms/r1/ledger/{id}")),
        Some(&owner),
    )
    .await
    .json();
    assert_eq!(trail["events"][1]["actor"], "system");
    let summary = http::get(
        &server.http_url("/api/v1/rooms/r1/ledger/summary"),
        Some(&owner),
    )
    .await
    .json();
    assert_eq!(summary["below_target"], true, "{summary}");
    assert_eq!(summary["target_hourly_rate"], 15_000_000);
    // Owners and moderators watching the room are alerted live.
    let mut watching = LiveClient::connect(&server.ws_url(""), "r1", &owner).await;
    let alert = watching.event("pay.alert").await;
    assert_eq!(
        (
            alert["data"]["hourly_rate"].as_i64(),
            alert["data"]["target_hourly_rate"].as_i64()
        ),
        (Some(0), Some(15_000_000)),
        "{alert}"
    );
    server.stop().await;
}
