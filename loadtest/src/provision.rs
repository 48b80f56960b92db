//! Setting up the rooms and tokens a run needs, before anything is measured.
//!
//! Crowdroom: only through the public REST API, starting from one owner
//! token of any room. `POST /api/v1/rooms` creates each room `lt-<seed>-<i>`
//! and returns a fresh owner token for it; `POST /api/v1/rooms/{room}/tokens`
//! then issues one worker token per client (each client is its own user, as
//! in a real crowd, so presence and chat behave as they would). This is
//! blocking HTTP (ureq) on a few plain threads: it is not on the measured
//! path, and it keeps an HTTP stack out of the async runtime.
//!
//! The crowd scenario adds moderator tokens, the project and its tasks
//! (`crowd/setup.rs`).
//!
//! A generic y-websocket server or Hocuspocus needs nothing: a document exists
//! once opened.

use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::config::{Cli, Protocol, Scenario, Target};
use crate::crowd::setup::CrowdPlan;

/// Provisioning threads: the server commits each token with an fsync, so a
/// few requests in flight hide that latency without flooding it.
const PROVISION_THREADS: usize = 8;

/// One room of this process's shard.
#[derive(Debug, Clone)]
pub struct RoomPlan {
    /// Index in the whole run (0..rooms), across shards.
    pub index: usize,
    /// Crowdroom room id, or the y-websocket document name.
    pub name: String,
    /// Crowdroom: the room's owner token (used by the convergence check).
    pub owner_token: Option<String>,
    /// Crowdroom: one worker token per client; empty for y-websocket.
    pub tokens: Vec<String>,
    /// The crowd scenario: moderator tokens and the room's true labels.
    pub crowd: Option<Arc<CrowdPlan>>,
}

impl RoomPlan {
    /// The WebSocket path (and query) of this room's document for client `slot`;
    /// `None` slot: the owner (convergence check).
    pub fn doc_path(&self, cli: &Cli, slot: Option<usize>) -> String {
        match cli.protocol {
            // Hocuspocus ignores the path (the document name is in every
            // frame); it is set for the server's logs.
            Protocol::YWebsocket | Protocol::Hocuspocus => format!("/{}", self.name),
            Protocol::Crowdroom => {
                let token = self.token(slot);
                format!("/yjs/{}/{}?token={token}", self.name, cli.doc)
            }
        }
    }

    /// How this room's document frames are put on the wire.
    pub fn framing(&self, cli: &Cli) -> crate::hocuspocus::Framing {
        match cli.protocol {
            Protocol::Hocuspocus => crate::hocuspocus::Framing::hocuspocus(&self.name),
            Protocol::YWebsocket | Protocol::Crowdroom => crate::hocuspocus::Framing::Plain,
        }
    }

    /// The live-channel path of this room for client `slot`.
    pub fn live_path(&self, slot: usize) -> String {
        self.live_path_with(self.token(Some(slot)))
    }

    /// The live-channel path of this room with any token of it.
    pub fn live_path_with(&self, token: &str) -> String {
        format!("/rooms/{}/live?token={token}", self.name)
    }

    fn token(&self, slot: Option<usize>) -> &str {
        let token = match slot {
            Some(slot) => self.tokens.get(slot),
            None => self.owner_token.as_ref(),
        };
        token.map_or("", String::as_str)
    }
}

/// The rooms of this shard, with their tokens.
pub fn provision(cli: &Cli, target: &Target) -> anyhow::Result<Vec<RoomPlan>> {
    let indices: Vec<usize> = (0..cli.rooms)
        .filter(|&room| cli.shard.owns(room))
        .collect();
    let name = |index: usize| format!("lt-{}-{index}", cli.seed);
    match cli.protocol {
        Protocol::YWebsocket | Protocol::Hocuspocus => Ok(indices
            .into_iter()
            .map(|index| RoomPlan {
                index,
                name: name(index),
                owner_token: None,
                tokens: Vec::new(),
                crowd: None,
            })
            .collect()),
        Protocol::Crowdroom => {
            let owner = cli
                .token
                .as_deref()
                .context("--token is required with --protocol crowdroom")?;
            let api = format!("{}/api/v1", target.http_base());
            let mut rooms = in_parallel(indices, |agent, index| {
                provision_room(agent, &api, owner, index, &name(index), cli)
            })?;
            rooms.sort_by_key(|room| room.index);
            Ok(rooms)
        }
    }
}

