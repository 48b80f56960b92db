//! Matching beyond a single grant: batch assignment for a core team with
//! known capacity (planned from the room's memory, granted by the room),
//! and interests ordering tasks of equal need.

use crowdroom::auth::Role;
use crowdroom_tests::client::LiveClient;
use crowdroom_tests::{Backend, TestServer, http};
use serde_json::json;

use super::work::{answer_next, setup};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_assignment_fills_the_core_team_capacity() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let owner = setup(&server, "r1", 2, 300, 5).await;
    let cora = server.token("r1", "cora", Role::Core).await;
    let carl = server.token("r1", "carl", Role::Core).await;
    let mut cora_live = LiveClient::connect(&server.ws_url(""), "r1", &cora).await;
    // Cora already answered one task: she must not get it again.
    let (done, _) = answer_next(&mut cora_live, "pos").await;
    let body =
        json!({"members": [{"user": "cora", "capacity": 3}, {"user": "carl", "capacity": 4}]});
    let response = http::request(
        "POST",
        &server.http_url("/api/v1/rooms/r1/assign"),
        Some(&owner),
        Some(body),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    let assigned = response.json()["assigned"].as_array().unwrap().clone();
    // 5 tasks x 2 slots = 10, one slot used by Cora's answer: 9 free; capacity 7.
    assert_eq!(assigned.len(), 7, "{assigned:?}");
    let mine: Vec<_> = assigned.iter().filter(|a| a["user"] == "cora").collect();
    assert_eq!(mine.len(), 3);
    let listed = http::get(
        &server.http_url("/api/v1/rooms/r1/tasks?limit=10"),
        Some(&owner),
    )
    .await
    .json();
    let done_id = listed["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|task| task["external_id"] == done.as_str())
        .unwrap()["id"]
        .clone();
    assert!(
        mine.iter().all(|a| a["task_id"] != done_id),
        "never a task she answered"
    );
    assert!(cora_live.event("task.assigned").await["data"]["reservation"]["task_id"].is_i64());
    // Per task, live reservations plus answers never exceed the overlap.
    for task in listed["tasks"].as_array().unwrap() {
        assert!(
            task["reserved"].as_i64().unwrap() + task["answered"].as_i64().unwrap()
                <= task["overlap_target"].as_i64().unwrap()
        );
    }
    // The assigned work is what they get when they ask.
    let mut carl_live = LiveClient::connect(&server.ws_url(""), "r1", &carl).await;
    let granted = carl_live.request("task.request", json!({})).await;
    let task = granted["result"]["task"]["id"].clone();
    assert!(
        assigned
            .iter()
            .any(|a| a["user"] == "carl" && a["task_id"] == task),
        "{granted}"
    );
    let workers_only = http::request(
        "POST",
        &server.http_url("/api/v1/rooms/r1/assign"),
        Some(&carl),
        Some(json!({"members": []})),
    )
    .await;
    assert_eq!(workers_only.status, 403);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interests_order_tasks_of_equal_need() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let owner = setup(&server, "r1", 2, 300, 0).await;
    let tasks = r#"[{"id":"plain","data":{}},{"id":"contract","data":{},"tags":["legal"]}]"#;
    http::post_raw(&server.http_url("/api/v1/rooms/r1/tasks"), &owner, tasks).await;
    let token = server.token("r1", "lex", Role::Worker).await;
    let set = http::request(
        "PUT",
        &server.http_url("/api/v1/rooms/r1/members/lex/interests"),
        Some(&token),
        Some(json!({"interests": ["legal"]})),
    )
    .await;
    assert_eq!(set.status, 200, "{}", set.body);
    let mut lex = LiveClient::connect(&server.ws_url(""), "r1", &token).await;
    let granted = lex.request("task.request", json!({})).await;
    assert_eq!(
        granted["result"]["task"]["external_id"], "contract",
        "{granted}"
    );
    // Without the interest, the queue's order (oldest first) decides.
    let other = server.token("r1", "pat", Role::Worker).await;
    let mut pat = LiveClient::connect(&server.ws_url(""), "r1", &other).await;
    assert_eq!(
        pat.request("task.request", json!({})).await["result"]["task"]["external_id"],
        "plain"
    );
    assert_eq!(set.json()["interests"], json!(["legal"]));
    let read = http::get(
        &server.http_url("/api/v1/rooms/r1/members/lex/interests"),
        Some(&owner),
    )
    .await
    .json();
    assert_eq!(read["interests"], json!(["legal"]));
    // Skills go the same way, set by moderators only.
    let skills_url = server.http_url("/api/v1/rooms/r1/members/lex/skills");
    assert_eq!(
        http::request(
            "PUT",
            &skills_url,
            Some(&token),
            Some(json!({"skills": ["de"]}))
        )
        .await
        .status,
        403
    );
    let skills = http::request(
        "PUT",
        &skills_url,
        Some(&owner),
        Some(json!({"skills": ["de", "fr"]})),
    )
    .await
    .json();
    assert_eq!(skills["skills"], json!(["de", "fr"]));
    assert_eq!(
        http::get(&skills_url, Some(&token)).await.json()["skills"],
        json!(["de", "fr"])
    );
    // Others cannot set someone's interests.
    let refused = http::request(
        "PUT",
        &server.http_url("/api/v1/rooms/r1/members/lex/interests"),
        Some(&other),
        Some(json!({"interests": []})),
    )
    .await;
    assert_eq!(refused.status, 403);
    server.stop().await;
}
