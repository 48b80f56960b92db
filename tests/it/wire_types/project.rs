//! Samples of the project page's wire: a styled project, a change's
//! preview, a refusal naming its field, and a created room.

use crowdroom::auth::Role;
use crowdroom_tests::http;
use serde_json::json;

use super::{Samples, post};

/// Takes the samples in a room of their own, `styled`.
pub(super) async fn project_samples(samples: &mut Samples) {
    let owner = samples.server.token("styled", "olivia", Role::Owner).await;
    let project = json!({
        "instructions": "Is the sentence **positive**?",
        "answer_schema": {"kind": "spans", "labels": ["PER", "LOC"]},
        "label_styles": {"PER": {"colour": "#ffd8a8", "hotkey": "p"}, "LOC": {"hotkey": "l"}},
        "required_skills": ["de"]
    });
    let project_url = samples.server.http_url("/api/v1/rooms/styled/project");
    let put = http::request("PUT", &project_url, Some(&owner), Some(project.clone())).await;
    assert_eq!(put.status, 200, "{}", put.body);
    samples
        .get("Project", "/rooms/styled/project", &owner)
        .await;
    let tasks = json!([{"id": "t1", "data": {"text": "Ada in London"}}, {"id": "g1", "data": {"text": "Bo"}, "gold": []}]);
    let imported = post(&samples.server, "/rooms/styled/tasks", &owner, tasks).await;
    assert_eq!(imported.status, 200, "{}", imported.body);
    samples.server.token("styled", "wes", Role::Worker).await;
    // Wes has the skill required now, not the one added below.
    let url = samples
        .server
        .http_url("/api/v1/rooms/styled/members/wes/skills");
    let skills = http::request("PUT", &url, Some(&owner), Some(json!({"skills": ["de"]}))).await;
    assert_eq!(skills.status, 200, "{}", skills.body);
    let mut changed = project.clone();
    changed["required_skills"] = json!(["de", "fr"]);
    changed["answer_schema"] = json!({"kind": "single_choice", "options": ["PER", "LOC"]});
    let preview = post(
        &samples.server,
        "/rooms/styled/project/preview",
        &owner,
        changed,
    )
    .await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    let value = preview.json();
    assert_eq!(value["gold_misfits"]["count"], 1, "{value}");
    assert!(
        value["newly_lacking_skills"]["count"].as_u64() >= Some(1),
        "{value}"
    );
    samples.add("ProjectPreview", "POST project/preview", value);
    let mut refused = project;
    refused["overlap_min"] = json!(9);
    refused["overlap_max"] = json!(2);
    let put = http::request("PUT", &project_url, Some(&owner), Some(refused)).await;
    assert_eq!(put.status, 400, "{}", put.body);
    assert_eq!(put.json()["field"], "overlap_min", "{}", put.body);
    samples.add("ErrorReply", "PUT project, refused", put.json());
    let created = post(
        &samples.server,
        "/rooms",
        &owner,
        json!({"id": "styled-2", "name": "Styled 2"}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    samples.add("CreatedRoom", "POST rooms", created.json());
}
