//! What the hostile clients send: each step's frames.
//! A step is a well-formed request with random, out-of-range or cross-room
//! arguments, malformed JSON, a bad envelope, an unknown type, an
//! oversized or mistyped frame, a flood past the rate limit, garbage and
//! truncated y-websocket frames, spoofed awareness, repeated sync step 1,
//! or honest-looking work.

use crowdroom::auth::Role;
use crowdroom_crdt::{AwarenessEntry, AwarenessUpdate, Message};
use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::updates::encoder::Encode;
use yrs::{ClientID, Doc, Map, ReadTxn, StateVector, Transact};

use super::{Hostile, OTHER_USER, Targets, VICTIM, WORKER};
use crate::malformed::bad_frames;

/// Every live-channel request type (docs/PROTOCOL.md).
const LIVE_TYPES: [&str; 18] = [
    "chat.send",
    "chat.history",
    "chat.edit",
    "chat.delete",
    "presence.set",
    "ping",
    "queue.get",
    "task.request",
    "task.heartbeat",
    "task.submit",
    "task.skip",
    "mod.mute",
    "mod.unmute",
    "mod.kick",
    "mod.ban",
    "mod.lock",
    "mod.announce",
    "mod.release",
];
/// One byte over the live channel's 64 KiB frame limit.
const LIVE_OVERSIZE: usize = 64 * 1024 + 1;
/// One byte over the y-websocket 2 MiB frame limit.
const YJS_OVERSIZE: usize = 2 * 1024 * 1024 + 1;
/// Past the live channel's burst of 60 frames.
const LIVE_FLOOD: usize = 80;
/// Past the y-websocket burst of 1000 frames.
const YJS_FLOOD: usize = 1100;
/// Over the server's 64 KiB bound on one awareness state.
const BIG_STATE: usize = 70 * 1024;
/// Client ids and clocks at most this are JavaScript-safe integers.
const SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A hostile client's own replica of whatever document it opened; its
/// writes touch only its own keys, so they never take an honest write away.
pub(super) struct Replica {
    doc: Doc,
    prefix: String,
    writes: u64,
}

impl Replica {
    pub(super) fn new(rng: &mut StdRng, user: &str) -> Replica {
        Replica {
            doc: Doc::with_client_id(rng.random_range(1..SAFE_INTEGER)),
            prefix: format!("x-{user}-{}", rng.random::<u32>()),
            writes: 0,
        }
    }

    /// A write; one in ten is never sent, so the next ones reach the server
    /// with a gap in this client's clocks (no honest client sends that).
    fn edit(&mut self, rng: &mut StdRng) -> Option<Vec<u8>> {
        self.writes += 1;
        let map = self.doc.get_or_insert_map("m");
        let mut txn = self.doc.transact_mut();
        let key = format!("{}-{}", self.prefix, self.writes);
        map.insert(&mut txn, key, i64::from(rng.random::<u32>()));
        let update = txn.encode_update_v1();
        (!rng.random_ratio(1, 10)).then_some(update)
    }

    /// Everything the replica holds, as one update.
    fn state(&self) -> Vec<u8> {
        let txn = self.doc.transact();
        txn.encode_state_as_update_v1(&StateVector::default())
    }
}

/// One step on the live channel.
pub(super) fn live(
    rng: &mut StdRng,
    agent: &Hostile,
    targets: &Targets,
    granted: Option<i64>,
) -> Vec<WsMessage> {
    let text = |body: String| WsMessage::Text(body.into());
    match rng.random_range(0..100) {
        0..=54 => vec![text(request(rng, agent, targets, granted).to_string())],
        55..=64 => vec![text(garbage_json(rng))],
        65..=71 => vec![text(bad_envelope(rng))],
        72..=73 => {
            let body = "x".repeat(LIVE_OVERSIZE);
            vec![text(
                json!({"id": 1, "type": "chat.send", "body": body}).to_string(),
            )]
        }
        74..=75 => vec![WsMessage::Binary(random_bytes(rng, 64).into())],
        76..=77 => (0..LIVE_FLOOD)
            .map(|id| text(json!({"id": id, "type": "ping"}).to_string()))
            .collect(),
        _ => vec![text(diligent(rng, granted).to_string())],
    }
}

