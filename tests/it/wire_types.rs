//! The web client's view of the wire, checked against the server's: every
//! interface in `web/src/wire.ts` is matched against real REST bodies and
//! live-channel replies and events of a running server. Each field the
//! client declares must be there with the declared type (a field typed
//! `T | null` must be present, null or not; an optional `?` field is
//! checked only when present), and every declaration must have been
//! checked against at least one real value, so a type added to wire.ts
//! without a sample here fails too. Fields the client does not declare are
//! not its concern.
//!
//! The TypeScript is parsed simply (`wire_types/ts.rs`): `interface` and
//! `type` declarations of objects, primitives, string literals, unions,
//! arrays and `Record<string, T>`; anything else in wire.ts is refused,
//! which keeps the file within what this test understands.

mod pay;
mod project;
mod ts;

use std::collections::{BTreeMap, BTreeSet};

use crowdroom::auth::Role;
use crowdroom_tests::client::LiveClient;
use crowdroom_tests::{Backend, TestServer, both_stores, eventually, http};
use serde_json::{Value, json};
use ts::{Ty, parse};

both_stores! {
    the_web_clients_types_match_the_wire => the_web_clients_types_match_the_wire;
}

/// Where the web client declares what it reads from the server.
const WIRE_TS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../web/src/wire.ts");

/// Checks values against the declarations, remembering which declarations
/// were checked against something.
struct Checker<'a> {
    declared: &'a BTreeMap<String, Ty>,
    checked: BTreeSet<String>,
}

impl Checker<'_> {
    fn check(&mut self, value: &Value, ty: &Ty, path: &str) -> Result<(), String> {
        let fail = |what: &str| Err(format!("{path}: expected {what}, got {value}"));
        match ty {
            Ty::Unknown => Ok(()),
            Ty::Number if value.is_number() => Ok(()),
            Ty::Number => fail("a number"),
            Ty::String if value.is_string() => Ok(()),
            Ty::String => fail("a string"),
            Ty::Boolean if value.is_boolean() => Ok(()),
            Ty::Boolean => fail("a boolean"),
            Ty::Null if value.is_null() => Ok(()),
            Ty::Null => fail("null"),
            Ty::Literal(text) if value.as_str() == Some(text) => Ok(()),
            Ty::Literal(text) => fail(&format!("{text:?}")),
            Ty::Array(element) => match value.as_array() {
                Some(items) => items.iter().enumerate().try_for_each(|(index, item)| {
                    self.check(item, element, &format!("{path}[{index}]"))
                }),
                None => fail("an array"),
            },
            Ty::Record(element) => match value.as_object() {
                Some(object) => object.iter().try_for_each(|(key, item)| {
                    self.check(item, element, &format!("{path}.{key}"))
                }),
                None => fail("an object"),
            },
            Ty::Object(fields) => {
                let Some(object) = value.as_object() else {
                    return fail("an object");
                };
                for field in fields {
                    let path = format!("{path}.{}", field.name);
                    match object.get(&field.name) {
                        Some(item) => self.check(item, &field.ty, &path)?,
                        None if field.optional => {}
                        None => return Err(format!("{path}: missing in {value}")),
                    }
                }
                Ok(())
            }
            Ty::Union(members) => {
                let mut errors = Vec::new();
                for member in members {
                    // Only the alternative that matched counts as checked.
                    let before = self.checked.clone();
                    match self.check(value, member, path) {
                        Ok(()) => return Ok(()),
                        Err(error) => {
                            self.checked = before;
                            errors.push(error);
                        }
                    }
                }
                Err(format!(
                    "{path}: no alternative matches: {}",
                    errors.join("; ")
                ))
            }
            Ty::Named(name) => {
                let declared = self
                    .declared
                    .get(name)
                    .unwrap_or_else(|| panic!("wire.ts uses {name} but does not declare it"));
                self.check(value, declared, path)?;
                self.checked.insert(name.clone());
                Ok(())
            }
        }
    }
}

/// The declarations of web/src/wire.ts.
fn wire_ts() -> BTreeMap<String, Ty> {
    let source =
        std::fs::read_to_string(WIRE_TS).unwrap_or_else(|error| panic!("{WIRE_TS}: {error}"));
    parse(&source)
}

