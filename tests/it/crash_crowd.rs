//! kill -9 under a crowd of workers, then restart on the same database:
//! every acknowledged answer and grant is durable, each task's counts equal
//! its answers and live reservations, no task is decided twice, and the
//! queue resumes until every task is decided. The real `crowdroom` binary,
//! on both stores.
//!
//! The crowd's pace and choices come from a seed, printed at the start
//! (`CRASH_CROWD_SEED=<n>` replays the choices; the kill's timing is real).

mod store_view;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crowdroom::Store;
use crowdroom::auth::Role;
use crowdroom::ids::{RoomId, UserId};
use crowdroom_tests::client::{self, LiveClient};
use crowdroom_tests::process::ServerProcess;
use crowdroom_tests::{Backend, TIMEOUT, TestDb, both_stores};
use futures_util::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use store_view::{Api, check_all_decided, check_export, check_store};

both_stores! {
    kill_9_under_a_crowd_then_restart => kill_9_under_a_crowd;
}

const ROOM: &str = "crowd";
const TASKS: usize = 60;
const OVERLAP: i64 = 3;
const WORKERS: usize = 12;
/// Short, as a crowd room's would be, yet longer than the whole test: no
/// reservation expires while it runs, so every one ends in an answer or a skip.
const TTL_SECONDS: u64 = 30;
const PAY: i64 = 20_000;
/// How long the crowd works before the plug is pulled. At the pace below
/// the crowd answers at most 150 of the 180 slots by then (two thinks per
/// answer, twelve workers), so the kill lands mid-flight and work remains.
const RUN_BEFORE_KILL: Duration = Duration::from_secs(2);
/// A worker's pause before each message, in ms (the work itself, not a
/// wait for an event): keeps every connection
/// under the live channel's rate limit (20 a second) and the crowd from
/// finishing before the kill.
const THINK_MIN_MS: u64 = 80;
const THINK_MAX_MS: u64 = 160;
/// How often a worker heartbeats its reservation before answering.
const HEARTBEAT_CHANCE: f64 = 0.3;
/// Most tasks a worker skips (before the kill only, so the queue can drain).
const MAX_SKIPS: usize = 3;
/// Fewest answers acknowledged before the kill, for it to land under a crowd.
const MIN_ACKED_BEFORE_KILL: usize = 24;
/// A short room lease, so the restarted process may run the room a second
/// after the kill rather than the default 15 (a binary without leases
/// ignores the variable).
const SHORT_LEASE: (&str, &str) = ("CROWDROOM_ROOM_LEASE_TTL", "1s");
/// The close code and HTTP status of "this room runs in another process,
/// try later": the killed process's lease, until it lapses.
const ROOM_ELSEWHERE_CLOSE: u16 = 4013;
const ROOM_ELSEWHERE_STATUS: u16 = 503;

/// What the server acknowledged (a reply with `ok: true`).
#[derive(Default)]
struct Acked {
    grants: Vec<(i64, String)>,
    answers: Vec<Answer>,
    skips: Vec<(i64, String)>,
    /// A worker's reservation they know they still hold: granted, and
    /// neither a submit nor a skip sent since.
    held: HashMap<String, i64>,
}

#[derive(Debug, Clone)]
struct Answer {
    task: i64,
    worker: String,
    answer_id: i64,
}

/// Every worker gives a task the same answer, so each task is decided
/// (confidently) the first time it reaches its overlap.
fn truth(task: i64) -> &'static str {
    if task % 2 == 0 { "pos" } else { "neg" }
}

/// Whether worker `index` skips `task`: at most two of the twelve workers
/// skip any one task, so every task can still be answered three times.
fn skips(task: i64, index: usize) -> bool {
    (task + index as i64).rem_euclid(7) == 0
}

async fn think(rng: &mut StdRng) {
    let pause = rng.random_range(THINK_MIN_MS..THINK_MAX_MS);
    tokio::time::sleep(Duration::from_millis(pause)).await;
}

fn worker_name(index: usize) -> String {
    format!("w{index:02}")
}

