//! The honest members: co-editors of `DOC`, a worker and a chatter. Each
//! records what the server acknowledged, and fails (with the seed) if the
//! server refuses or closes it: nothing the crowd does may stop them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crowdroom::auth::Role;
use crowdroom_crdt::{AwarenessEntry, AwarenessUpdate, Message};
use crowdroom_tests::client::{Incoming, LiveClient, YjsClient};
use crowdroom_tests::{TIMEOUT, TestServer};
use rand::Rng;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{CHATTER, CO_EDITORS, DOC, ROOM, WORKER, client_rng, joined};

/// Between an honest live client's requests: ten a second, half the live
/// channel's rate limit.
const LIVE_PACE: Duration = Duration::from_millis(100);
/// Between an honest co-editor's writes (the y-websocket limit is 200/s).
const DOC_PACE: Duration = Duration::from_millis(30);

/// The co-editors, connected and synced, each with its awareness state
/// announced, and their tokens.
pub(super) async fn editors(server: &TestServer) -> (Vec<YjsClient>, Vec<String>) {
    let (mut editors, mut tokens) = (Vec::new(), Vec::new());
    for index in 0..CO_EDITORS {
        let role = if index == 0 { Role::Core } else { Role::Worker };
        let token = server.token(ROOM, &editor(index), role).await;
        let mut client = YjsClient::connect(&server.ws_url(""), ROOM, DOC, &token).await;
        let entry = AwarenessEntry {
            client_id: client.doc.client_id().get(),
            clock: 1,
            state: awareness_state(index),
        };
        let update = AwarenessUpdate {
            entries: vec![entry],
        };
        client.send(&Message::Awareness(&update.encode())).await;
        editors.push(client);
        tokens.push(token);
    }
    (editors, tokens)
}

pub(super) fn editor(index: usize) -> String {
    format!("honest-editor{index}")
}

pub(super) fn awareness_state(index: usize) -> String {
    json!({ "user": editor(index) }).to_string()
}

/// A co-editor and the `(key, value)` of its own keys it got acknowledged.
type Edited = (YjsClient, Vec<(String, String)>);

/// The honest members at work until the deadline.
pub(super) struct Honest {
    editing: Vec<JoinHandle<Edited>>,
    answering: JoinHandle<BTreeSet<(i64, String)>>,
    chatting: JoinHandle<BTreeMap<i64, String>>,
}

/// What the server acknowledged to the honest members.
pub(super) struct Acknowledged {
    /// The co-editors, still connected.
    pub(super) editors: Vec<YjsClient>,
    /// The co-editors' own keys and their values.
    pub(super) keys: Vec<(String, String)>,
    /// The worker's `(task, answer)`.
    pub(super) answers: BTreeSet<(i64, String)>,
    /// The chatter's messages by id.
    pub(super) messages: BTreeMap<i64, String>,
}

impl Honest {
    pub(super) async fn start(
        server: &TestServer,
        editors: Vec<YjsClient>,
        seed: u64,
        deadline: Instant,
    ) -> Honest {
        let base = server.ws_url("");
        let editing = editors
            .into_iter()
            .enumerate()
            .map(|(index, client)| tokio::spawn(co_edit(client, index, seed, deadline)))
            .collect();
        let token = server.token(ROOM, WORKER, Role::Worker).await;
        let worker = LiveClient::connect(&base, ROOM, &token).await;
        let answering = tokio::spawn(answer(worker, seed, deadline));
        let token = server.token(ROOM, CHATTER, Role::Worker).await;
        let chatter = LiveClient::connect(&base, ROOM, &token).await;
        let chatting = tokio::spawn(chat(chatter, seed, deadline));
        Honest {
            editing,
            answering,
            chatting,
        }
    }

    pub(super) async fn join(self, seed: u64) -> Acknowledged {
        let (mut editors, mut keys) = (Vec::new(), Vec::new());
        for task in self.editing {
            let (client, acked) = joined(task, seed, "an honest co-editor").await;
            editors.push(client);
            keys.extend(acked);
        }
        Acknowledged {
            editors,
            keys,
            answers: joined(self.answering, seed, "the honest worker").await,
            messages: joined(self.chatting, seed, "the honest chatter").await,
        }
    }
}

