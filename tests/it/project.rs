//! The project over the REST API: a refusal names the setting at fault
//! (`field`), label styles round-trip, and the preview of a change says
//! what it does to the tasks already imported, on both stores, without
//! writing anything.

use crowdroom::auth::Role;
use crowdroom_tests::client::LiveClient;
use crowdroom_tests::{Backend, TestServer, both_stores, http};
use serde_json::{Value, json};

both_stores! {
    a_refused_project_names_its_field => refused_fields;
    the_preview_says_what_a_change_does_to_imported_tasks => preview;
}

fn project() -> Value {
    json!({
        "instructions": "# Tone\nIs the sentence **positive**?",
        "answer_schema": {"kind": "single_choice", "options": ["pos", "neg"]},
        "label_styles": {"pos": {"colour": "#2f9e44", "hotkey": "p"}, "neg": {"hotkey": "n"}},
        "overlap_min": 2, "overlap_max": 3, "gold_rate": 0.0, "onboarding_gold": 0,
        "min_lead_time_ms": 0, "pay_per_answer": 50_000
    })
}

async fn send(
    server: &TestServer,
    method: &'static str,
    path: &str,
    token: &str,
    body: Value,
) -> http::Response {
    let url = server.http_url(&format!("/api/v1/rooms/pv{path}"));
    http::request(method, &url, Some(token), Some(body)).await
}

async fn refused_fields(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let owner = server.token("pv", "olivia", Role::Owner).await;
    let put = send(&server, "PUT", "/project", &owner, project()).await;
    assert_eq!(put.status, 200, "{}", put.body);
    let stored = http::get(&server.http_url("/api/v1/rooms/pv/project"), Some(&owner)).await;
    assert_eq!(stored.json()["label_styles"], project()["label_styles"]);
    let cases = [
        (json!({"overlap_min": 4, "overlap_max": 3}), "overlap_min"),
        (json!({"gold_rate": 2.0}), "gold_rate"),
        (
            json!({"reservation_ttl_seconds": 0}),
            "reservation_ttl_seconds",
        ),
        (
            json!({"answer_schema": {"kind": "single_choice", "options": []}, "label_styles": {}}),
            "answer_schema.options",
        ),
        (
            json!({"label_styles": {"pos": {"hotkey": "N"}, "neg": {"hotkey": "n"}}}),
            "label_styles.pos.hotkey",
        ),
        (
            json!({"label_styles": {"maybe": {"colour": "#000000"}}}),
            "label_styles.maybe",
        ),
        (
            json!({"label_styles": {"neg": {"colour": "red"}}}),
            "label_styles.neg.colour",
        ),
    ];
    for (change, field) in cases {
        let mut body = project();
        for (key, value) in change.as_object().unwrap() {
            body[key] = value.clone();
        }
        for (method, path) in [("PUT", "/project"), ("POST", "/project/preview")] {
            let refused = send(&server, method, path, &owner, body.clone()).await;
            assert_eq!(refused.status, 400, "{method} {change}: {}", refused.body);
            let reply = refused.json();
            assert_eq!(reply["code"], "bad_request", "{reply}");
            assert_eq!(reply["field"], field, "{method} {change}: {reply}");
            assert!(
                reply["message"]
                    .as_str()
                    .is_some_and(|text| !text.is_empty())
            );
        }
    }
    // Other errors keep their shape: no field.
    let worker = server.token("pv", "wes", Role::Worker).await;
    let forbidden = send(&server, "POST", "/project/preview", &worker, project()).await;
    assert_eq!(forbidden.status, 403, "{}", forbidden.body);
    assert!(
        forbidden.json().get("field").is_none(),
        "{}",
        forbidden.body
    );
    let malformed = send(
        &server,
        "PUT",
        "/project",
        &owner,
        json!({"overlap_min": -1}),
    )
    .await;
    assert_eq!(malformed.status, 400, "{}", malformed.body);
    assert!(
        malformed.json().get("field").is_none(),
        "{}",
        malformed.body
    );
    // Nothing refused was stored.
    let stored = http::get(&server.http_url("/api/v1/rooms/pv/project"), Some(&owner)).await;
    assert_eq!(stored.json()["overlap_min"], 2);
    server.stop().await;
}

