//! The shared annotation document of one task, written down once so the
//! server, the web client (TypeScript) and the tests agree on it.
//!
//! | root name  | Yjs type | contents |
//! |------------|----------|----------|
//! | `spans`    | `Y.Array` of `Y.Map` | `{ id: string, start: number, end: number, label: string, author: string }`; `start`/`end` are UTF-16 code-unit offsets into the task text, as JavaScript counts |
//! | `labels`   | `Y.Map`  | key → plain JSON value: a choice is a string, multiple choices an array of strings, a number a number |
//! | `text`     | `Y.Text` | the free-text answer |
//! | `comments` | `Y.Array` of `Y.Map` | `{ id: string, author: string, body: string, at: number (ms since epoch), span_id?: string }` |
//! | `review`   | `Y.Map`  | `{ state: "open" \| "accepted" \| "corrected" \| "rejected", reviewer: string, reason: string, at: number }` |
//! | `meta`     | `Y.Map`  | `{ task_id: string, schema_version: 1 }` |
//!
//! Reading is tolerant, because any peer can write anything: a span or
//! comment with a missing or wrongly typed required field is skipped, a
//! wrongly typed optional field reads as absent, a label whose value is a
//! shared type (not plain JSON) is skipped, and a review without a valid
//! state reads as `None`. Records stored as plain JSON objects instead of
//! `Y.Map`s are read too. An array that a peer also wrote text into reads
//! as empty (yrs cannot iterate it safely).
//!
//! Each write function runs one transaction on the given doc and returns the
//! update v1 it produced (`TransactionMut::encode_update_v1` after commit,
//! the same bytes a yrs update observer would see), for the caller to apply
//! elsewhere or broadcast.

mod convert;
mod text_edit;

use serde::{Deserialize, Serialize};
use yrs::branch::BranchPtr;
use yrs::{Any, Array, ArrayRef, Doc, Map, MapPrelim, Out, ReadTxn, Text, Transact};
use yrs::{GetString, TextRef, TransactionMut, WriteTxn};

use convert::{Record, any_to_json, json_to_any, number};
use text_edit::{minimal_edit, text_len};

/// Root `Y.Array` of spans.
pub const SPANS: &str = "spans";
/// Root `Y.Map` of label answers.
pub const LABELS: &str = "labels";
/// Root `Y.Text` of the free-text answer.
pub const TEXT: &str = "text";
/// Root `Y.Array` of comments.
pub const COMMENTS: &str = "comments";
/// Root `Y.Map` of the review.
pub const REVIEW: &str = "review";
/// Root `Y.Map` of metadata.
pub const META: &str = "meta";
/// The `schema_version` this crate writes into `meta`.
pub const SCHEMA_VERSION: u32 = 1;

/// A labelled range of the task text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// Unique id chosen by the author (a UUID in the web client).
    pub id: String,
    /// First UTF-16 code unit of the range.
    pub start: u32,
    /// One past the last UTF-16 code unit of the range.
    pub end: u32,
    /// The label name.
    pub label: String,
    /// User id of the author.
    pub author: String,
}

/// A comment on the task or on one span.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    /// Unique id chosen by the author.
    pub id: String,
    /// User id of the author.
    pub author: String,
    /// The text of the comment.
    pub body: String,
    /// When it was written, in milliseconds since the Unix epoch.
    pub at: u64,
    /// The span it is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
}

/// Where the review of a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReviewState {
    /// Waiting for a reviewer.
    Open,
    /// Accepted as is.
    Accepted,
    /// Accepted after the reviewer corrected it.
    Corrected,
    /// Rejected; `reason` says why.
    Rejected,
}

impl ReviewState {
    /// The string stored in the document.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewState::Open => "open",
            ReviewState::Accepted => "accepted",
            ReviewState::Corrected => "corrected",
            ReviewState::Rejected => "rejected",
        }
    }

    /// Parses the stored string.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "open" => Some(ReviewState::Open),
            "accepted" => Some(ReviewState::Accepted),
            "corrected" => Some(ReviewState::Corrected),
            "rejected" => Some(ReviewState::Rejected),
            _ => None,
        }
    }
}

