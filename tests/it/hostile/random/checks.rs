//! What must hold once the crowd has gone: documented closes only, the
//! honest awareness states untouched, converged replicas holding every
//! acknowledged write, every acknowledged answer and chat message stored,
//! no panic, and a healthy server that still serves newcomers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

use crowdroom::auth::Role;
use crowdroom_crdt::{AwarenessUpdate, Message};
use crowdroom_tests::client::{Incoming, LiveClient, YjsClient};
use crowdroom_tests::{TestServer, http};
use serde_json::{Value, json};

use super::honest::{Acknowledged, awareness_state, editor};
use super::{CHATTER, DOC, ROOM, Seen, WORKER};

/// Statuses of a refused upgrade that docs/PROTOCOL.md and docs/API.md
/// document: a bad id, a bad token, another room's token or a forbidden
/// document, a viewer's unknown document, the document quota, too many
/// sockets for one user.
const UPGRADE_REFUSALS: [u16; 6] = [400, 401, 403, 404, 413, 429];

/// Panics raised in the server's or the crdt crate's own code.
static SERVER_PANICS: AtomicUsize = AtomicUsize::new(0);

/// Counts panics located in the server's or the crdt crate's code, even
/// those a room or the store's thread contains: none may be reachable by a
/// client. (The hook is the process's; nextest runs each test alone.)
pub(super) fn count_server_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let ours = info.location().is_some_and(|location| {
                let file = location.file();
                ["server/src/", "crdt/src/"]
                    .iter()
                    .any(|dir| file.starts_with(dir) || file.contains(&format!("/{dir}")))
            });
            if ours {
                SERVER_PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

pub(super) fn no_server_panic(seed: u64) {
    let panics = SERVER_PANICS.load(Ordering::SeqCst);
    assert_eq!(
        panics, 0,
        "seed {seed}: the server panicked (see the panic messages above)"
    );
}

/// The crowd ran and was closed only with documented codes, and refused
/// only with documented statuses.
pub(super) fn closes(seen: &Seen, seed: u64) {
    assert!(
        seen.closes.values().sum::<usize>() >= 10,
        "seed {seed}: the hostile clients were hardly ever closed: {:?}",
        seen.closes
    );
    let documented = documented_close_codes();
    for code in seen.closes.keys().flatten() {
        assert!(
            documented.contains(code),
            "seed {seed}: close code {code} is not in docs/PROTOCOL.md ({documented:?})"
        );
    }
    for status in seen.refused.keys() {
        assert!(
            UPGRADE_REFUSALS.contains(status),
            "seed {seed}: an upgrade was refused with the undocumented status {status}"
        );
    }
}

/// Every close code in docs/PROTOCOL.md's close-code table.
fn documented_close_codes() -> BTreeSet<u16> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md");
    let text = std::fs::read_to_string(path).expect("docs/PROTOCOL.md");
    let (_, table) = text
        .split_once("## WebSocket close codes")
        .expect("the close-code section");
    let codes: BTreeSet<u16> = table
        .lines()
        .filter_map(|line| line.strip_prefix("| ")?.split(' ').next()?.parse().ok())
        .collect();
    assert!(codes.contains(&1002) && codes.contains(&4029), "{codes:?}");
    codes
}

/// The honest awareness states are still the honest clients' own: no
/// hostile update or removal for their ids got through.
pub(super) async fn awareness(server: &TestServer, editors: &[YjsClient], seed: u64) {
    let token = server.token(ROOM, "observer", Role::Viewer).await;
    let base = server.ws_url("");
    let mut observer = YjsClient::open(&base, ROOM, DOC, &token)
        .await
        .expect("upgrade");
    // The states come on joining (and answer the query if those were read).
    observer.send(&Message::QueryAwareness).await;
    let bytes = loop {
        match observer.next().await {
            Incoming::Awareness(bytes) => break bytes,
            Incoming::Closed(code) => panic!("seed {seed}: observer closed with {code:?}"),
            _ => {}
        }
    };
    let update = AwarenessUpdate::decode(&bytes).expect("the server's awareness decodes");
    let states: HashMap<u64, String> = update
        .entries
        .into_iter()
        .map(|entry| (entry.client_id, entry.state))
        .collect();
    for (index, client) in editors.iter().enumerate() {
        let id = client.doc.client_id().get();
        assert_eq!(
            states.get(&id),
            Some(&awareness_state(index)),
            "seed {seed}: {}'s awareness state was taken over",
            editor(index)
        );
    }
}

