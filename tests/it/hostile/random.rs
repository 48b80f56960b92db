//! A randomized hostile crowd: for a fixed time, members of every role send
//! a random mix of well-formed requests with wrong, out-of-range and
//! cross-room arguments, malformed, oversized and mistyped frames, spoofed
//! awareness and reconnects, on the live channel and on y-websocket, while
//! honest members co-edit a document, answer tasks and chat. Afterwards the
//! honest replicas converge on what a fresh client reads, every
//! acknowledged write is in the store, the honest awareness states are
//! untouched, every close code a hostile client saw is documented, nothing
//! in the server panicked, and the server is healthy and serving.
//!
//! The seed is printed; `CROWDROOM_HOSTILE_SEED=<seed>` replays a run:
//! every client draws from its own generator seeded from it, so each
//! client's actions repeat (their interleaving still follows the scheduler).

mod checks;
mod frames;
mod honest;
mod hostile;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crowdroom::auth::Role;
use crowdroom_tests::client::{LiveClient, YjsClient};
use crowdroom_tests::{Backend, TestServer, both_stores, eventually, http};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::work;
use honest::Honest;

both_stores! {
    a_hostile_crowd_loses_and_stops_nothing => hostile_crowd;
}

/// How long the crowd runs: every hostile client goes through many closes
/// and reconnects, and the whole test stays well under a minute in CI.
const RUN: Duration = Duration::from_secs(10);
/// The room everyone works in.
const ROOM: &str = "r1";
/// Another room, whose task, message and user ids the hostile clients borrow.
const OTHER_ROOM: &str = "r2";
/// A member of `OTHER_ROOM` only.
const OTHER_USER: &str = "zed";
/// The document the honest members co-edit.
const DOC: &str = "notes";
/// Tasks per room: more than the honest and hostile workers answer in
/// `RUN` at an overlap of two.
const TASKS: usize = 400;
/// Answers each task takes.
const OVERLAP: u32 = 2;
/// Honest co-editors of `DOC`.
const CO_EDITORS: usize = 3;
/// The honest worker and chatter.
const WORKER: &str = "honest-worker";
const CHATTER: &str = "honest-chatter";
/// A member only hostile moderators' bans aim at, so no hostile client
/// loses its own token and stops early.
const VICTIM: &str = "victim";
/// The hostile members, one live and one y-websocket client each.
const HOSTILE: [(&str, Role); 5] = [
    ("h-viewer", Role::Viewer),
    ("h-worker", Role::Worker),
    ("h-core", Role::Core),
    ("h-moderator", Role::Moderator),
    ("h-owner", Role::Owner),
];
/// One hostile client: a member of `ROOM` on one kind of socket.
#[derive(Debug, Clone)]
struct Hostile {
    user: String,
    role: Role,
    token: String,
    /// The same user's token for `OTHER_ROOM`.
    other_token: String,
    live: bool,
}

/// What the hostile clients aim at.
#[derive(Debug)]
struct Targets {
    base: String,
    /// Task ids of both rooms.
    tasks: Vec<i64>,
    /// A chat message of `OTHER_ROOM`.
    other_message: i64,
    /// Users hostile moderators kick, mute and release: the hostile ones,
    /// the owner (whom no one outranks) and a stranger. Never the honest
    /// co-editors and chatter, whose sockets a kick would legitimately close.
    members: Vec<String>,
    /// The honest co-editors' awareness client ids.
    honest_ids: Vec<u64>,
}

/// What one hostile client saw.
#[derive(Debug, Default)]
struct Seen {
    /// Closes by code; None: the socket ended without a close frame.
    closes: BTreeMap<Option<u16>, usize>,
    /// Refused upgrades by HTTP status.
    refused: BTreeMap<u16, usize>,
    /// Frames sent.
    sent: usize,
}

impl Seen {
    fn add(&mut self, other: Seen) {
        for (code, count) in other.closes {
            *self.closes.entry(code).or_default() += count;
        }
        for (status, count) in other.refused {
            *self.refused.entry(status).or_default() += count;
        }
        self.sent += other.sent;
    }
}

