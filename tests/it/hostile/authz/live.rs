//! Every live-channel request type for every role of room A: a result, or
//! an error with the expected code (`forbidden` where the role may not).
//! Callers without a token of the room never open the channel: the
//! upgrade rows of the REST matrix cover them.

use crowdroom::auth::Role;
use crowdroom_tests::client::LiveClient;
use crowdroom_tests::{Backend, TestServer, both_stores};
use serde_json::{Value, json};

use super::{RoomA, check, finish, fresh_member, member_of_a};

both_stores! {
    every_live_request_for_every_role => every_live_request_for_every_role;
}

/// What a request's reply must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    /// `ok: true`.
    Y,
    /// `ok: false` with the code `forbidden`.
    N,
    /// `ok: true`, but no task: `{"reservation": null, "reason": "locked"}`.
    L,
    /// `ok: false` with this code.
    E(&'static str),
}
use Reply::{E, L, N, Y};

/// The roles of a row's expectations, in order.
const ROLES: [Role; 5] = [
    Role::Viewer,
    Role::Worker,
    Role::Core,
    Role::Moderator,
    Role::Owner,
];

/// One request sent by every role. Placeholders in `fields`: `{me}` the
/// sender; `{user}` a fresh worker of the room; `{own_message}` a fresh
/// chat message of the sender (of `sam` for a viewer, who cannot post);
/// `{others_message}` a fresh message of `sam`; `{held_task}` the task the
/// sender holds (asked for now; an open task for a viewer).
struct Request {
    kind: &'static str,
    fields: &'static str,
    want: [Reply; 5],
}

const fn request(kind: &'static str, fields: &'static str, want: [Reply; 5]) -> Request {
    Request { kind, fields, want }
}

