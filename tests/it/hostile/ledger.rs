//! The ledger against its own moderators: nobody books a bonus to
//! themselves or moves an entry of their own; amounts are capped and no
//! sum can overflow; a rejection is disputed once; and reading the
//! ledger writes nothing (auto-approval is a background pass).

use std::time::Duration;

use crowdroom::auth::Role;
use crowdroom_tests::client::LiveClient;
use crowdroom_tests::{Backend, TestServer, both_stores, eventually, http};
use serde_json::{Value, json};
use sqlx::Connection;

use crate::ledger::{post, room_with_answers};

both_stores! {
    self_bonus_refused => self_bonus_refused;
    own_entries_not_moved => own_entries_not_moved;
    amounts_capped_and_sums_saturate => amounts_capped_and_sums_saturate;
    ledger_reads_write_nothing => ledger_reads_write_nothing;
    a_rejection_is_disputed_once => a_rejection_is_disputed_once;
}

/// The largest bonus the server accepts (docs/API.md).
const MAX_BONUS: i64 = 1_000_000_000_000;

fn bonus(worker: &str, amount: i64, key: &str) -> Value {
    json!({"worker": worker, "amount": amount, "reason": "thanks", "idempotency_key": key})
}

/// `token`'s move of `entry`: its status and error code.
async fn act(
    server: &TestServer,
    entry: i64,
    action: &str,
    token: &str,
    reason: Option<&str>,
) -> (u16, String, Value) {
    let response = post(
        server,
        &format!("/api/v1/rooms/r1/ledger/{entry}/{action}"),
        token,
        reason.map(|reason| json!({ "reason": reason })),
    )
    .await;
    let code = if response.status >= 400 {
        response.code()
    } else {
        String::new()
    };
    (response.status, code, response.json())
}

/// The one entry of `worker` in room r1, as `token` sees it.
async fn only_entry(server: &TestServer, token: &str, worker: &str) -> Value {
    let listed = http::get(
        &server.http_url(&format!("/api/v1/rooms/r1/ledger?worker={worker}")),
        Some(token),
    )
    .await
    .json();
    let entries = listed["entries"].as_array().cloned().unwrap_or_default();
    assert_eq!(entries.len(), 1, "{listed}");
    entries[0].clone()
}

/// `client` takes the next task of room r1 and answers it.
async fn answer_one(client: &mut LiveClient) {
    let granted = client.request("task.request", json!({})).await;
    let task = granted["result"]["task"]["id"].as_i64().expect("a task");
    let submitted = client
        .request("task.submit", json!({"task_id": task, "answer": "pos"}))
        .await;
    assert_eq!(submitted["ok"], true, "{submitted}");
}

async fn self_bonus_refused(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (owner, _worker, _wes) = room_with_answers(&server, "r1", 20_000, 86_400, 1).await;
    let moderator = server.token("r1", "mia", Role::Moderator).await;
    let url = "/api/v1/rooms/r1/ledger/bonus";
    for (token, me) in [(&owner, "olivia"), (&moderator, "mia")] {
        let own = post(&server, url, token, Some(bonus(me, 5_000, me))).await;
        assert_eq!(
            (own.status, own.code().as_str()),
            (403, "forbidden"),
            "{me} booked a bonus to themselves: {}",
            own.body
        );
    }
    // Another moderator may; the owner then cannot pay it to herself.
    let granted = post(&server, url, &moderator, Some(bonus("olivia", 5_000, "b"))).await;
    assert_eq!(granted.status, 201, "{}", granted.body);
    let entry = granted.json()["entry"]["id"].as_i64().expect("entry id");
    let (status, code, _) = act(&server, entry, "pay", &owner, None).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));
    let (status, _, paid) = act(&server, entry, "pay", &moderator, None).await;
    assert_eq!((status, &paid["state"]), (200, &json!("paid")), "{paid}");
    // Nothing but the moderator's bonus was booked.
    let summary = http::get(
        &server.http_url("/api/v1/rooms/r1/ledger/summary"),
        Some(&owner),
    )
    .await
    .json();
    let olivia = summary["workers"]
        .as_array()
        .and_then(|lines| lines.iter().find(|line| line["worker"] == "olivia"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (olivia["paid"].as_i64(), olivia["approved"].as_i64()),
        (Some(5_000), Some(0)),
        "{summary}"
    );
    assert!(
        summary["workers"]
            .as_array()
            .is_some_and(|lines| lines.iter().all(|line| line["worker"] != "mia")),
        "{summary}"
    );
    server.stop().await;
}

