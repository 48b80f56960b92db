//! The stock npm clients (yjs, y-websocket, ws) against the real server.
//! Needs node and `npm ci` in tests/node (tests/run does both).

use std::path::PathBuf;
use std::time::Duration;

use crowdroom::auth::Role;
use crowdroom_tests::{Backend, TestServer};
use serde_json::Value;

fn node_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node");
    assert!(
        dir.join("node_modules/y-websocket").exists(),
        "tests/node/node_modules is missing: run `npm ci --prefix tests/node` (tests/run does it)"
    );
    dir
}

/// Runs a script and returns its JSON result.
async fn run_node(script: &str, args: &[String]) -> Value {
    let dir = node_dir();
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("node")
            .arg(dir.join(script))
            .args(args)
            .current_dir(&dir)
            .output(),
    )
    .await
    .expect("node script timed out")
    .expect("node runs (is node installed?)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed:\n{stderr}\n{stdout}"
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|error| panic!("{script} printed no JSON ({error}): {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_stock_clients_converge_and_see_awareness() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let mut args = vec![server.ws_url("/yjs/r1"), "shared-notes".to_owned()];
    for user in ["ann", "bob", "cat"] {
        args.push(server.token("r1", user, Role::Worker).await);
    }
    let result = run_node("converge.mjs", &args).await;
    let text = result["text"].as_str().unwrap();
    assert_eq!(text.len(), 29, "{result}");
    // Every client's marker and all 20 interleaved letters, each exactly once.
    let mut chars: Vec<char> = text.chars().collect();
    chars.sort_unstable();
    let mut expected: Vec<char> = "<0><1><2>"
        .chars()
        .chain((0..20u8).map(|i| char::from(b'a' + i)))
        .collect();
    expected.sort_unstable();
    assert_eq!(chars, expected, "{text}");
    assert_eq!(
        result["labels"],
        serde_json::json!({"by-0": 0, "by-1": 1, "by-2": 2})
    );
    assert_eq!(
        result["names"][0],
        serde_json::json!(["client-0", "client-1", "client-2"])
    );
    assert_eq!(result["lateText"], result["text"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_viewer_write_is_refused() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let writer = server.token("r1", "ann", Role::Worker).await;
    let viewer = server.token("r1", "vic", Role::Viewer).await;
    let args = vec![server.ws_url("/yjs/r1"), "notes".to_owned(), writer, viewer];
    let result = run_node("viewer.mjs", &args).await;
    assert_eq!(result["writerText"], "hello!", "{result}");
    assert_eq!(result["freshText"], "hello!", "{result}");
    let denied = result["denied"].as_array().unwrap();
    assert!(
        denied
            .iter()
            .any(|line| line.as_str().unwrap().contains("read-only")),
        "{result}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_client_stops_after_revocation() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let owner = server.token("r1", "olivia", Role::Owner).await;
    let token = server.token("r1", "ann", Role::Worker).await;
    let id = server.store.token_id_of_secret(&token).await.unwrap();
    let args = vec![
        server.ws_url("/yjs/r1"),
        server.http_url(""),
        "r1".to_owned(),
        "notes".to_owned(),
        token,
        id.0.into(),
        owner,
    ];
    let result = run_node("revoked.mjs", &args).await;
    assert_eq!(result["code"], 4403, "{result}");
    assert_eq!(result["reason"], "token revoked", "{result}");
    assert_eq!(result["reconnecting"], false, "{result}");
    server.stop().await;
}
