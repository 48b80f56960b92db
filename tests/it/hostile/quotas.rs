//! Quotas, names, tokens and rank: a member cannot fill a room with
//! documents, bloat everyone's frames with a long name, mint a token that
//! speaks as another room's member, act on a member of their own rank or
//! above, overwrite a final review, or read which of their tasks were gold.

use crowdroom::auth::Role;
use crowdroom::ids::{DocName, RoomId, UserId};
use crowdroom_tests::client::{LiveClient, YjsClient};
use crowdroom_tests::{Backend, TestServer, both_stores, http};
use serde_json::{Value, json};

use crate::work::answer_next;

both_stores! {
    documents_per_room_are_capped_and_listed_in_pages => documents_capped;
    names_are_bounded_wherever_they_are_set => names_bounded;
    moderators_mint_tokens_only_for_their_room_or_new_users => tokens_for_existing_users;
    members_act_only_on_lower_ranks => rank;
    a_final_review_cannot_be_overwritten => review_final;
    a_worker_cannot_read_gold_from_their_own_record => gold_oracle;
}

/// More documents than any cap could allow: filling stops well before.
const FILL_BOUND: usize = 10_000;

async fn documents_capped(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let base = server.ws_url("");
    let wes = server.token("r1", "wes", Role::Worker).await;
    let room = RoomId::parse("r1").unwrap();
    // Fill the room through the store (what the API and y-websocket call).
    let mut created = 0;
    let refusal = loop {
        assert!(created < FILL_BOUND, "no cap on documents per room");
        let name = DocName::parse(&format!("n{created:05}")).unwrap();
        match server.store.create_doc(&room, &name).await {
            Ok(new) => assert!(new),
            Err(error) => break error,
        }
        created += 1;
    };
    assert_eq!(refusal.code(), "too_large", "{refusal}");
    assert!(created >= 100, "a team keeps tens of documents: {created}");
    // Past the cap: the API refuses a new name, and so does y-websocket.
    let url = server.http_url("/api/v1/rooms/r1/docs");
    let refused = http::request("POST", &url, Some(&wes), Some(json!({"name": "one-more"}))).await;
    assert_eq!(refused.status, 413, "{}", refused.body);
    assert_eq!(refused.code(), "too_large");
    assert!(
        refused.json()["message"]
            .as_str()
            .unwrap()
            .contains("most documents")
    );
    assert_eq!(
        YjsClient::open(&base, "r1", "one-more", &wes).await.err(),
        Some(413)
    );
    // Existing documents still open, and a name already there is still 200.
    let again = http::request("POST", &url, Some(&wes), Some(json!({"name": "n00000"}))).await;
    assert_eq!(again.status, 200, "{}", again.body);
    let mut doc = YjsClient::connect(&base, "r1", "n00001", &wes).await;
    doc.sync().await;
    // Task documents have a cap of their own: a worker's working copy still opens.
    let mut own = YjsClient::connect(&base, "r1", "task-1:wes", &wes).await;
    own.sync().await;
    let total = created + 1;
    // The listing comes in pages: every name once, sorted, then a null cursor.
    let mut names: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page_url = match &after {
            Some(after) => format!("{url}?limit=300&after={after}"),
            None => format!("{url}?limit=300"),
        };
        let page = http::get(&page_url, Some(&wes)).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let page = page.json();
        let docs = page["docs"].as_array().unwrap();
        assert!(docs.len() <= 300);
        names.extend(docs.iter().map(|name| name.as_str().unwrap().to_owned()));
        match page["next_after"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
        assert!(names.len() <= total, "the cursor went round");
    }
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(names, sorted, "sorted, each name once");
    assert_eq!(names.len(), total);
    assert_eq!(names.last().map(String::as_str), Some("task-1:wes"));
    // Without a limit a page is as long as it may be, with a cursor past it.
    let first = http::get(&url, Some(&wes)).await.json();
    let first_len = first["docs"].as_array().unwrap().len();
    assert!(first_len <= total && first_len >= 100, "{first_len}");
    assert_eq!(first["next_after"].is_null(), first_len == total);
    // A cursor is a document name.
    let bad = http::get(&format!("{url}?after=a%20b"), Some(&wes)).await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    server.stop().await;
}