async fn own_entries_not_moved(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (owner, _worker, _wes) = room_with_answers(&server, "r1", 20_000, 86_400, 1).await;
    let moderator = server.token("r1", "mia", Role::Moderator).await;
    // The owner and a moderator answer tasks too: each has an entry of their own.
    http::post_raw(
        &server.http_url("/api/v1/rooms/r1/tasks"),
        &owner,
        "{\"id\":\"o1\",\"data\":{}}\n{\"id\":\"m1\",\"data\":{}}\n",
    )
    .await;
    let mut olivia = LiveClient::connect(&server.ws_url(""), "r1", &owner).await;
    answer_one(&mut olivia).await;
    let mut mia = LiveClient::connect(&server.ws_url(""), "r1", &moderator).await;
    answer_one(&mut mia).await;
    let own = only_entry(&server, &owner, "olivia").await["id"]
        .as_i64()
        .expect("olivia's entry");
    let mine = only_entry(&server, &owner, "mia").await["id"]
        .as_i64()
        .expect("mia's entry");

    // Nobody approves, rejects or pays their own entry; the other moderator may.
    for (action, reason) in [("approve", None), ("reject", Some("no")), ("pay", None)] {
        let (status, code, body) = act(&server, own, action, &owner, reason).await;
        assert_eq!(
            (status, code.as_str()),
            (403, "forbidden"),
            "{action}: {body}"
        );
    }
    let (status, _, approved) = act(&server, own, "approve", &moderator, None).await;
    assert_eq!((status, &approved["state"]), (200, &json!("approved")));
    let (status, code, _) = act(&server, own, "pay", &owner, None).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));
    let (status, _, paid) = act(&server, own, "pay", &moderator, None).await;
    assert_eq!((status, &paid["state"]), (200, &json!("paid")));

    // A moderator's rejected entry: they may dispute it (the worker's move),
    // never decide the dispute or reverse the rejection themselves.
    let (status, code, _) = act(&server, mine, "reject", &moderator, Some("no")).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));
    let (status, _, rejected) = act(&server, mine, "reject", &owner, Some("off topic")).await;
    assert_eq!((status, &rejected["state"]), (200, &json!("rejected")));
    let (status, _, disputed) = act(&server, mine, "dispute", &moderator, Some("it was")).await;
    assert_eq!((status, &disputed["state"]), (200, &json!("disputed")));
    for action in ["uphold", "deny"] {
        let (status, code, body) = act(&server, mine, action, &moderator, Some("mine")).await;
        assert_eq!(
            (status, code.as_str()),
            (403, "forbidden"),
            "{action}: {body}"
        );
    }
    let (status, _, denied) = act(&server, mine, "deny", &owner, Some("checked")).await;
    assert_eq!((status, &denied["state"]), (200, &json!("rejected")));
    let (status, code, _) = act(&server, mine, "reverse", &moderator, Some("mine")).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));
    // The trail: mia's only move on her entry is the dispute.
    let trail = http::get(
        &server.http_url(&format!("/api/v1/rooms/r1/ledger/{mine}")),
        Some(&owner),
    )
    .await
    .json();
    let moves: Vec<(String, String)> = trail["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|event| {
            (
                event["state"].as_str().unwrap_or_default().to_owned(),
                event["actor"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("pending", "system"),
        ("rejected", "olivia"),
        ("disputed", "mia"),
        ("rejected", "olivia"),
    ];
    assert_eq!(
        moves,
        expected.map(|(state, actor)| (state.to_owned(), actor.to_owned())),
        "{trail}"
    );
    server.stop().await;
}

async fn amounts_capped_and_sums_saturate(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (owner, worker, wes) = room_with_answers(&server, "r1", 20_000, 86_400, 1).await;
    let url = "/api/v1/rooms/r1/ledger/bonus";
    for (amount, key) in [(9_000_000_000_000_000_000, "huge"), (MAX_BONUS + 1, "over")] {
        let refused = post(&server, url, &owner, Some(bonus("wes", amount, key))).await;
        assert_eq!(
            (refused.status, refused.code().as_str()),
            (400, "bad_request"),
            "a bonus of {amount}: {}",
            refused.body
        );
    }
    for key in ["cap-1", "cap-2"] {
        let granted = post(&server, url, &owner, Some(bonus("wes", MAX_BONUS, key))).await;
        assert_eq!(granted.status, 201, "{}", granted.body);
    }
    // Pay per answer is capped too.
    let project = http::request(
        "PUT",
        &server.http_url("/api/v1/rooms/r1/project"),
        Some(&owner),
        Some(json!({"pay_per_answer": 9_000_000_000_000_000_000_i64})),
    )
    .await;
    assert_eq!(
        (project.status, project.code().as_str()),
        (400, "bad_request"),
        "{}",
        project.body
    );
    let summary = http::get(
        &server.http_url("/api/v1/rooms/r1/ledger/summary"),
        Some(&owner),
    )
    .await;
    assert_eq!(summary.status, 200, "{}", summary.body);
    assert_eq!(
        summary.json()["workers"][0]["approved"].as_i64(),
        Some(2 * MAX_BONUS),
        "{}",
        summary.body
    );

    // Two 9e18 bonuses a server before the cap stored: every read of the
    // sums still answers, saturating rather than failing.
    let mut conn = sqlx::AnyConnection::connect(&server.db.url)
        .await
        .expect("connect");
    for key in ["legacy-1", "legacy-2"] {
        let insert = format!(
            "INSERT INTO ledger_entries (room_id, worker_id, kind, amount, reason, idempotency_key, \
             state, created_by, created_at) \
             VALUES ('r1', 'wes', 'bonus', 9000000000000000000, 'old', '{key}', 'approved', 'olivia', 1)"
        );
        sqlx::query(sqlx::AssertSqlSafe(insert))
            .execute(&mut conn)
            .await
            .expect("insert a legacy bonus");
    }
    conn.close().await.expect("close");
    let summary = http::get(
        &server.http_url("/api/v1/rooms/r1/ledger/summary"),
        Some(&owner),
    )
    .await;
    assert_eq!(summary.status, 200, "{}", summary.body);
    let line = summary.json()["workers"][0].clone();
    assert_eq!(
        (line["approved"].as_i64(), line["pending"].as_i64()),
        (Some(i64::MAX), Some(20_000)),
        "{line}"
    );
    // The room holds its workers' earnings in memory, loaded when it
    // starts: as after a restart, it loads these rows once it has unloaded.
    drop(wes);
    eventually("the room unloads", || async {
        server.metric("crowdroom_rooms_loaded").await == 0.0
    })
    .await;
    let mut wes = LiveClient::connect(&server.ws_url(""), "r1", &worker).await;
    let queue = wes.request("queue.get", json!({})).await;
    assert_eq!(queue["ok"], true, "{queue}");
    let earnings = &queue["result"]["progress"]["earnings"];
    assert_eq!(
        (earnings["approved"].as_i64(), earnings["pending"].as_i64()),
        (Some(i64::MAX), Some(20_000)),
        "{queue}"
    );
    server.stop().await;
}

/// Takes the database's write lock on the ledger from a connection of the
/// test's own: SQLite's one writer, PostgreSQL's lock on the entries table
/// (plain reads still pass). Dropping the connection releases it.
async fn hold_ledger_write_lock(server: &TestServer, backend: Backend) -> sqlx::AnyConnection {
    let mut conn = sqlx::AnyConnection::connect(&server.db.url)
        .await
        .expect("connect");
    let statements: &[&str] = match backend {
        Backend::Sqlite => &["BEGIN IMMEDIATE"],
        Backend::Postgres => &["BEGIN", "LOCK TABLE ledger_entries IN EXCLUSIVE MODE"],
    };
    for statement in statements {
        sqlx::query(*statement)
            .execute(&mut conn)
            .await
            .expect("take the write lock");
    }
    conn
}

async fn ledger_reads_write_nothing(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    // Entries auto-approve two seconds after they are booked.
    let (owner, worker, _wes) = room_with_answers(&server, "r1", 20_000, 2, 1).await;
    let entry = only_entry(&server, &worker, "wes").await;
    let id = entry["id"].as_i64().expect("entry id");
    // Nothing can write the ledger now; wait until the entry is past its delay.
    let lock = hold_ledger_write_lock(&server, backend).await;
    let due = entry["created_at"].as_u64().expect("created_at") + 2_100;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis();
    let wait = u64::try_from(u128::from(due).saturating_sub(now)).unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(wait)).await;
    // Reads answer without the write lock, and approve nothing.
    for path in ["/api/v1/rooms/r1/ledger", "/api/v1/rooms/r1/ledger/summary"] {
        let read = tokio::time::timeout(
            Duration::from_secs(5),
            http::get(&server.http_url(path), Some(&worker)),
        )
        .await
        .unwrap_or_else(|_| panic!("GET {path} waited for the write lock"));
        assert_eq!(read.status, 200, "{path}: {}", read.body);
    }
    let still = only_entry(&server, &owner, "wes").await;
    assert_eq!(still["state"], "pending", "{still}");
    drop(lock);
    // The background pass approves it, as the system.
    eventually("the background pass approves the entry", || async {
        only_entry(&server, &owner, "wes").await["state"] == "approved"
    })
    .await;
    let trail = http::get(
        &server.http_url(&format!("/api/v1/rooms/r1/ledger/{id}")),
        Some(&worker),
    )
    .await
    .json();
    assert_eq!(
        (&trail["events"][1]["state"], &trail["events"][1]["actor"]),
        (&json!("approved"), &json!("system")),
        "{trail}"
    );
    server.stop().await;
}

