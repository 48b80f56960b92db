//! Acknowledged means durable: kill -9 under load loses nothing that was
//! acknowledged; SIGTERM closes sockets with 1001 and flushes. These run the
//! real `crowdroom` binary as a child process.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crowdroom::Store;
use crowdroom::auth::Role;
use crowdroom::ids::{RoomId, UserId};
use crowdroom_crdt::Message;
use crowdroom_tests::client::{LiveClient, YjsClient};
use crowdroom_tests::process::ServerProcess;
use crowdroom_tests::{Backend, TestDb, both_stores};
use serde_json::json;

both_stores! {
    kill_9_under_load_loses_nothing_acknowledged => kill_9_under_load;
}

async fn seed(url: &str) -> (String, String) {
    let store = Store::open(url).await.unwrap();
    let room = RoomId::parse("load").unwrap();
    store.create_room(&room, "load").await.unwrap();
    let user = UserId::parse("writer").unwrap();
    store.ensure_user(&user, "writer").await.unwrap();
    let (_, token) = store
        .issue_token(&room, &user, Role::Worker, None)
        .await
        .unwrap();
    let (_, moderator) = store
        .issue_token(&room, &user, Role::Moderator, None)
        .await
        .unwrap();
    store.close().await;
    (token, moderator)
}

const WRITERS: usize = 6;
const DOCS: usize = 3;

async fn kill_9_under_load(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let (token, _) = seed(&db.url).await;
    // Frequent checkpoints, so the kill also lands around compactions; a
    // short lease, so the restart waits a second for the room, not 15.
    let flags = ["--checkpoint-every", "97", "--room-lease-ttl", "1s"];
    let server = ServerProcess::start_with(&db.url, &flags).await;
    let base = format!("ws://{}", server.addr);
    let acked_updates = Arc::new(Mutex::new(Vec::<(usize, String)>::new()));
    let acked_chat = Arc::new(Mutex::new(Vec::<i64>::new()));
    // Every client connects before the plug can be pulled.
    let connected = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let (base, token, acked, connected) = (
            base.clone(),
            token.clone(),
            acked_updates.clone(),
            connected.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let doc = writer % DOCS;
            let mut client = YjsClient::connect(&base, "load", &format!("doc-{doc}"), &token).await;
            connected.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            for n in 0.. {
                let key = format!("w{writer}-{n}");
                let update = client.set(&key, "v");
                client.send(&Message::Update(&update)).await;
                if !client.try_wait_echo(&update).await {
                    break;
                }
                acked.lock().unwrap().push((doc, key));
            }
        }));
    }
    for _ in 0..2 {
        let (base, token, acked, connected) = (
            base.clone(),
            token.clone(),
            acked_chat.clone(),
            connected.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut client = LiveClient::connect(&base, "load", &token).await;
            connected.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            for n in 0.. {
                let Some(reply) = client
                    .try_request("chat.send", json!({"body": format!("m{n}")}))
                    .await
                else {
                    break;
                };
                if let Some(id) = reply["result"]["message"]["id"].as_i64() {
                    acked.lock().unwrap().push(id);
                }
            }
        }));
    }
    // Let load build up, past at least one checkpoint, then pull the plug.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let all = WRITERS + 2;
    while (connected.load(std::sync::atomic::Ordering::SeqCst) < all
        || acked_updates.lock().unwrap().len() < 1500)
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill9().await;
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("client noticed the kill")
            .unwrap();
    }
    let acked_updates = acked_updates.lock().unwrap().clone();
    let acked_chat = acked_chat.lock().unwrap().clone();
    assert!(
        acked_updates.len() >= 100,
        "load was too light: {} updates",
        acked_updates.len()
    );
    assert!(!acked_chat.is_empty(), "no chat message was acknowledged");

    let server = ServerProcess::start(&db.url).await;
    let base = format!("ws://{}", server.addr);
    // The killed process let nothing go: its rooms wait out their leases.
    crate::lease::wait_for_room(&base, "load", &token).await;
    for doc in 0..DOCS {
        let client = YjsClient::connect(&base, "load", &format!("doc-{doc}"), &token).await;
        let keys: std::collections::HashSet<String> = client.keys().into_iter().collect();
        let missing: Vec<_> = acked_updates
            .iter()
            .filter(|(d, key)| *d == doc && !keys.contains(key))
            .collect();
        assert!(
            missing.is_empty(),
            "doc-{doc} lost acknowledged updates: {missing:?}"
        );
    }
    let mut live = LiveClient::connect(&base, "load", &token).await;
    let mut stored = std::collections::HashSet::new();
    let mut before = None::<i64>;
    loop {
        let page = live
            .request("chat.history", json!({"before": before, "limit": 200}))
            .await;
        let messages = page["result"]["messages"].as_array().unwrap().clone();
        if messages.is_empty() {
            break;
        }
        before = messages[0]["id"].as_i64();
        stored.extend(messages.iter().filter_map(|message| message["id"].as_i64()));
    }
    let lost: Vec<_> = acked_chat
        .iter()
        .filter(|id| !stored.contains(id))
        .collect();
    assert!(lost.is_empty(), "acknowledged chat messages lost: {lost:?}");
    let status = server.terminate().await;
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_with_1001_and_flushes() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let (token, _) = seed(&db.url).await;
    let server = ServerProcess::start(&db.url).await;
    let base = format!("ws://{}", server.addr);
    let mut doc = YjsClient::connect(&base, "load", "d", &token).await;
    doc.write_acked("kept", "yes").await;
    let mut live = LiveClient::connect(&base, "load", &token).await;
    let status = server.terminate().await;
    assert!(status.success(), "clean exit after SIGTERM: {status:?}");
    assert_eq!(doc.closed().await, Some(1001));
    assert_eq!(live.closed().await, Some(1001));
    let server = ServerProcess::start(&db.url).await;
    let doc = YjsClient::connect(&format!("ws://{}", server.addr), "load", "d", &token).await;
    assert_eq!(doc.value("kept").as_deref(), Some("yes"));
    server.terminate().await;
}
