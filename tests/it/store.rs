//! The store's domain methods on SQLite and PostgreSQL: tokens, documents
//! with checkpoints, chat, group-commit batches, and a worker's view.

use crowdroom::auth::Role;
use crowdroom::ids::{DocName, RoomId, UserId};
use crowdroom::store::{Standing, WorkAsk, WriteOp, WriteOutcome};
use crowdroom::{Error, Store};
use crowdroom_tests::{Backend, TestDb, both_stores};
use crowdroom_work::project::{NewTask, ProjectConfig};
use serde_json::json;
use yrs::{GetString, Text, Transact};

both_stores! {
    tokens_issue_authenticate_revoke => tokens;
    documents_append_checkpoint_load => documents;
    batches_isolate_refusals => batches;
    worker_view_reads_reservation_record_skills_and_earnings => worker_view;
}

async fn open(backend: Backend) -> Option<(TestDb, Store)> {
    let db = TestDb::new(backend).await?;
    let store = Store::open(&db.url).await.unwrap();
    // Migrating twice is harmless.
    store.migrate().await.unwrap();
    Some((db, store))
}

async fn tokens(backend: Backend) {
    let Some((_db, store)) = open(backend).await else {
        return;
    };
    let room = RoomId::parse("r").unwrap();
    let user = UserId::parse("u").unwrap();
    store.create_room(&room, "Room").await.unwrap();
    assert!(matches!(
        store.create_room(&room, "again").await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        store.issue_token(&room, &user, Role::Worker, None).await,
        Err(Error::NotFound("user"))
    ));
    store.ensure_user(&user, "U").await.unwrap();
    let (row, secret) = store
        .issue_token(&room, &user, Role::Worker, None)
        .await
        .unwrap();
    let principal = store.authenticate(&secret).await.unwrap();
    assert_eq!(
        (principal.room, principal.user.clone(), principal.role),
        (room.clone(), user.clone(), Role::Worker)
    );
    assert!(matches!(
        store.authenticate("crt_wrong").await,
        Err(Error::Unauthorized)
    ));
    // A role change reaches the token.
    store
        .set_member_role(&room, &user, Role::Core)
        .await
        .unwrap();
    assert_eq!(store.authenticate(&secret).await.unwrap().role, Role::Core);
    assert_eq!(store.members(&room).await.unwrap()[0].role, Role::Core);
    let before = crowdroom::ids::now_ms();
    store.revoke_token(&row.id, Some(&room)).await.unwrap();
    assert!(matches!(
        store.authenticate(&secret).await,
        Err(Error::TokenRevoked)
    ));
    assert!(
        store
            .revoked_since(before - 1000)
            .await
            .unwrap()
            .contains(&row.id)
    );
    assert!(matches!(
        store.revoke_token(&row.id, None).await,
        Err(Error::NotFound(_))
    ));
    let (_, expired) = store
        .issue_token(&room, &user, Role::Worker, Some(-1))
        .await
        .unwrap();
    assert!(matches!(
        store.authenticate(&expired).await,
        Err(Error::TokenExpired)
    ));
}

fn text_update(doc: &yrs::Doc, at: u32, text: &str) -> Vec<u8> {
    let body = doc.get_or_insert_text("t");
    let mut txn = doc.transact_mut();
    body.insert(&mut txn, at, text);
    txn.encode_update_v1()
}