/// The policy (docs/PROTOCOL.md). Columns: viewer, worker, core,
/// moderator, owner.
#[rustfmt::skip]
const REQUESTS: &[Request] = &[
    //                                                                                           view   work   core   mod    own
    request("ping",           "{}",                                                              [Y,     Y,     Y,     Y,     Y]),
    request("presence.set",   r#"{"status": "away"}"#,                                          [Y,     Y,     Y,     Y,     Y]),
    request("chat.history",   "{}",                                                              [Y,     Y,     Y,     Y,     Y]),
    request("chat.send",      r#"{"body": "hi"}"#,                                              [N,     Y,     Y,     Y,     Y]),
    request("chat.edit",      r#"{"message_id": {own_message}, "body": "edited"}"#,             [N,     Y,     Y,     Y,     Y]),
    // Nobody edits another's message, moderators included.
    request("chat.edit",      r#"{"message_id": {others_message}, "body": "edited"}"#,          [N,     N,     N,     N,     N]),
    request("chat.delete",    r#"{"message_id": {own_message}}"#,                               [N,     Y,     Y,     Y,     Y]),
    request("chat.delete",    r#"{"message_id": {others_message}}"#,                            [N,     N,     N,     Y,     Y]),
    request("queue.get",      "{}",                                                              [Y,     Y,     Y,     Y,     Y]),
    request("task.request",   "{}",                                                              [N,     Y,     Y,     Y,     Y]),
    request("task.heartbeat", r#"{"task_id": {held_task}}"#,                                    [N,     Y,     Y,     Y,     Y]),
    request("task.submit",    r#"{"task_id": {held_task}, "answer": "pos"}"#,                   [N,     Y,     Y,     Y,     Y]),
    request("task.skip",      r#"{"task_id": {held_task}}"#,                                    [N,     Y,     Y,     Y,     Y]),
    request("mod.mute",       r#"{"user": "{user}", "minutes": 1}"#,                            [N,     N,     N,     Y,     Y]),
    request("mod.unmute",     r#"{"user": "{user}"}"#,                                          [N,     N,     N,     Y,     Y]),
    request("mod.kick",       r#"{"user": "{user}", "reason": "r"}"#,                           [N,     N,     N,     Y,     Y]),
    request("mod.ban",        r#"{"user": "{user}"}"#,                                          [N,     N,     N,     Y,     Y]),
    request("mod.lock",       r#"{"locked": false}"#,                                           [N,     N,     N,     Y,     Y]),
    request("mod.announce",   r#"{"body": ""}"#,                                                [N,     N,     N,     Y,     Y]),
    request("mod.release",    r#"{"user": "{user}"}"#,                                          [N,     N,     N,     Y,     Y]),
    // Rank: a moderator is acted on by owners only, an owner by nobody.
    request("mod.kick",       r#"{"user": "mona"}"#,                                            [N,     N,     N,     N,     Y]),
    request("mod.mute",       r#"{"user": "mona", "minutes": 1}"#,                              [N,     N,     N,     N,     Y]),
    request("mod.ban",        r#"{"user": "oona"}"#,                                            [N,     N,     N,     N,     N]),
    request("mod.release",    r#"{"user": "oona"}"#,                                            [N,     N,     N,     N,     N]),
    // Nobody moderates themselves.
    request("mod.mute",       r#"{"user": "{me}", "minutes": 1}"#,                              [N,     N,     N,     E("bad_request"), E("bad_request")]),
];

/// While the room is locked: only owners and moderators write (docs/PROTOCOL.md, `mod.lock`).
#[rustfmt::skip]
const WHILE_LOCKED: &[Request] = &[
    //                                                                                           view   work   core   mod    own
    request("chat.send",      r#"{"body": "hi"}"#,                                              [N,     N,     N,     Y,     Y]),
    request("chat.history",   "{}",                                                              [Y,     Y,     Y,     Y,     Y]),
    request("task.request",   "{}",                                                              [N,     L,     L,     Y,     Y]),
    request("presence.set",   r#"{"status": "busy"}"#,                                          [Y,     Y,     Y,     Y,     Y]),
    request("queue.get",      "{}",                                                              [Y,     Y,     Y,     Y,     Y]),
];

async fn every_live_request_for_every_role(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let room = RoomA::open(&server).await;
    let base = server.ws_url("");
    let mut sam = LiveClient::connect(&base, super::ROOM_A, &room.sam).await;
    let mut clients = Vec::new();
    for role in ROLES {
        clients.push(LiveClient::connect(&base, super::ROOM_A, room.token_of(role)).await);
    }
    let mut failures = Vec::new();
    let mut fresh = 0;
    let mut phase = Phase {
        server: &server,
        room: &room,
        sam: &mut sam,
        fresh: &mut fresh,
        failures: &mut failures,
    };
    phase.run(&mut clients, REQUESTS, "").await;
    let owner = clients.last_mut().expect("an owner's client");
    let locked = owner.request("mod.lock", json!({"locked": true})).await;
    assert_eq!(locked["ok"], true, "{locked}");
    phase.run(&mut clients, WHILE_LOCKED, " while locked").await;
    finish(&failures);
    server.stop().await;
}

/// Sends requests of a table, each by every role, and checks the replies.
struct Phase<'a> {
    server: &'a TestServer,
    room: &'a RoomA,
    sam: &'a mut LiveClient,
    fresh: &'a mut u32,
    failures: &'a mut Vec<String>,
}

impl Phase<'_> {
    /// `clients` are the roles', in [`ROLES`] order.
    async fn run(&mut self, clients: &mut [LiveClient], requests: &[Request], when: &str) {
        for (column, (role, client)) in ROLES.into_iter().zip(clients).enumerate() {
            for request in requests {
                let Some(&want) = request.want.get(column) else {
                    continue;
                };
                let mut ask = Asking {
                    server: self.server,
                    room: self.room,
                    client: &mut *client,
                    sam: &mut *self.sam,
                    role,
                    fresh: &mut *self.fresh,
                };
                let text = ask.fill(request.fields).await;
                let fields: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|error| panic!("row fields {text}: {error}"));
                let reply = client.request(request.kind, fields).await;
                let code = &reply["error"]["code"];
                let held = match want {
                    Y => reply["ok"] == true,
                    L => reply["ok"] == true && reply["result"]["reason"] == "locked",
                    N => reply["ok"] == false && code == "forbidden",
                    E(expected) => reply["ok"] == false && code == expected,
                };
                let key = format!("live {} {} as {role}{when}", request.kind, request.fields);
                check(self.failures, &key, held, || {
                    format!("want {want:?}, got {reply}")
                });
            }
        }
    }
}

/// What filling one request's placeholders needs.
struct Asking<'a> {
    server: &'a TestServer,
    room: &'a RoomA,
    client: &'a mut LiveClient,
    sam: &'a mut LiveClient,
    role: Role,
    fresh: &'a mut u32,
}

impl Asking<'_> {
    async fn fill(&mut self, fields: &str) -> String {
        let mut text = fields.replace("{me}", member_of_a(self.role));
        if text.contains("{user}") {
            let user = fresh_member(self.server, self.fresh).await.0;
            text = text.replace("{user}", &user);
        }
        if text.contains("{own_message}") {
            let id = if self.role.can_write() {
                post(self.client).await
            } else {
                post(self.sam).await
            };
            text = text.replace("{own_message}", &id.to_string());
        }
        if text.contains("{others_message}") {
            text = text.replace("{others_message}", &post(self.sam).await.to_string());
        }
        if text.contains("{held_task}") {
            let task = if self.role.can_write() {
                let granted = self.client.request("task.request", json!({})).await;
                granted["result"]["reservation"]["task_id"]
                    .as_i64()
                    .unwrap_or_else(|| panic!("{} gets a task: {granted}", self.role))
            } else {
                self.room.task
            };
            text = text.replace("{held_task}", &task.to_string());
        }
        text
    }
}

/// Posts a chat message as `client`; its id.
async fn post(client: &mut LiveClient) -> i64 {
    let reply = client
        .request("chat.send", json!({"body": "a message"}))
        .await;
    reply["result"]["message"]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("a posted message: {reply}"))
}
