//! Property-based fuzzing of the server's pure functions that take client
//! input: the live channel's request decoder. (Answers, decisions and the
//! consensus estimators are fuzzed where they live, in the work crate's
//! `fuzz` module.)
//!
//! Every property asserts more than "no panic" where it can: a decoded
//! request echoes its id, a failure has a stable code.
//!
//! Inputs are kept small (frames of a few hundred characters, a few fields),
//! so the module runs with the unit tests in a few seconds of a debug build.
//!
//! Replaying a failure: each test prints `proptest seed N` on stderr, which
//! the harness shows when the test fails, next to proptest's
//! `minimal failing input: ...`. Run
//! `PROPTEST_RNG_SEED=N cargo test -p crowdroom --lib fuzz::NAME` to draw the
//! same cases again and reach the same minimal input. Nothing is written to
//! disk (`failure_persistence: None`): turn a minimal input worth keeping
//! into a plain unit test. `PROPTEST_CASES=N` fuzzes longer.

#![allow(clippy::unwrap_used)]

use proptest::collection::btree_map;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::protocol::{KNOWN_TYPES, Request, decode_failure_reply};
use crowdroom_work::testkit::{config, json_number, json_value};

// ---------------------------------------------------------------------------
// The live channel's requests.

/// The fields requests take (docs/PROTOCOL.md).
const FIELDS: [&str; 13] = [
    "body",
    "before",
    "limit",
    "message_id",
    "status",
    "task_id",
    "answer",
    "user",
    "minutes",
    "reason",
    "locked",
    "id",
    "type",
];

/// A request id: valid (a short string or a number) or not.
fn request_id() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        4 => "[a-z0-9]{1,64}".prop_map(|id| Some(Value::String(id))),
        2 => json_number().prop_map(Some),
        1 => Just(None),
        1 => json_value().prop_map(Some),
        1 => Just(Some(Value::String("x".repeat(65)))),
    ]
}

/// Whether the server accepts `id` as a request id.
fn valid_id(id: &Value) -> bool {
    match id {
        Value::String(text) => !text.is_empty() && text.len() <= 64,
        Value::Number(number) => number.is_i64() || number.is_u64(),
        _ => false,
    }
}

/// A request type: known, or surely unknown (never a real type).
fn request_type() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        6 => proptest::sample::select(KNOWN_TYPES.to_vec()).prop_map(|kind| Some(json!(kind))),
        1 => "x-[a-z.]{0,12}".prop_map(|kind| Some(json!(kind))),
        1 => json_value().prop_map(Some),
        1 => Just(None),
    ]
}

/// A JSON object shaped like a request: an id, a type, and fields of the
/// requests with random values (or made-up fields).
fn request_object() -> impl Strategy<Value = (Option<Value>, Option<Value>, String)> {
    let field = prop_oneof![
        4 => proptest::sample::select(FIELDS.to_vec()).prop_map(str::to_owned),
        1 => "[a-z_]{1,8}",
    ];
    let fields = btree_map(field, json_value(), 0..4);
    (request_id(), request_type(), fields).prop_map(|(id, kind, fields)| {
        let mut object: serde_json::Map<String, Value> = fields.into_iter().collect();
        object.remove("id");
        object.remove("type");
        if let Some(id) = &id {
            object.insert("id".into(), id.clone());
        }
        if let Some(kind) = &kind {
            object.insert("type".into(), kind.clone());
        }
        (id, kind, Value::Object(object).to_string())
    })
}

/// A value as the server reads it from its JSON text: floats may come back
/// one unit in the last place off (see `float_request_ids_are_echoed_exactly`).
fn as_read(value: &Value) -> Value {
    serde_json::from_str(&value.to_string()).unwrap()
}

/// Checks the decoder's contract on one frame: a request echoes its id; a
/// failure has a stable code, the id when one could be read, and a reply
/// that is valid JSON.
fn check_decode(text: &str) -> Result<Option<Value>, TestCaseError> {
    match Request::decode(text) {
        Ok(request) => {
            prop_assert!(valid_id(&request.id), "accepted id {:?}", request.id);
            Ok(Some(request.id))
        }
        Err(failure) => {
            prop_assert!(
                ["bad_json", "bad_request", "unknown_type"].contains(&failure.code),
                "code {}",
                failure.code
            );
            prop_assert!(failure.id.is_null() || valid_id(&failure.id));
            let reply = decode_failure_reply(&failure);
            let axum::extract::ws::Message::Text(reply) = reply else {
                return Err(TestCaseError::fail("a reply is a text frame"));
            };
            let reply: Value = serde_json::from_str(reply.as_str()).unwrap();
            prop_assert_eq!(&reply["ok"], &json!(false));
            prop_assert_eq!(&reply["id"], &as_read(&failure.id));
            Ok(None)
        }
    }
}

proptest! {
    #![proptest_config(config(2000))]

    /// Any text frame decodes or fails with a stable code.
    #[test]
    fn any_text_decodes_or_fails_cleanly(
        text in prop_oneof![".{0,200}", "[{}\\[\\]\":,0-9a-z.\\- ]{0,200}"],
    ) {
        check_decode(&text)?;
    }

    /// Request-shaped objects: a valid id is echoed whatever else is wrong,
    /// and a type that is not a request type is reported as unknown.
    #[test]
    fn request_shaped_json_decodes_or_fails_cleanly((id, kind, text) in request_object()) {
        let decoded = check_decode(&text)?;
        let id = id.as_ref().map(as_read);
        let failure = Request::decode(&text).err();
        if let (Some(id), Some(failure)) = (&id, &failure)
            && valid_id(id)
        {
            prop_assert_eq!(&failure.id, id);
        }
        if let Some(decoded) = decoded {
            prop_assert_eq!(Some(decoded), id.clone());
        }
        let unknown = kind
            .as_ref()
            .and_then(Value::as_str)
            .is_some_and(|kind| kind.starts_with("x-"));
        if unknown && id.as_ref().is_some_and(valid_id) {
            prop_assert_eq!(failure.map(|failure| failure.code), Some("unknown_type"));
        }
    }

    /// Deep nesting up to the live channel's 64 KiB frame: refused or
    /// decoded, never a stack overflow.
    #[test]
    fn deeply_nested_requests_are_refused_or_decoded(
        depth in prop_oneof![0usize..200, 200usize..30_000],
        kind in proptest::sample::select(KNOWN_TYPES.to_vec()),
        open in prop_oneof![Just('['), Just('{')],
    ) {
        let (open, close) = if open == '[' { ("[", "]") } else { ("{\"a\":", "}") };
        let nested = format!("{}1{}", open.repeat(depth), close.repeat(depth));
        let text = format!(r#"{{"id":1,"type":"{kind}","task_id":1,"answer":{nested},"body":{nested}}}"#);
        check_decode(&text)?;
    }
}

/// Found by `request_shaped_json_decodes_or_fails_cleanly`: serde_json
/// reads some floats one unit in the last place off, so a request id of
/// `-5.54622436417187e-270` came back as `-5.546224364171869e-270` and the
/// client never matched the reply. Ids are strings or integers now.
#[test]
fn float_request_ids_are_refused() {
    let refused = Request::decode(r#"{"id":-5.54622436417187e-270,"type":"ping"}"#).unwrap_err();
    assert_eq!(refused.code, "bad_request");
    let integer = Request::decode(r#"{"id":-17,"type":"ping"}"#).unwrap();
    assert_eq!(integer.id.to_string(), "-17");
}
