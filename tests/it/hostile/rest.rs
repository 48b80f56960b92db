//! The REST handlers against a careless or hostile caller: the token is
//! checked before anything else of the request is read, moderators change
//! interests only of members they outrank, and every free text a handler
//! stores (review, ledger and bonus reasons, idempotency keys) is bounded.

use crowdroom::auth::Role;
use crowdroom_tests::{Backend, TestServer, both_stores, http};
use serde_json::{Value, json};

use crate::ledger::{post, room_with_answers};

both_stores! {
    the_token_is_checked_before_the_path_and_query => token_first;
    moderators_set_interests_only_of_lower_ranks => interests_rank;
    review_reasons_are_bounded_and_only_corrections_carry_answers => review_bounded;
    ledger_and_bonus_texts_are_bounded => ledger_bounded;
}

/// The longest review, ledger and bonus reason (docs/API.md, Quotas).
const MAX_REASON_CHARS: usize = 1000;
/// The longest bonus idempotency key (docs/API.md, Quotas).
const MAX_IDEMPOTENCY_KEY_CHARS: usize = 128;

/// `count` two-byte characters: caps count characters, not bytes.
fn text(count: usize) -> String {
    "é".repeat(count)
}

/// Requests whose path or query is malformed past `{room}`, on routes of
/// every REST handler file: each names what the handler would refuse.
const MALFORMED: [(&str, &str); 9] = [
    ("GET", "/api/v1/rooms/r1/ledger/not-a-number"),
    ("POST", "/api/v1/rooms/r1/ledger/not-a-number/approve"),
    ("GET", "/api/v1/rooms/r1/ledger?limit=many"),
    ("GET", "/api/v1/rooms/r1/chat?unknown=1"),
    ("GET", "/api/v1/rooms/r1/docs?limit=many"),
    ("GET", "/api/v1/rooms/r1/moderation?limit=many"),
    ("GET", "/api/v1/rooms/r1/tasks/not-a-number"),
    ("POST", "/api/v1/rooms/r1/tasks/not-a-number/review"),
    ("GET", "/api/v1/rooms/r1/tasks?after=many"),
];

async fn token_first(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let owner = server.token("r1", "olivia", Role::Owner).await;
    let elsewhere = server.token("r2", "olivia", Role::Owner).await;
    for (method, path) in MALFORMED {
        let url = server.http_url(path);
        // No token: 401, whatever else is wrong with the request.
        let anonymous = http::request(method, &url, None, None).await;
        assert_eq!(anonymous.status, 401, "{method} {path}: {}", anonymous.body);
        assert_eq!(anonymous.code(), "unauthorized", "{method} {path}");
        // Another room's token: 403 before the rest of the path is read.
        let foreign = http::request(method, &url, Some(&elsewhere), None).await;
        assert_eq!(foreign.status, 403, "{method} {path}: {}", foreign.body);
        assert_eq!(foreign.code(), "forbidden", "{method} {path}");
        // The room's own token: the malformed part is still refused.
        let own = http::request(method, &url, Some(&owner), None).await;
        assert_eq!(own.status, 400, "{method} {path}: {}", own.body);
    }
    // Routes without a room take any valid token, and only a valid one.
    for path in ["/api/v1/me", "/api/v1/rooms"] {
        let url = server.http_url(path);
        assert_eq!(http::get(&url, None).await.status, 401, "{path}");
        let listed = http::get(&url, Some(&elsewhere)).await;
        assert_eq!(listed.status, 200, "{path}: {}", listed.body);
    }
    let me = http::get(&server.http_url("/api/v1/me"), Some(&elsewhere)).await;
    assert_eq!(me.json()["room"], "r2", "{}", me.body);
    server.stop().await;
}

async fn interests_rank(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let olivia = server.token("r1", "olivia", Role::Owner).await;
    let mo = server.token("r1", "mo", Role::Moderator).await;
    server.token("r1", "max", Role::Moderator).await;
    let wes = server.token("r1", "wes", Role::Worker).await;
    server.token("r1", "will", Role::Worker).await;
    let interests =
        |user: &str| server.http_url(&format!("/api/v1/rooms/r1/members/{user}/interests"));
    let set = |user: &str, token: &str, tag: &str| {
        let url = interests(user);
        let token = token.to_owned();
        let body = json!({ "interests": [tag] });
        async move { http::request("PUT", &url, Some(&token), Some(body)).await }
    };
    // The owner's own interests, then a moderator tries to change them.
    let own = set("olivia", &olivia, "poetry").await;
    assert_eq!(own.status, 200, "{}", own.body);
    for (user, token, who) in [
        ("olivia", &mo, "a moderator on an owner"),
        ("max", &mo, "a moderator on another moderator"),
        ("will", &wes, "a worker on another worker"),
    ] {
        let refused = set(user, token, "spam").await;
        assert_eq!(refused.status, 403, "{who}: {}", refused.body);
        assert_eq!(refused.code(), "forbidden", "{who}");
    }
    let kept = http::get(&interests("olivia"), Some(&olivia)).await;
    assert_eq!(kept.json()["interests"], json!(["poetry"]), "{}", kept.body);
    // Everyone sets their own; moderators and owners those of lower ranks.
    for (user, token, tag) in [
        ("mo", &mo, "news"),
        ("wes", &wes, "sport"),
        ("will", &mo, "law"),
        ("max", &olivia, "film"),
    ] {
        let allowed = set(user, token, tag).await;
        assert_eq!(allowed.status, 200, "{user}: {}", allowed.body);
        let read = http::get(&interests(user), Some(&olivia)).await;
        assert_eq!(read.json()["interests"], json!([tag]), "{}", read.body);
    }
    // A moderator naming someone who is not a member: 404, as for skills.
    assert_eq!(set("nobody", &mo, "x").await.status, 404);
    server.stop().await;
}

