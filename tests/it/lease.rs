//! One owner per room (server/src/rooms/lease.rs): a second server sharing
//! the database refuses a room another server runs (close 4013), takes it
//! over at once when the first lets go (SIGTERM, idle) and after the lease's
//! life when the first was killed with -9; a server whose lease was taken
//! closes its connections with 4013, and the committer refuses the work
//! writes of a lease taken since (the per-batch fence).

use std::net::SocketAddr;
use std::time::Duration;

use crowdroom::auth::Role;
use crowdroom::ids::{RoomId, UserId, now_ms};
use crowdroom::store::{ProcessId, RoomLease, WriteOp, WriteOutcome};
use crowdroom::{Error, Settings, Store};
use crowdroom_tests::client::{Incoming, LiveClient, YjsClient};
use crowdroom_tests::process::ServerProcess;
use crowdroom_tests::{Backend, TIMEOUT, TestDb, TestServer, both_stores, eventually};
use crowdroom_work::project::{NewTask, ProjectConfig};
use crowdroom_work::queue::{Grant, WorkState};
use futures_util::StreamExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::sync::CancellationToken;

both_stores! {
    leases_follow_their_rules_in_the_store => lease_rules;
    a_second_server_is_refused_until_the_first_lets_go => refused_until_released;
    a_room_whose_lease_was_taken_closes_its_connections => lease_taken;
    a_killed_server_holds_its_rooms_for_the_lease_life => kill_9_then_lease_expiry;
    work_writes_under_a_lease_taken_since_are_refused => fenced_writes;
}

/// The close code of a room that runs in another process (docs/PROTOCOL.md).
pub(crate) const ROOM_ELSEWHERE: u16 = 4013;

/// Opens `room`'s live channel at `base`: Ok once `hello` came, or the
/// close code the server refused the join with.
pub(crate) async fn live_join(base: &str, room: &str, token: &str) -> Result<(), Option<u16>> {
    let url = format!("{base}/rooms/{room}/live?token={token}");
    let mut ws = crowdroom_tests::client::connect(&url)
        .await
        .unwrap_or_else(|status| panic!("upgrade refused with {status}"));
    loop {
        let frame = tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("the join's answer");
        match frame {
            Some(Ok(WsMessage::Text(text))) => {
                assert!(text.contains("\"hello\""), "first frame is hello: {text}");
                return Ok(());
            }
            Some(Ok(WsMessage::Close(frame))) => {
                return Err(frame.map(|frame| u16::from(frame.code)));
            }
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
            other => panic!("unexpected answer to a join: {other:?}"),
        }
    }
}

/// Polls `base` until it runs `room` (its last lease expired or was let go).
pub(crate) async fn wait_for_room(base: &str, room: &str, token: &str) {
    eventually("the room's lease to come free", || async {
        match live_join(base, room, token).await {
            Ok(()) => true,
            Err(Some(ROOM_ELSEWHERE)) => false,
            Err(code) => panic!("join refused with {code:?}, not {ROOM_ELSEWHERE}"),
        }
    })
    .await;
}

/// A second server in this process over an existing database: its own
/// store, rooms and lease owner id, as another process would have.
struct Peer {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<crowdroom::Result<()>>,
}

impl Peer {
    async fn start(url: &str, settings: Settings) -> Peer {
        let store = Store::open(url).await.expect("open store");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(crowdroom::run(listener, store, settings, shutdown.clone()));
        Peer {
            addr,
            shutdown,
            task,
        }
    }

    fn base(&self) -> String {
        format!("ws://{}", self.addr)
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let result = tokio::time::timeout(Duration::from_secs(40), self.task).await;
        assert!(matches!(result, Ok(Ok(Ok(())))), "{result:?}");
    }
}

/// What the yjs endpoint answers a join of `doc` with: the sync, or a close.
async fn doc_join(base: &str, room: &str, doc: &str, token: &str) -> Result<(), Option<u16>> {
    let mut client = YjsClient::open(base, room, doc, token)
        .await
        .unwrap_or_else(|status| panic!("upgrade refused with {status}"));
    match client.next().await {
        Incoming::Closed(code) => Err(code),
        _ => Ok(()),
    }
}

