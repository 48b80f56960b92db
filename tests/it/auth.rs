//! Authorization: every role against every endpoint and channel, tokens for
//! other rooms, and expiry and revocation acting on open sockets.

use crowdroom::auth::Role;
use crowdroom::ids::{RoomId, TokenId, UserId};
use crowdroom_tests::client::{LiveClient, YjsClient};
use crowdroom_tests::{Backend, TestServer, http};
use serde_json::json;

/// Expected status per role, in `Role::ALL` order: owner, moderator, core, worker, viewer.
type Row = (
    &'static str,
    &'static str,
    Option<serde_json::Value>,
    [u16; 5],
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_matrix_over_rest() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let mut tokens = Vec::new();
    for role in Role::ALL {
        tokens.push(server.token("r1", &format!("user-{role}"), role).await);
    }
    server.token("r1", "target", Role::Worker).await;
    let rows: Vec<Row> = vec![
        ("GET", "/api/v1/me", None, [200, 200, 200, 200, 200]),
        ("GET", "/api/v1/rooms", None, [200, 200, 200, 200, 200]),
        ("GET", "/api/v1/rooms/r1", None, [200, 200, 200, 200, 200]),
        (
            "GET",
            "/api/v1/rooms/r1/members",
            None,
            [200, 200, 200, 403, 403],
        ),
        (
            "PUT",
            "/api/v1/rooms/r1/members/target",
            Some(json!({"role": "worker"})),
            [200, 403, 403, 403, 403],
        ),
        (
            "GET",
            "/api/v1/rooms/r1/tokens",
            None,
            [200, 200, 403, 403, 403],
        ),
        (
            "POST",
            "/api/v1/rooms/r1/tokens",
            Some(json!({"user": "newbie", "role": "worker"})),
            [201, 201, 403, 403, 403],
        ),
        (
            "POST",
            "/api/v1/rooms/r1/tokens",
            Some(json!({"user": "newmod", "role": "moderator"})),
            [201, 403, 403, 403, 403],
        ),
        (
            "GET",
            "/api/v1/rooms/r1/chat",
            None,
            [200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/rooms/r1/docs",
            None,
            [200, 200, 200, 200, 200],
        ),
        (
            "POST",
            "/api/v1/rooms/r1/docs",
            Some(json!({"name": "spec"})),
            [201, 200, 200, 200, 403],
        ),
    ];
    for (method, path, body, expected) in rows {
        for (role, token) in Role::ALL.iter().zip(&tokens) {
            let response =
                http::request(method, &server.http_url(path), Some(token), body.clone()).await;
            let want = expected[Role::ALL.iter().position(|r| r == role).unwrap()];
            assert_eq!(
                response.status, want,
                "{method} {path} as {role}: {}",
                response.body
            );
            if want >= 400 {
                assert_eq!(response.code(), "forbidden", "{method} {path} as {role}");
            }
        }
    }
    // A token sets its member's role, so a moderator cannot demote an owner with one.
    let moderator = &tokens[1];
    let demote = json!({"user": "user-owner", "role": "viewer"});
    let response = http::request(
        "POST",
        &server.http_url("/api/v1/rooms/r1/tokens"),
        Some(moderator),
        Some(demote),
    )
    .await;
    assert_eq!(response.status, 403, "{}", response.body);
    let me = http::get(&server.http_url("/api/v1/me"), Some(&tokens[0])).await;
    assert_eq!(me.json()["role"], "owner");
    // Creating a room: owners only; the reply carries an owner token for it.
    for (role, token) in Role::ALL.iter().zip(&tokens) {
        let body = json!({"id": format!("new-{role}")});
        let response = http::request(
            "POST",
            &server.http_url("/api/v1/rooms"),
            Some(token),
            Some(body),
        )
        .await;
        let want = if *role == Role::Owner { 201 } else { 403 };
        assert_eq!(
            response.status, want,
            "create room as {role}: {}",
            response.body
        );
    }
    // Removing a member: owners only (checked last, it revokes the target).
    for (role, token) in Role::ALL.iter().zip(&tokens).rev() {
        let response = http::request(
            "DELETE",
            &server.http_url("/api/v1/rooms/r1/members/target"),
            Some(token),
            None,
        )
        .await;
        let want = if *role == Role::Owner { 204 } else { 403 };
        assert_eq!(
            response.status, want,
            "remove member as {role}: {}",
            response.body
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_opens_both_channels_but_only_writers_write() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let base = server.ws_url("");
    let owner = server.token("r1", "owner", Role::Owner).await;
    YjsClient::connect(&base, "r1", "doc", &owner)
        .await
        .write_acked("seed", "1")
        .await;
    for role in Role::ALL {
        let token = server.token("r1", &format!("user-{role}"), role).await;
        let mut live = LiveClient::connect(&base, "r1", &token).await;
        assert_eq!(live.hello["you"]["role"], role.as_str());
        let reply = live.request("chat.send", json!({"body": "hi"})).await;
        assert_eq!(reply["ok"], role.can_write(), "chat as {role}: {reply}");
        let mut doc = YjsClient::connect(&base, "r1", "doc", &token).await;
        assert_eq!(
            doc.value("seed").as_deref(),
            Some("1"),
            "{role} reads the document"
        );
        if role.can_write() {
            doc.write_acked(&format!("by-{role}"), "x").await;
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn bad_tokens_and_other_rooms_are_refused() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let base = server.ws_url("");
    let r1 = server.token("r1", "ann", Role::Owner).await;
    server.token("r2", "bob", Role::Owner).await;
    // No token, a wrong token, a token for another room.
    assert_eq!(
        http::get(&server.http_url("/api/v1/rooms/r1"), None)
            .await
            .status,
        401
    );
    let wrong = http::get(&server.http_url("/api/v1/rooms/r1"), Some("crt_nope")).await;
    assert_eq!((wrong.status, wrong.code().as_str()), (401, "unauthorized"));
    let other_room = http::get(&server.http_url("/api/v1/rooms/r2"), Some(&r1)).await;
    assert_eq!(
        (other_room.status, other_room.code().as_str()),
        (403, "forbidden")
    );
    assert_eq!(LiveClient::open(&base, "r2", &r1).await.err(), Some(403));
    assert_eq!(
        YjsClient::open(&base, "r2", "d", &r1).await.err(),
        Some(403)
    );
    assert_eq!(
        LiveClient::open(&base, "r1", "crt_nope").await.err(),
        Some(401)
    );
    assert_eq!(YjsClient::open(&base, "r1", "d", "").await.err(), Some(401));
    // Unknown routes and rooms.
    let unknown = http::get(&server.http_url("/api/v1/nothing"), Some(&r1)).await;
    assert_eq!(
        (unknown.status, unknown.code().as_str()),
        (404, "not_found")
    );
    assert_eq!(
        LiveClient::open(&base, "no-such-room", &r1).await.err(),
        Some(403)
    );
    // An expired token.
    let room = RoomId::parse("r1").unwrap();
    let user = UserId::parse("ann").unwrap();
    let (_, expired) = server
        .store
        .issue_token(&room, &user, Role::Worker, Some(-1))
        .await
        .unwrap();
    let response = http::get(&server.http_url("/api/v1/me"), Some(&expired)).await;
    assert_eq!(
        (response.status, response.code().as_str()),
        (401, "token_expired")
    );
    server.stop().await;
}

#[tokio::test]
async fn expiry_closes_open_sockets() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let base = server.ws_url("");
    server.token("r1", "ann", Role::Owner).await;
    let room = RoomId::parse("r1").unwrap();
    let user = UserId::parse("ann").unwrap();
    let (_, short) = server
        .store
        .issue_token(&room, &user, Role::Worker, Some(1500))
        .await
        .unwrap();
    let mut live = LiveClient::connect(&base, "r1", &short).await;
    let mut doc = YjsClient::connect(&base, "r1", "d", &short).await;
    assert_eq!(live.closed().await, Some(4401));
    assert_eq!(doc.closed().await, Some(4401));
    server.stop().await;
}

#[tokio::test]
async fn revocation_closes_open_sockets() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let base = server.ws_url("");
    let owner = server.token("r1", "owner", Role::Owner).await;
    // Revoked through the API: immediate.
    let issued = http::request(
        "POST",
        &server.http_url("/api/v1/rooms/r1/tokens"),
        Some(&owner),
        Some(json!({"user": "ann", "role": "worker"})),
    )
    .await;
    assert_eq!(issued.status, 201, "{}", issued.body);
    let token = issued.json()["token"].as_str().unwrap().to_owned();
    let id = issued.json()["info"]["id"].as_str().unwrap().to_owned();
    let mut live = LiveClient::connect(&base, "r1", &token).await;
    let mut doc = YjsClient::connect(&base, "r1", "d", &token).await;
    let revoked = http::request(
        "DELETE",
        &server.http_url(&format!("/api/v1/rooms/r1/tokens/{id}")),
        Some(&owner),
        None,
    )
    .await;
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    assert_eq!(live.closed().await, Some(4403));
    assert_eq!(doc.closed().await, Some(4403));
    assert_eq!(LiveClient::open(&base, "r1", &token).await.err(), Some(401));
    // Revoked behind the server's back (the CLI, another process): the poller catches it.
    let other = server.token("r1", "bob", Role::Worker).await;
    let mut live = LiveClient::connect(&base, "r1", &other).await;
    let other_id: TokenId = server.store.token_id_of_secret(&other).await.unwrap();
    server.store.revoke_token(&other_id, None).await.unwrap();
    assert_eq!(live.closed().await, Some(4403));
    server.stop().await;
}
