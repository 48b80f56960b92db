//! HTTP hygiene against hostile clients: a slow client is cut off at the
//! header-read deadline; connections per address and sockets per user are
//! capped; a junk bearer costs no store read; authentication comes before
//! the body; every body has a limit (imports per record and per import);
//! and an export only reads.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crowdroom::auth::Role;
use crowdroom_tests::client::{LiveClient, YjsClient};
use crowdroom_tests::{Backend, TIMEOUT, TestDb, TestServer, both_stores, eventually, http};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

both_stores! {
    sockets_per_user_capped => sockets_per_user_capped;
    malformed_token_refused_without_a_store_read => malformed_token_refused_without_a_store_read;
    authentication_before_the_body => authentication_before_the_body;
    oversized_json_body_is_413 => oversized_json_body_is_413;
    import_record_over_the_limit_is_413_naming_it => import_record_over_the_limit_is_413_naming_it;
    import_over_the_task_cap_is_413 => import_over_the_task_cap_is_413;
    export_only_reads => export_only_reads;
}

/// The header-read deadline the slow-client test sets.
const HEADER_DEADLINE: Duration = Duration::from_millis(500);

async fn server_with(
    backend: Backend,
    change: impl FnOnce(&mut crowdroom::Settings),
) -> Option<TestServer> {
    let db = TestDb::new(backend).await?;
    let mut settings = crowdroom_tests::fast_settings();
    change(&mut settings);
    Some(TestServer::start_on(db, settings).await)
}