async fn review_bounded(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (owner, task) = crate::hostile::quotas::one_task_to_review(&server).await;
    let review = server.http_url(&format!("/api/v1/rooms/r1/tasks/{task}/review"));
    let refused: [(Value, &str); 4] = [
        (
            json!({"decision": "reject", "reason": text(MAX_REASON_CHARS + 1)}),
            "at most",
        ),
        (
            json!({"decision": "correct", "answer": "neg", "reason": text(MAX_REASON_CHARS + 1)}),
            "at most",
        ),
        // Only a correction's answer is checked against the schema: any
        // other decision's would be stored in the trail as it came.
        (
            json!({"decision": "reject", "reason": "off", "answer": {"junk": text(10_000)}}),
            "only a correction",
        ),
        (
            json!({"decision": "accept", "answer": "pos"}),
            "only a correction",
        ),
    ];
    for (body, message) in refused {
        let response = http::request("POST", &review, Some(&owner), Some(body)).await;
        assert_eq!(response.status, 400, "{}", response.body);
        assert_eq!(response.code(), "bad_request");
        assert!(response.body.contains(message), "{}", response.body);
    }
    let trail_url = server.http_url(&format!("/api/v1/rooms/r1/tasks/{task}/reviews"));
    let trail = http::get(&trail_url, Some(&owner)).await.json();
    assert_eq!(
        trail["reviews"],
        json!([]),
        "nothing refused is kept: {trail}"
    );
    // A reason at the cap is taken, and kept whole.
    let reason = text(MAX_REASON_CHARS);
    let body = json!({"decision": "reject", "reason": reason});
    let response = http::request("POST", &review, Some(&owner), Some(body)).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let trail = http::get(&trail_url, Some(&owner)).await.json();
    assert_eq!(trail["reviews"][0]["reason"], json!(reason));
    assert!(trail["reviews"][0]["answer"].is_null(), "{trail}");
    server.stop().await;
}

async fn ledger_bounded(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (owner, worker, _wes) = room_with_answers(&server, "r1", 20_000, 86_400, 1).await;
    let listed = http::get(&server.http_url("/api/v1/rooms/r1/ledger"), Some(&worker)).await;
    let entry = listed.json()["entries"][0]["id"]
        .as_i64()
        .expect("the answer's entry");
    let act = |action: &str, token: &str, reason: String| {
        let path = format!("/api/v1/rooms/r1/ledger/{entry}/{action}");
        let token = token.to_owned();
        let server = &server;
        async move { post(server, &path, &token, Some(json!({ "reason": reason }))).await }
    };
    // A rejection reason and a dispute message: over the cap refused, at it taken.
    for (action, token) in [("reject", &owner), ("dispute", &worker)] {
        let refused = act(action, token, text(MAX_REASON_CHARS + 1)).await;
        assert_eq!(refused.status, 400, "{action}: {}", refused.body);
        assert_eq!(refused.code(), "bad_request", "{action}");
        let taken = act(action, token, text(MAX_REASON_CHARS)).await;
        assert_eq!(taken.status, 200, "{action}: {}", taken.body);
    }
    // A bonus: its reason and its idempotency key are bounded too.
    let bonus_url = "/api/v1/rooms/r1/ledger/bonus";
    let bonus = |reason: String, key: String| json!({"worker": "wes", "amount": 1_000, "reason": reason, "idempotency_key": key});
    for (body, what) in [
        (bonus(text(MAX_REASON_CHARS + 1), "k1".into()), "reason"),
        (
            bonus("thanks".into(), text(MAX_IDEMPOTENCY_KEY_CHARS + 1)),
            "key",
        ),
    ] {
        let refused = post(&server, bonus_url, &owner, Some(body)).await;
        assert_eq!(refused.status, 400, "{what}: {}", refused.body);
        assert_eq!(refused.code(), "bad_request", "{what}");
    }
    let key = text(MAX_IDEMPOTENCY_KEY_CHARS);
    let body = bonus(text(MAX_REASON_CHARS), key.clone());
    let granted = post(&server, bonus_url, &owner, Some(body)).await;
    assert_eq!(granted.status, 201, "{}", granted.body);
    // Nothing refused was booked: the answer's entry and the one bonus.
    let entries = http::get(&server.http_url("/api/v1/rooms/r1/ledger"), Some(&owner))
        .await
        .json();
    assert_eq!(
        entries["entries"].as_array().map(Vec::len),
        Some(2),
        "{entries}"
    );
    server.stop().await;
}
