//! Webhooks end to end, through the real binary: an endpoint created over
//! GraphQL, a receiver that fails its first attempts, goes down and comes
//! back, and the server killed with SIGKILL in the middle of a delivery and
//! started again. Every event arrives at least once, in order per stream,
//! none missing, and every signature verifies with the `standardwebhooks`
//! npm package.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use tandem_api::auth::Role;
use tandem_store::{EventStore, ReadFilter, RecordedEvent};
use tandem_testkit::client::GraphqlClient as Client;
use tandem_testkit::fixtures::Org;
use tandem_testkit::receiver::{Answer, Received, Receiver, verify};
use tandem_testkit::{db, tokens, wait};
use tokio::process::Child;

const SECRET: &str = "webhooks-test-secret-0123456789-0123456789";
const LIMIT: Duration = Duration::from_secs(90);
const TYPES: [&str; 3] = ["PersonRegistered", "ProgramLaunched", "ParticipantEnrolled"];

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn serve(pool: &PgPool, port: u16) -> Child {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .arg("serve")
        .env("DATABASE_URL", db::database_url(pool))
        .env("TANDEM_LISTEN", format!("127.0.0.1:{port}"))
        .env("TANDEM_JWT_SECRET", SECRET)
        .env("TANDEM_SERVER_SECRET", SECRET)
        // The key this process seals with too: the test writes and reads
        // events beside the server.
        .env("TANDEM_MASTER_KEY", tandem_store::Vault::installed().master().to_base64())
        .env("TANDEM_WEBHOOKS_ALLOW_HTTP", "1")
        .env("TANDEM_WEBHOOKS_ALLOW_PRIVATE", "1")
        .env("TANDEM_WEBHOOKS_RETRY_DELAYS_MS", "50,50,50,50,50,50,50")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    wait::eventually(LIMIT, "the server up", || {
        let http = http.clone();
        async move {
            http.get(format!("http://127.0.0.1:{port}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
                .then_some(())
        }
    })
    .await;
    child
}

async fn people(org: &Org, program: tandem_domain::ProgramId, n: usize) {
    for i in 0..n {
        let p = org.register(&format!("Pushed Person {i}"), 3, None).await;
        org.enrol(program, p).await;
    }
}

/// The events the endpoint is owed: its types, after its creation event.
async fn owed(store: &EventStore, endpoint: &str) -> Vec<RecordedEvent> {
    let created = store.read_stream(endpoint.parse().unwrap()).await.unwrap();
    let filter =
        ReadFilter { event_types: Some(TYPES.iter().map(|t| (*t).to_owned()).collect()), ..ReadFilter::default() };
    store.read_all_filtered(created[0].cursor(), 100_000, &filter).await.unwrap()
}

#[sqlx::test(migrations = "../../migrations")]
async fn every_event_arrives_once_at_least_in_order_across_failures_an_outage_and_a_sigkill(pool: PgPool) {
    let receiver = Receiver::start().await;
    receiver.fail_next(3);
    let port = free_port();
    let mut server = serve(&pool, port).await;
    let api = Client::new(format!("http://127.0.0.1:{port}/graphql"));
    let admin = tokens::token_with(&tokens::auth_config_with(SECRET), &[Role::Admin], "admin");

    let created = api
        .ok(
            &admin,
            "mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) {
                 consistent secret endpoint { id url eventTypes role status } } }",
            json!({"i": {"url": receiver.url(), "eventTypes": TYPES, "description": "the test receiver"}}),
        )
        .await;
    let payload = &created["createWebhookEndpoint"];
    assert_eq!(payload["consistent"], true);
    assert_eq!(payload["endpoint"]["role"], "ADMIN");
    assert_eq!(payload["endpoint"]["status"], "ACTIVE");
    let secret = payload["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let endpoint = payload["endpoint"]["id"].as_str().unwrap().to_owned();

    let org = Org::new(pool.clone());
    let program = org.launch(2, tandem_domain::values::GroupFormat::PAIRS).await;
    people(&org, program, 10).await;
    wait::eventually(LIMIT, "some deliveries", || {
        let n = receiver.accepted().len();
        async move { (n >= 6).then_some(()) }
    })
    .await;

    // Mid-delivery: the receiver holds the next request open, and the
    // server is killed while it waits for the answer.
    let before = receiver.received().len();
    receiver.answer(Answer::Hang);
    people(&org, program, 5).await;
    wait::eventually(LIMIT, "a request in flight", || {
        let n = receiver.received().len();
        async move { (n > before).then_some(()) }
    })
    .await;
    let pid = server.id().unwrap();
    let killed = tokio::process::Command::new("kill").arg("-KILL").arg(pid.to_string()).status().await.unwrap();
    assert!(killed.success());
    server.wait().await.unwrap();

    // While it is gone, more events, and the receiver goes down too.
    receiver.down().await;
    receiver.answer(Answer::Ok);
    people(&org, program, 5).await;
    server = serve(&pool, port).await;
    people(&org, program, 5).await;
    receiver.up().await;

    let store = org.svc.store().clone();
    let expected = owed(&store, &endpoint).await;
    assert_eq!(expected.len(), 1 + 25 * 2);
    let want: BTreeSet<String> = expected.iter().map(|e| format!("msg_{}", e.event_id.simple())).collect();
    let accepted: Vec<Received> = wait::eventually(LIMIT, "every event accepted", || {
        let got = receiver.accepted();
        let ids: BTreeSet<String> = got.iter().map(|r| r.id().to_owned()).collect();
        let done = want.is_subset(&ids);
        async move { done.then_some(got) }
    })
    .await;

    // Every signature verifies independently.
    let received = receiver.received();
    for (r, v) in received.iter().zip(verify(&secret, &received)) {
        assert_eq!(v.unwrap_or_else(|e| panic!("signature of {} refused: {e}", r.id())), r.json());
    }
    // None missing and in log order (first deliveries), so in order per
    // stream; the one in flight at the kill was delivered again.
    let mut seen = BTreeSet::new();
    let firsts: Vec<Value> = accepted.iter().filter(|r| seen.insert(r.id().to_owned())).map(Received::json).collect();
    let ids: Vec<String> =
        firsts.iter().map(|b| b["data"]["envelope"]["eventId"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, expected.iter().map(|e| e.event_id.to_string()).collect::<Vec<_>>());
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for b in &firsts {
        let env = &b["data"]["envelope"];
        let (stream, version) = (env["streamId"].as_str().unwrap().to_owned(), env["streamVersion"].as_i64().unwrap());
        if let Some(prev) = last.insert(stream.clone(), version) {
            assert!(version > prev, "stream {stream}: version {version} after {prev}");
        }
    }
    let in_flight = received[before].id().to_owned();
    assert_eq!(received[before].answered, 0, "the request held open at the kill");
    assert!(accepted.iter().any(|r| r.id() == in_flight), "the event in flight at the kill was delivered again");

    // The deliveries and the endpoint over GraphQL, and the metrics.
    let listed = api
        .ok(
            &admin,
            "query($id: ID!) { webhookDeliveries(endpointId: $id, status: DELIVERED, first: 100) {
                 edges { node { messageId attempt status httpStatus } } }
               webhookEndpoints { edges { node { id status deliveredThrough } } } }",
            json!({"id": endpoint}),
        )
        .await;
    let delivered = listed["webhookDeliveries"]["edges"].as_array().unwrap();
    assert!(delivered.len() >= expected.len(), "{} delivered rows", delivered.len());
    assert!(delivered.iter().all(|e| e["node"]["httpStatus"] == 200));
    let ep = &listed["webhookEndpoints"]["edges"][0]["node"];
    assert_eq!(ep["status"], "ACTIVE");
    assert_eq!(ep["deliveredThrough"], expected.last().unwrap().cursor().to_string().as_str());
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("tandem_webhook_deliveries_total"), "{metrics}");
    assert!(metrics.contains("tandem_webhook_queue_lag_events"), "{metrics}");
    drop(server);
}
