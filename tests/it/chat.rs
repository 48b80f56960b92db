//! Chat on the live channel: round trip, history across a restart, edits
//! and deletions with their permissions, and presence.

use crowdroom::auth::Role;
use crowdroom_tests::client::LiveClient;
use crowdroom_tests::{Backend, TestServer, both_stores, fast_settings, http};
use serde_json::json;

both_stores! {
    round_trip_and_history_after_restart => round_trip_and_history_after_restart;
}

async fn round_trip_and_history_after_restart(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let base = server.ws_url("");
    let ann_token = server.token("r1", "ann", Role::Worker).await;
    let bob_token = server.token("r1", "bob", Role::Moderator).await;
    let mut ann = LiveClient::connect(&base, "r1", &ann_token).await;
    let mut bob = LiveClient::connect(&base, "r1", &bob_token).await;
    assert_eq!(ann.hello["protocol"], 1);
    assert_eq!(ann.hello["you"]["role"], "worker");
    let reply = ann
        .request("chat.send", json!({ "body": "  hello room  " }))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    let message = &reply["result"]["message"];
    assert_eq!(message["body"], "hello room");
    assert_eq!(message["user"], "ann");
    let id = message["id"].as_i64().unwrap();
    let event = bob.event("chat.message").await;
    assert_eq!(event["data"]["id"], id);
    assert_eq!(event["data"]["body"], "hello room");
    for i in 0..3 {
        let reply = bob
            .request("chat.send", json!({ "body": format!("reply {i}") }))
            .await;
        assert_eq!(reply["ok"], true);
    }
    drop((ann, bob));
    let db = server.stop().await;

    let server = TestServer::start_on(db, fast_settings()).await;
    let mut ann = LiveClient::connect(&server.ws_url(""), "r1", &ann_token).await;
    let reply = ann.request("chat.history", json!({ "limit": 10 })).await;
    let bodies: Vec<&str> = reply["result"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["hello room", "reply 0", "reply 1", "reply 2"]);
    // Paging back from the newest.
    let newest = reply["result"]["messages"][3]["id"].as_i64().unwrap();
    let page = ann
        .request("chat.history", json!({ "before": newest, "limit": 2 }))
        .await;
    let bodies: Vec<&str> = page["result"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["reply 0", "reply 1"]);
    // The REST history agrees.
    let rest = http::get(
        &server.http_url("/api/v1/rooms/r1/chat?limit=2"),
        Some(&ann_token),
    )
    .await;
    assert_eq!(rest.status, 200);
    assert_eq!(rest.json()["messages"].as_array().unwrap().len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn edit_and_delete_respect_roles() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let base = server.ws_url("");
    let worker_token = server.token("r1", "wes", Role::Worker).await;
    let other_token = server.token("r1", "wanda", Role::Worker).await;
    let moderator_token = server.token("r1", "mo", Role::Moderator).await;
    let viewer_token = server.token("r1", "vic", Role::Viewer).await;
    let mut worker = LiveClient::connect(&base, "r1", &worker_token).await;
    let mut other = LiveClient::connect(&base, "r1", &other_token).await;
    let mut moderator = LiveClient::connect(&base, "r1", &moderator_token).await;
    let mut viewer = LiveClient::connect(&base, "r1", &viewer_token).await;

    let sent = worker
        .request("chat.send", json!({ "body": "first" }))
        .await;
    let id = sent["result"]["message"]["id"].as_i64().unwrap();
    let edited = worker
        .request(
            "chat.edit",
            json!({ "message_id": id, "body": "first (edited)" }),
        )
        .await;
    assert_eq!(edited["ok"], true, "{edited}");
    assert!(edited["result"]["message"]["edited_at"].is_i64());
    assert_eq!(
        other.event("chat.edited").await["data"]["body"],
        "first (edited)"
    );

    let refused = other
        .request("chat.edit", json!({ "message_id": id, "body": "hijack" }))
        .await;
    assert_eq!(refused["error"]["code"], "forbidden");
    let refused = other
        .request("chat.delete", json!({ "message_id": id }))
        .await;
    assert_eq!(refused["error"]["code"], "forbidden");
    let refused = viewer
        .request("chat.send", json!({ "body": "can I?" }))
        .await;
    assert_eq!(refused["error"]["code"], "forbidden");
    let missing = worker
        .request("chat.edit", json!({ "message_id": 999_999, "body": "x" }))
        .await;
    assert_eq!(missing["error"]["code"], "not_found");
    let empty = worker.request("chat.send", json!({ "body": "   " })).await;
    assert_eq!(empty["error"]["code"], "bad_request");

    // A moderator deletes anyone's message; only moderators see what it said.
    let deleted = moderator
        .request("chat.delete", json!({ "message_id": id }))
        .await;
    assert_eq!(deleted["ok"], true, "{deleted}");
    let seen_by_other = other.event("chat.deleted").await;
    assert_eq!(seen_by_other["data"]["id"], id);
    assert_eq!(seen_by_other["data"]["body"], "");
    assert!(seen_by_other["data"]["deleted_by"].is_null());
    let history = other.request("chat.history", json!({})).await;
    assert_eq!(
        history["result"]["messages"][0]["body"], "",
        "workers never read a deleted body"
    );
    let history = moderator.request("chat.history", json!({})).await;
    assert_eq!(history["result"]["messages"][0]["body"], "first (edited)");
    assert_eq!(history["result"]["messages"][0]["deleted_by"], "mo");
    server.stop().await;
}

#[tokio::test]
async fn presence_follows_people() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let base = server.ws_url("");
    let ann_token = server.token("r1", "ann", Role::Worker).await;
    let bob_token = server.token("r1", "bob", Role::Core).await;
    let mut ann = LiveClient::connect(&base, "r1", &ann_token).await;
    let bob = LiveClient::connect(&base, "r1", &bob_token).await;
    let joined = ann.event("presence.joined").await;
    assert_eq!(joined["data"]["user"], "bob");
    assert_eq!(joined["data"]["role"], "core");
    let present: Vec<&str> = bob.hello["presence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["user"].as_str().unwrap())
        .collect();
    assert!(
        present.contains(&"ann") && present.contains(&"bob"),
        "{present:?}"
    );
    let mut bob = bob;
    let reply = bob
        .request("presence.set", json!({ "status": "away" }))
        .await;
    assert_eq!(reply["ok"], true);
    assert_eq!(
        ann.event("presence.updated").await["data"]["status"],
        "away"
    );
    drop(bob);
    assert_eq!(ann.event("presence.left").await["data"]["user"], "bob");
    server.stop().await;
}
