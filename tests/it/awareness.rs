//! Awareness on documents (relay to everyone, removal on close, expiry of
//! stale states) and the slow-client policy.

use std::time::Duration;

use crowdroom::auth::Role;
use crowdroom_crdt::{AwarenessEntry, AwarenessUpdate, Message};
use crowdroom_tests::client::{Incoming, YjsClient};
use crowdroom_tests::{Backend, TestDb, TestServer, fast_settings};

fn announce(client_id: u64, clock: u64, name: &str) -> Vec<u8> {
    AwarenessUpdate {
        entries: vec![AwarenessEntry {
            client_id,
            clock,
            state: format!(r#"{{"user":{{"name":"{name}"}}}}"#),
        }],
    }
    .encode()
}

/// Waits for an awareness message about `client_id` and returns its state.
async fn awareness_of(client: &mut YjsClient, client_id: u64) -> String {
    loop {
        match client.next().await {
            Incoming::Awareness(bytes) => {
                let update = AwarenessUpdate::decode(&bytes).unwrap();
                if let Some(entry) = update
                    .entries
                    .into_iter()
                    .find(|entry| entry.client_id == client_id)
                {
                    return entry.state;
                }
            }
            Incoming::Closed(code) => panic!("closed: {code:?}"),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awareness_is_relayed_to_all_and_removed_on_close() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let base = server.ws_url("");
    let token = server.token("r1", "ann", Role::Worker).await;
    let viewer = server.token("r1", "vic", Role::Viewer).await;
    let mut ann = YjsClient::connect(&base, "r1", "d", &token).await;
    let mut vic = YjsClient::connect(&base, "r1", "d", &viewer).await;
    ann.send(&Message::Awareness(&announce(111, 1, "ann")))
        .await;
    // The sender gets it back too: y-websocket clients rely on that.
    assert!(awareness_of(&mut ann, 111).await.contains("ann"));
    assert!(awareness_of(&mut vic, 111).await.contains("ann"));
    // A newcomer gets the current states on join, and on query.
    let mut late = YjsClient::connect(&base, "r1", "d", &token).await;
    late.send(&Message::QueryAwareness).await;
    assert!(awareness_of(&mut late, 111).await.contains("ann"));
    // Ann's socket drops without a goodbye: the server removes her state at once.
    drop(ann);
    assert_eq!(awareness_of(&mut vic, 111).await, "null");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_awareness_expires() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let mut settings = fast_settings();
    settings.rooms.awareness_timeout = Duration::from_millis(500);
    let server = TestServer::start_on(db, settings).await;
    let base = server.ws_url("");
    let token = server.token("r1", "ann", Role::Worker).await;
    let mut ann = YjsClient::connect(&base, "r1", "d", &token).await;
    let mut bob = YjsClient::connect(&base, "r1", "d", &token).await;
    ann.send(&Message::Awareness(&announce(222, 1, "ann")))
        .await;
    assert!(awareness_of(&mut bob, 222).await.contains("ann"));
    // Ann stays connected but never renews: her state expires.
    assert_eq!(awareness_of(&mut bob, 222).await, "null");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_with_4008() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let mut settings = fast_settings();
    settings.sockets.outbound_queue = 4;
    settings.rooms.max_doc_bytes = 256 * 1024 * 1024;
    let server = TestServer::start_on(db, settings).await;
    let base = server.ws_url("");
    let token = server.token("r1", "ann", Role::Worker).await;
    let mut writer = YjsClient::connect(&base, "r1", "d", &token).await;
    let mut sleeper = YjsClient::connect(&base, "r1", "d", &token).await;
    // The sleeper reads nothing while the writer sends far more than its
    // queue, tungstenite's buffer and the kernel's socket buffers hold.
    let blob = "x".repeat(256 * 1024);
    for i in 0..256 {
        writer.write_acked(&format!("k{i}"), &blob).await;
        if server.metric("crowdroom_slow_clients_dropped_total").await >= 1.0 {
            break;
        }
    }
    assert_eq!(
        server.metric("crowdroom_slow_clients_dropped_total").await,
        1.0
    );
    assert_eq!(sleeper.closed().await, Some(4008));
    // The writer is unaffected, and the sleeper resyncs on reconnect.
    writer.write_acked("after", "1").await;
    let again = YjsClient::connect(&base, "r1", "d", &token).await;
    assert_eq!(again.value("after").as_deref(), Some("1"));
    server.stop().await;
}
