//! The hostile clients' loop: connect (now and then to the wrong place),
//! send a random step, read for a random while, note how the server
//! closed the socket, reconnect; until the deadline.

use std::sync::Arc;
use std::time::Duration;

use crowdroom_tests::TestServer;
use crowdroom_tests::client;
use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use rand::rngs::StdRng;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::frames::{self, Replica, pick};
use super::{DOC, HOSTILE, Hostile, OTHER_ROOM, ROOM, Seen, Targets, client_rng};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The longest a hostile client reads after a step, in milliseconds: from
/// a client that barely reads to one that reads every answer.
const MOST_READ_MS: u64 = 40;
/// One step in this many, the client drops its socket and comes back.
const DROP_ONE_IN: u32 = 60;

/// Starts one live and one y-websocket client for each hostile member.
pub(super) async fn start(
    server: &TestServer,
    targets: Arc<Targets>,
    seed: u64,
    deadline: Instant,
) -> Vec<JoinHandle<Seen>> {
    let mut attacks = Vec::new();
    for (user, role) in HOSTILE {
        let token = server.token(ROOM, user, role).await;
        let other_token = server.token(OTHER_ROOM, user, role).await;
        for live in [true, false] {
            let agent = Hostile {
                user: user.to_owned(),
                role,
                token: token.clone(),
                other_token: other_token.clone(),
                live,
            };
            let rng = client_rng(seed, 1000 + attacks.len() as u64);
            attacks.push(tokio::spawn(run(agent, targets.clone(), deadline, rng)));
        }
    }
    attacks
}

async fn run(agent: Hostile, targets: Arc<Targets>, deadline: Instant, mut rng: StdRng) -> Seen {
    let mut seen = Seen::default();
    while Instant::now() < deadline {
        let url = url(&mut rng, &agent, &targets);
        let mut ws = match client::connect(&url).await {
            Ok(ws) => ws,
            Err(status) => {
                *seen.refused.entry(status).or_default() += 1;
                continue;
            }
        };
        let mut replica = Replica::new(&mut rng, &agent.user);
        let mut granted = None;
        while Instant::now() < deadline && !rng.random_ratio(1, DROP_ONE_IN) {
            let step = if agent.live {
                frames::live(&mut rng, &agent, &targets, granted)
            } else {
                frames::yjs(&mut rng, &targets, &mut replica)
            };
            seen.sent += step.len();
            let mut sent = Ok(());
            for frame in step {
                sent = ws.feed(frame).await;
                if sent.is_err() {
                    break;
                }
            }
            if sent.is_ok() {
                // An error here means the server closed: read how, below.
                let _ = ws.flush().await;
            }
            let wait = Duration::from_millis(rng.random_range(0..=MOST_READ_MS));
            if let Some(code) = read_for(&mut ws, wait, &mut granted).await {
                *seen.closes.entry(code).or_default() += 1;
                break;
            }
        }
    }
    seen
}

/// Where to connect: mostly the right place, now and then another room, a
/// bad or foreign token, a bad name or a task's document.
fn url(rng: &mut StdRng, agent: &Hostile, targets: &Targets) -> String {
    let base = &targets.base;
    let token = match rng.random_range(0..30) {
        0 => agent.other_token.clone(),
        1 => format!("crt_{:x}", rng.random::<u64>()),
        2 => String::new(),
        _ => agent.token.clone(),
    };
    let room = match rng.random_range(0..30) {
        0 => OTHER_ROOM,
        1 => "bad%20room",
        _ => ROOM,
    };
    if agent.live {
        return format!("{base}/rooms/{room}/live?token={token}");
    }
    let task = pick(rng, &targets.tasks);
    let doc = match rng.random_range(0..24) {
        0 => format!("task-{task}"),
        1 => format!("task-{task}:{}", pick(rng, &targets.members)),
        2 => format!("task-{task}:{}", agent.user),
        3 => format!("page{}", rng.random_range(0..10)),
        4 => "bad%20name".to_owned(),
        5 => "x".repeat(200),
        _ => DOC.to_owned(),
    };
    format!("{base}/yjs/{room}/{doc}?token={token}")
}

/// Reads what the server sends for `wait`, noting a granted task; the
/// close code once the server closed (None inside: no close frame).
async fn read_for(ws: &mut Ws, wait: Duration, granted: &mut Option<i64>) -> Option<Option<u16>> {
    let until = Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(until, ws.next()).await {
            Err(_) => return None,
            Ok(None | Some(Err(_))) => return Some(None),
            Ok(Some(Ok(WsMessage::Close(frame)))) => {
                return Some(frame.map(|frame| u16::from(frame.code)));
            }
            Ok(Some(Ok(WsMessage::Text(text)))) => {
                let reply = serde_json::from_str::<Value>(&text).unwrap_or_default();
                if let Some(task) = reply["result"]["task"]["id"].as_i64() {
                    *granted = Some(task);
                }
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}