async fn names_bounded(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let owner = server.token("r1", "olivia", Role::Owner).await;
    let tokens = server.http_url("/api/v1/rooms/r1/tokens");
    let invite = |user: &str, name: String| {
        let (tokens, owner) = (tokens.clone(), owner.clone());
        let body = json!({"user": user, "role": "worker", "display_name": name});
        async move { http::request("POST", &tokens, Some(&owner), Some(body)).await }
    };
    // A 100 KB name would go into every joiner's hello: refused.
    let long = invite("longname", "x".repeat(100_000)).await;
    assert_eq!(long.status, 400, "{}", long.body);
    assert_eq!(long.code(), "bad_request");
    assert_eq!(invite("longname", "x".repeat(65)).await.status, 400);
    assert_eq!(invite("ctrl", "Ann\u{7}Lee".into()).await.status, 400);
    assert_eq!(invite("blank", "   ".into()).await.status, 400);
    // Nothing was created by the refusals.
    assert!(
        !server
            .store
            .user_exists(&UserId::parse("longname").unwrap())
            .await
            .unwrap()
    );
    // 64 characters (not bytes) is fine.
    let name = "é".repeat(64);
    let fine = invite("ann", name.clone()).await;
    assert_eq!(fine.status, 201, "{}", fine.body);
    let ann = fine.json()["token"].as_str().unwrap().to_owned();
    let me = http::get(&server.http_url("/api/v1/me"), Some(&ann))
        .await
        .json();
    assert_eq!(me["display_name"], name.as_str());
    // The CLI's `user create` and `room create` go through the same store calls.
    let cli_user = server
        .store
        .ensure_user(&UserId::parse("cli").unwrap(), &"y".repeat(65))
        .await;
    assert!(cli_user.is_err(), "{cli_user:?}");
    let cli_room = server
        .store
        .create_room(&RoomId::parse("cli-room").unwrap(), &"r".repeat(129))
        .await;
    assert!(cli_room.is_err(), "{cli_room:?}");
    // Room names over the API.
    let rooms = server.http_url("/api/v1/rooms");
    let long_room = json!({"id": "big", "name": "r".repeat(129)});
    let refused = http::request("POST", &rooms, Some(&owner), Some(long_room)).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    let room = json!({"id": "big", "name": "r".repeat(128)});
    assert_eq!(
        http::request("POST", &rooms, Some(&owner), Some(room))
            .await
            .status,
        201
    );
    server.stop().await;
}

async fn issue(server: &TestServer, room: &str, token: &str, user: &str, role: &str) -> u16 {
    let url = server.http_url(&format!("/api/v1/rooms/{room}/tokens"));
    let body = json!({"user": user, "role": role, "display_name": "Someone Else"});
    let response = http::request("POST", &url, Some(token), Some(body)).await;
    if response.status >= 400 {
        assert_eq!(response.code(), "forbidden", "{}", response.body);
    }
    response.status
}

async fn tokens_for_existing_users(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    // Alice works in room a; Mo moderates room b.
    server.token("a", "alice", Role::Worker).await;
    let owner_b = server.token("b", "bea", Role::Owner).await;
    server.token("b", "otto", Role::Owner).await;
    let mo = server.token("b", "mo", Role::Moderator).await;
    // Mo cannot mint a token that speaks as Alice (she is not a member of b).
    assert_eq!(issue(&server, "b", &mo, "alice", "worker").await, 403);
    let members = http::get(&server.http_url("/api/v1/rooms/b/members"), Some(&owner_b))
        .await
        .json();
    assert!(
        members["members"]
            .as_array()
            .unwrap()
            .iter()
            .all(|member| member["user"] != "alice"),
        "{members}"
    );
    // New user ids and members Mo outranks are fine (invites, re-invites).
    assert_eq!(issue(&server, "b", &mo, "newbie", "worker").await, 201);
    assert_eq!(issue(&server, "b", &mo, "newbie", "viewer").await, 201);
    // An owner vouches for a user from elsewhere.
    assert_eq!(issue(&server, "b", &owner_b, "alice", "worker").await, 201);
    // Nobody mints a token for a member of their own rank: not even an owner for another owner.
    assert_eq!(issue(&server, "b", &owner_b, "otto", "owner").await, 403);
    let me = http::get(&server.http_url("/api/v1/me"), Some(&owner_b))
        .await
        .json();
    assert_eq!(me["user"], "bea");
    server.stop().await;
}