async fn a_rejection_is_disputed_once(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (owner, worker, _wes) = room_with_answers(&server, "r1", 20_000, 86_400, 1).await;
    let id = only_entry(&server, &worker, "wes").await["id"]
        .as_i64()
        .expect("entry id");
    let (status, _, _) = act(&server, id, "reject", &owner, Some("off topic")).await;
    assert_eq!(status, 200);
    let (status, _, _) = act(&server, id, "dispute", &worker, Some("it was not")).await;
    assert_eq!(status, 200);
    let (status, _, _) = act(&server, id, "deny", &owner, Some("checked")).await;
    assert_eq!(status, 200);
    // The denial is final: no second dispute.
    let (status, code, again) = act(&server, id, "dispute", &worker, Some("again")).await;
    assert_eq!((status, code.as_str()), (409, "invalid_state"), "{again}");
    let entry = only_entry(&server, &worker, "wes").await;
    assert_eq!(entry["state"], "rejected", "{entry}");
    let trail = http::get(
        &server.http_url(&format!("/api/v1/rooms/r1/ledger/{id}")),
        Some(&worker),
    )
    .await
    .json();
    assert_eq!(
        trail["events"].as_array().map(Vec::len),
        Some(4),
        "no event for a refused dispute: {trail}"
    );
    // A moderator may still reverse the rejection.
    let (status, _, reversed) = act(&server, id, "reverse", &owner, Some("new guideline")).await;
    assert_eq!((status, &reversed["state"]), (200, &json!("approved")));
    server.stop().await;
}
