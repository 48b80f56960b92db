//! The live queue's counts: moderators get every change (coalesced per
//! tick), everyone else at most once a second, and both end on the same
//! counts once the queue stops moving.

use std::time::{Duration, Instant};

use crowdroom::auth::Role;
use crowdroom_tests::client::LiveClient;
use crowdroom_tests::{Backend, TestServer};
use serde_json::{Value, json};

use crate::work::setup;

/// Takes every `queue.counts` the client has received until one carries
/// `expected` (failing after `patience`); returns them all.
async fn counts_until(client: &mut LiveClient, expected: &Value, patience: Duration) -> Vec<Value> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let event = tokio::time::timeout_at(deadline, client.event("queue.counts"))
            .await
            .unwrap_or_else(|_| panic!("counts never reached {expected}; saw {seen:?}"));
        let data = event["data"].clone();
        seen.push(data.clone());
        if &data == expected {
            return seen;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderators_get_every_change_and_workers_once_a_second() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let base = server.ws_url("");
    let owner = setup(&server, "r1", 1, 300, 20).await;
    let wes = server.token("r1", "wes", Role::Worker).await;
    let mo = server.token("r1", "mo", Role::Moderator).await;
    let started = Instant::now();
    let mut watcher = LiveClient::connect(&base, "r1", &wes).await;
    let mut moderator = LiveClient::connect(&base, "r1", &mo).await;
    // Three workers (four fast answers each stay under the fast-answer
    // rule's five).
    let mut workers = Vec::new();
    for name in ["ann", "bea", "cal"] {
        let token = server.token("r1", name, Role::Worker).await;
        workers.push(LiveClient::connect(&base, "r1", &token).await);
    }
    // Twelve answers over about two seconds: each changes the queue, and a
    // push every 250 ms would reach the watcher about eight times.
    for round in 0..12 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let ann = &mut workers[round % 3];
        let granted = ann.request("task.request", json!({})).await;
        let task = granted["result"]["task"]["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("{granted}"));
        let done = ann
            .request("task.submit", json!({"task_id": task, "answer": "pos"}))
            .await;
        assert_eq!(done["ok"], true, "{done}");
    }
    // The queue stops moving once the last decisions are in.
    crowdroom_tests::decided(&server, "r1", &owner).await;
    let expected = watcher.request("queue.get", json!({})).await["result"]["counts"].clone();
    assert_eq!(expected["answers"], 12, "{expected}");
    let patience = Duration::from_secs(10);
    let to_watcher = counts_until(&mut watcher, &expected, patience).await;
    let to_moderator = counts_until(&mut moderator, &expected, patience).await;
    let seconds = started.elapsed().as_secs_f64();
    // Everyone else: at most one push a second (and one at the start).
    assert!(
        to_watcher.len() as f64 <= seconds.floor() + 2.0,
        "{} pushes in {seconds:.1} s: {to_watcher:?}",
        to_watcher.len()
    );
    // A push to the others carries counts the moderators already had, so
    // they never get fewer.
    assert!(
        to_moderator.len() >= to_watcher.len(),
        "moderator {to_moderator:?}, worker {to_watcher:?}"
    );
    server.stop().await;
}