async fn documents(backend: Backend) {
    let Some((_db, store)) = open(backend).await else {
        return;
    };
    let room = RoomId::parse("r").unwrap();
    let name = DocName::parse("d").unwrap();
    store.create_room(&room, "Room").await.unwrap();
    assert!(store.create_doc(&room, &name).await.unwrap());
    assert!(!store.create_doc(&room, &name).await.unwrap());
    let source = yrs::Doc::new();
    let mut ops = Vec::new();
    for i in 0..10 {
        let update = text_update(&source, i, "x");
        ops.push(WriteOp::AppendUpdate {
            room: room.clone(),
            doc: name.clone(),
            data: update.into(),
        });
    }
    let outcomes = store.write_batch(&ops).await.unwrap();
    assert!(
        outcomes
            .iter()
            .all(|outcome| matches!(outcome, Ok(WriteOutcome::Appended)))
    );
    assert_eq!(store.pending_updates(&room, &name).await.unwrap(), 10);
    // A checkpoint with a partial snapshot still keeps every stored update:
    // its preparation merges what is stored into the snapshot.
    let append = |update: Vec<u8>| WriteOp::AppendUpdate {
        room: room.clone(),
        doc: name.clone(),
        data: update.into(),
    };
    let commit = async |op: WriteOp| store.write_batch(&[op]).await.unwrap().pop().unwrap();
    let checkpoint = async |doc: &DocName, snapshot: Vec<u8>| {
        let prepared = store
            .prepare_checkpoint(&room, doc, snapshot)
            .await
            .unwrap();
        commit(prepared).await.unwrap();
    };
    // A rival prepared first, from the ten updates only.
    let rival = text_update(&yrs::Doc::new(), 0, "rival");
    let rival = store.prepare_checkpoint(&room, &name, rival).await.unwrap();
    commit(append(text_update(&source, 10, "y"))).await.unwrap();
    let snapshot = text_update(&yrs::Doc::new(), 0, "snap");
    let prepared = store
        .prepare_checkpoint(&room, &name, snapshot)
        .await
        .unwrap();
    // Committed after the preparation read the log: not covered, so kept.
    commit(append(text_update(&source, 11, "z"))).await.unwrap();
    commit(prepared).await.unwrap();
    assert_eq!(store.pending_updates(&room, &name).await.unwrap(), 1);
    // The rival read the log before that checkpoint committed: storing it
    // would drop the update only that checkpoint covers ("y"), so it is
    // refused and deletes nothing.
    assert!(matches!(commit(rival).await, Err(Error::InvalidState(_))));
    assert_eq!(store.pending_updates(&room, &name).await.unwrap(), 1);
    let stored = store.load_doc(&room, &name).await.unwrap();
    assert_eq!(stored.updates.len(), 1);
    let loaded = crowdroom_crdt::SharedDoc::load(
        stored.snapshot.as_deref(),
        stored.updates.iter().map(Vec::as_slice),
    )
    .unwrap();
    let text = loaded.doc().get_or_insert_text("t");
    let content = text.get_string(&loaded.doc().transact());
    assert_eq!(content.matches('x').count(), 10, "{content}");
    assert!(
        content.contains('y') && content.contains('z') && content.contains("snap"),
        "{content}"
    );
    assert!(!content.contains("rival"), "{content}");
    // A snapshot that holds everything stored is stored as it is (the
    // room's own encoding, not a merge).
    let whole = DocName::parse("w").unwrap();
    let (editor, room_doc) = (yrs::Doc::new(), crowdroom_crdt::SharedDoc::new());
    for at in 0..3 {
        let update = text_update(&editor, at, "w");
        room_doc.apply(&update).unwrap();
        let op = WriteOp::AppendUpdate {
            room: room.clone(),
            doc: whole.clone(),
            data: update.into(),
        };
        commit(op).await.unwrap();
    }
    let snapshot = room_doc.try_snapshot().unwrap();
    checkpoint(&whole, snapshot.clone()).await;
    let stored = store.load_doc(&room, &whole).await.unwrap();
    assert_eq!(stored.snapshot.as_ref(), Some(&snapshot));
    assert!(stored.updates.is_empty());
    // A checkpoint of a document with nothing stored is the snapshot alone.
    let empty = DocName::parse("e").unwrap();
    let alone = text_update(&yrs::Doc::new(), 0, "alone");
    checkpoint(&empty, alone.clone()).await;
    let stored = store.load_doc(&room, &empty).await.unwrap();
    assert_eq!(stored.snapshot, Some(alone));
    assert!(stored.updates.is_empty());
    // Checkpoints leave the updates they cover; the committer's prunes
    // delete them, oldest first, up to a bound, at most so many at a time:
    // the 11 of "d" that its snapshot covers and the 3 of "w", not "z".
    let prune = |upto: i64, most: i64| async move {
        match commit(WriteOp::PruneLog { upto, most }).await.unwrap() {
            WriteOutcome::Pruned { deleted, last_id } => (deleted, last_id),
            other => panic!("{other:?}"),
        }
    };
    let (deleted, last_id) = prune(0, 100).await;
    assert_eq!(deleted, 0);
    assert!(last_id > 0);
    assert_eq!(prune(last_id, 4).await, (4, last_id));
    // Then the rest; the greatest id left is "z"'s.
    let (deleted, left) = prune(last_id, 100).await;
    assert_eq!(deleted, 10);
    assert!(left < last_id);
    assert_eq!(prune(last_id, 100).await, (0, left));
    assert_eq!(store.pending_updates(&room, &name).await.unwrap(), 1);
    let stored = store.load_doc(&room, &name).await.unwrap();
    let loaded = crowdroom_crdt::SharedDoc::load(
        stored.snapshot.as_deref(),
        stored.updates.iter().map(Vec::as_slice),
    )
    .unwrap();
    let text = loaded.doc().get_or_insert_text("t");
    assert_eq!(text.get_string(&loaded.doc().transact()), content);
    let stored = store.load_doc(&room, &whole).await.unwrap();
    assert_eq!(stored.snapshot, Some(snapshot));
}