/// An honest co-editor: writes its own keys (and now and then a shared
/// one), each acknowledged by its echo, reading everything in between.
/// Returns the client and the acknowledged `(key, value)` of its own keys.
async fn co_edit(mut client: YjsClient, index: usize, seed: u64, deadline: Instant) -> Edited {
    let mut rng = client_rng(seed, 100 + index as u64);
    let mut acked = Vec::new();
    let mut step = 0;
    while Instant::now() < deadline {
        step += 1;
        let own = (format!("e{index}-{step}"), format!("v{step}"));
        let shared = rng.random_ratio(1, 4);
        let update = if shared {
            let key = format!("shared{}", rng.random_range(0..8));
            client.set(&key, &format!("e{index}-{step}"))
        } else {
            client.set(&own.0, &own.1)
        };
        client.send(&Message::Update(&update)).await;
        let echoed = tokio::time::timeout(TIMEOUT, async {
            loop {
                match client.next().await {
                    Incoming::Update(echo) if echo == update => break,
                    Incoming::Closed(code) => panic!("seed {seed}: closed with {code:?}"),
                    Incoming::PermissionDenied(why) => panic!("seed {seed}: refused: {why}"),
                    _ => {}
                }
            }
        })
        .await;
        assert!(echoed.is_ok(), "seed {seed}: {} got no echo", editor(index));
        if !shared {
            acked.push(own);
        }
        // Keep reading until the next write: a reader that stalls would be
        // closed as too slow, which is the client's fault, not the crowd's.
        let pause = Instant::now() + DOC_PACE;
        while let Ok(incoming) = tokio::time::timeout_at(pause, client.next()).await {
            if let Incoming::Closed(code) = incoming {
                panic!("seed {seed}: {} was closed with {code:?}", editor(index));
            }
        }
    }
    (client, acked)
}

/// Sends a request as an honest live client, then reads for `LIVE_PACE`.
async fn ask(client: &mut LiveClient, kind: &str, fields: Value, seed: u64) -> Value {
    let user = client.hello["you"]["user"].clone();
    let reply = client
        .try_request(kind, fields)
        .await
        .unwrap_or_else(|| panic!("seed {seed}: {user} was closed during {kind}"));
    // Reads (and keeps) events until the pause is over; none is awaited.
    let _ = tokio::time::timeout(LIVE_PACE, client.event("none")).await;
    reply
}

/// The honest worker: takes tasks and answers them; returns the
/// acknowledged `(task, answer)`.
async fn answer(mut client: LiveClient, seed: u64, deadline: Instant) -> BTreeSet<(i64, String)> {
    let mut rng = client_rng(seed, 200);
    let mut acked = BTreeSet::new();
    while Instant::now() < deadline {
        let granted = ask(&mut client, "task.request", json!({}), seed).await;
        assert_eq!(granted["ok"], true, "seed {seed}: {granted}");
        let Some(task) = granted["result"]["task"]["id"].as_i64() else {
            let reason = &granted["result"]["reason"];
            assert_eq!(reason, "no_work", "seed {seed}: {granted}");
            continue;
        };
        let choice = if rng.random_bool(0.5) { "pos" } else { "neg" };
        let fields = json!({"task_id": task, "answer": choice});
        let reply = ask(&mut client, "task.submit", fields, seed).await;
        if reply["ok"] == true {
            acked.insert((task, choice.to_owned()));
        } else {
            // A hostile moderator may release the reservation (mod.release).
            let code = &reply["error"]["code"];
            assert_eq!(code, "reservation_expired", "seed {seed}: {reply}");
        }
    }
    acked
}

/// The honest chatter; returns the acknowledged messages by id.
async fn chat(mut client: LiveClient, seed: u64, deadline: Instant) -> BTreeMap<i64, String> {
    let mut acked = BTreeMap::new();
    let mut count = 0;
    while Instant::now() < deadline {
        count += 1;
        let body = format!("honest message {count}");
        let reply = ask(&mut client, "chat.send", json!({ "body": body }), seed).await;
        assert_eq!(reply["ok"], true, "seed {seed}: refused: {reply}");
        let id = reply["result"]["message"]["id"].as_i64();
        acked.insert(id.expect("a message id"), body);
    }
    acked
}
