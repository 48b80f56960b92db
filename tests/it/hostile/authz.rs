//! The authorization matrix: every REST route and WebSocket upgrade for
//! every kind of caller, every live-channel request type for every role,
//! and room B's ids used with room A's tokens. The policy is written as
//! tables, a row per route or request and a column per caller, so a
//! reviewer reads it at a glance; it comes from docs/API.md (*Roles*,
//! *Rank*, each route's "who") and docs/PROTOCOL.md (*Requests*,
//! *Moderation*), which follow `crowdroom::auth::Role`'s permission methods.
//!
//! A row the server gets wrong today is listed in [`KNOWN_HOLES`]: it is
//! printed and skipped, so the suite stays green until its fix lands; a
//! listed row that holds fails the test, so the list cannot go stale.

mod coverage;
mod cross_room;
mod live;

use crowdroom::auth::Role;
use crowdroom_tests::client::LiveClient;
use crowdroom_tests::{Backend, TestServer, both_stores, http};
use serde_json::{Value, json};

both_stores! {
    every_route_for_every_caller => every_route_for_every_caller;
}

/// Rows the server gets wrong today, named as [`check`] names them (the
/// row's method, path template and caller; `live <type> <fields> as
/// <role>`; `cross-room: <what>`). Each is printed and skipped; remove an
/// entry once its fix lands.
const KNOWN_HOLES: &[&str] = &[];

/// The room whose routes the matrix calls.
const ROOM_A: &str = "ra";
/// Another room, whose owner is the matrix's "other room" caller.
const ROOM_B: &str = "rb";
/// Room A's project (also the body of the `PUT …/project` row, so that row
/// changes nothing): one answer settles a task, no gold and no speed
/// check, so every role's answers are plain work.
const PROJECT_A: &str = r#"{"answer_schema": {"kind": "single_choice", "options": ["pos", "neg"]}, "overlap_min": 1, "overlap_max": 1, "onboarding_gold": 0, "gold_rate": 0.0, "min_lead_time_ms": 0, "pay_per_answer": 10000, "auto_approve_seconds": 86400}"#;
/// Tasks room A starts with: the live matrix takes about a dozen.
const TASKS_A: usize = 40;

/// The outcome class of an HTTP request or a WebSocket upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Allowed: 2xx (101 for an upgrade), or a 4xx that is not about who
    /// asks (400, 404, 409, 413 for a dummy body or a state already moved).
    A,
    /// 401: no valid token.
    U,
    /// 403 `forbidden`: the role may not, or the token is for another room.
    F,
}
use Want::{A, F, U};

/// Who asks, in the order of a row's expectations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// No token at all.
    Anonymous,
    /// A bearer string not of a token's form.
    Malformed,
    Viewer,
    Worker,
    Core,
    Moderator,
    Owner,
    /// The owner of room B, on room A's routes.
    OtherRoom,
}

const CALLERS: [Caller; 8] = [
    Caller::Anonymous,
    Caller::Malformed,
    Caller::Viewer,
    Caller::Worker,
    Caller::Core,
    Caller::Moderator,
    Caller::Owner,
    Caller::OtherRoom,
];

impl Caller {
    fn name(self) -> &'static str {
        match self {
            Caller::Anonymous => "no token",
            Caller::Malformed => "malformed token",
            Caller::Viewer => "viewer",
            Caller::Worker => "worker",
            Caller::Core => "core",
            Caller::Moderator => "moderator",
            Caller::Owner => "owner",
            Caller::OtherRoom => "owner of another room",
        }
    }

    /// The caller's user, room and role, if it has a token.
    fn member(self) -> Option<(&'static str, &'static str, Role)> {
        let role = match self {
            Caller::Anonymous | Caller::Malformed => return None,
            Caller::OtherRoom => return Some(("bob", ROOM_B, Role::Owner)),
            Caller::Viewer => Role::Viewer,
            Caller::Worker => Role::Worker,
            Caller::Core => Role::Core,
            Caller::Moderator => Role::Moderator,
            Caller::Owner => Role::Owner,
        };
        Some((member_of_a(role), ROOM_A, role))
    }
}

