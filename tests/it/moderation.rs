//! Moderation on the live channel (mute, announce, lock, release, kick,
//! ban) as the affected clients see it, its permissions and its log; the
//! independence rule on task documents; and what the moderator console and
//! the review view read over REST.

use crowdroom::auth::Role;
use crowdroom_crdt::Message;
use crowdroom_tests::client::{Incoming, LiveClient, YjsClient};
use crowdroom_tests::{Backend, TestServer, both_stores, fast_settings, http};
use serde_json::{Value, json};

use crate::work::setup;

both_stores! {
    mute_announce_and_lock_show_live_and_persist => mute_announce_and_lock;
    release_kick_and_ban_reach_the_worker => release_kick_and_ban;
    task_documents_keep_answers_independent => task_documents;
    console_figures_and_task_answers => console_and_review;
}

async fn mute_announce_and_lock(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let base = server.ws_url("");
    let mo = server.token("r1", "mo", Role::Moderator).await;
    let wes = server.token("r1", "wes", Role::Worker).await;
    let mut moderator = LiveClient::connect(&base, "r1", &mo).await;
    let mut worker = LiveClient::connect(&base, "r1", &wes).await;
    assert_eq!(worker.hello["state"]["locked"], false);
    assert_eq!(worker.hello["you"]["muted_until"], Value::Null);

    // Mute: the worker sees it, and cannot chat until it is lifted.
    let muted = moderator
        .request(
            "mod.mute",
            json!({"user": "wes", "minutes": 5, "reason": "spam"}),
        )
        .await;
    assert_eq!(muted["ok"], true, "{muted}");
    let until = muted["result"]["until"].as_i64().unwrap();
    let event = worker.event("member.muted").await;
    assert_eq!(event["data"]["user"], "wes");
    assert_eq!(event["data"]["until"], until);
    assert_eq!(event["data"]["reason"], "spam");
    let refused = worker.request("chat.send", json!({"body": "hi"})).await;
    assert_eq!(refused["error"]["code"], "forbidden", "{refused}");
    assert_eq!(refused["error"]["message"], "you are muted");
    let second_tab = LiveClient::connect(&base, "r1", &wes).await;
    assert_eq!(second_tab.hello["you"]["muted_until"], until);
    drop(second_tab);
    let unmuted = moderator
        .request("mod.unmute", json!({"user": "wes"}))
        .await;
    assert_eq!(unmuted["ok"], true, "{unmuted}");
    assert_eq!(
        worker.event("member.muted").await["data"]["until"],
        Value::Null
    );
    let sent = worker.request("chat.send", json!({"body": "back"})).await;
    assert_eq!(sent["ok"], true, "{sent}");

    // Announcement: pushed live, and in the hello of later connections.
    let announced = moderator
        .request("mod.announce", json!({"body": "  Break at 15:00  "}))
        .await;
    assert_eq!(announced["ok"], true, "{announced}");
    let event = worker.event("room.announcement").await;
    assert_eq!(event["data"]["body"], "Break at 15:00");
    assert_eq!(event["data"]["by"], "mo");

    // Lock: no chat, no new work, no document edits for the worker; the
    // moderator still chats.
    let mut doc = YjsClient::connect(&base, "r1", "notes", &wes).await;
    doc.sync().await;
    let locked = moderator
        .request("mod.lock", json!({"locked": true, "reason": "audit"}))
        .await;
    assert_eq!(locked["ok"], true, "{locked}");
    let event = worker.event("room.locked").await;
    assert_eq!(event["data"]["locked"], true);
    assert_eq!(event["data"]["reason"], "audit");
    let refused = worker.request("chat.send", json!({"body": "hi"})).await;
    assert_eq!(
        refused["error"]["message"], "the room is locked",
        "{refused}"
    );
    let asked = worker.request("task.request", json!({})).await;
    assert_eq!(asked["result"]["reason"], "locked", "{asked}");
    let update = doc.set("k", "v");
    doc.send(&Message::Update(&update)).await;
    loop {
        match doc.next().await {
            Incoming::PermissionDenied(reason) => {
                assert_eq!(reason, "the room is locked");
                break;
            }
            Incoming::Update(echo) => panic!("a locked room acknowledged {echo:?}"),
            Incoming::Closed(code) => panic!("closed: {code:?}"),
            _ => {}
        }
    }
    let sent = moderator
        .request("chat.send", json!({"body": "we are auditing"}))
        .await;
    assert_eq!(sent["ok"], true, "{sent}");
    drop((moderator, worker, doc));

    // Lock and announcement survive a restart.
    let db = server.stop().await;
    let server = TestServer::start_on(db, fast_settings()).await;
    let base = server.ws_url("");
    let worker = LiveClient::connect(&base, "r1", &wes).await;
    assert_eq!(worker.hello["state"]["locked"], true, "{}", worker.hello);
    assert_eq!(worker.hello["state"]["lock_reason"], "audit");
    assert_eq!(
        worker.hello["state"]["announcement"]["body"],
        "Break at 15:00"
    );
    let mut moderator = LiveClient::connect(&base, "r1", &mo).await;
    let unlocked = moderator
        .request("mod.lock", json!({"locked": false}))
        .await;
    assert_eq!(unlocked["ok"], true, "{unlocked}");
    let cleared = moderator.request("mod.announce", json!({"body": ""})).await;
    assert_eq!(cleared["result"]["announcement"], Value::Null, "{cleared}");
    let mut worker = worker;
    assert_eq!(worker.event("room.locked").await["data"]["locked"], false);
    assert_eq!(worker.event("room.announcement").await["data"], Value::Null);
    let sent = worker.request("chat.send", json!({"body": "thanks"})).await;
    assert_eq!(sent["ok"], true, "{sent}");

    // Every action is in the log, newest first.
    let log = http::get(&server.http_url("/api/v1/rooms/r1/moderation"), Some(&mo))
        .await
        .json();
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["announce", "unlock", "lock", "announce", "unmute", "mute"]
    );
    let refused = http::get(&server.http_url("/api/v1/rooms/r1/moderation"), Some(&wes)).await;
    assert_eq!(refused.status, 403);
}

