//! Test harness: a real server on 127.0.0.1:0 over a fresh database (SQLite
//! in a temp dir, or a fresh PostgreSQL database), and real clients: a
//! y-websocket client speaking the binary protocol, a live-channel client,
//! and a small HTTP client.
//!
//! PostgreSQL tests need a server at `CROWDROOM_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432/test`). When it cannot be reached
//! they fail under CI and print a loud SKIPPED banner elsewhere.

pub mod client;
pub mod http;
pub mod process;

use std::net::SocketAddr;
use std::time::Duration;

use crowdroom::auth::Role;
use crowdroom::ids::{RoomId, UserId};
use crowdroom::{Settings, Store};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Every wait in the tests is bounded by this.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh database for one test. The SQLite file lives in a temp dir; a
/// PostgreSQL database is created with a random name and dropped at the end.
pub struct TestDb {
    pub url: String,
    _dir: Option<TempDir>,
    postgres: Option<(String, String)>,
}

fn admin_url() -> String {
    std::env::var("CROWDROOM_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

impl TestDb {
    /// A database on `backend`, or None (after a loud message) when
    /// PostgreSQL is unreachable outside CI. Under CI it panics instead.
    pub async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("crowdroom.db").display());
                Some(TestDb {
                    url,
                    _dir: Some(dir),
                    postgres: None,
                })
            }
            Backend::Postgres => TestDb::postgres().await,
        }
    }

    async fn postgres() -> Option<TestDb> {
        use sqlx::Connection;
        let admin = admin_url();
        let mut conn = match sqlx::PgConnection::connect(&admin).await {
            Ok(conn) => conn,
            Err(error) => {
                let message = format!(
                    "PostgreSQL at {admin} is unreachable ({error}); run tests/run, which starts it"
                );
                if std::env::var_os("CI").is_some() {
                    panic!("{message}");
                }
                eprintln!("\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
                eprintln!("!!! SKIPPED PostgreSQL test: {message}");
                eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n");
                return None;
            }
        };
        let name = format!("crowdroom_test_{:016x}", rand::random::<u64>());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create database");
        let base = admin
            .rsplit_once('/')
            .map_or(admin.as_str(), |(base, _)| base)
            .to_owned();
        Some(TestDb {
            url: format!("{base}/{name}"),
            _dir: None,
            postgres: Some((admin, name)),
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.postgres.take() {
            // Best effort, on a thread of its own: Drop cannot await.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(runtime) = runtime {
                    runtime.block_on(async {
                        use sqlx::Connection;
                        if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                            let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                                .execute(&mut conn)
                                .await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

/// Settings that make idle unloading observable within a test.
pub fn fast_settings() -> Settings {
    let mut settings = Settings::default();
    settings.rooms.doc_idle = Duration::from_millis(300);
    settings.rooms.room_idle = Duration::from_millis(300);
    settings
}

/// The server, running in this process on 127.0.0.1:0.
pub struct TestServer {
    pub addr: SocketAddr,
    pub store: Store,
    pub db: TestDb,
    shutdown: CancellationToken,
    task: JoinHandle<crowdroom::Result<()>>,
}

impl TestServer {
    /// Starts a server on a fresh database; None when the backend is unavailable (see [`TestDb::new`]).
    pub async fn start(backend: Backend) -> Option<TestServer> {
        let db = TestDb::new(backend).await?;
        Some(TestServer::start_on(db, fast_settings()).await)
    }

    /// Starts a server on an existing database.
    pub async fn start_on(db: TestDb, settings: Settings) -> TestServer {
        // Server logs, when RUST_LOG asks for them.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let store = Store::open(&db.url).await.expect("open store");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(crowdroom::run(
            listener,
            store.clone(),
            settings,
            shutdown.clone(),
        ));
        TestServer {
            addr,
            store,
            db,
            shutdown,
            task,
        }
    }

    /// Shuts down cleanly (as on SIGTERM) and hands back the database.
    pub async fn stop(self) -> TestDb {
        self.shutdown.cancel();
        let result = tokio::time::timeout(Duration::from_secs(40), self.task).await;
        assert!(
            matches!(result, Ok(Ok(Ok(())))),
            "server did not shut down cleanly: {result:?}"
        );
        self.db
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// Creates a room (if missing) and a user, and issues a token with `role`.
    pub async fn token(&self, room: &str, user: &str, role: Role) -> String {
        let room_id = RoomId::parse(room).expect("room id");
        if !self.store.room_exists(&room_id).await.expect("room lookup") {
            self.store
                .create_room(&room_id, room)
                .await
                .expect("create room");
        }
        let user_id = UserId::parse(user).expect("user id");
        self.store
            .ensure_user(&user_id, user)
            .await
            .expect("create user");
        self.store
            .issue_token(&room_id, &user_id, role, None)
            .await
            .expect("issue token")
            .1
    }

    /// Reads a metric's value from `/metrics` (summing its label sets).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = http::get(&self.http_url("/metrics"), None).await.body;
        metric_value(&text, name)
    }
}

/// The value of `name` in a Prometheus text exposition, summed over label sets.
pub fn metric_value(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            let metric = key.split('{').next()?;
            (metric == name)
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// Polls `check` until it holds, failing after [`TIMEOUT`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Runs one async test body on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! both_stores {
    ($($name:ident => $body:ident;)+) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$body($crate::Backend::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$body($crate::Backend::Postgres).await;
                }
            }
        )+
    };
}

/// Waits until no task of `room` waits for its consensus decision: the
/// consensus actor decides a task after the answer that brought it to its
/// overlap target is acknowledged, so a test that looks at the decision
/// (or asks for the raised overlap's next answer) waits for it. `token`
/// lists tasks (the core team's). Returns the room's tasks.
pub async fn decided(server: &TestServer, room: &str, token: &str) -> Vec<serde_json::Value> {
    let url = server.http_url(&format!("/api/v1/rooms/{room}/tasks?limit=1000"));
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let listed = http::get(&url, Some(token)).await;
        assert_eq!(listed.status, 200, "{}", listed.body);
        let tasks = listed.json()["tasks"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let waiting = tasks.iter().any(|task| {
            task["state"] == "open"
                && task["gold"].is_null()
                && task["answered"].as_i64() >= task["overlap_target"].as_i64()
        });
        if !waiting {
            return tasks;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {room}'s decisions"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