/// Room A's member of each role (the worker `wes` answered a task: the
/// `{entry}` of the routes is his).
fn member_of_a(role: Role) -> &'static str {
    match role {
        Role::Owner => "olivia",
        Role::Moderator => "mo",
        Role::Core => "cora",
        Role::Worker => "wes",
        Role::Viewer => "vic",
    }
}

/// One route called by every caller. Placeholders: `{room}` room A;
/// `{user}` a fresh worker of room A (made for each call, so one caller's
/// removal or ban does not change the next one's answer); `{me}` the
/// caller; `{mona}` and `{oona}` room A's second moderator and second
/// owner; `{token}` a fresh worker's token; `{own_token}` a fresh token of
/// the caller's own user; `{task}` an open task of room A; `{entry}` the
/// worker's ledger entry; `{fresh}` a name never used before. `WS` is a
/// WebSocket upgrade (its token in `?token=`).
struct Route {
    method: &'static str,
    path: &'static str,
    body: Option<&'static str>,
    want: [Want; 8],
}

const fn route(method: &'static str, path: &'static str, want: [Want; 8]) -> Route {
    Route {
        method,
        path,
        body: None,
        want,
    }
}

const fn with(
    method: &'static str,
    path: &'static str,
    body: &'static str,
    want: [Want; 8],
) -> Route {
    Route {
        method,
        path,
        body: Some(body),
        want,
    }
}