async fn batches(backend: Backend) {
    let Some((_db, store)) = open(backend).await else {
        return;
    };
    let room = RoomId::parse("r").unwrap();
    let (ann, bob) = (UserId::parse("ann").unwrap(), UserId::parse("bob").unwrap());
    store.create_room(&room, "Room").await.unwrap();
    let post = |user: &UserId, body: &str| WriteOp::ChatPost {
        room: room.clone(),
        user: user.clone(),
        body: body.into(),
        at: 1,
    };
    let outcomes = store
        .write_batch(&[post(&ann, "a"), post(&bob, "b")])
        .await
        .unwrap();
    let Ok(WriteOutcome::Chat(first)) = &outcomes[0] else {
        panic!("{outcomes:?}")
    };
    // In one batch: a refused edit (not the author) beside a good one.
    let ops = [
        WriteOp::ChatEdit {
            room: room.clone(),
            id: first.id,
            author: bob.clone(),
            body: "hijack".into(),
            at: 2,
        },
        WriteOp::ChatEdit {
            room: room.clone(),
            id: first.id,
            author: ann.clone(),
            body: "a2".into(),
            at: 2,
        },
        WriteOp::ChatDelete {
            room: room.clone(),
            id: 424_242,
            by: ann.clone(),
            any_author: true,
            at: 3,
        },
    ];
    let outcomes = store.write_batch(&ops).await.unwrap();
    assert!(
        matches!(outcomes[0], Err(Error::Forbidden(_))),
        "{outcomes:?}"
    );
    assert!(matches!(&outcomes[1], Ok(WriteOutcome::Chat(message)) if message.body == "a2"));
    assert!(matches!(outcomes[2], Err(Error::NotFound(_))));
    let history = store.chat_history(&room, None, 10).await.unwrap();
    assert_eq!(
        history.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["a2", "b"]
    );
}

