//! Conversions between yrs values and JSON / Rust fields, tolerant of
//! whatever a peer put in the document.

use std::collections::HashMap;
use std::sync::Arc;

use yrs::{Any, Map, MapRef, Number, Out, ReadTxn};

/// Deepest JSON nesting converted either way; deeper parts are dropped
/// (reading) or written as `null` (writing). Matches the update check.
const MAX_DEPTH: usize = crate::validate::MAX_VALUE_DEPTH;

/// The fields of one record, whether a peer stored it as a Y.Map or as a
/// plain JSON object inside an array.
pub(crate) enum Record<'r, T: ReadTxn> {
    /// A Y.Map, read through `txn`.
    Shared(MapRef, &'r T),
    /// A plain object value.
    Plain(Arc<HashMap<String, Any>>),
}

impl<'r, T: ReadTxn> Record<'r, T> {
    /// The record behind an array element, if it is a map of either kind.
    pub(crate) fn from_out(value: Out, txn: &'r T) -> Option<Self> {
        match value {
            Out::YMap(map) => Some(Record::Shared(map, txn)),
            Out::Any(Any::Map(fields)) => Some(Record::Plain(fields)),
            _ => None,
        }
    }

    /// A field's plain value; nested shared types count as absent.
    pub(crate) fn any(&self, key: &str) -> Option<Any> {
        match self {
            Record::Shared(map, txn) => match map.get(*txn, key)? {
                Out::Any(value) => Some(value),
                _ => None,
            },
            Record::Plain(fields) => fields.get(key).cloned(),
        }
    }

    /// A string field.
    pub(crate) fn string(&self, key: &str) -> Option<String> {
        match self.any(key)? {
            Any::String(value) => Some(value.to_string()),
            _ => None,
        }
    }

    /// A whole, non-negative number field that fits `N`.
    pub(crate) fn integer<N: TryFrom<i64>>(&self, key: &str) -> Option<N> {
        match self.any(key)? {
            Any::Number(number) => N::try_from(number.as_i64()?).ok(),
            _ => None,
        }
    }
}

/// A plain yrs value as JSON, or `None` for values JSON cannot hold
/// (undefined, binary, NaN, too deep).
pub(crate) fn any_to_json(value: &Any, depth: usize) -> Option<serde_json::Value> {
    use serde_json::Value;
    if depth > MAX_DEPTH {
        return None;
    }
    Some(match value {
        Any::Null => Value::Null,
        Any::Undefined | Any::Buffer(_) => return None,
        Any::Bool(flag) => Value::Bool(*flag),
        Any::Number(Number::Int(number)) => Value::from(*number),
        Any::Number(Number::Float(number)) => Value::Number(serde_json::Number::from_f64(*number)?),
        Any::String(text) => Value::String(text.to_string()),
        // JSON.stringify turns unrepresentable array elements into null.
        Any::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| any_to_json(item, depth + 1).unwrap_or(Value::Null))
                .collect(),
        ),
        Any::Map(fields) => Value::Object(
            fields
                .iter()
                .filter_map(|(key, item)| Some((key.clone(), any_to_json(item, depth + 1)?)))
                .collect(),
        ),
    })
}

/// A JSON value as a plain yrs value; parts nested deeper than the update
/// check allows become `null`.
pub(crate) fn json_to_any(value: &serde_json::Value, depth: usize) -> Any {
    use serde_json::Value;
    if depth > MAX_DEPTH {
        return Any::Null;
    }
    match value {
        Value::Null => Any::Null,
        Value::Bool(flag) => Any::Bool(*flag),
        Value::Number(number) => match number.as_i64() {
            Some(integer) => Any::Number(Number::Int(integer)),
            None => Any::Number(Number::Float(number.as_f64().unwrap_or(f64::NAN))),
        },
        Value::String(text) => Any::String(text.as_str().into()),
        Value::Array(items) => Any::Array(
            items
                .iter()
                .map(|item| json_to_any(item, depth + 1))
                .collect(),
        ),
        Value::Object(fields) => Any::Map(Arc::new(
            fields
                .iter()
                .map(|(key, item)| (key.clone(), json_to_any(item, depth + 1)))
                .collect(),
        )),
    }
}

/// An unsigned integer as a yrs number (an integer when it fits `i64`).
pub(crate) fn number(value: u64) -> Any {
    match i64::try_from(value) {
        Ok(integer) => Any::Number(Number::Int(integer)),
        Err(_) => Any::Number(Number::Float(value as f64)),
    }
}
