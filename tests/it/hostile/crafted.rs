//! Crafted y-websocket updates under another client's id, which yrs would
//! hold one way in memory and write another way in the snapshot: refused,
//! and a restart reloads exactly what everyone saw.

use std::time::Duration;

use crowdroom::auth::Role;
use crowdroom_crdt::Message;
use crowdroom_crdt::encoding::write_var_u64;
use crowdroom_tests::client::YjsClient;
use crowdroom_tests::{Backend, TestServer, both_stores, fast_settings};

both_stores! {
    a_held_item_naming_a_missing_parent_is_refused => a_held_item_naming_a_missing_parent_is_refused;
}

/// How long a refused update may take to close its connection.
const CLOSE_WITHIN: Duration = Duration::from_secs(10);

/// An update with one deleted block of `client` at clock 0, 100 long, whose
/// parent is item (109, 97), which the document does not have.
fn held_block_with_missing_parent(client: u64) -> Vec<u8> {
    let mut update = vec![1, 1];
    write_var_u64(&mut update, client);
    update.extend_from_slice(&[0, 1, 0, 109, 97, 100, 0]);
    update
}

async fn a_held_item_naming_a_missing_parent_is_refused(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let base = server.ws_url("");
    let token = server.token("r1", "ann", Role::Worker).await;
    let mut victim = YjsClient::connect(&base, "r1", "d", &token).await;
    for key in ["k1", "k2", "k3"] {
        victim.write_acked(key, "before").await;
    }
    // Before the fix, this stayed pending live but integrated on reload,
    // taking the victim's clocks 3 to 99.
    let crafted = held_block_with_missing_parent(victim.doc.client_id().get());
    let mut hostile = YjsClient::connect(&base, "r1", "d", &token).await;
    hostile.send(&Message::Update(&crafted)).await;
    let closed = tokio::time::timeout(CLOSE_WITHIN, hostile.closed()).await;
    assert_eq!(closed, Ok(Some(1007)), "the crafted update was not refused");
    victim.write_acked("k4", "after").await;
    let seen = victim.snapshot_json();
    drop(victim);
    let db = server.stop().await;
    let server = TestServer::start_on(db, fast_settings()).await;
    let base = server.ws_url("");
    let reloaded = YjsClient::connect(&base, "r1", "d", &token).await;
    assert_eq!(reloaded.snapshot_json(), seen);
    assert_eq!(reloaded.value("k4").as_deref(), Some("after"));
    server.stop().await;
}
