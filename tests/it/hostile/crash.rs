//! Crash-only: a server whose committer can no longer commit anything
//! says so on `/healthz` and exits non-zero for its supervisor to restart
//! it, instead of refusing every write forever behind a 200 `ok`.

use std::time::Duration;

use crowdroom::auth::Role;
use crowdroom::ids::{RoomId, UserId};
use crowdroom_tests::client::LiveClient;
use crowdroom_tests::http;
use crowdroom_tests::process::ServerProcess;
use serde_json::json;

/// Longer than the committer's 30 s of failing batches, plus the drain.
const GIVE_UP: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committer_that_cannot_commit_fails_health_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("crowdroom.db").display());
    let mut server = ServerProcess::start(&url).await;
    let store = crowdroom::Store::open(&url).await.unwrap();
    let room = RoomId::parse("r1").unwrap();
    store.create_room(&room, "r1").await.unwrap();
    let user = UserId::parse("ann").unwrap();
    store.ensure_user(&user, "Ann").await.unwrap();
    let token = store
        .issue_token(&room, &user, Role::Worker, None)
        .await
        .unwrap()
        .1;
    let base = format!("ws://{}", server.addr);
    let mut ann = LiveClient::connect(&base, "r1", &token).await;
    let reply = ann.request("chat.send", json!({"body": "before"})).await;
    assert_eq!(reply["ok"], true, "{reply}");

    // The database loses what every write needs: from now on each batch fails.
    let mut conn = {
        use sqlx::Connection;
        sqlx::SqliteConnection::connect(&url).await.unwrap()
    };
    sqlx::query("DROP TABLE chat_messages")
        .execute(&mut conn)
        .await
        .unwrap();
    let health_url = format!("http://{}/healthz", server.addr);
    assert_eq!(http::get(&health_url, None).await.status, 200);

    let deadline = tokio::time::Instant::now() + GIVE_UP;
    let mut unhealthy = None;
    let status = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server neither failed its health check nor exited"
        );
        if let Ok(Some(status)) = server.child.try_wait() {
            break status;
        }
        // Keep writing: every write fails, which is what the committer counts.
        if let Some(reply) = ann.try_request("chat.send", json!({"body": "lost"})).await {
            assert_eq!(reply["ok"], false, "{reply}");
        }
        if unhealthy.is_none()
            && let Some((503, body)) = try_get(&health_url).await
        {
            unhealthy = Some(body);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(!status.success(), "exit status {status}");
    let body = unhealthy.expect("/healthz answered 503 before the exit");
    assert!(body.contains("failed for"), "{body}");
}

/// A GET's status and body, or None when the server does not answer (it
/// may have exited).
async fn try_get(url: &str) -> Option<(u16, String)> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        let mut response = agent.get(&url).call().ok()?;
        let body = response.body_mut().read_to_string().unwrap_or_default();
        Some((response.status().as_u16(), body))
    })
    .await
    .ok()
    .flatten()
}