/// Sends `head` (and `body`) on a fresh connection and reads until the
/// server closes it: the status (0 if none) and the body.
async fn raw_request(addr: SocketAddr, head: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut request = head.as_bytes().to_vec();
    request.extend_from_slice(body);
    if stream.write_all(&request).await.is_err() {
        return (0, String::new());
    }
    let mut response = Vec::new();
    let read = tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut response))
        .await
        .expect("the server neither answered nor closed");
    if read.is_err() && response.is_empty() {
        return (0, String::new());
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Whether a fresh connection is served (a GET of /metrics answered 200).
async fn served(addr: SocketAddr) -> bool {
    let head = "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    raw_request(addr, head, b"").await.0 == 200
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off_at_the_deadline() {
    let Some(server) = server_with(Backend::Sqlite, |settings| {
        settings.http.header_read_timeout = HEADER_DEADLINE;
    })
    .await
    else {
        return;
    };
    // An honest request is served.
    assert!(served(server.addr).await);
    // A slowloris client: the request line, then a header byte every 100 ms.
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    writer
        .write_all(b"GET /metrics HTTP/1.1\r\n")
        .await
        .unwrap();
    let dribble = tokio::spawn(async move {
        for byte in b"X-Slow: ".iter().cycle() {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut buffer = [0u8; 256];
    let read = tokio::time::timeout(TIMEOUT, reader.read(&mut buffer)).await;
    dribble.abort();
    let elapsed = started.elapsed();
    assert!(
        matches!(read, Ok(Ok(0) | Err(_)))
            || matches!(read, Ok(Ok(n)) if buffer[..n].starts_with(b"HTTP/1.1 408")),
        "the slow client was not cut off: {read:?}"
    );
    assert!(
        elapsed >= HEADER_DEADLINE && elapsed < HEADER_DEADLINE * 6,
        "cut off after {elapsed:?}, the deadline is {HEADER_DEADLINE:?}"
    );
    // A connection that sends nothing at all goes the same way.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let read = tokio::time::timeout(TIMEOUT, silent.read(&mut buffer)).await;
    assert!(matches!(read, Ok(Ok(0) | Err(_))), "{read:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_address_capped() {
    let Some(server) = server_with(Backend::Sqlite, |settings| {
        settings.http.max_connections_per_ip = 3;
    })
    .await
    else {
        return;
    };
    let base = server.ws_url("");
    let token = server.token("r1", "ann", Role::Worker).await;
    // Two WebSockets and an idle connection fill the address's three places:
    // an upgraded socket keeps its place.
    let live = LiveClient::connect(&base, "r1", &token).await;
    let _doc = YjsClient::connect(&base, "r1", "d", &token).await;
    let idle = TcpStream::connect(server.addr).await.unwrap();
    assert!(!served(server.addr).await, "a fourth connection was served");
    // A place frees when its connection closes.
    drop(idle);
    eventually("a place to free", || served(server.addr)).await;
    drop(live);
    server.stop().await;
}

async fn sockets_per_user_capped(backend: Backend) {
    let Some(server) = server_with(backend, |settings| {
        settings.http.max_sockets_per_user = 2;
    })
    .await
    else {
        return;
    };
    let base = server.ws_url("");
    let ann = server.token("r1", "ann", Role::Worker).await;
    let bob = server.token("r1", "bob", Role::Worker).await;
    let first = LiveClient::connect(&base, "r1", &ann).await;
    let _second = YjsClient::connect(&base, "r1", "d", &ann).await;
    // Ann's third socket, of either kind, is refused at the upgrade.
    assert_eq!(LiveClient::open(&base, "r1", &ann).await.err(), Some(429));
    assert_eq!(
        YjsClient::open(&base, "r1", "d", &ann).await.err(),
        Some(429)
    );
    // Other users are not affected.
    let _bob = LiveClient::connect(&base, "r1", &bob).await;
    // Closing one of hers frees its place.
    drop(first);
    eventually("ann's socket place to free", || async {
        match LiveClient::open(&base, "r1", &ann).await {
            Ok(client) => {
                drop(client);
                true
            }
            Err(status) => {
                assert_eq!(status, 429);
                false
            }
        }
    })
    .await;
    server.stop().await;
}

async fn malformed_token_refused_without_a_store_read(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let owner = server.token("r1", "olivia", Role::Owner).await;
    let url = server.http_url("/api/v1/rooms/r1");
    assert_eq!(http::get(&url, Some(&owner)).await.status, 200);
    // With the store closed, a token of the right form cannot be checked
    // (an error) while junk is refused before the store is asked (401).
    tokio::time::timeout(TIMEOUT, server.store.close())
        .await
        .expect("the store to close");
    let unknown = format!("crt_{}", "0".repeat(64));
    let checked = http::get(&url, Some(&unknown)).await;
    assert!(checked.status >= 500, "{checked:?}");
    for junk in ["nope", "crt_", "crt_xyz", &"a".repeat(100_000)] {
        for path in ["/api/v1/rooms/r1", "/api/v1/me", "/api/v1/rooms/r1/project"] {
            let refused = http::get(&server.http_url(path), Some(junk)).await;
            assert_eq!(
                (refused.status, refused.code().as_str()),
                (401, "unauthorized"),
                "{path}: {refused:?}"
            );
        }
        if junk.len() < 100 {
            assert_eq!(
                LiveClient::open(&server.ws_url(""), "r1", junk).await.err(),
                Some(401)
            );
        }
    }
    // The server is not stopped: its store is closed.
}

async fn authentication_before_the_body(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let owner = server.token("r1", "olivia", Role::Owner).await;
    let worker = server.token("r1", "wes", Role::Worker).await;
    let other_room = server.token("r2", "otto", Role::Owner).await;
    let bad_json = "{not json";
    for path in [
        "/api/v1/rooms",
        "/api/v1/rooms/r1/docs",
        "/api/v1/rooms/r1/project",
        "/api/v1/rooms/r1/workers/wes/pause",
    ] {
        let method = if path.ends_with("/project") {
            "PUT"
        } else {
            "POST"
        };
        // No token at all: 401, whatever the body.
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            bad_json.len()
        );
        let (status, body) = raw_request(server.addr, &head, bad_json.as_bytes()).await;
        assert_eq!(status, 401, "{path}: {body}");
        // A token of another room: 403 before the body too.
        if path != "/api/v1/rooms" {
            let head = format!(
                "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
                 Authorization: Bearer {other_room}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                bad_json.len()
            );
            let (status, body) = raw_request(server.addr, &head, bad_json.as_bytes()).await;
            assert_eq!(status, 403, "{path}: {body}");
        }
    }
    // With a valid token, the bad body is what is wrong.
    let project = http::post_typed(
        &server.http_url("/api/v1/rooms/r1/docs"),
        &owner,
        "application/json",
        bad_json,
    )
    .await;
    assert_eq!(
        (project.status, project.code().as_str()),
        (400, "bad_request")
    );
    let pause = http::post_raw(
        &server.http_url("/api/v1/rooms/r1/workers/wes/pause"),
        &owner,
        bad_json,
    )
    .await;
    assert_eq!((pause.status, pause.code().as_str()), (400, "bad_request"));
    // A worker's own valid request is unchanged.
    let me = http::get(&server.http_url("/api/v1/me"), Some(&worker)).await;
    assert_eq!(me.status, 200, "{}", me.body);
    server.stop().await;
}

async fn oversized_json_body_is_413(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let owner = server.token("r1", "olivia", Role::Owner).await;
    // Over the limit by its length alone: refused before it is sent.
    let length = crowdroom::http::MAX_JSON_BODY + 1;
    let head = format!(
        "PUT /api/v1/rooms/r1/project HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
         Authorization: Bearer {owner}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    );
    let (status, body) = raw_request(server.addr, &head, b"").await;
    assert_eq!(status, 413, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], "too_large", "{body}");
    // A body just under it is read (and found wanting as a project).
    let name = "x".repeat(crowdroom::http::MAX_JSON_BODY - 64);
    let fits = http::post_raw(
        &server.http_url("/api/v1/rooms/r1/docs"),
        &owner,
        &json!({ "name": name }).to_string(),
    )
    .await;
    assert_ne!(fits.status, 413, "{}", fits.body);
    server.stop().await;
}

async fn import_record_over_the_limit_is_413_naming_it(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let owner = crate::work::setup(&server, "r1", 1, 300, 0).await;
    let url = server.http_url("/api/v1/rooms/r1/tasks");
    // JSONL: the second task is over 1 MiB (it ends the body, so the server
    // has read everything when it answers).
    let big = "x".repeat(1024 * 1024);
    let lines = format!("{{\"id\":\"a\",\"data\":{{}}}}\n{{\"id\":\"b\",\"data\":\"{big}\"}}");
    let refused = http::post_typed(&url, &owner, "application/x-ndjson", &lines).await;
    assert_too_large_naming(&refused, "task 2");
    // CSV: the second record is.
    let csv = format!("id,text\na,small\nb,{big}");
    let refused = http::post_typed(&url, &owner, "text/csv", &csv).await;
    assert_too_large_naming(&refused, "record 2");
    server.stop().await;
}

async fn import_over_the_task_cap_is_413(backend: Backend) {
    let Some(server) = server_with(backend, |settings| {
        settings.http.max_import_tasks = 5;
    })
    .await
    else {
        return;
    };
    let owner = crate::work::setup(&server, "r1", 1, 300, 0).await;
    let url = server.http_url("/api/v1/rooms/r1/tasks");
    let lines = |count: usize| -> String {
        (0..count)
            .map(|i| format!("{{\"id\":\"t{i}\",\"data\":{{}}}}\n"))
            .collect()
    };
    let fits = http::post_typed(&url, &owner, "application/x-ndjson", &lines(5)).await;
    assert_eq!(fits.status, 200, "{}", fits.body);
    let refused = http::post_typed(&url, &owner, "application/x-ndjson", &lines(8)).await;
    assert_eq!(
        (refused.status, refused.code().as_str()),
        (413, "too_large"),
        "{}",
        refused.body
    );
    assert!(
        refused.json()["message"]
            .as_str()
            .unwrap()
            .contains("task 6"),
        "{}",
        refused.body
    );
    let csv: String = std::iter::once("id,text\n".to_owned())
        .chain((0..8).map(|i| format!("c{i},x\n")))
        .collect();
    let refused = http::post_typed(&url, &owner, "text/csv", &csv).await;
    assert_eq!(
        (refused.status, refused.code().as_str()),
        (413, "too_large"),
        "{}",
        refused.body
    );
    server.stop().await;
}

/// The methods of the regular (not gold) tasks.
async fn regular_methods(server: &TestServer, owner: &str) -> Vec<Value> {
    let tasks = http::get(
        &server.http_url("/api/v1/rooms/r1/tasks?limit=100"),
        Some(owner),
    )
    .await
    .json();
    tasks["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|task| task["gold"].is_null())
        .map(|task| task["method"].clone())
        .collect()
}

async fn export_only_reads(backend: Backend) {
    // No background batch: only an export (before) or a POST could run it.
    let Some(server) = server_with(backend, |settings| {
        settings.rooms.batch_every = u32::MAX;
    })
    .await
    else {
        return;
    };
    let owner = crate::judgement::careful_workers_and_spammers(&server).await;
    let before = regular_methods(&server, &owner).await;
    assert_eq!(before.len(), 20);
    assert!(before.iter().all(|method| method != "ds"), "{before:?}");
    for _ in 0..2 {
        let export = http::get(
            &server.http_url("/api/v1/rooms/r1/export?format=json"),
            Some(&owner),
        )
        .await;
        assert_eq!(export.status, 200, "{}", export.body);
        assert_eq!(export.json().as_array().unwrap().len(), 30);
    }
    assert_eq!(
        regular_methods(&server, &owner).await,
        before,
        "an export rewrote the consensus"
    );
    // Batch consensus runs when asked, and would have relabelled.
    let report = http::request(
        "POST",
        &server.http_url("/api/v1/rooms/r1/consensus"),
        Some(&owner),
        None,
    )
    .await;
    assert_eq!(report.json()["published"], "ds", "{}", report.body);
    let after = regular_methods(&server, &owner).await;
    assert!(after.iter().all(|method| method == "ds"), "{after:?}");
    server.stop().await;
}

/// A 413 `too_large` whose message names `what`.
fn assert_too_large_naming(refused: &http::Response, what: &str) {
    assert_eq!(
        (refused.status, refused.code().as_str()),
        (413, "too_large"),
        "{}",
        refused.body
    );
    let message = refused.json()["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains(what), "{}", refused.body);
}