/// One step on y-websocket.
pub(super) fn yjs(rng: &mut StdRng, targets: &Targets, replica: &mut Replica) -> Vec<WsMessage> {
    let binary = |bytes: Vec<u8>| WsMessage::Binary(bytes.into());
    match rng.random_range(0..100) {
        0..=29 => {
            let step2 = rng.random_ratio(1, 4);
            let update = replica.edit(rng);
            let frame = update.map(|update| match step2 {
                true => Message::SyncStep2(&update).encode(),
                false => Message::Update(&update).encode(),
            });
            frame.into_iter().map(binary).collect()
        }
        30..=39 => {
            let step1 = Message::SyncStep1(&state_vector(rng, targets, replica)).encode();
            vec![binary(step1); rng.random_range(1..=50)]
        }
        40..=51 => vec![binary(Message::Awareness(&spoof(rng, targets)).encode())],
        52..=57 => vec![binary(Message::QueryAwareness.encode()); rng.random_range(1..=20)],
        58..=71 => vec![binary(garbage(rng, replica))],
        72..=77 => vec![binary(Message::Update(&random_bytes(rng, 64)).encode())],
        78..=79 => vec![WsMessage::Text("hello".into())],
        80 => vec![binary(vec![0; YJS_OVERSIZE])],
        81..=84 => vec![binary(Message::PermissionDenied("let me in").encode())],
        85 => vec![binary(Message::QueryAwareness.encode()); YJS_FLOOD],
        // A step 2 sent again, with everything the replica holds.
        _ => vec![binary(Message::SyncStep2(&replica.state()).encode())],
    }
}

/// A request of any type with random arguments: valid, out of range, of
/// another room, of the wrong type; now and then a field unknown or missing.
fn request(rng: &mut StdRng, agent: &Hostile, targets: &Targets, granted: Option<i64>) -> Value {
    let kind = *pick(rng, &LIVE_TYPES);
    let mut fields = match kind {
        "chat.send" | "mod.announce" => json!({"body": text(rng)}),
        "chat.history" => json!({"before": number(rng, targets), "limit": number(rng, targets)}),
        "chat.edit" => json!({"message_id": number(rng, targets), "body": text(rng)}),
        "chat.delete" => json!({"message_id": number(rng, targets)}),
        "presence.set" => json!({"status": text(rng)}),
        "task.heartbeat" | "task.skip" => json!({"task_id": task(rng, targets, granted)}),
        "task.submit" => {
            json!({"task_id": task(rng, targets, granted), "answer": answer(rng)})
        }
        "mod.mute" => json!({
            "user": member(rng, agent, targets), "minutes": number(rng, targets), "reason": text(rng)
        }),
        "mod.unmute" => json!({"user": member(rng, agent, targets)}),
        "mod.kick" => json!({"user": member(rng, agent, targets), "reason": text(rng)}),
        "mod.ban" => {
            let user = match rng.random_range(0..5) {
                0 => json!(agent.user),
                1 => json!(VICTIM),
                2 => json!(OTHER_USER),
                3 => json!("nobody"),
                _ => wrong(rng),
            };
            json!({"user": user, "reason": text(rng)})
        }
        "mod.lock" => json!({"locked": lock(rng, agent.role), "reason": text(rng)}),
        "mod.release" => {
            let user = match rng.random_bool(0.3) {
                true => json!(WORKER),
                false => member(rng, agent, targets),
            };
            json!({ "user": user })
        }
        // ping, queue.get, task.request
        _ => json!({}),
    };
    if rng.random_ratio(1, 10) {
        fields["unexpected"] = number(rng, targets);
    }
    if rng.random_ratio(1, 10)
        && let Some(object) = fields.as_object_mut()
        && let Some(name) = object.keys().next().cloned()
    {
        object.remove(&name);
    }
    fields["id"] = json!(rng.random::<u32>());
    fields["type"] = json!(kind);
    fields
}

