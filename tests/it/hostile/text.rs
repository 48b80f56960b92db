//! Text a member writes with control characters: PostgreSQL cannot store
//! U+0000, and one such chat message once failed its whole batch (every
//! write in it was retried one by one). Refused at the boundary instead.

use crowdroom::auth::Role;
use crowdroom_tests::client::LiveClient;
use crowdroom_tests::{Backend, TestServer, both_stores};
use serde_json::json;

both_stores! {
    control_characters_are_refused_before_the_store => control_characters_are_refused;
}

async fn control_characters_are_refused(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let token = server.token("r1", "mona", Role::Moderator).await;
    let mut mona = LiveClient::connect(&server.ws_url(""), "r1", &token).await;
    for (kind, fields) in [
        ("chat.send", json!({"body": "nul \u{0} here"})),
        ("chat.send", json!({"body": "bell \u{7}"})),
        ("presence.set", json!({"status": "a\u{0}"})),
        ("mod.announce", json!({"body": "x\u{0}"})),
    ] {
        let reply = mona.request(kind, fields.clone()).await;
        assert_eq!(
            reply["error"]["code"], "bad_request",
            "{kind} {fields}: {reply}"
        );
    }
    // Line breaks and tabs are text.
    let reply = mona
        .request("chat.send", json!({"body": "two\nlines\tand a tab"}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(server.metric("crowdroom_commit_failures_total").await, 0.0);
}
