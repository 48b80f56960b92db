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
//! A generic y-websocket server needs nothing: a document exists once opened.

use std::sync::Mutex;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::config::{Cli, Protocol, Target};

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
}

impl RoomPlan {
    /// The WebSocket path (and query) of this room's document for client `slot`;
    /// `None` slot: the owner (convergence check).
    pub fn doc_path(&self, cli: &Cli, slot: Option<usize>) -> String {
        match cli.protocol {
            Protocol::YWebsocket => format!("/{}", self.name),
            Protocol::Crowdroom => {
                let token = self.token(slot);
                format!("/yjs/{}/{}?token={token}", self.name, cli.doc)
            }
        }
    }

    /// The live-channel path of this room for client `slot`.
    pub fn live_path(&self, slot: usize) -> String {
        format!("/rooms/{}/live?token={}", self.name, self.token(Some(slot)))
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
        Protocol::YWebsocket => Ok(indices
            .into_iter()
            .map(|index| RoomPlan {
                index,
                name: name(index),
                owner_token: None,
                tokens: Vec::new(),
            })
            .collect()),
        Protocol::Crowdroom => {
            let owner = cli
                .token
                .as_deref()
                .context("--token is required with --protocol crowdroom")?;
            let api = format!("{}/api/v1", target.http_base());
            let queue = Mutex::new(indices.into_iter());
            let done = Mutex::new(Vec::new());
            std::thread::scope(|scope| -> anyhow::Result<()> {
                let workers: Vec<_> = (0..PROVISION_THREADS)
                    .map(|_| {
                        scope.spawn(|| -> anyhow::Result<()> {
                            let agent: ureq::Agent = ureq::Agent::config_builder()
                                .http_status_as_error(false)
                                .build()
                                .into();
                            loop {
                                let next = queue
                                    .lock()
                                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                                    .next();
                                let Some(index) = next else { return Ok(()) };
                                let plan = provision_room(
                                    &agent,
                                    &api,
                                    owner,
                                    index,
                                    &name(index),
                                    cli.clients_per_room,
                                )?;
                                done.lock()
                                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                                    .push(plan);
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
            let mut rooms = done
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            rooms.sort_by_key(|room| room.index);
            Ok(rooms)
        }
    }
}

fn provision_room(
    agent: &ureq::Agent,
    api: &str,
    owner: &str,
    index: usize,
    name: &str,
    clients: usize,
) -> anyhow::Result<RoomPlan> {
    let (status, body) = post(agent, &format!("{api}/rooms"), owner, json!({ "id": name }))?;
    match status {
        201 => {}
        409 => bail!("room {name} already exists on this server: pick another --seed"),
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
    Ok(RoomPlan {
        index,
        name: name.to_owned(),
        owner_token: Some(room_owner),
        tokens,
    })
}

fn post(agent: &ureq::Agent, url: &str, token: &str, body: Value) -> anyhow::Result<(u16, Value)> {
    let mut response = agent
        .post(url)
        .header("Authorization", &format!("Bearer {token}"))
        .send_json(body)
        .with_context(|| format!("POST {url}"))?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}
