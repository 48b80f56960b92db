#![allow(clippy::unwrap_used)]

use serde_json::json;
use yrs::{Any, Array, ArrayPrelim, Doc, Map, MapPrelim, Text, Transact};

use super::*;
use crate::SharedDoc;

fn span(id: &str, start: u32, end: u32) -> Span {
    Span {
        id: id.into(),
        start,
        end,
        label: "PER".into(),
        author: "u1".into(),
    }
}

#[test]
fn write_then_read_back() {
    let shared = SharedDoc::new();
    let doc = shared.doc();
    set_meta(doc, "task-42");
    add_span(doc, &span("s1", 0, 5));
    add_span(doc, &span("s2", 7, 12));
    set_label(doc, "choice", json!("yes"));
    set_label(doc, "choices", json!(["a", "b"]));
    set_label(doc, "number", json!(3.5));
    set_label(doc, "count", json!(7));
    set_text(doc, "free text");
    let comment = Comment {
        id: "c1".into(),
        author: "u2".into(),
        body: "why?".into(),
        at: 1_700_000_000_123,
        span_id: Some("s1".into()),
    };
    add_comment(doc, &comment);
    let review = Review {
        state: ReviewState::Corrected,
        reviewer: "r1".into(),
        reason: "fixed".into(),
        at: 1_700_000_000_999,
    };
    set_review(doc, &review);

    let annotation = read(doc);
    assert_eq!(annotation.spans, [span("s1", 0, 5), span("s2", 7, 12)]);
    assert_eq!(annotation.labels.get("choice"), Some(&json!("yes")));
    assert_eq!(annotation.labels.get("choices"), Some(&json!(["a", "b"])));
    assert_eq!(annotation.labels.get("number"), Some(&json!(3.5)));
    assert_eq!(annotation.labels.get("count"), Some(&json!(7)));
    assert_eq!(annotation.text, "free text");
    assert_eq!(annotation.comments, [comment]);
    assert_eq!(annotation.review, Some(review));
    assert_eq!(
        read_meta(doc),
        Some(Meta {
            task_id: "task-42".into(),
            schema_version: SCHEMA_VERSION
        })
    );
}

#[test]
fn returned_updates_rebuild_the_same_document() {
    let author = Doc::new();
    let mut updates = vec![
        add_span(&author, &span("s1", 1, 2)),
        add_span(&author, &span("s2", 3, 4)),
        set_label(&author, "choice", json!("no")),
        set_text(&author, "draft"),
        set_text(&author, "final draft"),
        add_comment(
            &author,
            &Comment {
                id: "c".into(),
                author: "a".into(),
                body: "b".into(),
                at: 5,
                span_id: None,
            },
        ),
    ];
    updates.push(remove_span(&author, "s1").unwrap());
    assert_eq!(remove_span(&author, "missing"), None);

    // Live, in order (a gap in one client's clocks is refused live).
    let server = SharedDoc::new();
    for update in &updates {
        assert!(server.apply(update).unwrap().changed);
    }
    assert_eq!(read(server.doc()), read(&author));
    // Loaded in reverse order: the early ones wait as pending, then join.
    let reloaded = SharedDoc::load(None, updates.iter().rev().map(Vec::as_slice)).unwrap();
    assert_eq!(read(reloaded.doc()), read(&author));
    assert_eq!(read(server.doc()).spans, [span("s2", 3, 4)]);
    assert_eq!(read(server.doc()).text, "final draft");
}

#[test]
fn set_text_edits_only_the_difference() {
    let shared = SharedDoc::new();
    let doc = shared.doc();
    set_text(doc, "héllo 😀 world");
    // A concurrent peer appends while we rewrite the middle.
    let peer = SharedDoc::new();
    peer.apply(&shared.snapshot()).unwrap();
    let mine = set_text(doc, "héllo 🙂 world");
    let theirs = set_text(peer.doc(), "héllo 😀 world!");
    shared.apply(&theirs).unwrap();
    peer.apply(&mine).unwrap();
    assert_eq!(read(doc).text, "héllo 🙂 world!");
    assert_eq!(read(peer.doc()).text, "héllo 🙂 world!");
    set_text(doc, "");
    assert_eq!(read(doc).text, "");
}

