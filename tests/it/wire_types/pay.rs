//! Samples of the pay floor's payout and the server operator's API.

use crowdroom::auth::Role;
use crowdroom_tests::client::LiveClient;
use crowdroom_tests::http;
use serde_json::json;

use super::{Samples, post};

/// A payout in room `pay` (its owner's token `pay_owner`), then an
/// operator's view of every room, a moderator token and a new room.
pub(super) async fn payout_and_operator_samples(
    samples: &mut Samples,
    base: &str,
    pay_owner: &str,
) {
    // A payout after an answer that took a while and paid nothing: the
    // pay floor tops its worker up.
    let url = samples.server.http_url("/api/v1/rooms/pay/tasks");
    let imported = http::post_raw(&url, pay_owner, "{\"id\":\"late\",\"data\":{}}\n").await;
    assert_eq!(imported.status, 200, "{}", imported.body);
    let slow = samples.server.token("pay", "wyn", Role::Worker).await;
    let mut wyn = LiveClient::connect(base, "pay", &slow).await;
    let offer = wyn.request("task.request", json!({})).await;
    let task = offer["result"]["task"]["id"]
        .as_i64()
        .expect("wyn gets the new task");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let submitted = wyn
        .request("task.submit", json!({"task_id": task, "answer": "pos"}))
        .await;
    assert_eq!(submitted["ok"], true, "{submitted}");
    let grace = crowdroom::store::GRACE_MS as u64 + 200;
    tokio::time::sleep(std::time::Duration::from_millis(grace)).await;
    let paid = post(
        &samples.server,
        "/rooms/pay/ledger/payout",
        pay_owner,
        json!({}),
    )
    .await;
    assert_eq!(paid.status, 200, "{}", paid.body);
    let top_ups = paid.json()["floor"]["top_ups"].clone();
    let workers: Vec<&str> = top_ups
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .filter_map(|line| line["worker"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert!(workers.contains(&"wyn"), "{}", paid.body);
    samples.add("Payout", "POST ledger/payout", paid.json());

    // A server operator's view of every room, and a moderator token taken.
    let ops = crowdroom::ids::UserId::parse("ops").expect("a user id");
    let (_, operator) = samples
        .server
        .store
        .issue_operator_token(&ops, None)
        .await
        .expect("an operator token");
    samples.get("OperatorMe", "/operator/me", &operator).await;
    samples
        .get("OperatorRooms", "/operator/rooms", &operator)
        .await;
    let taken = post(
        &samples.server,
        "/operator/rooms/pay/moderate",
        &operator,
        json!({}),
    )
    .await;
    assert_eq!(taken.status, 201, "{}", taken.body);
    samples.add("OperatorModerate", "POST operator moderate", taken.json());
    let created = post(
        &samples.server,
        "/operator/rooms",
        &operator,
        json!({"id": "started", "name": "Started by an operator"}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    samples.add("OperatorCreated", "POST operator rooms", created.json());
}
