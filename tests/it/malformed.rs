//! Bad input of every kind gets a clear close code or error reply; the
//! server keeps serving everyone else and loses nothing acknowledged.

use crowdroom::auth::Role;
use crowdroom_tests::client::{LiveClient, YjsClient};
use crowdroom_tests::{Backend, TestServer, http};
use futures_util::SinkExt;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Frames that must close a y-websocket connection, with the expected code.
pub(crate) fn bad_frames() -> Vec<(&'static str, Vec<u8>, u16)> {
    vec![
        ("truncated varint", vec![0xff, 0xff], 1002),
        ("unknown message type", vec![7], 1002),
        ("unknown sync type", vec![0, 9, 0], 1002),
        ("truncated update", vec![0, 2, 5, 1, 2], 1002),
        ("trailing bytes", vec![3, 0, 0], 1002),
        (
            "garbage update",
            vec![0, 2, 4, 0xff, 0xff, 0xff, 0xff],
            1007,
        ),
        ("garbage awareness", vec![1, 3, 0xff, 0xff, 0xff], 1002),
        ("empty frame", vec![], 1002),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_yjs_frames_close_with_clear_codes() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let base = server.ws_url("");
    let token = server.token("r1", "ann", Role::Worker).await;
    // A bystander that must be unaffected throughout.
    let mut bystander = YjsClient::connect(&base, "r1", "d", &token).await;
    bystander.write_acked("before", "1").await;
    for (what, frame, code) in bad_frames() {
        let mut client = YjsClient::connect(&base, "r1", "d", &token).await;
        client.send_raw(frame).await;
        assert_eq!(client.closed().await, Some(code), "{what}");
    }
    // A text frame on the binary protocol.
    let mut client = YjsClient::connect(&base, "r1", "d", &token).await;
    client
        .ws
        .send(WsMessage::Text("hello".into()))
        .await
        .unwrap();
    assert_eq!(client.closed().await, Some(1003));
    // An oversized frame.
    let mut client = YjsClient::connect(&base, "r1", "d", &token).await;
    let _ = client
        .ws
        .send(WsMessage::Binary(vec![0u8; 3 * 1024 * 1024].into()))
        .await;
    assert_eq!(client.closed().await, Some(1009));
    // Random bytes: any documented outcome, never a crash.
    let seed: u64 = rand::random();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for _ in 0..40 {
        let mut client = YjsClient::connect(&base, "r1", "d", &token).await;
        let length = rng.random_range(1..64);
        let frame: Vec<u8> = (0..length).map(|_| rng.random()).collect();
        client.send_raw(frame.clone()).await;
        client.send(&crowdroom_crdt::Message::QueryAwareness).await;
        // Either the server closed with a documented code, or it answered the query.
        let outcome =
            tokio::time::timeout(std::time::Duration::from_secs(5), client.closed()).await;
        if let Ok(code) = outcome {
            assert!(
                matches!(code, Some(1002 | 1007)),
                "seed {seed}: frame {frame:?} closed with {code:?}"
            );
        }
    }
    bystander.write_acked("after", "2").await;
    let late = YjsClient::connect(&base, "r1", "d", &token).await;
    assert_eq!(
        late.value("before").as_deref(),
        Some("1"),
        "nothing acknowledged was lost"
    );
    assert_eq!(late.value("after").as_deref(), Some("2"));
    assert!(server.metric("crowdroom_bad_input_closed_total").await >= 10.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_live_requests_get_error_replies() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let base = server.ws_url("");
    let token = server.token("r1", "ann", Role::Worker).await;
    let mut client = LiveClient::connect(&base, "r1", &token).await;
    for (text, code) in [
        ("{not json", "bad_json"),
        ("[]", "bad_request"),
        (r#"{"type":"chat.send","body":"no id"}"#, "bad_request"),
        (r#"{"id":1,"type":"self.destruct"}"#, "unknown_type"),
        (r#"{"id":2,"type":"chat.send","body":7}"#, "bad_request"),
    ] {
        client.send_text(text).await;
        let id = serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .map(|v| v["id"].clone())
            .unwrap_or_default();
        let reply = client.reply_to(id).await;
        assert_eq!(reply["ok"], false, "{text}");
        assert_eq!(reply["error"]["code"], code, "{text}: {reply}");
    }
    let too_long = "x".repeat(5000);
    let reply = client.request("chat.send", json!({"body": too_long})).await;
    assert_eq!(reply["error"]["code"], "bad_request");
    // Still connected and working after all that.
    let reply = client
        .request("chat.send", json!({"body": "still here"}))
        .await;
    assert_eq!(reply["ok"], true);

    // A binary frame, an oversized frame, a flood.
    let mut binary = LiveClient::connect(&base, "r1", &token).await;
    binary
        .ws
        .send(WsMessage::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(binary.closed().await, Some(1003));
    let mut big = LiveClient::connect(&base, "r1", &token).await;
    let _ = big
        .ws
        .send(WsMessage::Text("x".repeat(200 * 1024).into()))
        .await;
    assert_eq!(big.closed().await, Some(1009));
    let mut flood = LiveClient::connect(&base, "r1", &token).await;
    for i in 0..500 {
        if flood
            .ws
            .send(WsMessage::Text(
                format!(r#"{{"id":{i},"type":"ping"}}"#).into(),
            ))
            .await
            .is_err()
        {
            break;
        }
    }
    assert_eq!(flood.closed().await, Some(4029));
    // The first client is unaffected.
    let reply = client.request("ping", json!({})).await;
    assert_eq!(reply["result"]["pong"], true);
    server.stop().await;
}

#[tokio::test]
async fn malformed_rest_bodies_get_json_errors() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let token = server.token("r1", "ann", Role::Owner).await;
    let url = server.http_url("/api/v1/rooms/r1/tokens");
    let response = http::post_raw(&url, &token, "{oops").await;
    assert_eq!(
        (response.status, response.code().as_str()),
        (400, "bad_request")
    );
    let response = http::post_raw(&url, &token, r#"{"user":"x","role":"emperor"}"#).await;
    assert_eq!(
        (response.status, response.code().as_str()),
        (400, "bad_request")
    );
    let response = http::post_raw(&url, &token, r#"{"user":"bad/name","role":"worker"}"#).await;
    assert_eq!(
        (response.status, response.code().as_str()),
        (400, "bad_request")
    );
    let response = http::post_raw(&url, &token, r#"{"user":"x","role":"worker","extra":1}"#).await;
    assert_eq!(response.status, 400);
    assert_eq!(
        http::get(&server.http_url("/healthz"), None).await.status,
        200
    );
    server.stop().await;
}