/// The review of a task. The fields are separate keys of the `review` map,
/// all written in one transaction; two reviewers writing at the same time
/// may, in rare interleavings, leave fields from both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// The outcome.
    pub state: ReviewState,
    /// User id of the reviewer.
    pub reviewer: String,
    /// Why (may be empty).
    pub reason: String,
    /// When, in milliseconds since the Unix epoch.
    pub at: u64,
}

/// Everything an annotator and reviewer produced for one task.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Annotation {
    /// Spans in document order.
    pub spans: Vec<Span>,
    /// Label answers by key.
    pub labels: serde_json::Map<String, serde_json::Value>,
    /// The free-text answer.
    pub text: String,
    /// Comments in document order.
    pub comments: Vec<Comment>,
    /// The review, if one was written.
    pub review: Option<Review>,
}

/// The contents of `meta`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// The task this document annotates.
    pub task_id: String,
    /// The schema version the document was created with.
    pub schema_version: u32,
}

/// Reads the annotation, skipping whatever does not fit the schema.
pub fn read(doc: &Doc) -> Annotation {
    let txn = doc.transact();
    let spans = records(&txn, SPANS)
        .filter_map(|record| read_span(&record))
        .collect();
    let comments = records(&txn, COMMENTS)
        .filter_map(|record| read_comment(&record))
        .collect();
    let labels = match txn.get_map(LABELS) {
        Some(map) => map
            .iter(&txn)
            .filter_map(|(key, value)| match value {
                Out::Any(value) => Some((key.to_owned(), any_to_json(&value, 1)?)),
                _ => None,
            })
            .collect(),
        None => serde_json::Map::new(),
    };
    let text = txn
        .get_text(TEXT)
        .map(|text| text.get_string(&txn))
        .unwrap_or_default();
    let review = txn
        .get_map(REVIEW)
        .and_then(|map| read_review(&Record::Shared(map, &txn)));
    Annotation {
        spans,
        labels,
        text,
        comments,
        review,
    }
}

/// Reads `meta`, or `None` if it is missing or malformed.
pub fn read_meta(doc: &Doc) -> Option<Meta> {
    let txn = doc.transact();
    let meta = Record::Shared(txn.get_map(META)?, &txn);
    Some(Meta {
        task_id: meta.string("task_id")?,
        schema_version: meta.integer("schema_version")?,
    })
}

/// Appends a span.
pub fn add_span(doc: &Doc, span: &Span) -> Vec<u8> {
    edit(doc, |txn| {
        let spans = txn.get_or_insert_array(SPANS);
        spans.push_back(
            txn,
            MapPrelim::from([
                ("id", Any::from(span.id.as_str())),
                ("start", Any::from(span.start)),
                ("end", Any::from(span.end)),
                ("label", Any::from(span.label.as_str())),
                ("author", Any::from(span.author.as_str())),
            ]),
        );
    })
}

/// Removes every span with this id; `None` if there was none.
pub fn remove_span(doc: &Doc, id: &str) -> Option<Vec<u8>> {
    let mut removed = false;
    let update = edit(doc, |txn| {
        let Some(spans) = readable_array(&*txn, SPANS) else {
            return;
        };
        // Index through `get`, which counts exactly as `remove` does, and
        // go backwards so removals do not shift what is left to visit.
        for index in (0..spans.len(&*txn)).rev() {
            let matches = spans
                .get(&*txn, index)
                .and_then(|value| Record::from_out(value, &*txn)?.string("id"))
                .is_some_and(|span_id| span_id == id);
            if matches {
                spans.remove(txn, index);
                removed = true;
            }
        }
    });
    removed.then_some(update)
}

/// Sets one label answer.
pub fn set_label(doc: &Doc, key: &str, value: serde_json::Value) -> Vec<u8> {
    edit(doc, |txn| {
        let labels = txn.get_or_insert_map(LABELS);
        labels.insert(txn, key, json_to_any(&value, 1));
    })
}

/// Writes the review (every field).
pub fn set_review(doc: &Doc, review: &Review) -> Vec<u8> {
    edit(doc, |txn| {
        let map = txn.get_or_insert_map(REVIEW);
        map.insert(txn, "state", review.state.as_str());
        map.insert(txn, "reviewer", review.reviewer.as_str());
        map.insert(txn, "reason", review.reason.as_str());
        map.insert(txn, "at", number(review.at));
    })
}

