//! Documents over the y-websocket protocol: sync, echo-as-acknowledgement,
//! relay, restart and idle reload, on both stores.

use crowdroom::auth::Role;
use crowdroom_crdt::Message;
use crowdroom_tests::client::{Incoming, YjsClient};
use crowdroom_tests::{Backend, TestServer, both_stores, eventually, fast_settings};

both_stores! {
    relays_and_acknowledges => relays_and_acknowledges;
    restart_reloads_every_document => restart_reloads_every_document;
    idle_document_unloads_and_reloads => idle_document_unloads_and_reloads;
}

async fn relays_and_acknowledges(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let base = server.ws_url("");
    let token_a = server.token("r1", "ann", Role::Worker).await;
    let token_b = server.token("r1", "bob", Role::Core).await;
    let mut ann = YjsClient::connect(&base, "r1", "d1", &token_a).await;
    let mut bob = YjsClient::connect(&base, "r1", "d1", &token_b).await;
    // The sender gets its update back once committed; the peer gets it too.
    let update = ann.set("k", "v1");
    ann.send(&Message::Update(&update)).await;
    ann.wait_echo(&update).await;
    bob.wait_value("k", "v1").await;
    // Acknowledged means stored.
    let room = crowdroom::ids::RoomId::parse("r1").unwrap();
    let doc = crowdroom::ids::DocName::parse("d1").unwrap();
    let stored = server.store.load_doc(&room, &doc).await.unwrap();
    assert!(
        stored.updates.iter().any(|stored| stored == &update),
        "acknowledged update is in the store"
    );
    // Bob's edit reaches Ann.
    bob.write_acked("k2", "from bob").await;
    ann.wait_value("k2", "from bob").await;
    server.stop().await;
}

async fn restart_reloads_every_document(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let base = server.ws_url("");
    let token = server.token("r1", "ann", Role::Core).await;
    for doc in ["a", "b", "c"] {
        let mut client = YjsClient::connect(&base, "r1", doc, &token).await;
        for i in 0..5 {
            client
                .write_acked(&format!("{doc}{i}"), &format!("value {i}"))
                .await;
        }
    }
    let db = server.stop().await;
    let server = TestServer::start_on(db, fast_settings()).await;
    let base = server.ws_url("");
    for doc in ["a", "b", "c"] {
        let client = YjsClient::connect(&base, "r1", doc, &token).await;
        let mut keys = client.keys();
        keys.sort();
        let expected: Vec<String> = (0..5).map(|i| format!("{doc}{i}")).collect();
        assert_eq!(keys, expected, "document {doc} reloaded");
    }
    server.stop().await;
}

async fn idle_document_unloads_and_reloads(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let base = server.ws_url("");
    let token = server.token("r1", "ann", Role::Core).await;
    let mut client = YjsClient::connect(&base, "r1", "idle", &token).await;
    client.write_acked("before", "unload").await;
    assert_eq!(server.metric("crowdroom_docs_loaded").await, 1.0);
    drop(client);
    eventually("the idle document and room to unload", || async {
        server.metric("crowdroom_docs_loaded").await == 0.0
            && server.metric("crowdroom_rooms_loaded").await == 0.0
    })
    .await;
    // The checkpoint on unload compacted the log into a snapshot.
    let room = crowdroom::ids::RoomId::parse("r1").unwrap();
    let doc = crowdroom::ids::DocName::parse("idle").unwrap();
    assert_eq!(server.store.pending_updates(&room, &doc).await.unwrap(), 0);
    let mut client = YjsClient::connect(&base, "r1", "idle", &token).await;
    assert_eq!(client.value("before").as_deref(), Some("unload"));
    client.write_acked("after", "reload").await;
    server.stop().await;
}

#[tokio::test]
async fn viewer_writes_are_refused_with_permission_denied() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let base = server.ws_url("");
    let writer_token = server.token("r1", "ann", Role::Worker).await;
    let viewer_token = server.token("r1", "vic", Role::Viewer).await;
    let mut writer = YjsClient::connect(&base, "r1", "d", &writer_token).await;
    writer.write_acked("k", "ok").await;
    let mut viewer = YjsClient::open(&base, "r1", "d", &viewer_token)
        .await
        .unwrap();
    viewer.sync().await;
    assert_eq!(viewer.value("k").as_deref(), Some("ok"), "viewers read");
    let update = viewer.set("k", "evil");
    viewer.send(&Message::Update(&update)).await;
    loop {
        match viewer.next().await {
            Incoming::PermissionDenied(reason) => {
                assert!(reason.contains("read-only"), "{reason}");
                break;
            }
            Incoming::Closed(code) => panic!("closed instead of denied: {code:?}"),
            _ => {}
        }
    }
    writer.write_acked("k2", "later").await;
    assert_eq!(
        writer.value("k").as_deref(),
        Some("ok"),
        "the viewer's write did not spread"
    );
    server.stop().await;
}

#[tokio::test]
async fn viewers_cannot_create_documents() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let viewer_token = server.token("r1", "vic", Role::Viewer).await;
    let refused = YjsClient::open(&server.ws_url(""), "r1", "new-doc", &viewer_token)
        .await
        .err();
    assert_eq!(refused, Some(404));
    server.stop().await;
}