/// The policy. Columns: no token, malformed token, viewer, worker, core,
/// moderator, owner, owner of another room.
#[rustfmt::skip]
const ROUTES: &[Route] = &[
    //                                                                                              none mal  view work core mod  own  other
    route("GET",    "/healthz",                                                                     [A,   A,   A,   A,   A,   A,   A,   A]),
    route("GET",    "/metrics",                                                                     [A,   A,   A,   A,   A,   A,   A,   A]),
    route("WS",     "/rooms/{room}/live",                                                           [U,   U,   A,   A,   A,   A,   A,   F]),
    route("WS",     "/yjs/{room}/notes",                                                            [U,   U,   A,   A,   A,   A,   A,   F]),
    // The team's document of a task: workers never (answers stay independent).
    route("WS",     "/yjs/{room}/task-{task}",                                                      [U,   U,   A,   F,   A,   A,   A,   F]),
    // A working copy: its worker (wes) and the core team.
    route("WS",     "/yjs/{room}/task-{task}:wes",                                                  [U,   U,   F,   A,   A,   A,   A,   F]),
    route("WS",     "/yjs/{room}/task-{task}:sam",                                                  [U,   U,   F,   F,   A,   A,   A,   F]),
    route("GET",    "/api/v1/me",                                                                   [U,   U,   A,   A,   A,   A,   A,   A]),
    route("GET",    "/api/v1/rooms",                                                                [U,   U,   A,   A,   A,   A,   A,   A]),
    // An owner of any room creates rooms.
    with("POST",    "/api/v1/rooms", r#"{"id": "{fresh}"}"#,                                        [U,   U,   F,   F,   F,   F,   A,   A]),
    route("GET",    "/api/v1/rooms/{room}",                                                         [U,   U,   A,   A,   A,   A,   A,   F]),
    route("GET",    "/api/v1/rooms/{room}/members",                                                 [U,   U,   F,   F,   A,   A,   A,   F]),
    with("PUT",     "/api/v1/rooms/{room}/members/{user}", r#"{"role": "worker"}"#,                 [U,   U,   F,   F,   F,   F,   A,   F]),
    route("DELETE", "/api/v1/rooms/{room}/members/{user}",                                          [U,   U,   F,   F,   F,   F,   A,   F]),
    // Rank: nobody changes their own role or a peer's (oona is a second owner).
    with("PUT",     "/api/v1/rooms/{room}/members/{me}", r#"{"role": "worker"}"#,                   [U,   U,   F,   F,   F,   F,   F,   F]),
    with("PUT",     "/api/v1/rooms/{room}/members/{oona}", r#"{"role": "worker"}"#,                 [U,   U,   F,   F,   F,   F,   F,   F]),
    route("DELETE", "/api/v1/rooms/{room}/members/{oona}",                                          [U,   U,   F,   F,   F,   F,   F,   F]),
    route("GET",    "/api/v1/rooms/{room}/tokens",                                                  [U,   U,   F,   F,   F,   A,   A,   F]),
    with("POST",    "/api/v1/rooms/{room}/tokens", r#"{"user": "{fresh}", "role": "worker"}"#,      [U,   U,   F,   F,   F,   A,   A,   F]),
    with("POST",    "/api/v1/rooms/{room}/tokens", r#"{"user": "{fresh}", "role": "moderator"}"#,   [U,   U,   F,   F,   F,   F,   A,   F]),
    // A token for a member of one's own rank (mona is a second moderator).
    with("POST",    "/api/v1/rooms/{room}/tokens", r#"{"user": "{mona}", "role": "moderator"}"#,    [U,   U,   F,   F,   F,   F,   A,   F]),
    route("DELETE", "/api/v1/rooms/{room}/tokens/{token}",                                          [U,   U,   F,   F,   F,   A,   A,   F]),
    // Everyone may revoke their own tokens.
    route("DELETE", "/api/v1/rooms/{room}/tokens/{own_token}",                                      [U,   U,   A,   A,   A,   A,   A,   F]),
    route("GET",    "/api/v1/rooms/{room}/chat",                                                    [U,   U,   A,   A,   A,   A,   A,   F]),
    route("GET",    "/api/v1/rooms/{room}/docs",                                                    [U,   U,   A,   A,   A,   A,   A,   F]),
    with("POST",    "/api/v1/rooms/{room}/docs", r#"{"name": "notes"}"#,                            [U,   U,   F,   A,   A,   A,   A,   F]),
    // Of a task's documents, a worker creates only his own working copy.
    with("POST",    "/api/v1/rooms/{room}/docs", r#"{"name": "task-{task}"}"#,                      [U,   U,   F,   F,   A,   A,   A,   F]),
    with("POST",    "/api/v1/rooms/{room}/docs", r#"{"name": "task-{task}:wes"}"#,                  [U,   U,   F,   A,   A,   A,   A,   F]),
    with("POST",    "/api/v1/rooms/{room}/docs", r#"{"name": "task-{task}:sam"}"#,                  [U,   U,   F,   F,   A,   A,   A,   F]),
    route("GET",    "/api/v1/rooms/{room}/project",                                                 [U,   U,   A,   A,   A,   A,   A,   F]),
    with("PUT",     "/api/v1/rooms/{room}/project", PROJECT_A,                                      [U,   U,   F,   F,   F,   A,   A,   F]),
    // The preview of a change writes nothing, but reads every member's skills: moderators only, as PUT.
    with("POST",    "/api/v1/rooms/{room}/project/preview", PROJECT_A,                              [U,   U,   F,   F,   F,   A,   A,   F]),
    // Task listings, imports and exports carry gold answers: the core team only.
    route("GET",    "/api/v1/rooms/{room}/tasks",                                                   [U,   U,   F,   F,   A,   A,   A,   F]),
    with("POST",    "/api/v1/rooms/{room}/tasks", "[]",                                             [U,   U,   F,   F,   A,   A,   A,   F]),
    route("GET",    "/api/v1/rooms/{room}/export",                                                  [U,   U,   F,   F,   A,   A,   A,   F]),
    route("GET",    "/api/v1/rooms/{room}/queue",                                                   [U,   U,   A,   A,   A,   A,   A,   F]),
    route("GET",    "/api/v1/rooms/{room}/members/{user}/skills",                                   [U,   U,   F,   F,   A,   A,   A,   F]),
    route("GET",    "/api/v1/rooms/{room}/members/{me}/skills",                                     [U,   U,   A,   A,   A,   A,   A,   F]),
    with("PUT",     "/api/v1/rooms/{room}/members/{user}/skills", r#"{"skills": ["de"]}"#,          [U,   U,   F,   F,   F,   A,   A,   F]),
    // Skills need a strictly higher rank: nobody sets their own.
    with("PUT",     "/api/v1/rooms/{room}/members/{me}/skills", r#"{"skills": ["de"]}"#,            [U,   U,   F,   F,   F,   F,   F,   F]),
    with("PUT",     "/api/v1/rooms/{room}/members/{mona}/skills", r#"{"skills": ["de"]}"#,          [U,   U,   F,   F,   F,   F,   A,   F]),
    route("GET",    "/api/v1/rooms/{room}/members/{user}/interests",                                [U,   U,   F,   F,   A,   A,   A,   F]),
    route("GET",    "/api/v1/rooms/{room}/members/{me}/interests",                                  [U,   U,   A,   A,   A,   A,   A,   F]),
    with("PUT",     "/api/v1/rooms/{room}/members/{user}/interests", r#"{"interests": ["x"]}"#,     [U,   U,   F,   F,   F,   A,   A,   F]),
    with("PUT",     "/api/v1/rooms/{room}/members/{me}/interests", r#"{"interests": ["x"]}"#,       [U,   U,   A,   A,   A,   A,   A,   F]),
    // Others' interests need a strictly higher rank, as skills do.
    with("PUT",     "/api/v1/rooms/{room}/members/{mona}/interests", r#"{"interests": ["x"]}"#,     [U,   U,   F,   F,   F,   F,   A,   F]),
    // An open task has no consensus to accept: 409 for those who may review.
    with("POST",    "/api/v1/rooms/{room}/tasks/{task}/review", r#"{"decision": "accept"}"#,       [U,   U,   F,   F,   A,   A,   A,   F]),
    route("GET",    "/api/v1/rooms/{room}/tasks/{task}/reviews",                                    [U,   U,   F,   F,   A,   A,   A,   F]),
    route("GET",    "/api/v1/rooms/{room}/tasks/{task}",                                            [U,   U,   F,   F,   A,   A,   A,   F]),
    route("POST",   "/api/v1/rooms/{room}/consensus",                                               [U,   U,   F,   F,   F,   A,   A,   F]),
    with("POST",    "/api/v1/rooms/{room}/assign", r#"{"members": [{"user": "wes", "capacity": 0}]}"#, [U, U,  F,   F,   F,   A,   A,   F]),
    route("GET",    "/api/v1/rooms/{room}/workers",                                                 [U,   U,   F,   F,   F,   A,   A,   F]),
    route("GET",    "/api/v1/rooms/{room}/workers/{user}",                                          [U,   U,   F,   F,   F,   A,   A,   F]),
    route("GET",    "/api/v1/rooms/{room}/workers/{me}",                                            [U,   U,   A,   A,   A,   A,   A,   F]),
    with("POST",    "/api/v1/rooms/{room}/workers/{user}/pause", r#"{"reason": "test"}"#,           [U,   U,   F,   F,   F,   A,   A,   F]),
    route("DELETE", "/api/v1/rooms/{room}/workers/{user}/pause",                                    [U,   U,   F,   F,   F,   A,   A,   F]),
    with("POST",    "/api/v1/rooms/{room}/workers/{mona}/pause", r#"{"reason": "test"}"#,           [U,   U,   F,   F,   F,   F,   A,   F]),
    route("DELETE", "/api/v1/rooms/{room}/workers/{mona}/pause",                                    [U,   U,   F,   F,   F,   F,   A,   F]),
    with("POST",    "/api/v1/rooms/{room}/workers/{oona}/pause", r#"{"reason": "test"}"#,           [U,   U,   F,   F,   F,   F,   F,   F]),
    with("POST",    "/api/v1/rooms/{room}/workers/{me}/pause", r#"{"reason": "test"}"#,             [U,   U,   F,   F,   F,   F,   F,   F]),
    route("GET",    "/api/v1/rooms/{room}/stats",                                                   [U,   U,   F,   F,   F,   A,   A,   F]),
    route("GET",    "/api/v1/rooms/{room}/moderation",                                              [U,   U,   F,   F,   F,   A,   A,   F]),
    // Everyone reads their own ledger lines; owners and moderators everyone's.
    route("GET",    "/api/v1/rooms/{room}/ledger",                                                  [U,   U,   A,   A,   A,   A,   A,   F]),
    route("GET",    "/api/v1/rooms/{room}/ledger/summary",                                          [U,   U,   A,   A,   A,   A,   A,   F]),
    with("POST",    "/api/v1/rooms/{room}/ledger/bonus", r#"{"worker": "{user}", "amount": 1, "reason": "r", "idempotency_key": "{fresh}"}"#, [U, U, F, F, F, A, A, F]),
    // The entry is the worker's: he and the moderators read it.
    route("GET",    "/api/v1/rooms/{room}/ledger/{entry}",                                          [U,   U,   F,   A,   F,   A,   A,   F]),
    route("POST",   "/api/v1/rooms/{room}/ledger/{entry}/approve",                                  [U,   U,   F,   F,   F,   A,   A,   F]),
    with("POST",    "/api/v1/rooms/{room}/ledger/{entry}/reject", r#"{"reason": "r"}"#,            [U,   U,   F,   F,   F,   A,   A,   F]),
    with("POST",    "/api/v1/rooms/{room}/ledger/{entry}/reverse", r#"{"reason": "r"}"#,           [U,   U,   F,   F,   F,   A,   A,   F]),
    with("POST",    "/api/v1/rooms/{room}/ledger/{entry}/uphold", r#"{"reason": "r"}"#,            [U,   U,   F,   F,   F,   A,   A,   F]),
    with("POST",    "/api/v1/rooms/{room}/ledger/{entry}/deny", r#"{"reason": "r"}"#,              [U,   U,   F,   F,   F,   A,   A,   F]),
    route("POST",   "/api/v1/rooms/{room}/ledger/{entry}/pay",                                      [U,   U,   F,   F,   F,   A,   A,   F]),
    // Disputing is the entry's worker's move alone.
    with("POST",    "/api/v1/rooms/{room}/ledger/{entry}/dispute", r#"{"reason": "r"}"#,           [U,   U,   F,   A,   F,   F,   F,   F]),
    route("POST",   "/api/v1/rooms/{room}/ledger/payout",                                           [U,   U,   F,   F,   F,   A,   A,   F]),
    // The operator's API: no room token opens it, whatever its role.
    route("GET",    "/api/v1/operator/me",                                                          [U,   U,   U,   U,   U,   U,   U,   U]),
    route("GET",    "/api/v1/operator/rooms",                                                       [U,   U,   U,   U,   U,   U,   U,   U]),
    with("POST",    "/api/v1/operator/rooms", r#"{"id": "{fresh}"}"#,                               [U,   U,   U,   U,   U,   U,   U,   U]),
    route("POST",   "/api/v1/operator/rooms/{room}/moderate",                                       [U,   U,   U,   U,   U,   U,   U,   U]),
];

async fn every_route_for_every_caller(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let room = RoomA::open(&server).await;
    let mut failures = Vec::new();
    let mut fresh = 0;
    for route in ROUTES {
        for (caller, want) in CALLERS.into_iter().zip(route.want) {
            let (path, body) = room
                .fill(&server, route.path, route.body, caller, &mut fresh)
                .await;
            let token = room.token(caller);
            let (status, code) = if route.method == "WS" {
                (upgrade(&server, &path, token).await, None)
            } else {
                let body = body.map(|text| {
                    serde_json::from_str::<Value>(&text)
                        .unwrap_or_else(|error| panic!("row body {text}: {error}"))
                });
                let response =
                    http::request(route.method, &server.http_url(&path), token, body).await;
                let code = serde_json::from_str::<Value>(&response.body)
                    .ok()
                    .and_then(|body| body["code"].as_str().map(str::to_owned));
                (response.status, code)
            };
            let key = format!("{} {} as {}", route.method, route.path, caller.name());
            // An upgrade's refusal has no body to read the code from.
            let held = class(status) == Some(want)
                && (route.method == "WS"
                    || match want {
                        A => true,
                        U => code.as_deref() == Some("unauthorized"),
                        F => code.as_deref() == Some("forbidden"),
                    });
            check(&mut failures, &key, held, || {
                format!("want {want:?}, got {status} {code:?} ({path})")
            });
        }
    }
    beside_the_table(&server, &room, &mut failures).await;
    finish(&failures);
    server.stop().await;
}

/// What the table cannot say: the REST API reads no `?token=` (only the
/// WebSocket upgrades do), and a member who may not see others' ledger
/// lines does not get them by naming a worker.
async fn beside_the_table(server: &TestServer, room: &RoomA, failures: &mut Vec<String>) {
    let owner = room.token(Caller::Owner).unwrap_or_default();
    for path in ["/api/v1/me", "/api/v1/rooms/ra", "/api/v1/rooms/ra/tokens"] {
        let url = server.http_url(&format!("{path}?token={owner}"));
        let response = http::get(&url, None).await;
        check(
            failures,
            &format!("GET {path}?token= as owner"),
            response.status == 401,
            || format!("want 401, got {} {}", response.status, response.body),
        );
    }
    for path in [
        "/api/v1/rooms/ra/ledger?worker=wes",
        "/api/v1/rooms/ra/ledger/summary",
    ] {
        let seen = get_json(server, path, &room.sam).await;
        check(
            failures,
            &format!("GET {path} as another worker"),
            !seen.to_string().contains("\"wes\""),
            || seen.to_string(),
        );
    }
}

/// The class of a status; None for one no row expects (a 5xx, a 405...).
fn class(status: u16) -> Option<Want> {
    match status {
        101 | 200..=299 | 400 | 404 | 409 | 413 => Some(A),
        401 => Some(U),
        403 => Some(F),
        _ => None,
    }
}

/// The status of a WebSocket upgrade of `path` (101 when it opened).
async fn upgrade(server: &TestServer, path: &str, token: Option<&str>) -> u16 {
    let url = server.ws_url(&format!("{path}?token={}", token.unwrap_or_default()));
    match crowdroom_tests::client::connect(&url).await {
        Ok(mut socket) => {
            // Closed at once: the user's cap of open sockets is not for this.
            let _ = socket.close(None).await;
            101
        }
        Err(status) => status,
    }
}

/// Records whether the expectation `key` held: a failure unless `key` is a
/// known hole (then printed), and a failure too when a known hole holds.
fn check(failures: &mut Vec<String>, key: &str, held: bool, detail: impl FnOnce() -> String) {
    match (held, KNOWN_HOLES.contains(&key)) {
        (true, false) => {}
        (false, true) => eprintln!("KNOWN HOLE, skipped: {key}: {}", detail()),
        (false, false) => failures.push(format!("{key}: {}", detail())),
        (true, true) => failures.push(format!(
            "{key}: holds now, but is listed in KNOWN_HOLES: remove it from the list"
        )),
    }
}

/// Fails with every failed row at once.
fn finish(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} authorization rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Room A as the matrices use it: a member of each role, an open task, a
/// ledger entry of the worker's, and the owner of room B.
struct RoomA {
    /// Each caller's token, in [`CALLERS`] order.
    tokens: Vec<Option<String>>,
    /// An open task nobody has answered.
    task: i64,
    /// The worker's (`wes`) ledger entry.
    entry: i64,
    /// The token of `sam`, a second worker (the author of others'
    /// messages). Room A also has `mona`, a second moderator, and `oona`, a
    /// second owner, to act on members of one's own rank.
    sam: String,
}

impl RoomA {
    async fn open(server: &TestServer) -> RoomA {
        let owner = open_room(server, ROOM_A, "olivia", PROJECT_A, TASKS_A).await;
        let mut tokens = Vec::new();
        for caller in CALLERS {
            tokens.push(match caller.member() {
                None if caller == Caller::Malformed => Some("not-a-token".to_owned()),
                None => None,
                Some((user, room, role)) => Some(server.token(room, user, role).await),
            });
        }
        let sam = server.token(ROOM_A, "sam", Role::Worker).await;
        server.token(ROOM_A, "mona", Role::Moderator).await;
        server.token(ROOM_A, "oona", Role::Owner).await;
        let notes = http::request(
            "POST",
            &server.http_url("/api/v1/rooms/ra/docs"),
            Some(&owner),
            Some(json!({"name": "notes"})),
        )
        .await;
        assert_eq!(notes.status, 201, "{}", notes.body);
        let wes = server.token(ROOM_A, "wes", Role::Worker).await;
        let mut live = LiveClient::connect(&server.ws_url(""), ROOM_A, &wes).await;
        answer_one(&mut live).await;
        let entries = get_json(server, "/api/v1/rooms/ra/ledger?worker=wes", &owner).await;
        let entry = entries["entries"][0]["id"].as_i64().expect("wes's entry");
        let open = get_json(server, "/api/v1/rooms/ra/tasks?state=open&limit=1", &owner).await;
        let task = open["tasks"][0]["id"].as_i64().expect("an open task");
        RoomA {
            tokens,
            task,
            entry,
            sam,
        }
    }

    fn token(&self, caller: Caller) -> Option<&str> {
        let column = CALLERS.iter().position(|known| *known == caller)?;
        self.tokens.get(column)?.as_deref()
    }

    fn token_of(&self, role: Role) -> &str {
        let caller = CALLERS
            .into_iter()
            .find(|caller| {
                caller
                    .member()
                    .is_some_and(|(_, room, r)| room == ROOM_A && r == role)
            })
            .expect("a caller of each role");
        self.token(caller).expect("members have tokens")
    }

    /// A row's path and body with their placeholders filled for `caller`
    /// (see [`Route`]); what a placeholder names is made here, fresh.
    async fn fill(
        &self,
        server: &TestServer,
        path: &str,
        body: Option<&str>,
        caller: Caller,
        fresh: &mut u32,
    ) -> (String, Option<String>) {
        let me = caller.member().map_or("wes", |(user, _, _)| user);
        // Path and body together, so both name the same fresh user.
        let mut text = format!("{path}\n{}", body.unwrap_or_default())
            .replace("{room}", ROOM_A)
            .replace("{task}", &self.task.to_string())
            .replace("{entry}", &self.entry.to_string())
            .replace("{me}", me)
            .replace("{mona}", "mona")
            .replace("{oona}", "oona");
        if text.contains("{user}") {
            let user = fresh_member(server, fresh).await.0;
            text = text.replace("{user}", &user);
        }
        if text.contains("{token}") {
            let token = fresh_member(server, fresh).await.1;
            text = text.replace("{token}", &token_id(server, &token).await);
        }
        if text.contains("{own_token}") {
            let id = match caller.member() {
                Some((user, room, role)) => {
                    token_id(server, &server.token(room, user, role).await).await
                }
                None => "tok_0000000000000000".to_owned(),
            };
            text = text.replace("{own_token}", &id);
        }
        while text.contains("{fresh}") {
            *fresh += 1;
            text = text.replacen("{fresh}", &format!("fresh-{fresh}"), 1);
        }
        let (path, body) = text.split_once('\n').unwrap_or((&text, ""));
        (path.to_owned(), (!body.is_empty()).then(|| body.to_owned()))
    }
}

/// A new worker of room A: their user id and token.
async fn fresh_member(server: &TestServer, fresh: &mut u32) -> (String, String) {
    *fresh += 1;
    let user = format!("target-{fresh}");
    let token = server.token(ROOM_A, &user, Role::Worker).await;
    (user, token)
}

/// The public id of a token.
async fn token_id(server: &TestServer, secret: &str) -> String {
    server
        .store
        .token_id_of_secret(secret)
        .await
        .expect("an issued token")
        .to_string()
}

/// Makes `room` with its owner and project and `tasks` tasks; returns the
/// owner's token.
async fn open_room(
    server: &TestServer,
    room: &str,
    owner: &str,
    project: &str,
    tasks: usize,
) -> String {
    let token = server.token(room, owner, Role::Owner).await;
    let project: Value = serde_json::from_str(project).expect("a project");
    let url = server.http_url(&format!("/api/v1/rooms/{room}/project"));
    let put = http::request("PUT", &url, Some(&token), Some(project)).await;
    assert_eq!(put.status, 200, "{}", put.body);
    let lines: String = (0..tasks)
        .map(|i| format!("{{\"id\":\"{room}-{i}\",\"data\":{{\"text\":\"sentence {i}\"}}}}\n"))
        .collect();
    let url = server.http_url(&format!("/api/v1/rooms/{room}/tasks"));
    let imported = http::post_raw(&url, &token, &lines).await;
    assert_eq!(imported.status, 200, "{}", imported.body);
    token
}

/// `client` takes a task and answers it; returns the task's id.
async fn answer_one(client: &mut LiveClient) -> i64 {
    let granted = client.request("task.request", json!({})).await;
    let task = granted["result"]["task"]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("a task: {granted}"));
    let submitted = client
        .request("task.submit", json!({"task_id": task, "answer": "pos"}))
        .await;
    assert_eq!(submitted["ok"], true, "{submitted}");
    task
}

/// GET `path` as `token`, which must succeed; its JSON.
async fn get_json(server: &TestServer, path: &str, token: &str) -> Value {
    let response = http::get(&server.http_url(path), Some(token)).await;
    assert_eq!(response.status, 200, "GET {path}: {}", response.body);
    response.json()
}