async fn preview(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let owner = server.token("pv", "olivia", Role::Owner).await;
    let put = send(&server, "PUT", "/project", &owner, project()).await;
    assert_eq!(put.status, 200, "{}", put.body);
    let tasks = json!([
        {"id": "a", "data": {"text": "one"}},
        {"id": "b", "data": {"text": "two"}},
        {"id": "c", "data": {"text": "three"}},
        {"id": "g", "data": {"text": "gold"}, "gold": "pos"},
    ]);
    let imported = send(&server, "POST", "/tasks", &owner, tasks).await;
    assert_eq!(imported.json()["inserted"], 4, "{}", imported.body);
    let wes = server.token("pv", "wes", Role::Worker).await;
    let wanda = server.token("pv", "wanda", Role::Worker).await;
    server.token("pv", "vic", Role::Viewer).await;
    let skills = send(
        &server,
        "PUT",
        "/members/wes/skills",
        &owner,
        json!({"skills": ["de"]}),
    )
    .await;
    assert_eq!(skills.status, 200, "{}", skills.body);
    // Wes answers one task; Wanda holds another.
    let mut wes_live = LiveClient::connect(&server.ws_url(""), "pv", &wes).await;
    let granted = wes_live.request("task.request", json!({})).await;
    let answered = granted["result"]["task"]["id"].as_i64().unwrap();
    let submitted = wes_live
        .request("task.submit", json!({"task_id": answered, "answer": "pos"}))
        .await;
    assert_eq!(submitted["ok"], true, "{submitted}");
    let mut wanda_live = LiveClient::connect(&server.ws_url(""), "pv", &wanda).await;
    let held = wanda_live.request("task.request", json!({})).await;
    assert!(held["result"]["task"]["id"].is_number(), "{held}");
    let gold = http::get(
        &server.http_url("/api/v1/rooms/pv/tasks?limit=10"),
        Some(&owner),
    )
    .await
    .json()["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|task| task["external_id"] == "g")
        .unwrap()["id"]
        .clone();

    // The same project changes nothing.
    let same = send(&server, "POST", "/project/preview", &owner, project()).await;
    assert_eq!(same.status, 200, "{}", same.body);
    let same = same.json();
    assert_eq!(same["changed"], json!([]));
    assert_eq!(
        same["tasks"],
        json!({"total": 4, "open": 3, "complete": 0, "review": 0, "gold": 1})
    );
    for key in [
        "overlap_kept",
        "overlap_capped",
        "decided_by_new_rules",
        "reservations_kept",
    ] {
        assert_eq!(same[key], 0, "{key}: {same}");
    }

    let mut changed = project();
    changed["overlap_min"] = json!(1);
    changed["overlap_max"] = json!(2);
    changed["required_skills"] = json!(["de"]);
    changed["answer_schema"] = json!({"kind": "single_choice", "options": ["yes", "no"]});
    changed["label_styles"] = json!({});
    changed["pay_per_answer"] = json!(80_000);
    let preview = send(&server, "POST", "/project/preview", &owner, changed).await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    let preview = preview.json();
    assert_eq!(
        preview["changed"],
        json!([
            "answer_schema",
            "label_styles",
            "overlap_max",
            "overlap_min",
            "pay_per_answer",
            "required_skills"
        ])
    );
    // The three regular tasks keep their target of 2, which is now the maximum.
    assert_eq!(preview["overlap_kept"], 3, "{preview}");
    assert_eq!(preview["overlap_capped"], 3, "{preview}");
    assert_eq!(preview["overlap_extended"], 0, "{preview}");
    assert_eq!(preview["decided_by_new_rules"], 3, "{preview}");
    assert_eq!(preview["answered_under_old_schema"], 1, "{preview}");
    assert_eq!(
        preview["gold_misfits"],
        json!({"count": 1, "first": [gold]})
    );
    // Olivia (an owner may take tasks) and Wanda lack "de"; Wes has it; a viewer takes no task.
    assert_eq!(
        preview["newly_lacking_skills"],
        json!({"count": 2, "first": ["olivia", "wanda"]})
    );
    assert_eq!(
        preview["reservations_kept"], 1,
        "Wanda's reservation: {preview}"
    );
    assert_eq!(preview["newly_qualified"]["count"], 0);

    // A preview writes nothing.
    let stored = http::get(&server.http_url("/api/v1/rooms/pv/project"), Some(&owner)).await;
    assert_eq!(stored.json()["overlap_max"], 3);
    assert_eq!(stored.json()["required_skills"], json!([]));
    let listed = http::get(
        &server.http_url("/api/v1/rooms/pv/tasks?limit=10"),
        Some(&owner),
    )
    .await;
    for task in listed.json()["tasks"].as_array().unwrap() {
        if task["gold"].is_null() {
            assert_eq!(task["overlap_target"], 2, "{task}");
        }
    }
    server.stop().await;
}
