//! Room B's ids with room A's tokens: B's tasks, ledger entries, chat
//! messages, tokens, members and documents named in room A's URLs and live
//! channel, and room B's URLs with room A's tokens. Nothing of room B is
//! read or moved: each attempt is refused (403 on B's URLs, 404 in A's),
//! A's listings hold nothing of B's, and B's owner reads every one of B's
//! listings exactly as before.
//!
//! The worker `wes` is a member of both rooms (user ids are global), so a
//! check that asked "is this your entry, token or reservation" but not "of
//! this room" would let him through.

use crowdroom::auth::Role;
use crowdroom_tests::client::{LiveClient, YjsClient};
use crowdroom_tests::{Backend, TestServer, both_stores, http};
use serde_json::{Value, json};
use yrs::{ReadTxn, Transact};

use super::{PROJECT_A, ROOM_A, ROOM_B, answer_one, check, finish, get_json, open_room, token_id};

both_stores! {
    room_b_ids_with_room_a_tokens => room_b_ids_with_room_a_tokens;
}

/// Room B's project: room A's with another pay, so that sums tell the
/// rooms' entries apart.
const PROJECT_B: &str = r#"{"answer_schema": {"kind": "single_choice", "options": ["pos", "neg"]}, "overlap_min": 1, "overlap_max": 1, "onboarding_gold": 0, "gold_rate": 0.0, "min_lead_time_ms": 0, "pay_per_answer": 70000, "auto_approve_seconds": 86400}"#;
/// Room A's pay per answer (in [`PROJECT_A`]).
const PAY_A: i64 = 10_000;
/// Tasks each room starts with.
const TASKS: usize = 5;

/// Who of room A asks.
#[derive(Debug, Clone, Copy)]
enum Who {
    /// `olivia`, room A's owner: the most any token of A may do.
    Owner,
    /// `wes`, room A's worker, who is room B's worker too.
    Wes,
}
use Who::{Owner, Wes};