/// Runs `job` on every item from a few threads, each with its own HTTP
/// agent; the first error wins. Results come back in no particular order.
pub fn in_parallel<T: Send, R: Send>(
    items: Vec<T>,
    job: impl Fn(&ureq::Agent, T) -> anyhow::Result<R> + Sync,
) -> anyhow::Result<Vec<R>> {
    let queue = Mutex::new(items.into_iter());
    let done = Mutex::new(Vec::new());
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..PROVISION_THREADS)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    let agent = agent();
                    loop {
                        let next = queue
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .next();
                        let Some(item) = next else { return Ok(()) };
                        let result = job(&agent, item)?;
                        done.lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(result);
                    }
                })
            })
            .collect();
        for worker in workers {
            worker
                .join()
                .map_err(|_| anyhow::anyhow!("a provisioning thread panicked"))??;
        }
        Ok(())
    })?;
    Ok(done
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner))
}

/// An HTTP agent that returns error statuses as values (the callers map them).
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn provision_room(
    agent: &ureq::Agent,
    api: &str,
    owner: &str,
    index: usize,
    name: &str,
    cli: &Cli,
) -> anyhow::Result<RoomPlan> {
    let clients = cli.clients_per_room;
    let (status, body) = post(agent, &format!("{api}/rooms"), owner, json!({ "id": name }))?;
    match status {
        201 => {}
        409 => bail!(
            "room {name} already exists on this server (or a retried request created it): pick another --seed"
        ),
        401 | 403 => bail!("creating room {name}: {status} {body} (is --token an owner token?)"),
        _ => bail!("creating room {name}: HTTP {status} {body}"),
    }
    let room_owner = body["token"]
        .as_str()
        .context("the room reply has no token")?
        .to_owned();
    let mut tokens = Vec::with_capacity(clients);
    for slot in 0..clients {
        let url = format!("{api}/rooms/{name}/tokens");
        let (status, body) = post(
            agent,
            &url,
            &room_owner,
            json!({ "user": format!("lt-u{slot}"), "role": "worker" }),
        )?;
        if status != 201 {
            bail!("issuing a token in {name}: HTTP {status} {body}");
        }
        tokens.push(
            body["token"]
                .as_str()
                .context("the token reply has no token")?
                .to_owned(),
        );
    }
    let crowd = if cli.scenario == Scenario::Crowd {
        let plan = crate::crowd::setup::provision_room(
            agent,
            &format!("{api}/rooms/{name}"),
            &room_owner,
            index,
            cli,
        )
        .with_context(|| format!("setting up the crowd project of {name}"))?;
        Some(Arc::new(plan))
    } else {
        None
    };
    Ok(RoomPlan {
        index,
        name: name.to_owned(),
        owner_token: Some(room_owner),
        tokens,
        crowd,
    })
}

/// Attempts per request: a 5xx reply (e.g. SQLite's "database is locked"
/// when the disk stalls) is retried, since setup is not what is measured.
const ATTEMPTS: u32 = 4;
/// Pause before the first retry; doubled for each further one.
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(500);

/// Sends `request` until it gets a reply below 500 or runs out of attempts.
fn with_retries(
    what: impl Fn() -> String,
    request: impl Fn() -> Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> anyhow::Result<(u16, Value)> {
    let mut pause = RETRY_PAUSE;
    let mut attempt = 1;
    loop {
        let last = attempt >= ATTEMPTS;
        match request() {
            Ok(response) => {
                let (status, body) = read_reply(response);
                if status < 500 || last {
                    return Ok((status, body));
                }
            }
            Err(error) if last => return Err(error).with_context(what),
            Err(_) => {}
        }
        std::thread::sleep(pause);
        pause *= 2;
        attempt += 1;
    }
}

/// `POST url` with a JSON body: the status and the JSON reply.
pub fn post(
    agent: &ureq::Agent,
    url: &str,
    token: &str,
    body: Value,
) -> anyhow::Result<(u16, Value)> {
    let auth = format!("Bearer {token}");
    with_retries(
        || format!("POST {url}"),
        || {
            agent
                .post(url)
                .header("Authorization", &auth)
                .send_json(&body)
        },
    )
}

/// `PUT url` with a JSON body.
pub fn put(
    agent: &ureq::Agent,
    url: &str,
    token: &str,
    body: Value,
) -> anyhow::Result<(u16, Value)> {
    let auth = format!("Bearer {token}");
    with_retries(
        || format!("PUT {url}"),
        || {
            agent
                .put(url)
                .header("Authorization", &auth)
                .send_json(&body)
        },
    )
}

/// `GET url`.
pub fn get(agent: &ureq::Agent, url: &str, token: &str) -> anyhow::Result<(u16, Value)> {
    let auth = format!("Bearer {token}");
    with_retries(
        || format!("GET {url}"),
        || agent.get(url).header("Authorization", &auth).call(),
    )
}

/// Replies larger than this are refused (a page of 1,000 tasks is ~100 KiB).
const MAX_REPLY_BYTES: u64 = 64 * 1024 * 1024;

fn read_reply(mut response: ureq::http::Response<ureq::Body>) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(MAX_REPLY_BYTES)
        .read_to_string()
        .unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