async fn rank(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let olivia = server.token("r1", "olivia", Role::Owner).await;
    let otto = server.token("r1", "otto", Role::Owner).await;
    let mo = server.token("r1", "mo", Role::Moderator).await;
    let max = server.token("r1", "max", Role::Moderator).await;
    server.token("r1", "wes", Role::Worker).await;
    let api = |path: &str| server.http_url(&format!("/api/v1/rooms/r1{path}"));
    let call = |method: &'static str, path: String, token: &str, body: Option<Value>| {
        let token = token.to_owned();
        async move { http::request(method, &path, Some(&token), body).await }
    };
    let pause = || Some(json!({"reason": "checking"}));
    let skills = || Some(json!({"skills": ["de"]}));
    // A moderator pauses, unpauses and sets the skills of a worker...
    for (method, path, body) in [
        ("POST", "/workers/wes/pause", pause()),
        ("DELETE", "/workers/wes/pause", None),
        ("PUT", "/members/wes/skills", skills()),
    ] {
        let response = call(method, api(path), &mo, body).await;
        assert_eq!(response.status, 200, "{method} {path}: {}", response.body);
    }
    // ...but not of an owner, another moderator or themselves.
    for user in ["olivia", "max", "mo"] {
        for (method, path, body) in [
            ("POST", format!("/workers/{user}/pause"), pause()),
            ("DELETE", format!("/workers/{user}/pause"), None),
            ("PUT", format!("/members/{user}/skills"), skills()),
        ] {
            let response = call(method, api(&path), &mo, body).await;
            assert_eq!(response.status, 403, "{method} {path}: {}", response.body);
            assert_eq!(response.code(), "forbidden");
        }
    }
    // The owner's record is untouched.
    let record = call("GET", api("/workers/olivia"), &olivia, None)
        .await
        .json();
    assert!(record["paused"].is_null(), "{record}");
    // An owner cannot demote, remove or revoke another owner.
    let demote = call(
        "PUT",
        api("/members/otto"),
        &olivia,
        Some(json!({"role": "viewer"})),
    )
    .await;
    assert_eq!(demote.status, 403, "{}", demote.body);
    assert_eq!(
        call("DELETE", api("/members/otto"), &olivia, None)
            .await
            .status,
        403
    );
    let listed = call("GET", api("/tokens"), &olivia, None).await.json();
    let token_of = |user: &str| {
        listed["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|token| token["user"] == user)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let otto_token = token_of("otto");
    let revoke = call(
        "DELETE",
        api(&format!("/tokens/{otto_token}")),
        &olivia,
        None,
    )
    .await;
    assert_eq!(revoke.status, 403, "{}", revoke.body);
    let me = http::get(&server.http_url("/api/v1/me"), Some(&otto))
        .await
        .json();
    assert_eq!(me["role"], "owner");
    // A moderator's own token is theirs to revoke; a peer's is not.
    let max_token = token_of("max");
    let revoke = call("DELETE", api(&format!("/tokens/{max_token}")), &mo, None).await;
    assert_eq!(revoke.status, 403, "{}", revoke.body);
    let revoke = call("DELETE", api(&format!("/tokens/{max_token}")), &max, None).await;
    assert_eq!(revoke.status, 204, "{}", revoke.body);
    // Owners still act on everyone below them.
    let demote = call(
        "PUT",
        api("/members/mo"),
        &olivia,
        Some(json!({"role": "worker"})),
    )
    .await;
    assert_eq!(demote.status, 200, "{}", demote.body);
    server.stop().await;
}

async fn review_final(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (owner, task) = one_task_to_review(&server).await;
    let core = server.token("r1", "cora", Role::Core).await;
    let tasks = server.http_url("/api/v1/rooms/r1/tasks");
    let review = server.http_url(&format!("/api/v1/rooms/r1/tasks/{task}/review"));
    let first = json!({"decision": "correct", "answer": "neg", "reason": "sarcasm"});
    let response = http::request("POST", &review, Some(&core), Some(first)).await;
    assert_eq!(response.status, 200, "{}", response.body);
    // A second review, by anyone, is refused: the first decision stands.
    for (token, decision) in [
        (&core, json!({"decision": "correct", "answer": "pos"})),
        (&owner, json!({"decision": "reject", "reason": "overrule"})),
    ] {
        let response = http::request("POST", &review, Some(token), Some(decision)).await;
        assert_eq!(response.status, 409, "{}", response.body);
        assert_eq!(response.code(), "invalid_state");
        assert!(
            response.json()["message"]
                .as_str()
                .unwrap()
                .contains("final")
        );
    }
    let trail_url = server.http_url(&format!("/api/v1/rooms/r1/tasks/{task}/reviews"));
    let trail = http::get(&trail_url, Some(&owner)).await.json();
    assert_eq!(trail["reviews"].as_array().unwrap().len(), 1, "{trail}");
    let listed = http::get(&tasks, Some(&owner)).await.json();
    assert_eq!(
        (
            listed["tasks"][0]["consensus"].clone(),
            listed["tasks"][0]["state"].clone()
        ),
        (json!("neg"), json!("complete")),
        "{listed}"
    );
    server.stop().await;
}

async fn gold_oracle(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let owner = server.token("r1", "olivia", Role::Owner).await;
    // No onboarding (whose feedback is training, by design): gold comes hidden.
    let config = json!({
        "answer_schema": {"kind": "single_choice", "options": ["pos", "neg"]},
        "overlap_min": 1, "overlap_max": 1, "onboarding_gold": 0, "gold_rate": 1.0,
        "min_accuracy": 0.6, "min_lead_time_ms": 0
    });
    let project = server.http_url("/api/v1/rooms/r1/project");
    let response = http::request("PUT", &project, Some(&owner), Some(config)).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let lines = "{\"id\":\"g0\",\"data\":{},\"gold\":\"pos\"}\n{\"id\":\"r0\",\"data\":{}}\n";
    let tasks = server.http_url("/api/v1/rooms/r1/tasks");
    let imported = http::post_raw(&tasks, &owner, lines).await;
    assert_eq!(imported.status, 200, "{}", imported.body);
    let token = server.token("r1", "wes", Role::Worker).await;
    let record_url = server.http_url("/api/v1/rooms/r1/workers/wes");
    let before = http::get(&record_url, Some(&token)).await.json();
    let mut wes = LiveClient::connect(&server.ws_url(""), "r1", &token).await;
    let (external, result) = answer_next(&mut wes, "neg").await;
    assert_eq!(external, "g0", "gold first at a gold rate of 1");
    assert!(
        result["correct"].is_null(),
        "no feedback outside onboarding: {result}"
    );
    // The worker's own record, before and after, says nothing about gold.
    let after = http::get(&record_url, Some(&token)).await.json();
    assert_eq!(after["answers"], 1, "{after}");
    for field in ["gold_total", "gold_correct", "accuracy", "verdict"] {
        assert!(before[field].is_null(), "{field} before: {before}");
        assert!(after[field].is_null(), "{field} after: {after}");
    }
    // Moderators see it all.
    let seen = http::get(&record_url, Some(&owner)).await.json();
    assert_eq!(
        (seen["gold_total"].as_i64(), seen["gold_correct"].as_i64()),
        (Some(1), Some(0)),
        "{seen}"
    );
    server.stop().await;
}

/// Room `r1` with a single-choice project and one task; returns the owner's
/// token and the task's id.
pub(crate) async fn one_task_to_review(server: &TestServer) -> (String, i64) {
    let owner = server.token("r1", "olivia", Role::Owner).await;
    let config = json!({
        "answer_schema": {"kind": "single_choice", "options": ["pos", "neg"]},
        "overlap_min": 1, "overlap_max": 1, "onboarding_gold": 0, "min_lead_time_ms": 0
    });
    let project = server.http_url("/api/v1/rooms/r1/project");
    let response = http::request("PUT", &project, Some(&owner), Some(config)).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let tasks = server.http_url("/api/v1/rooms/r1/tasks");
    let imported = http::post_raw(&tasks, &owner, r#"[{"id":"only","data":{}}]"#).await;
    assert_eq!(imported.status, 200, "{}", imported.body);
    let listed = http::get(&tasks, Some(&owner)).await.json();
    let task = listed["tasks"][0]["id"].as_i64().expect("a task id");
    (owner, task)
}