/// REST calls with room A's tokens naming room B's things, and the status
/// each must get: 404 on room A's URLs (no such thing in A), 403 on room
/// B's (the token does not open B). Placeholders: `{answered}` a task of
/// B's wes answered and B's owner reviewed, `{held}` a task of B's wes
/// holds, `{entry}` wes's ledger entry of B, `{bea_token}` a token id of
/// B's member bea, `{wes_token}` wes's token id of B.
#[rustfmt::skip]
const REFUSED: &[(Who, &str, &str, Option<&str>, u16)] = &[
    (Owner, "GET",    "/api/v1/rooms/ra/tasks/{answered}",          None, 404),
    (Owner, "POST",   "/api/v1/rooms/ra/tasks/{answered}/review",   Some(r#"{"decision": "accept"}"#), 404),
    (Owner, "POST",   "/api/v1/rooms/ra/tasks/{held}/review",       Some(r#"{"decision": "reject", "reason": "x"}"#), 404),
    (Owner, "GET",    "/api/v1/rooms/ra/ledger/{entry}",            None, 404),
    (Wes,   "GET",    "/api/v1/rooms/ra/ledger/{entry}",            None, 404),
    (Owner, "POST",   "/api/v1/rooms/ra/ledger/{entry}/approve",    None, 404),
    (Owner, "POST",   "/api/v1/rooms/ra/ledger/{entry}/reject",     Some(r#"{"reason": "x"}"#), 404),
    (Owner, "POST",   "/api/v1/rooms/ra/ledger/{entry}/pay",        None, 404),
    (Wes,   "POST",   "/api/v1/rooms/ra/ledger/{entry}/dispute",    Some(r#"{"reason": "x"}"#), 404),
    (Owner, "DELETE", "/api/v1/rooms/ra/tokens/{bea_token}",        None, 404),
    // wes's own token, but of room B.
    (Wes,   "DELETE", "/api/v1/rooms/ra/tokens/{wes_token}",        None, 404),
    (Owner, "POST",   "/api/v1/rooms/ra/ledger/bonus",              Some(r#"{"worker": "bea", "amount": 5, "reason": "x", "idempotency_key": "k"}"#), 404),
    (Owner, "POST",   "/api/v1/rooms/ra/assign",                    Some(r#"{"members": [{"user": "bea", "capacity": 1}]}"#), 404),
    (Owner, "POST",   "/api/v1/rooms/ra/workers/bea/pause",         Some(r#"{"reason": "x"}"#), 404),
    (Owner, "PUT",    "/api/v1/rooms/ra/members/bea/skills",        Some(r#"{"skills": ["x"]}"#), 404),
    (Owner, "DELETE", "/api/v1/rooms/ra/members/bea",               None, 404),
    (Owner, "GET",    "/api/v1/rooms/rb/tasks/{answered}",          None, 403),
    (Owner, "GET",    "/api/v1/rooms/rb/chat",                      None, 403),
    (Owner, "GET",    "/api/v1/rooms/rb/ledger/{entry}",            None, 403),
    (Wes,   "GET",    "/api/v1/rooms/rb/ledger/{entry}",            None, 403),
    (Owner, "POST",   "/api/v1/rooms/rb/ledger/{entry}/approve",    None, 403),
    (Wes,   "POST",   "/api/v1/rooms/rb/ledger/{entry}/dispute",    Some(r#"{"reason": "x"}"#), 403),
    (Owner, "POST",   "/api/v1/rooms/rb/tasks/{answered}/review",   Some(r#"{"decision": "accept"}"#), 403),
    (Owner, "DELETE", "/api/v1/rooms/rb/tokens/{bea_token}",        None, 403),
    (Wes,   "DELETE", "/api/v1/rooms/rb/tokens/{wes_token}",        None, 403),
    (Owner, "POST",   "/api/v1/rooms/rb/tokens",                    Some(r#"{"user": "wes", "role": "viewer"}"#), 403),
    (Owner, "PUT",    "/api/v1/rooms/rb/members/wes",               Some(r#"{"role": "viewer"}"#), 403),
    (Owner, "DELETE", "/api/v1/rooms/rb/members/wes",               None, 403),
    (Owner, "POST",   "/api/v1/rooms/rb/workers/wes/pause",         Some(r#"{"reason": "x"}"#), 403),
];

/// Live requests on room A's channel naming room B's things, and the error
/// codes each may get (`{message}`: a chat message of B's bea).
#[rustfmt::skip]
const LIVE_REFUSED: &[(Who, &str, &str, &[&str])] = &[
    (Wes,   "task.heartbeat", r#"{"task_id": {held}}"#,                   &["not_found"]),
    (Wes,   "task.submit",    r#"{"task_id": {held}, "answer": "pos"}"#,  &["reservation_expired", "not_found"]),
    (Wes,   "task.skip",      r#"{"task_id": {held}}"#,                   &["not_found"]),
    (Owner, "chat.edit",      r#"{"message_id": {message}, "body": "x"}"#, &["not_found", "forbidden"]),
    (Owner, "chat.delete",    r#"{"message_id": {message}}"#,             &["not_found"]),
    (Owner, "mod.mute",       r#"{"user": "bea", "minutes": 5}"#,         &["not_found"]),
    (Owner, "mod.unmute",     r#"{"user": "bea"}"#,                       &["not_found"]),
    (Owner, "mod.kick",       r#"{"user": "bea"}"#,                       &["not_found"]),
    (Owner, "mod.ban",        r#"{"user": "bea"}"#,                       &["not_found"]),
    (Owner, "mod.release",    r#"{"user": "bea"}"#,                       &["not_found"]),
];

/// Room A's listings, as its owner reads them, and what of room B's they
/// must not show: room B's ids (`ids` of the field) or a text.
#[rustfmt::skip]
const LISTINGS: &[(&str, Foreign)] = &[
    ("/api/v1/rooms",                       Foreign::Text("\"rb\"")),
    ("/api/v1/rooms/ra/tasks?limit=1000",   Foreign::Ids("tasks")),
    ("/api/v1/rooms/ra/ledger",             Foreign::Ids("entries")),
    ("/api/v1/rooms/ra/chat",               Foreign::Ids("messages")),
    ("/api/v1/rooms/ra/tokens",             Foreign::Text("{bea_token}")),
    ("/api/v1/rooms/ra/tokens",             Foreign::Text("{wes_token}")),
    ("/api/v1/rooms/ra/members",            Foreign::Text("\"bea\"")),
    ("/api/v1/rooms/ra/moderation",         Foreign::Text("\"bea\"")),
    ("/api/v1/rooms/ra/docs",               Foreign::Text("b-secret")),
    ("/api/v1/rooms/ra/stats",              Foreign::Text("\"bea\"")),
    ("/api/v1/rooms/ra/workers",            Foreign::Text("\"bea\"")),
    ("/api/v1/rooms/ra/tasks/{a_task}",     Foreign::Text("\"bea\"")),
];

#[derive(Debug, Clone, Copy)]
enum Foreign {
    /// The `id`s of this field's array, against room B's ids.
    Ids(&'static str),
    /// A text (placeholders filled) that must not appear.
    Text(&'static str),
}

/// Room B's listings, as its owner reads them: after every attempt, each
/// must be exactly as before.
#[rustfmt::skip]
const ROOM_B_VIEWS: &[&str] = &[
    "/api/v1/rooms/rb/tasks?limit=1000", "/api/v1/rooms/rb/tasks/{answered}",
    "/api/v1/rooms/rb/tasks/{held}", "/api/v1/rooms/rb/ledger", "/api/v1/rooms/rb/ledger/{entry}",
    "/api/v1/rooms/rb/ledger/summary", "/api/v1/rooms/rb/chat", "/api/v1/rooms/rb/tokens",
    "/api/v1/rooms/rb/members", "/api/v1/rooms/rb/members/wes/skills",
    "/api/v1/rooms/rb/members/bea/skills", "/api/v1/rooms/rb/workers",
    "/api/v1/rooms/rb/workers/wes", "/api/v1/rooms/rb/moderation", "/api/v1/rooms/rb/docs",
    "/api/v1/rooms/rb/queue",
];

/// What room B holds, and room A's tokens.
struct Rooms {
    olivia: String,
    wes_a: String,
    answered: i64,
    held: i64,
    entry: i64,
    message: i64,
    bea_token: String,
    wes_token: String,
    /// Every task, ledger entry and chat message id of room B.
    b_tasks: Vec<i64>,
    b_entries: Vec<i64>,
    b_messages: Vec<i64>,
    /// A task of room A wes answered.
    a_task: i64,
}

impl Rooms {
    fn token(&self, who: Who) -> &str {
        match who {
            Owner => &self.olivia,
            Wes => &self.wes_a,
        }
    }

    /// Room B's ids of the kind a listing's `field` holds.
    fn b_ids(&self, field: &str) -> &[i64] {
        match field {
            "tasks" => &self.b_tasks,
            "entries" => &self.b_entries,
            "messages" => &self.b_messages,
            other => panic!("no ids of room B for {other}"),
        }
    }

    fn fill(&self, text: &str) -> String {
        text.replace("{answered}", &self.answered.to_string())
            .replace("{held}", &self.held.to_string())
            .replace("{entry}", &self.entry.to_string())
            .replace("{message}", &self.message.to_string())
            .replace("{bea_token}", &self.bea_token)
            .replace("{wes_token}", &self.wes_token)
            .replace("{a_task}", &self.a_task.to_string())
    }
}

async fn room_b_ids_with_room_a_tokens(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let base = server.ws_url("");
    let bob = open_room(&server, ROOM_B, "bob", PROJECT_B, TASKS).await;
    let wes_b = server.token(ROOM_B, "wes", Role::Worker).await;
    let bea = server.token(ROOM_B, "bea", Role::Worker).await;
    let rooms = fill_rooms(&server, &bob, &wes_b, &bea).await;
    let before = views_of_b(&server, &bob, &rooms).await;
    let mut failures = Vec::new();

    for (who, method, path, body, status) in REFUSED {
        let path = rooms.fill(path);
        let body = body.map(|text| serde_json::from_str::<Value>(&rooms.fill(text)).expect("JSON"));
        let token = rooms.token(*who);
        let response = http::request(method, &server.http_url(&path), Some(token), body).await;
        let held = response.status == *status && (*status != 403 || response.code() == "forbidden");
        check(
            &mut failures,
            &format!("cross-room: {method} {path} as A's {who:?}"),
            held,
            || format!("want {status}, got {} {}", response.status, response.body),
        );
    }
    nothing_of_b_in_a(&server, &rooms, &mut failures).await;
    let mut olivia_live = LiveClient::connect(&base, ROOM_A, &rooms.olivia).await;
    let mut wes_live = LiveClient::connect(&base, ROOM_A, &rooms.wes_a).await;
    for (who, kind, fields, codes) in LIVE_REFUSED {
        let fields: Value = serde_json::from_str(&rooms.fill(fields)).expect("JSON");
        let client = match who {
            Owner => &mut olivia_live,
            Wes => &mut wes_live,
        };
        let reply = client.request(kind, fields.clone()).await;
        let code = reply["error"]["code"].as_str().unwrap_or_default();
        let held = reply["ok"] == false && codes.contains(&code);
        check(
            &mut failures,
            &format!("cross-room: live {kind} {fields} in A"),
            held,
            || reply.to_string(),
        );
    }
    let history = olivia_live
        .request("chat.history", json!({"before": rooms.message + 1}))
        .await;
    let shown = ids(&history["result"]["messages"]).contains(&rooms.message);
    check(
        &mut failures,
        "cross-room: live chat.history in A shows B's message",
        !shown,
        || history.to_string(),
    );
    // wes is a member of A too: acting on him in A leaves him alone in B.
    let released = olivia_live
        .request("mod.release", json!({"user": "wes"}))
        .await;
    let freed = released["ok"] != true || !released["result"]["task_id"].is_null();
    check(
        &mut failures,
        "cross-room: mod.release of wes in A frees his task of B",
        !freed,
        || released.to_string(),
    );
    for (method, path, body, status) in [
        (
            "POST",
            "/api/v1/rooms/ra/workers/wes/pause",
            Some(json!({"reason": "x"})),
            200,
        ),
        (
            "PUT",
            "/api/v1/rooms/ra/members/wes/skills",
            Some(json!({"skills": ["a-only"]})),
            200,
        ),
        ("DELETE", "/api/v1/rooms/ra/members/wes", None, 204),
    ] {
        let response =
            http::request(method, &server.http_url(path), Some(&rooms.olivia), body).await;
        assert_eq!(
            response.status, status,
            "{method} {path}: {}",
            response.body
        );
    }
    // Room A's documents of room B's names are A's own, empty.
    let copy = YjsClient::connect(&base, ROOM_A, "b-secret", &rooms.olivia).await;
    check(
        &mut failures,
        "cross-room: A's b-secret shows B's content",
        copy.value("k").is_none(),
        String::new,
    );
    let task_doc = format!("task-{}", rooms.answered);
    let decision = YjsClient::connect(&base, ROOM_A, &task_doc, &rooms.olivia).await;
    let empty = decision.doc.transact().state_vector().is_empty();
    check(
        &mut failures,
        "cross-room: A's document of B's task has content",
        empty,
        String::new,
    );
    let opened = LiveClient::open(&base, ROOM_B, &rooms.olivia).await.err();
    check(
        &mut failures,
        "cross-room: B's live channel with A's token",
        opened == Some(403),
        String::new,
    );
    let opened = YjsClient::open(&base, ROOM_B, "b-secret", &rooms.olivia)
        .await
        .err();
    check(
        &mut failures,
        "cross-room: B's document with A's token",
        opened == Some(403),
        String::new,
    );

    // Room B, as its owner and members see it, is as it was.
    let after = views_of_b(&server, &bob, &rooms).await;
    for ((path, was), (_, now)) in before.iter().zip(&after) {
        check(
            &mut failures,
            &format!("cross-room: room B's {path} changed"),
            was == now,
            || format!("was {was}, now {now}"),
        );
    }
    let secret = YjsClient::connect(&base, ROOM_B, "b-secret", &bob).await;
    assert_eq!(secret.value("k").as_deref(), Some("v"));
    for token in [&wes_b, &bea] {
        let me = http::get(&server.http_url("/api/v1/me"), Some(token)).await;
        assert_eq!(me.status, 200, "room B's tokens still open it: {}", me.body);
    }
    let mut wes_b_live = LiveClient::connect(&base, ROOM_B, &wes_b).await;
    let beat = wes_b_live
        .request("task.heartbeat", json!({"task_id": rooms.held}))
        .await;
    assert_eq!(
        beat["ok"], true,
        "wes still holds his task of room B: {beat}"
    );
    finish(&failures);
    server.stop().await;
}

/// Reads of room A (as its owner, and as wes) hold nothing of room B's.
async fn nothing_of_b_in_a(server: &TestServer, rooms: &Rooms, failures: &mut Vec<String>) {
    for (path, foreign) in LISTINGS {
        let path = rooms.fill(path);
        let listed = get_json(server, &path, &rooms.olivia).await;
        let leaked = match foreign {
            Foreign::Ids(field) => {
                let foreign = rooms.b_ids(field);
                ids(&listed[*field]).iter().any(|id| foreign.contains(id))
            }
            Foreign::Text(text) => listed.to_string().contains(&rooms.fill(text)),
        };
        check(
            failures,
            &format!("cross-room: {path} shows room B's {foreign:?}"),
            !leaked,
            || listed.to_string(),
        );
    }
    let export = http::get(
        &server.http_url("/api/v1/rooms/ra/export"),
        Some(&rooms.olivia),
    )
    .await;
    let exported: Vec<i64> = export
        .body
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok()?["task_id"].as_i64())
        .collect();
    let only_a = exported.len() == TASKS && !exported.iter().any(|id| rooms.b_tasks.contains(id));
    check(
        failures,
        "cross-room: A's export holds B's tasks",
        only_a,
        || export.body.clone(),
    );
    // wes's own views of room A count room A's work only.
    let record = get_json(server, "/api/v1/rooms/ra/workers/wes", &rooms.wes_a).await;
    check(
        failures,
        "cross-room: wes's record in A counts B's answers",
        record["answers"] == 1,
        || record.to_string(),
    );
    let summary = get_json(server, "/api/v1/rooms/ra/ledger/summary", &rooms.wes_a).await;
    let pending = &summary["workers"][0]["pending"];
    check(
        failures,
        "cross-room: wes's earnings in A count B's",
        *pending == PAY_A,
        || summary.to_string(),
    );
    let mine = get_json(server, "/api/v1/rooms/ra/ledger", &rooms.wes_a).await;
    let leaked = ids(&mine["entries"])
        .iter()
        .any(|id| rooms.b_entries.contains(id));
    check(
        failures,
        "cross-room: wes's ledger in A lists B's entries",
        !leaked,
        || mine.to_string(),
    );
    for path in [
        format!("/api/v1/rooms/ra/tasks/{}/reviews", rooms.answered),
        "/api/v1/rooms/ra/members/bea/skills".to_owned(),
    ] {
        let response = http::get(&server.http_url(&path), Some(&rooms.olivia)).await;
        let empty = response.status == 404
            || (response.status == 200
                && ["reviews", "skills"]
                    .iter()
                    .all(|field| response.json()[*field].as_array().is_none_or(Vec::is_empty)));
        check(
            failures,
            &format!("cross-room: GET {path} shows B's"),
            empty,
            || format!("{} {}", response.status, response.body),
        );
    }
}

/// Room B's views, as its owner reads them.
async fn views_of_b(server: &TestServer, bob: &str, rooms: &Rooms) -> Vec<(String, Value)> {
    let mut views = Vec::new();
    for path in ROOM_B_VIEWS {
        let path = rooms.fill(path);
        let view = get_json(server, &path, bob).await;
        views.push((path, view));
    }
    views
}

/// Fills room B: wes answers two tasks and holds a third, B's owner rejects
/// the first, bea posts a message and gets skills, B's owner mutes her and
/// writes a document. Then opens room A, where wes answers one task.
async fn fill_rooms(server: &TestServer, bob: &str, wes: &str, bea: &str) -> Rooms {
    let base = server.ws_url("");
    let mut wes_live = LiveClient::connect(&base, ROOM_B, wes).await;
    let answered = answer_one(&mut wes_live).await;
    answer_one(&mut wes_live).await;
    let granted = wes_live.request("task.request", json!({})).await;
    let held = granted["result"]["reservation"]["task_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("a third task: {granted}"));
    for (method, path, body) in [
        (
            "POST",
            format!("/api/v1/rooms/rb/tasks/{answered}/review"),
            json!({"decision": "reject", "reason": "room B's own"}),
        ),
        (
            "PUT",
            "/api/v1/rooms/rb/members/bea/skills".to_owned(),
            json!({"skills": ["b-skill"]}),
        ),
    ] {
        let response = http::request(method, &server.http_url(&path), Some(bob), Some(body)).await;
        assert_eq!(response.status, 200, "{method} {path}: {}", response.body);
    }
    let mut bea_live = LiveClient::connect(&base, ROOM_B, bea).await;
    let posted = bea_live
        .request("chat.send", json!({"body": "room B only"}))
        .await;
    let message = posted["result"]["message"]["id"]
        .as_i64()
        .expect("a message");
    let mut bob_live = LiveClient::connect(&base, ROOM_B, bob).await;
    let muted = bob_live
        .request(
            "mod.mute",
            json!({"user": "bea", "minutes": 10, "reason": "b"}),
        )
        .await;
    assert_eq!(muted["ok"], true, "{muted}");
    YjsClient::connect(&base, ROOM_B, "b-secret", bob)
        .await
        .write_acked("k", "v")
        .await;
    let entries = ids(&get_json(server, "/api/v1/rooms/rb/ledger", bob).await["entries"]);
    let entry = *entries.first().expect("wes's entries of room B");
    let tasks = ids(&get_json(server, "/api/v1/rooms/rb/tasks?limit=1000", bob).await["tasks"]);
    let olivia = open_room(server, ROOM_A, "olivia", PROJECT_A, TASKS).await;
    let wes_a = server.token(ROOM_A, "wes", Role::Worker).await;
    let a_task = answer_one(&mut LiveClient::connect(&base, ROOM_A, &wes_a).await).await;
    Rooms {
        olivia,
        wes_a,
        answered,
        held,
        entry,
        message,
        bea_token: token_id(server, bea).await,
        wes_token: token_id(server, wes).await,
        b_tasks: tasks,
        b_entries: entries,
        b_messages: vec![message],
        a_task,
    }
}

/// The `id`s of a JSON array of objects.
fn ids(list: &Value) -> Vec<i64> {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item["id"].as_i64())
                .collect()
        })
        .unwrap_or_default()
}