/// Appends a comment.
pub fn add_comment(doc: &Doc, comment: &Comment) -> Vec<u8> {
    edit(doc, |txn| {
        let comments = txn.get_or_insert_array(COMMENTS);
        let mut fields = vec![
            ("id", Any::from(comment.id.as_str())),
            ("author", Any::from(comment.author.as_str())),
            ("body", Any::from(comment.body.as_str())),
            ("at", number(comment.at)),
        ];
        if let Some(span_id) = &comment.span_id {
            fields.push(("span_id", Any::from(span_id.as_str())));
        }
        comments.push_back(txn, MapPrelim::from_iter(fields));
    })
}

/// Makes the free-text answer equal `value`, touching only the part that
/// differs (so a concurrent edit elsewhere in the text survives).
///
/// If a peer put anything but plain text into the `text` root (embeds,
/// shared types, array values), positions in the string do not match
/// positions in the type and yrs panics removing such content, so the text
/// is left as is and the returned update is empty.
pub fn set_text(doc: &Doc, value: &str) -> Vec<u8> {
    let kind = doc.offset_kind();
    edit(doc, |txn| {
        let text = txn.get_or_insert_text(TEXT);
        let current = text.get_string(&*txn);
        if text_len(&current, kind) != text.len(&*txn) {
            return;
        }
        let Some(edit) = minimal_edit(&current, value, kind) else {
            return;
        };
        if edit.remove > 0 {
            text.remove_range(txn, edit.start, edit.remove);
        }
        text.insert(txn, edit.start, edit.insert);
    })
}

/// Writes `meta` for a new document.
pub fn set_meta(doc: &Doc, task_id: &str) -> Vec<u8> {
    edit(doc, |txn| {
        let meta = txn.get_or_insert_map(META);
        meta.insert(txn, "task_id", task_id);
        meta.insert(txn, "schema_version", SCHEMA_VERSION);
    })
}

/// Runs `change` in one transaction and returns the update it produced.
fn edit(doc: &Doc, change: impl FnOnce(&mut TransactionMut<'_>)) -> Vec<u8> {
    let mut txn = doc.transact_mut();
    change(&mut txn);
    txn.commit();
    txn.encode_update_v1()
}

/// The records of a root array, skipping elements that are not maps.
fn records<'t, T: ReadTxn>(txn: &'t T, root: &str) -> impl Iterator<Item = Record<'t, T>> {
    let values: Vec<Out> = readable_array(txn, root)
        .map(|array| array.iter(txn).collect())
        .unwrap_or_default();
    values
        .into_iter()
        .filter_map(move |value| Record::from_out(value, txn))
}

/// The root array `root`, unless a peer also wrote text into it. yrs's
/// array iterator (and `get`) loops forever on text whose length differs
/// between UTF-16 units and chars (an emoji), so such an array is treated
/// as unreadable: no records, nothing removed.
fn readable_array<T: ReadTxn>(txn: &T, root: &str) -> Option<ArrayRef> {
    let array = txn.get_array(root)?;
    let as_text = TextRef::from(BranchPtr::from(array.as_ref()));
    as_text.get_string(txn).is_empty().then_some(array)
}

fn read_span<T: ReadTxn>(record: &Record<'_, T>) -> Option<Span> {
    Some(Span {
        id: record.string("id")?,
        start: record.integer("start")?,
        end: record.integer("end")?,
        label: record.string("label")?,
        author: record.string("author")?,
    })
}

fn read_comment<T: ReadTxn>(record: &Record<'_, T>) -> Option<Comment> {
    Some(Comment {
        id: record.string("id")?,
        author: record.string("author")?,
        body: record.string("body")?,
        at: record.integer("at")?,
        span_id: record.string("span_id"),
    })
}

fn read_review<T: ReadTxn>(record: &Record<'_, T>) -> Option<Review> {
    Some(Review {
        state: ReviewState::parse(&record.string("state")?)?,
        reviewer: record.string("reviewer")?,
        reason: record.string("reason")?,
        at: record.integer("at")?,
    })
}

#[cfg(test)]
mod tests;