async fn hostile_crowd(backend: Backend) {
    let seed = std::env::var("CROWDROOM_HOSTILE_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("hostile crowd seed: CROWDROOM_HOSTILE_SEED={seed}");
    checks::count_server_panics();
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let owner = crowd_project(&server, ROOM).await;
    let other_owner = crowd_project(&server, OTHER_ROOM).await;
    server.token(ROOM, VICTIM, Role::Worker).await;
    let (editors, editor_tokens) = honest::editors(&server).await;
    let targets = Arc::new(targets(&server, &owner, &other_owner, &editors).await);

    let deadline = Instant::now() + RUN;
    let honest = Honest::start(&server, editors, seed, deadline).await;
    let attacks = hostile::start(&server, targets, seed, deadline).await;
    let mut seen = Seen::default();
    for attack in attacks {
        seen.add(joined(attack, seed, "a hostile client").await);
    }
    let acked = honest.join(seed).await;
    // Once their sockets are gone, the server has taken in every frame the
    // hostile clients sent.
    let what = format!("seed {seed}: every socket but the co-editors' to close");
    eventually(&what, || async {
        server.metric("crowdroom_connections").await == CO_EDITORS as f64
    })
    .await;
    eprintln!(
        "seed {seed}: hostile frames {}, closes {:?}, refused upgrades {:?}; \
         acknowledged: {} document writes, {} answers, {} chat messages",
        seen.sent,
        seen.closes,
        seen.refused,
        acked.keys.len(),
        acked.answers.len(),
        acked.messages.len()
    );
    let got_nothing =
        acked.keys.is_empty() || acked.answers.is_empty() || acked.messages.is_empty();
    assert!(
        !got_nothing,
        "seed {seed}: an honest member got nothing acknowledged"
    );
    checks::closes(&seen, seed);
    checks::awareness(&server, &acked.editors, seed).await;
    checks::answers(&server, &owner, &acked.answers, seed).await;
    checks::chat(&server, &owner, &acked.messages, seed).await;
    checks::document(&server, acked, &editor_tokens, seed).await;
    checks::serving(&server, seed).await;
    checks::no_server_panic(seed);
    server.stop().await;
}

/// `work::setup`'s project and tasks in `room`, with nothing that would
/// pause a fast honest worker (no gold, no minimum lead time); returns the
/// owner's token.
async fn crowd_project(server: &TestServer, room: &str) -> String {
    let owner = work::setup(server, room, OVERLAP, 300, TASKS).await;
    let project = json!({
        "answer_schema": {"kind": "single_choice", "options": ["pos", "neg"]},
        "overlap_min": OVERLAP, "overlap_max": OVERLAP, "onboarding_gold": 0, "gold_rate": 0.0,
        "min_lead_time_ms": 0, "reservation_ttl_seconds": 300, "pay_per_answer": 1000
    });
    let url = server.http_url(&format!("/api/v1/rooms/{room}/project"));
    let put = http::request("PUT", &url, Some(&owner), Some(project)).await;
    assert_eq!(put.status, 200, "{}", put.body);
    owner
}

async fn targets(
    server: &TestServer,
    owner: &str,
    other_owner: &str,
    editors: &[YjsClient],
) -> Targets {
    let mut tasks = Vec::new();
    for (room, token) in [(ROOM, owner), (OTHER_ROOM, other_owner)] {
        let url = server.http_url(&format!("/api/v1/rooms/{room}/tasks?limit=1000"));
        let listed = http::get(&url, Some(token)).await.json();
        let ids = listed["tasks"].as_array().into_iter().flatten();
        tasks.extend(ids.filter_map(|task| task["id"].as_i64()));
    }
    assert_eq!(tasks.len(), 2 * TASKS, "every task is listed");
    let token = server.token(OTHER_ROOM, OTHER_USER, Role::Worker).await;
    let mut stranger = LiveClient::connect(&server.ws_url(""), OTHER_ROOM, &token).await;
    let sent = stranger
        .request("chat.send", json!({"body": "elsewhere"}))
        .await;
    let other_message = sent["result"]["message"]["id"].as_i64().expect("sent");
    let mut members: Vec<String> = HOSTILE.iter().map(|(user, _)| user.to_string()).collect();
    members.extend(["olivia", "nobody"].map(str::to_owned));
    Targets {
        base: server.ws_url(""),
        tasks,
        other_message,
        members,
        honest_ids: editors
            .iter()
            .map(|client| client.doc.client_id().get())
            .collect(),
    }
}

/// Each client's own generator, drawn from the run's seed.
fn client_rng(seed: u64, index: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// A spawned client's result; its panic fails the test with the seed.
async fn joined<T>(task: JoinHandle<T>, seed: u64, who: &str) -> T {
    task.await
        .unwrap_or_else(|error| panic!("seed {seed}: {who} failed: {error}"))
}