#[test]
fn read_tolerates_wrong_types() {
    let doc = Doc::new();
    {
        let mut txn = doc.transact_mut();
        // "spans" holds junk, a span missing a field, a plain-object span,
        // a span with a fractional offset, and one good Y.Map span.
        let spans = txn.get_or_insert_array(SPANS);
        spans.push_back(&mut txn, 42);
        spans.push_back(&mut txn, ArrayPrelim::default());
        spans.push_back(
            &mut txn,
            MapPrelim::from([("id", Any::from("no-end")), ("start", Any::from(1))]),
        );
        let plain = Any::from(std::collections::HashMap::from([
            ("id".to_owned(), Any::from("plain")),
            ("start".to_owned(), Any::from(0)),
            ("end".to_owned(), Any::from(3)),
            ("label".to_owned(), Any::from("ORG")),
            ("author".to_owned(), Any::from("u9")),
        ]));
        spans.push_back(&mut txn, plain);
        spans.push_back(
            &mut txn,
            MapPrelim::from([
                ("id", Any::from("frac")),
                ("start", Any::from(1.5)),
                ("end", Any::from(3)),
                ("label", Any::from("X")),
                ("author", Any::from("u")),
            ]),
        );
        spans.push_back(
            &mut txn,
            MapPrelim::from([
                ("id", Any::from("good")),
                ("start", Any::from(2.0)),
                ("end", Any::from(4)),
                ("label", Any::from("PER")),
                ("author", Any::from("u1")),
            ]),
        );
        // "labels" holds a nested shared type, undefined and a good value.
        let labels = txn.get_or_insert_map(LABELS);
        labels.insert(&mut txn, "nested", MapPrelim::default());
        labels.insert(&mut txn, "undefined", Any::Undefined);
        labels.insert(&mut txn, "ok", Any::from(true));
        // "text" is a map; "comments" is a map; "review" has a bad state.
        txn.get_or_insert_map(TEXT).insert(&mut txn, "x", 1);
        txn.get_or_insert_map(COMMENTS).insert(&mut txn, "x", 1);
        let review = txn.get_or_insert_map(REVIEW);
        review.insert(&mut txn, "state", "maybe");
        review.insert(&mut txn, "reviewer", "r");
        review.insert(&mut txn, "reason", "");
        review.insert(&mut txn, "at", 1);
        // A comment whose optional span_id has the wrong type.
        let comments = txn.get_or_insert_array("comments-elsewhere");
        comments.push_back(&mut txn, 1);
    }
    let annotation = read(&doc);
    let ids: Vec<&str> = annotation
        .spans
        .iter()
        .map(|span| span.id.as_str())
        .collect();
    assert_eq!(ids, ["plain", "good"]);
    assert_eq!(
        annotation.labels,
        serde_json::Map::from_iter([("ok".to_owned(), json!(true))])
    );
    assert_eq!(annotation.text, "");
    assert!(annotation.comments.is_empty());
    assert_eq!(annotation.review, None);
    assert_eq!(read_meta(&doc), None);
    // Writing over the odd types does not panic either.
    set_text(&doc, "now text");
    assert!(remove_span(&doc, "good").is_some());
    add_comment(
        &doc,
        &Comment {
            id: "c".into(),
            author: "a".into(),
            body: "b".into(),
            at: 1,
            span_id: None,
        },
    );
}

#[test]
fn optional_field_with_wrong_type_reads_as_absent() {
    let doc = Doc::new();
    {
        let mut txn = doc.transact_mut();
        let comments = txn.get_or_insert_array(COMMENTS);
        comments.push_back(
            &mut txn,
            MapPrelim::from([
                ("id", Any::from("c")),
                ("author", Any::from("a")),
                ("body", Any::from("b")),
                ("at", Any::from(10)),
                ("span_id", Any::from(5)),
            ]),
        );
    }
    let comments = read(&doc).comments;
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0].span_id, None);
}

#[test]
fn review_state_strings_round_trip() {
    for state in [
        ReviewState::Open,
        ReviewState::Accepted,
        ReviewState::Corrected,
        ReviewState::Rejected,
    ] {
        assert_eq!(ReviewState::parse(state.as_str()), Some(state));
        assert_eq!(serde_json::to_value(state).unwrap(), json!(state.as_str()));
    }
}

#[test]
fn text_written_into_an_array_root_does_not_hang_reads() {
    // A peer treats "spans" as text and writes an emoji into it; yrs's
    // array iterator would spin forever on it.
    let peer = Doc::with_client_id(5);
    let update = {
        let text = peer.get_or_insert_text(SPANS);
        let mut txn = peer.transact_mut();
        text.insert(&mut txn, 0, "a😀");
        txn.commit();
        txn.encode_update_v1()
    };
    // And treats "text" as an array of values mixed with text.
    let mixed = {
        let list = peer.get_or_insert_array(TEXT);
        let mut txn = peer.transact_mut();
        list.push_back(&mut txn, Any::from(1));
        list.push_back(&mut txn, Any::from("é😀"));
        txn.commit();
        txn.encode_update_v1()
    };
    let shared = SharedDoc::new();
    add_span(shared.doc(), &span("s1", 0, 1));
    set_text(shared.doc(), "old 😀");
    shared.apply(&update).unwrap();
    shared.apply(&mixed).unwrap();
    let doc = shared.doc().clone();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let annotation = read(&doc);
        let removed = remove_span(&doc, "s1");
        let update = set_text(&doc, "new ✓");
        add_span(&doc, &span("s2", 0, 1));
        add_comment(
            &doc,
            &Comment {
                id: "c".into(),
                author: "a".into(),
                body: "b".into(),
                at: 1,
                span_id: None,
            },
        );
        done.send((annotation.spans.len(), removed.is_some(), update))
            .unwrap();
    });
    let outcome = finished.recv_timeout(std::time::Duration::from_secs(10));
    let empty = yrs::Update::EMPTY_V1.to_vec();
    assert_eq!(
        outcome,
        Ok((0, false, empty)),
        "read, remove_span or set_text hung or edited"
    );
    // Array values are not text: only the real text shows.
    assert_eq!(read(shared.doc()).text, "old 😀");
}