/// The honest replicas converge, a fresh client reads the same state, and
/// every acknowledged write is in it.
pub(super) async fn document(
    server: &TestServer,
    acked: Acknowledged,
    tokens: &[String],
    seed: u64,
) {
    let base = server.ws_url("");
    // An acknowledged write orders all earlier traffic; a resync on a new
    // socket fetches anything the old one missed.
    let mut replicas = Vec::new();
    for (index, mut client) in acked.editors.into_iter().enumerate() {
        client.write_acked(&format!("done{index}"), "1").await;
        replicas.push(client.doc.clone());
    }
    let mut snapshots = Vec::new();
    for (replica, token) in replicas.into_iter().zip(tokens) {
        let mut again = YjsClient::open_with(&base, ROOM, DOC, token, replica)
            .await
            .expect("reconnect");
        again.sync().await;
        snapshots.push(again.snapshot_json());
    }
    let token = server.token(ROOM, "newcomer", Role::Worker).await;
    let fresh = YjsClient::connect(&base, ROOM, DOC, &token).await;
    let expected = fresh.snapshot_json();
    for (index, snapshot) in snapshots.iter().enumerate() {
        assert_eq!(
            snapshot,
            &expected,
            "seed {seed}: {} diverged from a fresh client",
            editor(index)
        );
    }
    for (key, value) in &acked.keys {
        assert_eq!(
            fresh.value(key).as_deref(),
            Some(value.as_str()),
            "seed {seed}: the acknowledged {key} is not in the document"
        );
    }
}

/// The honest worker's answers in the export are exactly the acknowledged ones.
pub(super) async fn answers(
    server: &TestServer,
    owner: &str,
    acked: &BTreeSet<(i64, String)>,
    seed: u64,
) {
    let url = server.http_url(&format!("/api/v1/rooms/{ROOM}/export"));
    let export = http::get(&url, Some(owner)).await;
    assert_eq!(export.status, 200, "seed {seed}: {}", export.body);
    let mut stored = BTreeSet::new();
    for line in export.body.lines().filter(|line| !line.trim().is_empty()) {
        let task: Value = serde_json::from_str(line).expect("a JSON line");
        let id = task["task_id"].as_i64().expect("a task id");
        for answer in task["answers"].as_array().into_iter().flatten() {
            if answer["worker"] == WORKER {
                let choice = answer["answer"].as_str().unwrap_or("").to_owned();
                stored.insert((id, choice));
            }
        }
    }
    assert_eq!(
        &stored, acked,
        "seed {seed}: the honest worker's answers in the store are not the acknowledged ones"
    );
}

/// The honest chatter's messages in the room's history, read by the owner
/// (who sees the bodies of deleted ones too) paging back, are exactly the
/// acknowledged ones.
pub(super) async fn chat(
    server: &TestServer,
    owner: &str,
    acked: &BTreeMap<i64, String>,
    seed: u64,
) {
    let mut stored = BTreeMap::new();
    let mut before: Option<i64> = None;
    // Far more pages than the crowd can fill.
    for _ in 0..1000 {
        let page = match before {
            Some(before) => format!("/api/v1/rooms/{ROOM}/chat?limit=200&before={before}"),
            None => format!("/api/v1/rooms/{ROOM}/chat?limit=200"),
        };
        let page = http::get(&server.http_url(&page), Some(owner)).await;
        assert_eq!(page.status, 200, "seed {seed}: {}", page.body);
        let messages = page.json()["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let Some(first) = messages.first().and_then(|message| message["id"].as_i64()) else {
            assert_eq!(
                &stored, acked,
                "seed {seed}: the honest chatter's messages in the history are not the acknowledged ones"
            );
            return;
        };
        before = Some(first);
        for message in messages.iter().filter(|message| message["user"] == CHATTER) {
            let id = message["id"].as_i64().expect("an id");
            stored.insert(id, message["body"].as_str().unwrap_or("").to_owned());
        }
    }
    panic!("seed {seed}: the chat history did not end");
}

/// `/healthz` is ok, no room crashed and no write failed, and a newcomer
/// can join, chat, take a task and write.
pub(super) async fn serving(server: &TestServer, seed: u64) {
    let health = http::get(&server.http_url("/healthz"), None).await;
    assert_eq!(health.status, 200, "seed {seed}: {}", health.body);
    for metric in [
        "crowdroom_rooms_crashed_total",
        "crowdroom_commit_failures_total",
    ] {
        assert_eq!(server.metric(metric).await, 0.0, "seed {seed}: {metric}");
    }
    let token = server.token(ROOM, "latecomer", Role::Worker).await;
    let mut late = LiveClient::connect(&server.ws_url(""), ROOM, &token).await;
    let sent = late.request("chat.send", json!({"body": "made it"})).await;
    assert_eq!(sent["ok"], true, "seed {seed}: {sent}");
    let granted = late.request("task.request", json!({})).await;
    let task = &granted["result"]["task"]["id"];
    assert!(task.is_i64(), "seed {seed}: {granted}");
    let mut doc = YjsClient::connect(&server.ws_url(""), ROOM, DOC, &token).await;
    doc.write_acked("latecomer", "1").await;
}