async fn kill_9_under_a_crowd(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let seed = std::env::var("CRASH_CROWD_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("crash_crowd {backend:?}: CRASH_CROWD_SEED={seed}");
    let (owner, workers) = seed_room(&db.url).await;
    let server = ServerProcess::start_with_env(&db.url, &[], &[SHORT_LEASE]).await;
    let api = Api {
        base: format!("http://{}", server.addr),
        owner,
    };
    api.setup_project().await;
    let mut acked = crowd_until_killed(server, &workers, seed).await;
    eprintln!(
        "crash_crowd {backend:?}: killed after {} grants, {} answers, {} skips acknowledged",
        acked.grants.len(),
        acked.answers.len(),
        acked.skips.len()
    );

    // Restarted on the same database: the store matches what was acknowledged.
    let server = ServerProcess::start_with_env(&db.url, &[], &[SHORT_LEASE]).await;
    let api = Api {
        base: format!("http://{}", server.addr),
        owner: api.owner,
    };
    let stored = check_store(&api, &db.url, &acked).await;
    for (worker, task) in &acked.held {
        assert!(
            stored.reservations.contains(&(*task, worker.clone())),
            "{worker}'s acknowledged reservation of task {task} was lost"
        );
    }
    assert!(
        stored.tasks.values().any(|task| task.state != "complete"),
        "the crowd finished before the kill"
    );

    // The queue resumes: the same workers reconnect and drain it.
    let base = format!("ws://{}", server.addr);
    wait_for_room(&base, &workers[0]).await;
    resume(&base, &workers, seed, &mut acked).await;
    let stored = check_store(&api, &db.url, &acked).await;
    check_all_decided(&stored);
    check_export(&api, &stored).await;
    let status = server.terminate().await;
    assert!(status.success(), "clean exit after SIGTERM: {status:?}");
}

/// Runs the crowd for [`RUN_BEFORE_KILL`], kills the server with -9, and
/// returns what it acknowledged.
async fn crowd_until_killed(server: ServerProcess, workers: &[String], seed: u64) -> Acked {
    let acked = Arc::new(Mutex::new(Acked::default()));
    let connected = Arc::new(AtomicUsize::new(0));
    let mut crowd = Vec::new();
    for (index, token) in workers.iter().enumerate() {
        crowd.push(tokio::spawn(work_until_killed(
            format!("ws://{}", server.addr),
            index,
            token.clone(),
            seed,
            acked.clone(),
            connected.clone(),
        )));
    }
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while connected.load(Ordering::SeqCst) < WORKERS {
        assert!(tokio::time::Instant::now() < deadline, "the crowd connects");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The one deliberate sleep: let the crowd work, then pull the plug (on
    // a machine slow enough to need it, once some answers are in).
    tokio::time::sleep(RUN_BEFORE_KILL).await;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while acked.lock().unwrap().answers.len() < MIN_ACKED_BEFORE_KILL {
        assert!(tokio::time::Instant::now() < deadline, "the crowd answers");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill9().await;
    for worker in crowd {
        tokio::time::timeout(TIMEOUT, worker)
            .await
            .expect("a worker noticed the kill")
            .unwrap();
    }
    Arc::try_unwrap(acked)
        .ok()
        .expect("every worker is done")
        .into_inner()
        .unwrap()
}

/// The same workers reconnect to the restarted server and work until no
/// task is left; adds what it acknowledged to `acked`.
async fn resume(base: &str, workers: &[String], seed: u64, acked: &mut Acked) {
    let mut crowd = Vec::new();
    for (index, token) in workers.iter().enumerate() {
        let name = worker_name(index);
        let answered = acked.answers.iter().filter(|answer| answer.worker == name);
        let skipped = acked.skips.iter().filter(|(_, worker)| *worker == name);
        let done: HashSet<i64> = answered
            .map(|answer| answer.task)
            .chain(skipped.map(|(task, _)| *task))
            .collect();
        crowd.push(tokio::spawn(work_until_done(
            base.to_owned(),
            index,
            token.clone(),
            seed,
            acked.held.get(&name).copied(),
            done,
        )));
    }
    for worker in crowd {
        let (grants, answers) = tokio::time::timeout(TIMEOUT, worker)
            .await
            .expect("a worker ran out of work")
            .unwrap();
        acked.grants.extend(grants);
        acked.answers.extend(answers);
    }
    acked.held.clear();
}

/// Waits until the restarted server runs the room: until the killed
/// process's lease on it lapses, its live channel is refused with "try later".
async fn wait_for_room(base: &str, token: &str) {
    let url = format!("{base}/rooms/{ROOM}/live?token={token}");
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        match client::connect(&url).await {
            Ok(mut ws) => match tokio::time::timeout(TIMEOUT, ws.next()).await {
                Ok(Some(Ok(WsMessage::Text(_)))) => {
                    // The hello: the room runs here.
                    let _ = ws.close(None).await;
                    return;
                }
                Ok(Some(Ok(WsMessage::Close(Some(frame)))))
                    if u16::from(frame.code) == ROOM_ELSEWHERE_CLOSE => {}
                other => panic!("the live channel opened with {other:?}"),
            },
            Err(ROOM_ELSEWHERE_STATUS) => {}
            Err(status) => panic!("the live channel was refused with {status}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the restarted server never took the room back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates the room, its owner and workers; returns their tokens.
async fn seed_room(url: &str) -> (String, Vec<String>) {
    let store = Store::open(url).await.unwrap();
    let room = RoomId::parse(ROOM).unwrap();
    store.create_room(&room, ROOM).await.unwrap();
    let members = std::iter::once(("olivia".to_owned(), Role::Owner))
        .chain((0..WORKERS).map(|index| (worker_name(index), Role::Worker)));
    let mut tokens = Vec::new();
    for (name, role) in members {
        let user = UserId::parse(&name).unwrap();
        store.ensure_user(&user, &name).await.unwrap();
        tokens.push(store.issue_token(&room, &user, role, None).await.unwrap().1);
    }
    store.close().await;
    let owner = tokens.remove(0);
    (owner, tokens)
}

/// Requests, heartbeats now and then, skips sometimes and answers, until
/// the server dies; records every acknowledgement.
async fn work_until_killed(
    base: String,
    index: usize,
    token: String,
    seed: u64,
    acked: Arc<Mutex<Acked>>,
    connected: Arc<AtomicUsize>,
) {
    let worker = worker_name(index);
    let mut rng = StdRng::seed_from_u64(seed ^ index as u64);
    let mut client = LiveClient::connect(&base, ROOM, &token).await;
    connected.fetch_add(1, Ordering::SeqCst);
    let mut skipped = 0;
    // Ends when the socket closes under the kill (the caller's timeout bounds it).
    loop {
        think(&mut rng).await;
        let Some(granted) = client.try_request("task.request", json!({})).await else {
            return;
        };
        assert_eq!(granted["ok"], true, "{worker}: {granted}");
        let Some(task) = granted["result"]["task"]["id"].as_i64() else {
            // Every free slot is reserved by someone else for now.
            assert_eq!(
                granted["result"]["reason"], "no_work",
                "{worker}: {granted}"
            );
            continue;
        };
        {
            let mut acked = acked.lock().unwrap();
            acked.grants.push((task, worker.clone()));
            acked.held.insert(worker.clone(), task);
        }
        if rng.random_bool(HEARTBEAT_CHANCE) {
            think(&mut rng).await;
            let Some(beat) = client
                .try_request("task.heartbeat", json!({"task_id": task}))
                .await
            else {
                return;
            };
            assert_eq!(beat["ok"], true, "{worker}: {beat}");
            assert_eq!(beat["result"]["task_id"], task, "{worker}: {beat}");
        }
        think(&mut rng).await;
        // From here on, whether the worker still holds it is unknown until the reply.
        acked.lock().unwrap().held.remove(&worker);
        if skipped < MAX_SKIPS && skips(task, index) {
            let Some(reply) = client
                .try_request("task.skip", json!({"task_id": task}))
                .await
            else {
                return;
            };
            assert_eq!(reply["ok"], true, "{worker}: {reply}");
            skipped += 1;
            acked.lock().unwrap().skips.push((task, worker.clone()));
        } else {
            let Some(reply) = client
                .try_request(
                    "task.submit",
                    json!({"task_id": task, "answer": truth(task)}),
                )
                .await
            else {
                return;
            };
            assert_eq!(reply["ok"], true, "{worker}: {reply}");
            let answer_id = reply["result"]["submitted"]["answer_id"]
                .as_i64()
                .unwrap_or_else(|| panic!("{worker}: no answer id in {reply}"));
            acked.lock().unwrap().answers.push(Answer {
                task,
                worker: worker.clone(),
                answer_id,
            });
        }
    }
}

/// After the restart: finds the reservation the worker knew it held, then
/// requests and answers until there is no work left. Returns the grants
/// and answers acknowledged.
async fn work_until_done(
    base: String,
    index: usize,
    token: String,
    seed: u64,
    held: Option<i64>,
    mut done: HashSet<i64>,
) -> (Vec<(i64, String)>, Vec<Answer>) {
    let worker = worker_name(index);
    let mut rng = StdRng::seed_from_u64(seed ^ index as u64 ^ 0x5eed);
    let mut client = LiveClient::connect(&base, ROOM, &token).await;
    let queue = client.request("queue.get", json!({})).await;
    assert_eq!(queue["ok"], true, "{worker}: {queue}");
    if let Some(task) = held {
        assert_eq!(
            queue["result"]["mine"]["task"]["id"], task,
            "{worker} still holds the reservation acknowledged before the kill: {queue}"
        );
    }
    let (mut grants, mut answers) = (Vec::new(), Vec::new());
    // Each round answers a task this worker never answered: at most TASKS rounds.
    for _ in 0..=TASKS {
        think(&mut rng).await;
        let granted = client.request("task.request", json!({})).await;
        assert_eq!(granted["ok"], true, "{worker}: {granted}");
        let Some(task) = granted["result"]["task"]["id"].as_i64() else {
            assert_eq!(
                granted["result"]["reason"], "no_work",
                "{worker}: {granted}"
            );
            return (grants, answers);
        };
        assert!(
            done.insert(task),
            "{worker} was granted task {task} again after answering or skipping it"
        );
        grants.push((task, worker.clone()));
        if rng.random_bool(HEARTBEAT_CHANCE) {
            let beat = client
                .request("task.heartbeat", json!({"task_id": task}))
                .await;
            assert_eq!(beat["ok"], true, "{worker}: {beat}");
        }
        think(&mut rng).await;
        let reply = client
            .request(
                "task.submit",
                json!({"task_id": task, "answer": truth(task)}),
            )
            .await;
        assert_eq!(reply["ok"], true, "{worker}: {reply}");
        let answer_id = reply["result"]["submitted"]["answer_id"]
            .as_i64()
            .unwrap_or_else(|| panic!("{worker}: no answer id in {reply}"));
        answers.push(Answer {
            task,
            worker: worker.clone(),
            answer_id,
        });
    }
    panic!("{worker} was granted more tasks than the room has");
}