async fn release_kick_and_ban(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let base = server.ws_url("");
    let owner = setup(&server, "r1", 2, 300, 3).await;
    let mo = server.token("r1", "mo", Role::Moderator).await;
    let wes = server.token("r1", "wes", Role::Worker).await;
    let wanda = server.token("r1", "wanda", Role::Worker).await;
    let mut moderator = LiveClient::connect(&base, "r1", &mo).await;
    let mut worker = LiveClient::connect(&base, "r1", &wes).await;

    // Permissions: workers do not moderate; moderators act on lower roles,
    // never on themselves; the target must be a member.
    let reply = worker.request("mod.kick", json!({"user": "wanda"})).await;
    assert_eq!(reply["error"]["code"], "forbidden", "{reply}");
    let cases = [
        ("olivia", "forbidden"),
        ("mo", "bad_request"),
        ("nobody", "not_found"),
        ("no such id!", "bad_request"),
    ];
    for (user, code) in cases {
        let reply = moderator.request("mod.kick", json!({ "user": user })).await;
        assert_eq!(reply["error"]["code"], code, "{user}: {reply}");
    }
    let reply = moderator
        .request("mod.mute", json!({"user": "wes", "minutes": 0}))
        .await;
    assert_eq!(reply["error"]["code"], "bad_request", "{reply}");
    drop(owner);

    // Release: the worker is told, their reservation is gone, the slot is free.
    let granted = worker.request("task.request", json!({})).await;
    let task = granted["result"]["reservation"]["task_id"]
        .as_i64()
        .unwrap();
    let mine = worker.event("queue.mine").await;
    assert_eq!(mine["data"]["mine"]["reservation"]["task_id"], task);
    let released = moderator
        .request("mod.release", json!({"user": "wes"}))
        .await;
    assert_eq!(released["result"]["task_id"], task, "{released}");
    let event = worker.event("task.released").await;
    assert_eq!(event["data"]["task_id"], task);
    assert_eq!(event["data"]["by"], "mo");
    let mine = worker.event("queue.mine").await;
    assert_eq!(mine["data"]["mine"], Value::Null, "{mine}");
    let late = worker
        .request("task.submit", json!({"task_id": task, "answer": "pos"}))
        .await;
    assert_eq!(late["error"]["code"], "reservation_expired", "{late}");
    let again = moderator
        .request("mod.release", json!({"user": "wes"}))
        .await;
    assert_eq!(again["result"]["task_id"], Value::Null, "{again}");

    // Kick: told why, then every socket closes with 4001; they may return.
    let mut doc = YjsClient::connect(&base, "r1", "notes", &wes).await;
    doc.sync().await;
    let kicked = moderator
        .request("mod.kick", json!({"user": "wes", "reason": "calm down"}))
        .await;
    assert_eq!(kicked["result"]["connections"], 2, "{kicked}");
    assert_eq!(
        worker.event("you.kicked").await["data"]["reason"],
        "calm down"
    );
    assert_eq!(worker.closed().await, Some(4001));
    assert_eq!(doc.closed().await, Some(4001));
    let back = LiveClient::connect(&base, "r1", &wes).await;
    assert_eq!(back.hello["you"]["user"], "wes");

    // Ban: told, closed as revoked, and the token no longer opens anything.
    let mut banned = LiveClient::connect(&base, "r1", &wanda).await;
    let reply = moderator
        .request("mod.ban", json!({"user": "wanda", "reason": "fraud"}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(banned.event("you.banned").await["data"]["reason"], "fraud");
    assert_eq!(banned.closed().await, Some(4403));
    assert_eq!(LiveClient::open(&base, "r1", &wanda).await.err(), Some(401));
    let members = http::get(&server.http_url("/api/v1/rooms/r1/members"), Some(&mo))
        .await
        .json();
    assert!(
        members["members"]
            .as_array()
            .unwrap()
            .iter()
            .all(|member| member["user"] != "wanda"),
        "{members}"
    );
}

async fn task_documents(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let base = server.ws_url("");
    let wes = server.token("r1", "wes", Role::Worker).await;
    let wanda = server.token("r1", "wanda", Role::Worker).await;
    let cora = server.token("r1", "cora", Role::Core).await;
    let vic = server.token("r1", "vic", Role::Viewer).await;
    let open = |doc: &'static str, token: &str| {
        let (base, token) = (base.clone(), token.to_owned());
        async move { YjsClient::open(&base, "r1", doc, &token).await.err() }
    };
    // A worker edits their own working copy only, never the team's document.
    assert_eq!(open("task-1", &wes).await, Some(403));
    assert_eq!(open("task-1:wanda", &wes).await, Some(403));
    let mut own = YjsClient::connect(&base, "r1", "task-1:wes", &wes).await;
    own.sync().await;
    own.write_acked("label", "PER").await;
    // The core team opens both, and sees the worker's draft.
    let mut coach = YjsClient::connect(&base, "r1", "task-1:wes", &cora).await;
    coach.sync().await;
    assert_eq!(coach.value("label").as_deref(), Some("PER"));
    let mut team = YjsClient::connect(&base, "r1", "task-1", &cora).await;
    team.sync().await;
    assert_eq!(open("task-1", &vic).await, None);
    assert_eq!(open("task-1:wes", &wanda).await, Some(403));
    // Creating one over REST follows the same rule.
    let url = server.http_url("/api/v1/rooms/r1/docs");
    let refused = http::request(
        "POST",
        &url,
        Some(&wanda),
        Some(json!({"name": "task-2:wes"})),
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let created = http::request(
        "POST",
        &url,
        Some(&wanda),
        Some(json!({"name": "task-2:wanda"})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
}

async fn console_and_review(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let base = server.ws_url("");
    let owner = setup(&server, "r1", 2, 300, 2).await;
    let cora = server.token("r1", "cora", Role::Core).await;
    let mut answered = Vec::new();
    for (user, answer) in [("wes", "pos"), ("wanda", "neg")] {
        let token = server.token("r1", user, Role::Worker).await;
        let mut worker = LiveClient::connect(&base, "r1", &token).await;
        // Skip onboarding gold: there is none, so the first grant is a task.
        let granted = worker.request("task.request", json!({})).await;
        let task = granted["result"]["reservation"]["task_id"]
            .as_i64()
            .unwrap();
        let submitted = worker
            .request("task.submit", json!({"task_id": task, "answer": answer}))
            .await;
        assert_eq!(submitted["ok"], true, "{submitted}");
        answered.push((task, user, token));
    }
    // Both answered the task nearest completion: the first one.
    assert_eq!(answered[0].0, answered[1].0);
    let task = answered[0].0;
    let stats = http::get(&server.http_url("/api/v1/rooms/r1/stats"), Some(&owner))
        .await
        .json();
    assert_eq!(stats["room"], "r1", "{stats}");
    assert_eq!(stats["counts"]["answers"], 2, "{stats}");
    assert_eq!(stats["answers_last_minute"], 2, "{stats}");
    assert_eq!(stats["answers_per_minute"], 0.2, "{stats}");
    // pos against neg with equal weights: a tie, one more answer wanted.
    assert_eq!(stats["escalations"], 0, "{stats}");
    assert_eq!(stats["locked"], false);
    assert!(stats["pay"]["target_hourly_rate"].is_i64(), "{stats}");
    let refused = http::get(
        &server.http_url("/api/v1/rooms/r1/stats"),
        Some(&answered[0].2),
    )
    .await;
    assert_eq!(refused.status, 403);

    // The review view: the task with every answer, for the core team only.
    let url = server.http_url(&format!("/api/v1/rooms/r1/tasks/{task}"));
    let detail = http::get(&url, Some(&cora)).await.json();
    assert_eq!(detail["task"]["id"], task, "{detail}");
    let answers: Vec<(&str, &str)> = detail["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|answer| {
            (
                answer["worker"].as_str().unwrap(),
                answer["answer"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(answers, [("wes", "pos"), ("wanda", "neg")]);
    assert!(detail["reviews"].as_array().unwrap().is_empty());
    assert_eq!(http::get(&url, Some(&answered[0].2)).await.status, 403);
    let missing = server.http_url("/api/v1/rooms/r1/tasks/999999");
    assert_eq!(http::get(&missing, Some(&cora)).await.status, 404);

    // Moderators see every worker, those without an answer yet too.
    server.token("r1", "wade", Role::Worker).await;
    let workers = http::get(&server.http_url("/api/v1/rooms/r1/workers"), Some(&owner))
        .await
        .json();
    let listed: Vec<(&str, i64)> = workers["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|worker| {
            (
                worker["worker"].as_str().unwrap(),
                worker["answers"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, [("wade", 0), ("wanda", 1), ("wes", 1)], "{workers}");

    // A pause reaches the worker live.
    let mut worker = LiveClient::connect(&base, "r1", &answered[0].2).await;
    let url = server.http_url("/api/v1/rooms/r1/workers/wes/pause");
    let paused = http::request("POST", &url, Some(&owner), Some(json!({"reason": "check"}))).await;
    assert_eq!(paused.status, 200, "{}", paused.body);
    let event = worker.event("worker.paused").await;
    assert_eq!(event["data"]["paused"], true);
    assert_eq!(event["data"]["reason"], "check");
    let lifted = http::request("DELETE", &url, Some(&owner), None).await;
    assert_eq!(lifted.status, 200, "{}", lifted.body);
    assert_eq!(worker.event("worker.paused").await["data"]["paused"], false);
}

/// A room whose queue holds no reservation sweeps nothing: watching it
/// costs no writes (with 200 rooms open, sweeps were most of the commits).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_room_writes_nothing() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    setup(&server, "r1", 2, 300, 3).await;
    let token = server.token("r1", "wes", Role::Worker).await;
    let mut worker = LiveClient::connect(&server.ws_url(""), "r1", &token).await;
    let counts = worker.event("queue.counts").await;
    assert_eq!(counts["data"]["reserved"], 0, "{counts}");
    // Until the room has counted its queue once it sweeps; wait for a
    // housekeeping second (1 s) with no commit, then watch three more.
    let commits = || server.metric("crowdroom_commit_batch_size_count");
    let mut before = commits().await;
    for _ in 0..20 {
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let now = commits().await;
        if now == before {
            break;
        }
        before = now;
    }
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let after = server.metric("crowdroom_commit_batch_size_count").await;
    assert_eq!(before, after, "commits while nothing was reserved");
    // A live reservation that has not expired gives the room's sweep
    // nothing to do either: it asks a reader whether anything expired, and
    // the writer sees nothing (work.rs tests that an expired one is swept
    // and its holder told).
    let granted = worker.request("task.request", json!({})).await;
    assert!(granted["result"]["reservation"].is_object(), "{granted}");
    let held = server.metric("crowdroom_commit_batch_size_count").await;
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    assert_eq!(
        server.metric("crowdroom_commit_batch_size_count").await,
        held,
        "commits while the one reservation was live"
    );
}
