//! Randomized, replayable co-editing with injected disconnects: clients
//! edit, drop their sockets with updates in flight, reconnect with their
//! replicas and resync. Everyone converges, and a restarted server holds the
//! same state. The seed is printed; set CROWDROOM_SEED to replay one.

use crowdroom::auth::Role;
use crowdroom_crdt::Message;
use crowdroom_tests::client::YjsClient;
use crowdroom_tests::{Backend, TestServer, both_stores, fast_settings};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

both_stores! {
    random_edits_with_disconnects_converge => random_edits;
}

const CLIENTS: usize = 4;
const STEPS: usize = 300;

async fn random_edits(backend: Backend) {
    let seed = std::env::var("CROWDROOM_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("random_edits seed: CROWDROOM_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let base = server.ws_url("");
    let token = server.token("r1", "ann", Role::Worker).await;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(Some(YjsClient::connect(&base, "r1", "doc", &token).await));
    }
    for step in 0..STEPS {
        let index = rng.random_range(0..CLIENTS);
        let client = clients[index].as_mut().expect("client present");
        match rng.random_range(0..10) {
            0..=5 => {
                let update = client.set(
                    &format!("k{}", rng.random_range(0..40)),
                    &format!("s{step}"),
                );
                client.send(&Message::Update(&update)).await;
            }
            6 | 7 => {
                let update = client.remove(&format!("k{}", rng.random_range(0..40)));
                client.send(&Message::Update(&update)).await;
            }
            _ => {
                // Edit, then drop the socket with the update maybe in flight;
                // reconnect with the replica and resync.
                let update = client.set(
                    &format!("k{}", rng.random_range(0..40)),
                    &format!("d{step}"),
                );
                client.send(&Message::Update(&update)).await;
                let replica = clients[index].take().expect("client present").doc;
                let mut again = YjsClient::open_with(&base, "r1", "doc", &token, replica)
                    .await
                    .expect("reconnect");
                again.sync().await;
                clients[index] = Some(again);
            }
        }
    }
    // Bring everyone up to date: a final write acknowledged by each client
    // orders all earlier traffic, then a resync fetches anything missed.
    let mut replicas = Vec::new();
    for (index, slot) in clients.iter_mut().enumerate() {
        let mut client = slot.take().expect("client present");
        client.write_acked(&format!("done{index}"), "1").await;
        replicas.push(client.doc.clone());
    }
    let mut finals = Vec::new();
    for replica in replicas {
        let mut client = YjsClient::open_with(&base, "r1", "doc", &token, replica)
            .await
            .expect("reconnect");
        client.sync().await;
        finals.push(client);
    }
    let expected = finals[0].snapshot_json();
    for client in &finals {
        assert_eq!(
            client.snapshot_json(),
            expected,
            "seed {seed}: replicas diverged"
        );
    }
    let db = server.stop().await;
    let server = TestServer::start_on(db, fast_settings()).await;
    let fresh = YjsClient::connect(&server.ws_url(""), "r1", "doc", &token).await;
    assert_eq!(
        fresh.snapshot_json(),
        expected,
        "seed {seed}: the store holds what the clients converged to"
    );
    server.stop().await;
}
