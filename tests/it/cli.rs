//! The command line as scripts use it: the binary, its exit codes and output.

use crowdroom_tests::client::{LiveClient, YjsClient};
use crowdroom_tests::process::{ServerProcess, binary};
use crowdroom_tests::{Backend, TestDb};
use serde_json::json;

/// Runs `crowdroom --database URL args...`; returns (success, stdout, stderr).
async fn crowdroom(database: &str, args: &[&str]) -> (bool, String, String) {
    let output = tokio::process::Command::new(binary())
        .arg("--database")
        .arg(database)
        .args(args)
        .output()
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_make_a_working_token() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let url = db.url.as_str();
    assert!(crowdroom(url, &["migrate"]).await.0);
    assert!(
        crowdroom(url, &["room", "create", "acme", "--name", "ACME"])
            .await
            .0
    );
    let (ok, _, stderr) = crowdroom(url, &["room", "create", "acme"]).await;
    assert!(!ok && stderr.contains("already exists"), "{stderr}");
    assert!(
        crowdroom(url, &["user", "create", "ann", "--display-name", "Ann Lee"])
            .await
            .0
    );
    let (ok, _, stderr) = crowdroom(
        url,
        &[
            "token", "issue", "--user", "ann", "--room", "acme", "--role", "wizard",
        ],
    )
    .await;
    assert!(!ok && stderr.contains("unknown role"), "{stderr}");
    let (ok, stdout, stderr) = crowdroom(
        url,
        &[
            "token", "issue", "--user", "ann", "--room", "acme", "--role", "core", "--ttl", "1h",
        ],
    )
    .await;
    assert!(ok, "{stderr}");
    let token = stdout.lines().last().unwrap().trim().to_owned();
    assert!(
        token.starts_with("crt_"),
        "the token is alone on the last line: {stdout}"
    );

    let server = ServerProcess::start(url).await;
    let base = format!("ws://{}", server.addr);
    let mut live = LiveClient::connect(&base, "acme", &token).await;
    assert_eq!(live.hello["you"]["display_name"], "Ann Lee");
    assert_eq!(live.hello["you"]["role"], "core");
    assert!(live.hello["you"]["token_expires_at"].is_i64());
    // Revoked from the command line while connected: the socket closes.
    let (ok, _, stderr) = crowdroom(url, &["token", "revoke", "--token", &token]).await;
    assert!(ok, "{stderr}");
    assert_eq!(live.closed().await, Some(4403));
    server.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_room_is_ready_to_open() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let mut child = tokio::process::Command::new(binary())
        .args([
            "serve",
            "--demo",
            "--addr",
            "127.0.0.1:0",
            "--database",
            &db.url,
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let mut demo = Vec::new();
    let mut operator = None;
    let addr = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("output ended before listening");
        if let Some(addr) = line.strip_prefix("crowdroom listening on http://") {
            break addr.to_owned();
        }
        if let Some(link) = line.strip_prefix("server operator") {
            operator = link.rsplit('/').next().map(str::to_owned);
        }
        if line.starts_with("demo ") {
            demo.push(line);
        }
    };
    let roles: Vec<&str> = demo
        .iter()
        .map(|line| line.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(
        roles,
        ["owner", "moderator", "core", "worker", "worker", "worker"]
    );
    // Each printed invite link carries a working token.
    let token_of = |line: &str| {
        let url = line.split_whitespace().last().unwrap().to_owned();
        assert!(
            url.starts_with(&format!("http://{addr}/#/join/crt_")),
            "{url}"
        );
        url.rsplit('/').next().unwrap().to_owned()
    };
    for line in &demo {
        let token = token_of(line);
        let token = token.as_str();
        let base = format!("ws://{addr}");
        let mut live = LiveClient::connect(&base, "demo", token).await;
        assert_eq!(live.request("ping", json!({})).await["ok"], true);
    }
    let worker = token_of(&demo[3]);
    YjsClient::connect(&format!("ws://{addr}"), "demo", "notes", &worker)
        .await
        .write_acked("hello", "demo")
        .await;
    // The operator link's token opens the operator's list of rooms.
    let operator = operator.expect("the demo prints a server operator's link");
    assert!(operator.starts_with("cop_"), "{operator}");
    let rooms = crowdroom_tests::http::get(
        &format!("http://{addr}/api/v1/operator/rooms"),
        Some(&operator),
    )
    .await;
    assert_eq!(rooms.status, 200, "{}", rooms.body);
    assert_eq!(rooms.json()["rooms"][0]["room"], "demo", "{}", rooms.body);
    // The web UI is served, and the demo project has work waiting.
    let page = crowdroom_tests::http::get(&format!("http://{addr}/"), None).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.to_lowercase().contains("<!doctype html"),
        "{}",
        page.body
    );
    let mut live = LiveClient::connect(&format!("ws://{addr}"), "demo", &worker).await;
    let granted = live.request("task.request", json!({})).await;
    assert_eq!(granted["ok"], true, "{granted}");
    assert!(
        granted["result"]["task"]["data"]["text"].is_string(),
        "{granted}"
    );
    child.kill().await.unwrap();
}
