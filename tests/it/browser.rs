//! The browser client end to end: the real `crowdroom` binary, a provisioned
//! room (owner, moderator, two core members, two workers, a spans project
//! and tasks), and `node web/e2e/run.mjs` driving real Chromium through
//! playwright-core (sign-in, co-editing, chat, offline resync, the queue,
//! moderation, kick). Needs /usr/bin/chromium and `npm ci --prefix web`;
//! without them it fails under CI and prints a SKIPPED banner elsewhere.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crowdroom_tests::http;
use crowdroom_tests::process::{ServerProcess, binary};
use crowdroom_tests::{Backend, TestDb};
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
/// The whole browser run is meant to take under a minute; this is the hard stop.
const RUN_TIMEOUT: Duration = Duration::from_secs(180);
const ROOM: &str = "e2e";

fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../web")
}

/// Why the browser test cannot run here, if it cannot.
fn missing_prerequisite() -> Option<String> {
    if !Path::new(CHROMIUM).exists() {
        return Some(format!("{CHROMIUM} is missing (apt-get install chromium)"));
    }
    if !web_dir().join("node_modules/playwright-core").exists() {
        return Some("web/node_modules is missing (npm ci --prefix web)".to_owned());
    }
    let node = std::process::Command::new("node").arg("--version").output();
    if !node.is_ok_and(|output| output.status.success()) {
        return Some("node is not installed".to_owned());
    }
    None
}

/// `<target dir>/e2e-artifacts`: the target dir from CARGO_TARGET_DIR, else
/// from this test binary's path (target/<profile>/deps/it-<hash>).
fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.parent()?.to_path_buf())
        })
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("e2e-artifacts")
}

async fn cli(database: &str, args: &[&str]) -> String {
    let output = tokio::process::Command::new(binary())
        .arg("--database")
        .arg(database)
        .args(args)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "crowdroom {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Issues a member's token through the REST API.
async fn invite(base: &str, owner: &str, user: &str, role: &str, name: &str) -> String {
    let response = http::request(
        "POST",
        &format!("{base}/api/v1/rooms/{ROOM}/tokens"),
        Some(owner),
        Some(json!({ "user": user, "role": role, "display_name": name })),
    )
    .await;
    assert_eq!(response.status, 201, "{}", response.body);
    response.json()["token"].as_str().unwrap().to_owned()
}

const TEXTS: [&str; 6] = [
    "Ada Lovelace met Charles Babbage in London to discuss the Analytical Engine.",
    "Grace Hopper worked for the US Navy and Remington Rand in Philadelphia.",
    "Alan Turing studied at King's College, Cambridge, before joining Bletchley Park.",
    "Katherine Johnson calculated trajectories for NASA at Langley in Virginia.",
    "Tim Berners-Lee wrote the first web browser at CERN near Geneva.",
    "Margaret Hamilton led the software team at MIT for the Apollo missions.",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_client_end_to_end() {
    if let Some(missing) = missing_prerequisite() {
        let message = format!("{missing}; the browser test needs Chromium and web/node_modules");
        if std::env::var_os("CI").is_some() {
            panic!("{message}");
        }
        eprintln!("\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
        eprintln!("!!! SKIPPED browser test: {message}");
        eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n");
        return;
    }
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let database = db.url.as_str();
    cli(database, &["migrate"]).await;
    cli(
        database,
        &["room", "create", ROOM, "--name", "E2E newsroom"],
    )
    .await;
    cli(
        database,
        &[
            "user",
            "create",
            "olivia",
            "--display-name",
            "Olivia (owner)",
        ],
    )
    .await;
    let issued = cli(
        database,
        &[
            "token", "issue", "--user", "olivia", "--room", ROOM, "--role", "owner",
        ],
    )
    .await;
    let owner = issued.lines().last().unwrap().trim().to_owned();
    let issued = cli(database, &["operator", "issue", "--user", "opal"]).await;
    let operator = issued.lines().last().unwrap().trim().to_owned();

    let server = ServerProcess::start(database).await;
    let base = format!("http://{}", server.addr);
    let mut tokens = json!({ "owner": owner, "operator": operator });
    for (key, user, role, name) in [
        ("moderator", "mo", "moderator", "Mo (moderator)"),
        ("core1", "cora", "core", "Cora (core team)"),
        ("core2", "cody", "core", "Cody (core team)"),
        ("worker1", "wes", "worker", "Wes (worker)"),
        ("worker2", "wanda", "worker", "Wanda (worker)"),
    ] {
        tokens[key] = Value::String(invite(&base, &owner, user, role, name).await);
    }
    let project = json!({
        "instructions": "Mark every person (PER), organisation (ORG) and place (LOC).",
        "answer_schema": { "kind": "spans", "labels": ["PER", "ORG", "LOC"] },
        "overlap_min": 2, "overlap_max": 3, "min_confidence": 0.5,
        "gold_rate": 0.0, "onboarding_gold": 0, "reservation_ttl_seconds": 300,
        "pay_per_answer": 50000, "target_hourly_rate": 15000000, "min_lead_time_ms": 0
    });
    let url = format!("{base}/api/v1/rooms/{ROOM}/project");
    let response = http::request("PUT", &url, Some(&owner), Some(project)).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let tasks: Vec<Value> = TEXTS
        .iter()
        .enumerate()
        .map(|(index, text)| json!({ "id": format!("t{}", index + 1), "data": { "text": text } }))
        .collect();
    let url = format!("{base}/api/v1/rooms/{ROOM}/tasks");
    let response = http::request("POST", &url, Some(&owner), Some(Value::Array(tasks))).await;
    assert_eq!(response.json()["inserted"], 6, "{}", response.body);

    let artifacts = artifacts_dir();
    std::fs::create_dir_all(&artifacts).unwrap();
    let started = Instant::now();
    let output = tokio::time::timeout(
        RUN_TIMEOUT,
        tokio::process::Command::new("node")
            .arg("e2e/run.mjs")
            .current_dir(web_dir())
            .env("E2E_SERVER", &base)
            .env("E2E_ROOM", ROOM)
            .env("E2E_TOKENS", tokens.to_string())
            .env("E2E_ARTIFACTS", &artifacts)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the browser run timed out")
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    println!(
        "browser run: {:.1} s; screenshots in {}",
        started.elapsed().as_secs_f64(),
        artifacts.display()
    );
    assert!(
        output.status.success(),
        "web/e2e/run.mjs failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    server.terminate().await;
}