/// Honest-looking work, so hostile requests also race real commits.
fn diligent(rng: &mut StdRng, granted: Option<i64>) -> Value {
    let id = rng.random::<u32>();
    let choice = if rng.random_bool(0.5) { "pos" } else { "neg" };
    match (rng.random_range(0..5), granted) {
        (0 | 1, Some(task)) => {
            json!({"id": id, "type": "task.submit", "task_id": task, "answer": choice})
        }
        (0 | 1, None) | (2, _) => json!({"id": id, "type": "task.request"}),
        (3, _) => json!({"id": id, "type": "chat.send", "body": "just working"}),
        _ => json!({"id": id, "type": "presence.set", "status": "away"}),
    }
}

/// A number-ish argument: a task or message id of either room, small,
/// negative, huge, fractional, or not a number at all.
fn number(rng: &mut StdRng, targets: &Targets) -> Value {
    match rng.random_range(0..14) {
        0..=3 => json!(pick(rng, &targets.tasks)),
        4 => json!(targets.other_message),
        5 => json!(rng.random_range(0..2000)),
        6 => json!(-rng.random_range(1..1000)),
        7 => json!(i64::MAX),
        8 => json!(i64::MIN),
        9 => json!(u64::MAX),
        10 => json!(1.5e300),
        11 => json!("12"),
        _ => wrong(rng),
    }
}

fn task(rng: &mut StdRng, targets: &Targets, granted: Option<i64>) -> Value {
    match granted {
        Some(task) if rng.random_bool(0.5) => json!(task),
        _ => number(rng, targets),
    }
}

/// A text argument: empty, blank, too long, odd characters, or not text.
fn text(rng: &mut StdRng) -> Value {
    match rng.random_range(0..10) {
        0 => json!(""),
        1 => json!("   "),
        2 => json!("x".repeat(4001)),
        // U+0000 too, which PostgreSQL's text columns cannot hold.
        3 => json!("ünïcødé \u{202e}🎉\u{0}"),
        4 => wrong(rng),
        _ => json!(format!("hostile {}", rng.random::<u16>())),
    }
}

/// A member to act on: a hostile one, the owner, a stranger, oneself,
/// another room's user, an invalid name, or not a name at all.
fn member(rng: &mut StdRng, agent: &Hostile, targets: &Targets) -> Value {
    match rng.random_range(0..10) {
        0..=5 => json!(pick(rng, &targets.members)),
        6 => json!(agent.user),
        7 => json!(OTHER_USER),
        8 => json!("bad/user".repeat(20)),
        _ => wrong(rng),
    }
}

/// Moderators and owners may only unlock: a lock is their legitimate power
/// and would, by design, refuse the honest members' writes. The others
/// may try anything.
fn lock(rng: &mut StdRng, role: Role) -> Value {
    match (role, rng.random_range(0..3)) {
        (Role::Owner | Role::Moderator, 0) => json!(false),
        (Role::Owner | Role::Moderator, _) => wrong(rng),
        (_, 0) => wrong(rng),
        (_, _) => json!(rng.random_bool(0.5)),
    }
}

fn answer(rng: &mut StdRng) -> Value {
    match rng.random_range(0..10) {
        0..=3 => json!(if rng.random_bool(0.5) { "pos" } else { "neg" }),
        4 => json!("maybe"),
        5 => json!(["pos", "pos"]),
        6 => json!([{"start": 0, "end": u64::MAX, "label": "PER"}]),
        7 => {
            // Deeper than the JSON parser's recursion limit.
            let mut nested = json!(1);
            for _ in 0..300 {
                nested = json!([nested]);
            }
            nested
        }
        8 => json!("x".repeat(20_000)),
        _ => wrong(rng),
    }
}

/// A value of the wrong type (never a bool: `mod.lock` takes one).
fn wrong(rng: &mut StdRng) -> Value {
    match rng.random_range(0..5) {
        0 => Value::Null,
        1 => json!("true"),
        2 => json!([]),
        3 => json!({"nested": {"deeper": [1, 2]}}),
        _ => json!(-7),
    }
}