#[test]
fn the_checker_catches_renames_missing_fields_and_wrong_types() {
    let declared = parse(
        "export type Role = 'owner' | 'worker'\n\
         /** doc */ export interface Me { user: string; role: Role\n  expires: number | null\n  note?: string\n  [key: string]: unknown }\n\
         export interface Page { items: Me[]; extra: Record<string, number> }",
    );
    let mut checker = Checker {
        declared: &declared,
        checked: BTreeSet::new(),
    };
    let me = Ty::Named("Me".into());
    let good = json!({"user": "wes", "role": "worker", "expires": null, "other": 1});
    assert_eq!(checker.check(&good, &me, "me"), Ok(()));
    assert_eq!(
        checker.checked,
        BTreeSet::from(["Me".to_owned(), "Role".to_owned()])
    );
    for bad in [
        json!({"user_id": "wes", "role": "worker", "expires": null}),
        json!({"user": "wes", "role": "worker"}),
        json!({"user": "wes", "role": "admin", "expires": null}),
        json!({"user": "wes", "role": "worker", "expires": "soon"}),
        json!({"user": "wes", "role": "worker", "expires": 1, "note": 5}),
    ] {
        assert!(checker.check(&bad, &me, "me").is_err(), "{bad} passed");
    }
    let page = Ty::Named("Page".into());
    assert!(
        checker
            .check(&json!({"items": [good], "extra": {"a": 1}}), &page, "page")
            .is_ok()
    );
    assert!(
        checker
            .check(&json!({"items": [{}], "extra": {}}), &page, "page")
            .is_err()
    );
    assert!(
        checker
            .check(&json!({"items": [], "extra": {"a": "x"}}), &page, "page")
            .is_err()
    );
    // The web client's own file parses.
    assert!(wire_ts().contains_key("Hello"));
}

/// Real values of the server, each with the wire.ts type it must match.
struct Samples {
    server: TestServer,
    taken: Vec<(&'static str, String, Value)>,
}

impl Samples {
    fn add(&mut self, ty: &'static str, source: impl Into<String>, value: Value) {
        self.taken.push((ty, source.into(), value));
    }

    async fn get(&mut self, ty: &'static str, path: &str, token: &str) {
        let response = http::get(
            &self.server.http_url(&format!("/api/v1{path}")),
            Some(token),
        )
        .await;
        assert_eq!(response.status, 200, "GET {path}: {}", response.body);
        self.add(ty, format!("GET {path}"), response.json());
    }

    /// Sends a live request and keeps its result.
    async fn request(
        &mut self,
        ty: &'static str,
        client: &mut LiveClient,
        kind: &str,
        fields: Value,
    ) -> Value {
        let reply = client.request(kind, fields).await;
        assert_eq!(reply["ok"], true, "{kind}: {reply}");
        self.add(ty, kind, reply["result"].clone());
        reply["result"].clone()
    }