async fn worker_view(backend: Backend) {
    let Some((_db, store)) = open(backend).await else {
        return;
    };
    let room = RoomId::parse("r").unwrap();
    let ann = UserId::parse("ann").unwrap();
    store.create_room(&room, "Room").await.unwrap();
    store.ensure_user(&ann, "Ann").await.unwrap();
    store
        .set_member_role(&room, &ann, Role::Worker)
        .await
        .unwrap();
    // Before anything: zeros, nothing reserved, no skills, not paused.
    let view = store.worker_view(&room, &ann).await.unwrap();
    assert!(view.reservation.is_none());
    assert_eq!(
        (
            view.quality.answers,
            view.quality.gold_total,
            view.earnings.pending
        ),
        (0, 0, 0)
    );
    assert!(view.skills.is_empty() && view.quality.paused.is_none());
    assert_eq!(view.progress()["answers"], 0);

    assert!(view.standing.accuracy.is_empty() && view.standing.interests.is_empty());
    let skills = vec!["fr".to_owned(), "de".to_owned()];
    store.set_member_skills(&room, &ann, &skills).await.unwrap();
    store
        .set_member_interests(&room, &ann, &["law".to_owned()])
        .await
        .unwrap();
    let project = ProjectConfig {
        pay_per_answer: 250,
        ..ProjectConfig::default()
    };
    store.put_project(&room, &project).await.unwrap();
    let task = NewTask {
        id: "t1".into(),
        data: json!({"text": "x"}),
        skills: Vec::new(),
        gold: None,
        tags: Vec::new(),
    };
    store.insert_tasks(&room, &[task], 1).await.unwrap();
    // A grant in two steps: ranked on a reader, granted in a batch.
    let ask = WorkAsk {
        room: room.clone(),
        worker: ann.clone(),
        skills: skills.clone(),
        gold: false,
        ttl_ms: 60_000,
        cap_ms: 600_000,
        standing: Standing::default(),
    };
    let ranked = store.rank_work(&ask).await.unwrap();
    assert_eq!(ranked.len(), 1);
    let outcomes = store
        .write_batch(&[WriteOp::GrantFirst {
            ask: ask.clone(),
            ranked: ranked.clone(),
        }])
        .await
        .unwrap();
    let Ok(WriteOutcome::Matched(Some((reservation, task)))) = &outcomes[0] else {
        panic!("{outcomes:?}")
    };
    // The same ranking again finds the slot taken (overlap 1): no grant.
    let again = store
        .write_batch(&[WriteOp::GrantFirst {
            ask: ask.clone(),
            ranked,
        }])
        .await
        .unwrap();
    assert!(
        matches!(again[0], Ok(WriteOutcome::Matched(None))),
        "{again:?}"
    );

    let view = store.worker_view(&room, &ann).await.unwrap();
    let (held, held_task) = view.reservation.as_ref().expect("the reservation");
    assert_eq!(
        (
            held.task_id,
            held.expires_at,
            held_task.external_id.as_str()
        ),
        (task.id, reservation.expires_at, "t1")
    );
    assert_eq!(held_task.data["text"], "x");
    assert_eq!(view.skills, ["de", "fr"]);

    // The answer: counted, paid (pending), the reservation gone.
    let submit = WriteOp::Submit {
        room: room.clone(),
        task: task.id,
        worker: ann.clone(),
        answer: json!("yes"),
        rules: project.submit_rules(),
    };
    // Twice in one batch (one run of answers): the second finds the
    // reservation consumed and is refused alone.
    let outcomes = store.write_batch(&[submit.clone(), submit]).await.unwrap();
    assert!(
        matches!(&outcomes[0], Ok(WriteOutcome::Submitted(done)) if done.task_id == task.id && done.answer_id > 0),
        "{outcomes:?}"
    );
    assert!(
        matches!(outcomes[1], Err(Error::ReservationLost)),
        "{outcomes:?}"
    );
    let view = store.worker_view(&room, &ann).await.unwrap();
    assert!(view.reservation.is_none());
    assert_eq!(view.quality.answers, 1);
    // What the ranking weighs comes with the view: the record overall
    // (the answer settled its task, so it agreed once) and the interests.
    assert_eq!(view.standing.interests, ["law"]);
    assert_eq!((view.quality.agree, view.quality.gold_total), (1, 0));
    let overall = view.standing.accuracy.get("").copied().unwrap();
    assert!(
        (overall - crowdroom_work::quality::vote_accuracy(0, 0, 1, 0)).abs() < 1e-9,
        "{overall}"
    );
    assert_eq!(view.standing.accuracy.len(), 1);
    assert_eq!((view.earnings.pending, view.earnings.approved), (250, 0));
    assert_eq!(view.progress()["pending_earnings"], 250);
    // The room's ledger agrees.
    let summary = store.ledger_summary(&room, 0).await.unwrap();
    assert_eq!(summary.workers[0].worker, "ann");
    assert_eq!(summary.workers[0].pending, view.earnings.pending);

    store.pause_worker(&room, &ann, "spot check").await.unwrap();
    let view = store.worker_view(&room, &ann).await.unwrap();
    assert_eq!(view.quality.paused.as_deref(), Some("spot check"));
}