fn garbage_json(rng: &mut StdRng) -> String {
    match rng.random_range(0..4) {
        0 => (0..rng.random_range(1..100))
            .map(|_| char::from(rng.random_range(0x20u8..0x7f)))
            .collect(),
        1 => {
            let whole = json!({"id": 1, "type": "chat.send", "body": "cut short"}).to_string();
            whole[..rng.random_range(1..whole.len())].to_owned()
        }
        2 => "{not json".to_owned(),
        _ => r#"{"id":1,"type":"ping"}{"id":2,"type":"ping"}"#.to_owned(),
    }
}

/// Envelopes the server cannot take: no id, a bad id, no type, an unknown
/// type, not an object.
fn bad_envelope(rng: &mut StdRng) -> String {
    let long_id = format!(r#"{{"id":"{}","type":"ping"}}"#, "i".repeat(65));
    let envelopes = [
        r#"{"type":"ping"}"#,
        r#"{"id":{},"type":"ping"}"#,
        r#"{"id":"","type":"ping"}"#,
        long_id.as_str(),
        r#"{"id":1}"#,
        r#"{"id":1,"type":"launch.rockets"}"#,
        r#"{"id":1,"type":7}"#,
        r#"{"id":1.5,"type":"ping"}"#,
        r#"{"id":1,"type":"ping","id":2}"#,
        "[]",
        r#""ping""#,
        "null",
    ];
    pick(rng, &envelopes).to_string()
}

/// A state vector: empty, the replica's, one claiming far more of an honest
/// client than exists, or bytes that are not a state vector.
fn state_vector(rng: &mut StdRng, targets: &Targets, replica: &Replica) -> Vec<u8> {
    match rng.random_range(0..4) {
        0 => StateVector::default().encode_v1(),
        1 => replica.doc.transact().state_vector().encode_v1(),
        2 => {
            let client = ClientID::new(*pick(rng, &targets.honest_ids));
            StateVector::from_iter([(client, u32::MAX)]).encode_v1()
        }
        _ => random_bytes(rng, 16),
    }
}

/// Awareness entries for the honest clients' ids (updates and removals),
/// random and unsafe ids and clocks, states that are not JSON or too big,
/// and now and then more entries than one connection may hold.
fn spoof(rng: &mut StdRng, targets: &Targets) -> Vec<u8> {
    let count = if rng.random_ratio(1, 20) {
        100
    } else {
        rng.random_range(1..=3)
    };
    let entries = (0..count)
        .map(|_| AwarenessEntry {
            client_id: match rng.random_range(0..10) {
                0..=5 => *pick(rng, &targets.honest_ids),
                6 => u64::MAX,
                _ => rng.random_range(0..=SAFE_INTEGER),
            },
            clock: match rng.random_range(0..6) {
                0 => 0,
                1 => 2,
                2 => SAFE_INTEGER + 1,
                3 => u64::MAX,
                _ => rng.random_range(0..1000),
            },
            state: match rng.random_range(0..12) {
                0..=3 => "null".to_owned(),
                4..=6 => r#"{"user":"hijacked"}"#.to_owned(),
                7 => "not json".to_owned(),
                8 => "{".to_owned(),
                9 => json!({ "big": "x".repeat(BIG_STATE) }).to_string(),
                _ => "{}".to_owned(),
            },
        })
        .collect();
    AwarenessUpdate { entries }.encode()
}

/// A frame that is not a y-websocket message: a known bad one, random
/// bytes, or a valid frame cut short.
fn garbage(rng: &mut StdRng, replica: &Replica) -> Vec<u8> {
    match rng.random_range(0..3) {
        0 => pick(rng, &bad_frames()).1.clone(),
        1 => random_bytes(rng, 64),
        _ => {
            let whole = Message::Update(&replica.state()).encode();
            whole[..rng.random_range(1..whole.len())].to_vec()
        }
    }
}

fn random_bytes(rng: &mut StdRng, most: usize) -> Vec<u8> {
    (0..rng.random_range(1..=most))
        .map(|_| rng.random())
        .collect()
}

pub(super) fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}
