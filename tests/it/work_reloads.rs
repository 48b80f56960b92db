//! The room's replies around its work state's reloads and a grant's
//! commit: every request gets its one reply, and a reply is sent only once
//! what it acknowledges is durable.

use crowdroom::auth::Role;
use crowdroom_tests::client::LiveClient;
use crowdroom_tests::{Backend, TestServer, both_stores, decided, http};
use serde_json::json;

use crate::work::{project, setup};

both_stores! {
    requests_are_answered_across_reloads => requests_across_reloads;
}

/// A room loads its work state again after every change made outside it
/// (here a member's skills, set over REST again and again). Writes its
/// workers queued before a load commit while it runs: every request still
/// gets its one reply, and every answer acknowledged is stored.
async fn requests_across_reloads(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let owner = setup(&server, "r1", 2, 300, 40).await;
    let base = server.ws_url("");
    let skills = server.http_url("/api/v1/rooms/r1/members/ivy/skills");
    server.token("r1", "ivy", Role::Worker).await;
    let mut workers = Vec::new();
    for i in 0..6 {
        let token = server.token("r1", &format!("w{i}"), Role::Worker).await;
        workers.push(LiveClient::connect(&base, "r1", &token).await);
    }
    let reloads = async {
        for round in 0..30 {
            let body = json!({ "skills": [format!("s{round}")] });
            let put = http::request("PUT", &skills, Some(&owner), Some(body)).await;
            assert_eq!(put.status, 200, "{}", put.body);
        }
    };
    let work = futures_util::future::join_all(workers.iter_mut().map(|client| async move {
        let mut acked = 0;
        for _ in 0..5 {
            let granted = client.request("task.request", json!({})).await;
            assert_eq!(granted["ok"], true, "{granted}");
            let Some(task) = granted["result"]["task"]["id"].as_i64() else {
                break;
            };
            let reply = client
                .request("task.submit", json!({"task_id": task, "answer": "pos"}))
                .await;
            assert_eq!(reply["ok"], true, "{reply}");
            acked += 1;
        }
        acked
    }));
    let ((), acked) = tokio::join!(reloads, work);
    let acked: i64 = acked.iter().sum();
    let stored: i64 = decided(&server, "r1", &owner)
        .await
        .iter()
        .filter_map(|task| task["answered"].as_i64())
        .sum();
    assert_eq!(stored, acked);
    server.stop().await;
}

/// Asking again before the first grant is durable: the second request is
/// answered with the same reservation, and only after the first (a reply
/// is an acknowledgement, so it waits for the grant's commit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_twice_is_answered_once_the_grant_is_durable() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let owner = setup(&server, "r1", 1, 300, 40).await;
    // Forty quick answers must not pause the worker.
    let mut config = project(1, 300);
    config["min_lead_time_ms"] = json!(0);
    let url = server.http_url("/api/v1/rooms/r1/project");
    let put = http::request("PUT", &url, Some(&owner), Some(config)).await;
    assert_eq!(put.status, 200, "{}", put.body);
    let token = server.token("r1", "wes", Role::Worker).await;
    let mut wes = LiveClient::connect(&server.ws_url(""), "r1", &token).await;
    for round in 0..15 {
        // Under the connection's request rate.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let (first, second) = (format!("first-{round}"), format!("second-{round}"));
        for id in [&first, &second] {
            let request = json!({"type": "task.request", "id": id});
            wes.send_text(&request.to_string()).await;
        }
        let granted = wes.reply_to(json!(first)).await;
        assert!(
            !wes.pending_frames()
                .iter()
                .any(|frame| frame["type"] == "reply" && frame["id"] == json!(second)),
            "the second reply came before the grant was acknowledged"
        );
        let again = wes.reply_to(json!(second)).await;
        let task = granted["result"]["task"]["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("round {round}: {granted}"));
        assert_eq!(again["result"]["task"]["id"], json!(task), "{again}");
        assert_eq!(
            again["result"]["reservation"], granted["result"]["reservation"],
            "{again}"
        );
        let done = wes
            .request("task.submit", json!({"task_id": task, "answer": "pos"}))
            .await;
        assert_eq!(done["ok"], true, "{done}");
    }
    server.stop().await;
}
