//! Server operators: a token from the command line that lists every room
//! with its figures (rooms it holds no token for, loaded or not) and takes
//! a moderator token for any of them; it opens no room itself, and room
//! tokens never open the operator's API.

use crowdroom::auth::Role;
use crowdroom::ids::{RoomId, UserId};
use crowdroom_tests::process::{ServerProcess, binary};
use crowdroom_tests::{Backend, TestDb, TestServer, both_stores, http};
use serde_json::Value;

both_stores! {
    operators_see_every_room_and_moderate_any => operators_see_every_room_and_moderate_any;
}

async fn call(
    server: &TestServer,
    method: &'static str,
    path: &str,
    token: &str,
) -> http::Response {
    http::request(method, &server.http_url(path), Some(token), None).await
}

fn room_ids(page: &Value) -> Vec<String> {
    page["rooms"]
        .as_array()
        .map(|rooms| {
            rooms
                .iter()
                .filter_map(|room| room["room"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn operators_see_every_room_and_moderate_any(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let owner = server.token("alpha", "olivia", Role::Owner).await;
    let parse = |id: &str| RoomId::parse(id).unwrap_or_else(|error| panic!("{error}"));
    for (id, name) in [("beta", "Beta room"), ("gamma", "Gamma room")] {
        server
            .store
            .create_room(&parse(id), name)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
    }
    let ops = UserId::parse("ops").unwrap_or_else(|error| panic!("{error}"));
    let (id, operator) = server
        .store
        .issue_operator_token(&ops, None)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    assert!(operator.starts_with("cop_"), "{operator}");

    // Every room, with figures, though the operator holds no room token.
    let me = call(&server, "GET", "/api/v1/operator/me", &operator).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["user"], "ops");
    let page = call(&server, "GET", "/api/v1/operator/rooms", &operator).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let page = page.json();
    assert_eq!(room_ids(&page), ["alpha", "beta", "gamma"], "{page}");
    assert_eq!(page["rooms"][1]["name"], "Beta room");
    assert!(page["rooms"][0]["counts"]["open"].is_i64(), "{page}");
    assert!(
        page["rooms"][0]["pay"]["target_hourly_rate"].is_i64(),
        "{page}"
    );
    assert_eq!(page["next"], Value::Null);
    // Paged by id.
    let first = call(&server, "GET", "/api/v1/operator/rooms?limit=2", &operator).await;
    let first = first.json();
    assert_eq!(room_ids(&first), ["alpha", "beta"]);
    assert_eq!(first["next"], "beta");
    let rest = call(
        &server,
        "GET",
        "/api/v1/operator/rooms?after=beta",
        &operator,
    )
    .await;
    assert_eq!(room_ids(&rest.json()), ["gamma"]);

    // Neither kind of token opens the other's API.
    let refused = call(&server, "GET", "/api/v1/operator/rooms", &owner).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    let refused = call(&server, "GET", "/api/v1/rooms/alpha", &operator).await;
    assert_eq!(refused.status, 401, "{}", refused.body);

    // A moderator token for a room the operator had no part in.
    let taken = call(
        &server,
        "POST",
        "/api/v1/operator/rooms/beta/moderate",
        &operator,
    )
    .await;
    assert_eq!(taken.status, 201, "{}", taken.body);
    let taken = taken.json();
    assert_eq!(taken["role"], "moderator");
    let token = taken["token"].as_str().unwrap_or_default().to_owned();
    let stats = call(&server, "GET", "/api/v1/rooms/beta/stats", &token).await;
    assert_eq!(stats.status, 200, "{}", stats.body);
    let other = call(&server, "GET", "/api/v1/rooms/gamma/stats", &token).await;
    assert_eq!(other.status, 403, "a room token opens its room only");
    let unknown = call(
        &server,
        "POST",
        "/api/v1/operator/rooms/nowhere/moderate",
        &operator,
    )
    .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);

    // A room started by the operator, who owns it.
    let body = serde_json::json!({"id": "delta", "name": "Delta room"});
    let url = server.http_url("/api/v1/operator/rooms");
    let created = http::request("POST", &url, Some(&operator), Some(body.clone())).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let owner_token = created.json()["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let me = call(&server, "GET", "/api/v1/me", &owner_token).await;
    assert_eq!(me.json()["role"], "owner", "{}", me.body);
    assert_eq!(me.json()["room"], "delta", "{}", me.body);
    let again = http::request("POST", &url, Some(&operator), Some(body)).await;
    assert_eq!(again.status, 409, "{}", again.body);
    let bad = serde_json::json!({"id": "no spaces"});
    let bad = http::request("POST", &url, Some(&operator), Some(bad)).await;
    assert_eq!(bad.status, 400, "{}", bad.body);

    // Revoked: refused at once.
    server
        .store
        .revoke_operator_token(&id)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let revoked = call(&server, "GET", "/api/v1/operator/rooms", &operator).await;
    assert_eq!(revoked.status, 401, "{}", revoked.body);
    assert!(revoked.body.contains("revoked"), "{}", revoked.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_issues_operator_tokens() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let run = |args: Vec<&'static str>| {
        let url = db.url.clone();
        async move {
            let output = tokio::process::Command::new(binary())
                .arg("--database")
                .arg(&url)
                .args(args)
                .output()
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            assert!(output.status.success(), "{output:?}");
            String::from_utf8_lossy(&output.stdout).into_owned()
        }
    };
    run(vec!["migrate"]).await;
    run(vec!["room", "create", "acme"]).await;
    let printed = run(vec!["operator", "issue", "--user", "ops", "--ttl", "1h"]).await;
    let token = printed.lines().last().unwrap_or_default().trim().to_owned();
    assert!(
        token.starts_with("cop_"),
        "alone on the last line: {printed}"
    );
    assert!(printed.contains(&format!("#/join/{token}")), "{printed}");
    let server = ServerProcess::start(&db.url).await;
    let url = format!("http://{}/api/v1/operator/rooms", server.addr);
    let page = http::get(&url, Some(&token)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(room_ids(&page.json()), ["acme"]);
    server.terminate().await;
}