async fn refused_until_released(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let first = TestServer::start_on(db, crowdroom_tests::fast_settings()).await;
    let token = first.token("r1", "ann", Role::Worker).await;
    let second = Peer::start(&first.db.url, crowdroom_tests::fast_settings()).await;
    let mut ann = LiveClient::connect(&first.ws_url(""), "r1", &token).await;

    // The first server runs r1: the second refuses both endpoints.
    let refused = Err(Some(ROOM_ELSEWHERE));
    assert_eq!(live_join(&second.base(), "r1", &token).await, refused);
    assert_eq!(
        doc_join(&second.base(), "r1", "notes", &token).await,
        refused
    );
    // The first keeps serving its member meanwhile.
    assert_eq!(ann.request("ping", serde_json::json!({})).await["ok"], true);

    // Shut down, the first lets go at once: the second starts r1 on the
    // first try, long before the lease (15 s by default) could expire.
    drop(ann);
    let db = first.stop().await;
    assert_eq!(live_join(&second.base(), "r1", &token).await, Ok(()));
    let mut bob = LiveClient::connect(&second.base(), "r1", &token).await;
    // Now the first, started again, is the one refused.
    let again = TestServer::start_on(db, crowdroom_tests::fast_settings()).await;
    assert_eq!(live_join(&again.ws_url(""), "r1", &token).await, refused);
    // An idle room exits and lets go too (room_idle is 300 ms here).
    assert_eq!(bob.request("ping", serde_json::json!({})).await["ok"], true);
    drop(bob);
    wait_for_room(&again.ws_url(""), "r1", &token).await;
    second.stop().await;
    again.stop().await;
}

async fn lease_taken(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let mut settings = crowdroom_tests::fast_settings();
    // Renewed every 200 ms, so the loss is found quickly.
    settings.rooms.lease_ttl = Duration::from_millis(600);
    let server = TestServer::start_on(db, settings).await;
    let token = server.token("r1", "ann", Role::Worker).await;
    let mut live = LiveClient::connect(&server.ws_url(""), "r1", &token).await;
    let mut doc = YjsClient::connect(&server.ws_url(""), "r1", "notes", &token).await;
    doc.sync().await;

    // Another process takes the lease over, as one whose clock says it
    // expired would (this one stalled past it).
    let room = RoomId::parse("r1").unwrap();
    let far = now_ms() + 3_600_000;
    let epoch = server
        .store
        .take_lease(&room, "another-process", i64::MAX, far)
        .await
        .unwrap()
        .expect("a lease past its expiry is taken");
    assert!(epoch >= 2, "the take counts after the first's: {epoch}");

    // The room finds out at its next renewal and closes everything it serves.
    assert_eq!(live.closed().await, Some(ROOM_ELSEWHERE));
    assert_eq!(doc.closed().await, Some(ROOM_ELSEWHERE));
    // Until the other lets go, this server refuses the room.
    assert_eq!(
        live_join(&server.ws_url(""), "r1", &token).await,
        Err(Some(ROOM_ELSEWHERE))
    );
    server
        .store
        .release_lease(&room, "another-process", epoch)
        .await
        .unwrap();
    let mut live = LiveClient::connect(&server.ws_url(""), "r1", &token).await;
    assert_eq!(
        live.request("ping", serde_json::json!({})).await["ok"],
        true
    );
    drop(live);
    server.stop().await;
}

/// A room, a user and a worker token, written straight into the store.
async fn seed(url: &str) -> String {
    let store = Store::open(url).await.unwrap();
    let room = RoomId::parse("r1").unwrap();
    store.create_room(&room, "r1").await.unwrap();
    let user = UserId::parse("ann").unwrap();
    store.ensure_user(&user, "ann").await.unwrap();
    let (_, token) = store
        .issue_token(&room, &user, Role::Worker, None)
        .await
        .unwrap();
    store.close().await;
    token
}

async fn kill_9_then_lease_expiry(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let token = seed(&db.url).await;
    // Renewed every second: a kill leaves at least two seconds of lease.
    let flags = ["--room-lease-ttl", "3s"];
    let first = ServerProcess::start_with(&db.url, &flags).await;
    let second = ServerProcess::start_with(&db.url, &flags).await;
    let (first_base, second_base) = (
        format!("ws://{}", first.addr),
        format!("ws://{}", second.addr),
    );
    let mut ann = LiveClient::connect(&first_base, "r1", &token).await;
    assert_eq!(
        live_join(&second_base, "r1", &token).await,
        Err(Some(ROOM_ELSEWHERE))
    );

    // Killed, the first lets nothing go: the second still refuses r1 ...
    first.kill9().await;
    assert_eq!(
        ann.closed().await,
        None,
        "no close frame from a killed server"
    );
    assert_eq!(
        live_join(&second_base, "r1", &token).await,
        Err(Some(ROOM_ELSEWHERE))
    );
    // ... until the lease expires; then it runs it.
    wait_for_room(&second_base, "r1", &token).await;
    let mut bob = LiveClient::connect(&second_base, "r1", &token).await;
    assert_eq!(bob.request("ping", serde_json::json!({})).await["ok"], true);
    drop(bob);
    assert!(second.terminate().await.success());
}

