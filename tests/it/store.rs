//! The store's domain methods on SQLite and PostgreSQL: tokens, documents
//! with checkpoints, chat, group-commit batches, and the work queue's
//! effects committed and loaded back.

use crowdroom::auth::Role;
use crowdroom::ids::{DocName, RoomId, UserId};
use crowdroom::store::{ProcessId, RoomLease, WriteOp, WriteOutcome};
use crowdroom::{Error, Store};
use crowdroom_tests::{Backend, TestDb, both_stores};
use crowdroom_work::project::{NewTask, ProjectConfig};
use crowdroom_work::queue::{Effect, Grant, WorkState};
use serde_json::json;
use yrs::{GetString, Text, Transact};

both_stores! {
    tokens_issue_authenticate_revoke => tokens;
    documents_append_checkpoint_load => documents;
    batches_isolate_refusals => batches;
    work_effects_commit_what_memory_decided => work_effects;
    a_raised_target_and_its_new_slot_commit_together => raised_target;
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

/// The lease this test's writes go under: taken again for each write by
/// the same owner, so each write's epoch is the current one.
async fn held(store: &Store, room: &RoomId) -> RoomLease {
    let owner = ProcessId::new("store-tests");
    let now = crowdroom::ids::now_ms();
    let epoch = store
        .take_lease(room, owner.as_str(), now, now + 3_600_000)
        .await
        .unwrap()
        .expect("the room's lease is this test's");
    RoomLease { owner, epoch }
}

/// Commits a decision's effects in one batch under the room's lease (taken
/// if nobody holds it); returns the answer ids.
async fn commit(store: &Store, room: &RoomId, effects: Vec<Effect>) -> Vec<i64> {
    let op = WriteOp::Work {
        room: room.clone(),
        lease: held(store, room).await,
        effects,
    };
    match store.write_batch(&[op]).await.unwrap().remove(0) {
        Ok(WriteOutcome::Worked(ids)) => ids,
        other => panic!("{other:?}"),
    }
}

/// The room's work state as loaded from the store now.
async fn load(store: &Store, room: &RoomId) -> WorkState {
    store
        .load_work(room)
        .await
        .unwrap()
        .into_state()
        .unwrap()
        .state
}

async fn work_effects(backend: Backend) {
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
    let skills = vec!["fr".to_owned(), "de".to_owned()];
    store.set_member_skills(&room, &ann, &skills).await.unwrap();
    let project = ProjectConfig {
        pay_per_answer: 250,
        onboarding_gold: 0,
        gold_rate: 0.0,
        ..ProjectConfig::default()
    };
    store.put_project(&room, &project).await.unwrap();
    let task = NewTask {
        id: "t1".into(),
        data: json!({"text": "x"}),
        skills: vec!["de".into()],
        gold: None,
        tags: Vec::new(),
    };
    store.insert_tasks(&room, &[task], 2).await.unwrap();
    let now = crowdroom::ids::now_ms();

    // A grant decided in memory, committed, and found again by a load.
    let mut state = load(&store, &room).await;
    let granted = state.request("ann", 0.5, now).unwrap();
    let Grant::Granted(reservation) = granted.value else {
        panic!("{granted:?}")
    };
    assert!(commit(&store, &room, granted.effects).await.is_empty());
    let task = store
        .worker_task(&room, reservation.task_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (task.external_id.as_str(), &task.data),
        ("t1", &json!({"text": "x"}))
    );
    let loaded = load(&store, &room).await;
    assert_eq!(loaded.view("ann", now).reservation, Some(reservation));
    assert_eq!(loaded.counts(now), state.counts(now));

    // The answer: counted, recorded, paid (pending), the reservation gone.
    let submitted = state
        .submit("ann", reservation.task_id, &json!("yes"), now + 1_000)
        .unwrap();
    let effects = submitted.effects.clone();
    let ids = commit(&store, &room, submitted.effects).await;
    assert_eq!(ids.len(), 1);
    assert!(ids[0] > 0);
    let loaded = load(&store, &room).await;
    let (view, stored) = (state.view("ann", now), loaded.view("ann", now));
    assert_eq!(stored.reservation, None);
    assert_eq!((stored.answers, stored.record), (1, view.record));
    assert_eq!(stored.record.lead_time_total, 1_000);
    assert_eq!(
        (stored.earnings.pending, stored.earnings.approved),
        (250, 0)
    );
    assert_eq!(loaded.counts(now), state.counts(now));
    let quality = store.worker_quality(&room, &ann).await.unwrap();
    assert_eq!((quality.answers, quality.gold_total), (1, 0));
    let summary = store.ledger_summary(&room, 0).await.unwrap();
    assert_eq!(summary.workers[0].pending, 250);

    // The same answer again breaks the store's constraints (one answer per
    // task and worker): the write fails whole and writes nothing.
    let again = WriteOp::Work {
        room: room.clone(),
        lease: held(&store, &room).await,
        effects,
    };
    let outcome = store.write_batch(&[again]).await;
    assert!(outcome.is_err(), "{outcome:?}");
    assert_eq!(load(&store, &room).await.counts(now), state.counts(now));

    // A pause decided in memory is a pause in the store.
    let paused = state.pause("ann", "spot check", now).unwrap();
    commit(&store, &room, paused.effects).await;
    let quality = store.worker_quality(&room, &ann).await.unwrap();
    assert_eq!(quality.paused.as_deref(), Some("spot check"));
}

async fn raised_target(backend: Backend) {
    let Some((_db, store)) = open(backend).await else {
        return;
    };
    let room = RoomId::parse("r").unwrap();
    store.create_room(&room, "Room").await.unwrap();
    let project = ProjectConfig {
        overlap_min: 1,
        overlap_max: 3,
        onboarding_gold: 0,
        gold_rate: 0.0,
        min_lead_time_ms: 0,
        ..ProjectConfig::default()
    };
    store.put_project(&room, &project).await.unwrap();
    let task = NewTask {
        id: "t1".into(),
        data: json!({}),
        skills: Vec::new(),
        gold: None,
        tags: Vec::new(),
    };
    store.insert_tasks(&room, &[task], 1).await.unwrap();
    let now = crowdroom::ids::now_ms();
    let mut state = load(&store, &room).await;
    let granted = state.request("ann", 0.5, now).unwrap();
    let Grant::Granted(reservation) = granted.value else {
        panic!("{granted:?}")
    };
    let task = reservation.task_id;
    let mut effects = granted.effects;
    let submitted = state.submit("ann", task, &json!("x"), now + 1).unwrap();
    let due = submitted.value.due.expect("at its target");
    effects.extend(submitted.effects);
    commit(&store, &room, effects).await;
    // The decision raises the target and Bob takes the new slot: both in
    // one batch, the raise queued first (as the room queues them).
    let raise = crowdroom_work::queue::Decision {
        verdict: crowdroom_work::queue::Verdict::RaiseOverlap,
        agreement: Vec::new(),
        consensus: None,
    };
    let raised = state.apply_decision(due.task, &raise, now + 2).unwrap();
    let bob = state.request("bob", 0.5, now + 3).unwrap();
    assert!(matches!(bob.value, Grant::Granted(_)), "{bob:?}");
    let lease = held(&store, &room).await;
    let ops = [raised.effects, bob.effects].map(|effects| WriteOp::Work {
        room: room.clone(),
        lease: lease.clone(),
        effects,
    });
    let outcomes = store.write_batch(&ops).await.unwrap();
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    let loaded = load(&store, &room).await;
    assert_eq!(loaded.counts(now + 3), state.counts(now + 3));
    assert_eq!(
        loaded.view("bob", now + 3).reservation.map(|r| r.task_id),
        Some(task)
    );
}