    /// Waits for a live event and keeps its data.
    async fn event(&mut self, ty: &'static str, client: &mut LiveClient, name: &str) -> Value {
        let event = client.event(name).await;
        self.add(ty, format!("event {name}"), event["data"].clone());
        event["data"].clone()
    }
}

async fn post(server: &TestServer, path: &str, token: &str, body: Value) -> http::Response {
    let url = server.http_url(&format!("/api/v1{path}"));
    http::request("POST", &url, Some(token), Some(body)).await
}

async fn the_web_clients_types_match_the_wire(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let base = server.ws_url("");
    let owner = server.token("wire", "olivia", Role::Owner).await;
    let worker = server.token("wire", "wes", Role::Worker).await;
    let project = json!({
        "instructions": "Is the sentence positive?",
        "answer_schema": {"kind": "single_choice", "options": ["pos", "neg"]},
        "overlap_min": 1, "overlap_max": 1, "onboarding_gold": 0, "gold_rate": 0.0,
        "min_lead_time_ms": 0, "pay_per_answer": 0, "target_hourly_rate": 15_000_000,
        "auto_approve_seconds": 0, "reservation_ttl_seconds": 300
    });
    let url = server.http_url("/api/v1/rooms/wire/project");
    let put = http::request("PUT", &url, Some(&owner), Some(project)).await;
    assert_eq!(put.status, 200, "{}", put.body);
    let tasks: String = (0..4)
        .map(|i| format!("{{\"id\":\"t{i}\",\"data\":{{\"text\":\"sentence {i}\"}}}}\n"))
        .collect();
    let imported =
        http::post_raw(&server.http_url("/api/v1/rooms/wire/tasks"), &owner, &tasks).await;
    assert_eq!(imported.status, 200, "{}", imported.body);

    let mut olivia = LiveClient::connect(&base, "wire", &owner).await;
    let mut wes = LiveClient::connect(&base, "wire", &worker).await;
    let mut samples = Samples {
        server,
        taken: Vec::new(),
    };
    samples.add("Hello", "hello", olivia.hello.clone());
    samples
        .event("Presence", &mut olivia, "presence.joined")
        .await;

    // REST a worker reads.
    samples.get("Me", "/me", &worker).await;
    samples.get("RoomInfo", "/rooms/wire", &worker).await;
    samples.get("Project", "/rooms/wire/project", &worker).await;
    samples
        .get("WorkerRecord", "/rooms/wire/workers/wes", &worker)
        .await;

    // A worker's task, from request to answer.
    samples
        .request("QueueState", &mut wes, "queue.get", json!({}))
        .await;
    let offer = samples
        .request("TaskOffer", &mut wes, "task.request", json!({}))
        .await;
    let task = offer["task"]["id"].as_i64().unwrap();
    samples
        .request("QueueState", &mut wes, "queue.get", json!({}))
        .await;
    samples
        .request(
            "Heartbeat",
            &mut wes,
            "task.heartbeat",
            json!({"task_id": task}),
        )
        .await;
    samples
        .request(
            "Submitted",
            &mut wes,
            "task.submit",
            json!({"task_id": task, "answer": "pos"}),
        )
        .await;
    samples.event("QueueMine", &mut wes, "queue.mine").await;
    samples.event("Counts", &mut olivia, "queue.counts").await;

    // The review view.
    let reviewed = post(
        &samples.server,
        &format!("/rooms/wire/tasks/{task}/review"),
        &owner,
        json!({"decision": "reject", "reason": "not so sure"}),
    )
    .await;
    assert_eq!(reviewed.status, 200, "{}", reviewed.body);
    samples
        .get("TaskList", "/rooms/wire/tasks?limit=10", &owner)
        .await;
    let detail = format!("/rooms/wire/tasks/{task}");
    samples.get("TaskDetail", &detail, &owner).await;

    // A moderator frees a reservation.
    let offer = samples
        .request("TaskOffer", &mut wes, "task.request", json!({}))
        .await;
    assert!(offer["task"]["id"].is_number(), "{offer}");
    let released = olivia.request("mod.release", json!({"user": "wes"})).await;
    assert_eq!(released["ok"], true, "{released}");
    samples
        .event("TaskReleased", &mut wes, "task.released")
        .await;

    // Chat.
    let sent = wes.request("chat.send", json!({"body": "hello"})).await;
    assert_eq!(sent["ok"], true, "{sent}");
    samples.event("Message", &mut olivia, "chat.message").await;
    samples
        .request("ChatPage", &mut wes, "chat.history", json!({"limit": 10}))
        .await;

    // Moderation, as the banners and presence list read it.
    let announced = olivia
        .request("mod.announce", json!({"body": "Lunch at noon"}))
        .await;
    assert_eq!(announced["ok"], true, "{announced}");
    samples
        .event("Announcement", &mut wes, "room.announcement")
        .await;
    let muted = olivia
        .request(
            "mod.mute",
            json!({"user": "wes", "minutes": 5, "reason": "shouting"}),
        )
        .await;
    assert_eq!(muted["ok"], true, "{muted}");
    samples.event("MemberMuted", &mut wes, "member.muted").await;
    let locked = olivia
        .request("mod.lock", json!({"locked": true, "reason": "break"}))
        .await;
    assert_eq!(locked["ok"], true, "{locked}");
    samples.event("RoomLocked", &mut wes, "room.locked").await;
    let refused = samples
        .request("TaskOffer", &mut wes, "task.request", json!({}))
        .await;
    assert_eq!(refused["reason"], "locked", "{refused}");
    let unlocked = olivia.request("mod.lock", json!({"locked": false})).await;
    assert_eq!(unlocked["ok"], true, "{unlocked}");
    samples.event("RoomLocked", &mut wes, "room.locked").await;
    let pause = post(
        &samples.server,
        "/rooms/wire/workers/wes/pause",
        &owner,
        json!({"reason": "check"}),
    )
    .await;
    assert_eq!(pause.status, 200, "{}", pause.body);
    samples
        .event("WorkerPaused", &mut wes, "worker.paused")
        .await;
    let refused = samples
        .request("TaskOffer", &mut wes, "task.request", json!({}))
        .await;
    assert_eq!(refused["reason"], "paused", "{refused}");
    // A new connection's hello carries the announcement and the mute.
    let second = LiveClient::connect(&base, "wire", &worker).await;
    samples.add("Hello", "hello, muted", second.hello.clone());

    // The moderator console.
    samples.get("RoomStats", "/rooms/wire/stats", &owner).await;
    samples
        .get("MemberList", "/rooms/wire/members", &owner)
        .await;
    samples.get("TokenList", "/rooms/wire/tokens", &owner).await;
    for (kind, tags) in [
        ("skills", json!(["de", "legal"])),
        ("interests", json!(["news"])),
    ] {
        let url = samples
            .server
            .http_url(&format!("/api/v1/rooms/wire/members/wes/{kind}"));
        let put = http::request("PUT", &url, Some(&owner), Some(json!({ kind: tags }))).await;
        assert_eq!(put.status, 200, "{}", put.body);
    }
    samples
        .get("MemberSkills", "/rooms/wire/members/wes/skills", &owner)
        .await;
    samples
        .get(
            "MemberInterests",
            "/rooms/wire/members/wes/interests",
            &owner,
        )
        .await;
    let issued = post(
        &samples.server,
        "/rooms/wire/tokens",
        &owner,
        json!({"user": "nia", "role": "viewer", "ttl_seconds": 3600}),
    )
    .await;
    assert_eq!(issued.status, 201, "{}", issued.body);
    samples.add("Issued", "POST tokens", issued.json());
    samples
        .get("WorkerList", "/rooms/wire/workers", &owner)
        .await;
    samples
        .get("WorkerRecord", "/rooms/wire/workers/wes", &owner)
        .await;
    samples
        .get("LedgerSummary", "/rooms/wire/ledger/summary", &owner)
        .await;
    samples
        .get("LedgerList", "/rooms/wire/ledger?worker=wes", &worker)
        .await;
    let listed = http::get(
        &samples
            .server
            .http_url("/api/v1/rooms/wire/ledger?worker=wes"),
        Some(&worker),
    )
    .await;
    let entry = listed.json()["entries"][0]["id"]
        .as_i64()
        .expect("wes has a ledger entry");
    samples
        .get(
            "LedgerEntryDetail",
            &format!("/rooms/wire/ledger/{entry}"),
            &worker,
        )
        .await;
    samples.get("QueueInfo", "/rooms/wire/queue", &owner).await;
    let kicked = olivia
        .request("mod.kick", json!({"user": "wes", "reason": "go home"}))
        .await;
    assert_eq!(kicked["ok"], true, "{kicked}");
    samples.event("Removed", &mut wes, "you.kicked").await;
    samples
        .event("PresenceLeft", &mut olivia, "presence.left")
        .await;
    drop(second);

    // A reservation that lapses, in a room whose reservations last a second.
    let lapse = json!({
        "answer_schema": {"kind": "single_choice", "options": ["pos", "neg"]},
        "overlap_min": 1, "overlap_max": 1, "reservation_ttl_seconds": 1
    });
    let url = samples.server.http_url("/api/v1/rooms/lapse/project");
    let lapse_owner = samples.server.token("lapse", "olivia", Role::Owner).await;
    let put = http::request("PUT", &url, Some(&lapse_owner), Some(lapse)).await;
    assert_eq!(put.status, 200, "{}", put.body);
    let url = samples.server.http_url("/api/v1/rooms/lapse/tasks");
    // A second task whose gold answer is not an option: reported, not stored.
    let body = "{\"id\":\"t0\",\"data\":{}}\n{\"id\":\"t9\",\"data\":{},\"gold\":\"maybe\"}\n";
    let imported = http::post_raw(&url, &lapse_owner, body).await;
    assert_eq!(imported.status, 200, "{}", imported.body);
    assert_eq!(imported.json()["rejected"], 1, "{}", imported.body);
    samples.add("ImportReport", "POST tasks, one rejected", imported.json());
    let lapse_worker = samples.server.token("lapse", "wes", Role::Worker).await;
    let mut late = LiveClient::connect(&base, "lapse", &lapse_worker).await;
    let offer = late.request("task.request", json!({})).await;
    assert!(offer["result"]["task"]["id"].is_number(), "{offer}");
    samples
        .event("TaskExpired", &mut late, "task.expired")
        .await;

    // A room paying nothing for an approved answer is below its target
    // rate: a moderator who comes in is alerted.
    let (pay_owner, pay_worker, _answered) =
        crate::ledger::room_with_answers(&samples.server, "pay", 0, 0, 1).await;
    let url = samples.server.http_url("/api/v1/rooms/pay/ledger");
    eventually("the entry is auto-approved", || async {
        http::get(&url, Some(&pay_worker)).await.json()["entries"][0]["state"] == "approved"
    })
    .await;
    let mut watching = LiveClient::connect(&base, "pay", &pay_owner).await;
    samples.event("PayAlert", &mut watching, "pay.alert").await;
    pay::payout_and_operator_samples(&mut samples, &base, &pay_owner).await;

    project::project_samples(&mut samples).await;

    let declared = wire_ts();
    let mut checker = Checker {
        declared: &declared,
        checked: BTreeSet::new(),
    };
    let errors: Vec<String> = samples
        .taken
        .iter()
        .filter_map(|(ty, source, value)| {
            checker
                .check(value, &Ty::Named((*ty).to_owned()), ty)
                .err()
                .map(|error| format!("{source}: {error}"))
        })
        .collect();
    assert!(
        errors.is_empty(),
        "web/src/wire.ts does not match the server:\n{}",
        errors.join("\n")
    );
    let unchecked: Vec<&String> = declared
        .keys()
        .filter(|name| !checker.checked.contains(*name))
        .collect();
    assert!(
        unchecked.is_empty(),
        "web/src/wire.ts declares types no sample here checked: {unchecked:?}"
    );
    samples.server.stop().await;
}