/// The store's three statements: a take wins only over an expired lease or
/// its own owner's, every take counts a new epoch, and renewals and
/// releases touch only the lease they name.
async fn lease_rules(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    seed(&db.url).await;
    let store = Store::open(&db.url).await.unwrap();
    let room = RoomId::parse("r1").unwrap();
    let now = now_ms();
    let later = now + 60_000;
    assert_eq!(
        store.take_lease(&room, "a", now, later).await.unwrap(),
        Some(1)
    );
    assert_eq!(
        store.take_lease(&room, "b", now, later).await.unwrap(),
        None
    );
    // The same owner takes its own lease again (its previous actor of the
    // room could not let go): a new epoch, and the old one is void.
    assert_eq!(
        store.take_lease(&room, "a", now, later).await.unwrap(),
        Some(2)
    );
    assert!(!store.renew_lease(&room, "a", 1, later).await.unwrap());
    assert!(store.renew_lease(&room, "a", 2, later).await.unwrap());
    assert!(!store.renew_lease(&room, "b", 2, later).await.unwrap());
    // A stale epoch lets nothing go; the holder's release frees it at once.
    store.release_lease(&room, "a", 1).await.unwrap();
    assert_eq!(
        store.take_lease(&room, "b", now, later).await.unwrap(),
        None
    );
    store.release_lease(&room, "a", 2).await.unwrap();
    assert_eq!(
        store.take_lease(&room, "b", now, later).await.unwrap(),
        Some(3)
    );
    // Expired, it is anyone's: the epoch keeps counting.
    assert_eq!(
        store
            .take_lease(&room, "a", later, later + 1)
            .await
            .unwrap(),
        Some(4)
    );
    assert!(!store.renew_lease(&room, "b", 3, later).await.unwrap());
    store.close().await;
}

/// The per-batch fence: a process that stalled past its lease (here: wrote
/// nothing while another took the room) has its work writes refused, in
/// the same batch as the new owner's, which commit; nothing of the refused
/// ones is written.
async fn fenced_writes(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    seed(&db.url).await;
    let store = Store::open(&db.url).await.unwrap();
    let room = RoomId::parse("r1").unwrap();
    store
        .put_project(&room, &ProjectConfig::default())
        .await
        .unwrap();
    let tasks: Vec<NewTask> = (0..2)
        .map(|i| NewTask {
            id: format!("t{i}"),
            data: serde_json::json!({"text": i}),
            skills: Vec::new(),
            gold: None,
            tags: Vec::new(),
        })
        .collect();
    store.insert_tasks(&room, &tasks, 2).await.unwrap();
    let now = now_ms();
    let take = |owner: &'static str, at: i64| {
        let store = store.clone();
        let room = room.clone();
        async move {
            let owner = ProcessId::new(owner);
            let epoch = store
                .take_lease(&room, owner.as_str(), at, at + 1_000)
                .await
                .unwrap()
                .expect("the lease is free");
            RoomLease { owner, epoch }
        }
    };
    let loaded = || async {
        let rows = store.load_work(&room).await.unwrap();
        rows.into_state().unwrap().state
    };
    let first = take("first", now).await;
    // Both processes decided from the same state: the first one stalled
    // with its decision unwritten while its lease lapsed and the second
    // took the room.
    let mut stalled = loaded().await;
    let mut fresh = loaded().await;
    let second = take("second", now + 2_000).await;
    assert!(second.epoch > first.epoch);
    let grant = |state: &mut WorkState| {
        let outcome = state.request("ann", 0.5, now + 2_000).unwrap();
        assert!(matches!(outcome.value, Grant::Granted(_)), "{outcome:?}");
        outcome.effects
    };
    let ops = [
        WriteOp::Work {
            room: room.clone(),
            lease: first,
            effects: grant(&mut stalled),
        },
        WriteOp::Work {
            room: room.clone(),
            lease: second,
            effects: grant(&mut fresh),
        },
    ];
    let outcomes = store.write_batch(&ops).await.unwrap();
    assert!(
        matches!(outcomes[0], Err(Error::RoomElsewhere)),
        "{outcomes:?}"
    );
    assert!(
        matches!(outcomes[1], Ok(WriteOutcome::Worked(_))),
        "{outcomes:?}"
    );
    // Only the new owner's grant is in the store: one reservation, not two.
    let stored = loaded().await;
    assert_eq!(stored.counts(now + 2_000), fresh.counts(now + 2_000));
    assert_eq!(stored.counts(now + 2_000).reserved, 1);
    store.close().await;
}
