//! The delivery worker against real receivers: signatures checked by an
//! independent implementation (the `standardwebhooks` npm package), order
//! per stream, failures, an outage, 4xx, `Retry-After`, rotation, and one
//! dead endpoint beside a live one.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::Value;
use sqlx::PgPool;
use tandem_api::schema::events::webhook::FeedRenderer;
use tandem_commands::Command;
use tandem_domain::WebhookEndpointId;
use tandem_domain::values::{GroupFormat, LongText};
use tandem_domain::webhook::{CreateEndpoint, EndpointRole, EndpointUrl, WebhookCommand};
use tandem_projections::{Projections, ProjectionsHandle, RunnerOptions};
use tandem_store::{Cursor, EventStore, ReadFilter};
use tandem_testkit::fixtures::Org;
use tandem_testkit::receiver::{Answer, Received, Receiver, verify};
use tandem_testkit::{test_secret, wait};
use tandem_webhooks::checkpoint::{self, Status};
use tandem_webhooks::{DeliveryOptions, RetrySchedule, Safety, SecretBox, WebhookMetrics, Webhooks, WebhooksHandle};
use uuid::Uuid;

const LIMIT: Duration = Duration::from_secs(60);

struct World {
    org: Org,
    store: EventStore,
    metrics: WebhookMetrics,
    _projections: ProjectionsHandle,
    worker: Option<WebhooksHandle>,
}

fn options() -> DeliveryOptions {
    DeliveryOptions {
        schedule: RetrySchedule::new(vec![Duration::from_millis(30); 7]),
        poll_interval: Duration::from_millis(30),
        standby_retry: Duration::from_millis(100),
        lag_interval: Duration::from_millis(50),
        safety: Safety { allow_http: true, allow_private: true },
        ..DeliveryOptions::default()
    }
}

async fn world(pool: PgPool, options: DeliveryOptions) -> World {
    let org = Org::new(pool.clone());
    let store = org.svc.store().clone();
    let projections = Projections::new(pool.clone())
        .options(RunnerOptions { poll_interval: Duration::from_millis(20), ..RunnerOptions::default() })
        .spawn()
        .unwrap();
    let metrics = WebhookMetrics::default();
    let worker = Webhooks::new(pool, store.clone(), Arc::new(FeedRenderer::new(store.clone())), secrets())
        .options(options)
        .metrics(metrics.clone())
        .spawn()
        .unwrap();
    World { org, store, metrics, _projections: projections, worker: Some(worker) }
}

fn secrets() -> SecretBox {
    SecretBox::new(&test_secret())
}

impl World {
    fn pool(&self) -> &PgPool {
        &self.org.pool
    }

    /// Creates an endpoint through the command service; its id and secret.
    async fn endpoint(&self, url: &str, types: &[&str], role: EndpointRole) -> (Uuid, String) {
        let id = WebhookEndpointId::new();
        let (secret_id, secret) = secrets().issue(self.pool(), id.as_uuid()).await.unwrap();
        let c = CreateEndpoint {
            endpoint_id: id,
            url: EndpointUrl::parse("url", url).unwrap(),
            event_types: types.iter().map(|t| (*t).to_owned()).collect(),
            description: LongText::default(),
            role,
            secret_id,
        };
        self.org.run(Command::Webhook(WebhookCommand::Create(c))).await.unwrap();
        (id.as_uuid(), secret.reveal())
    }

    /// Rotates the secret; the previous one signs until `overlap` from now.
    async fn rotate(&self, id: Uuid, overlap: chrono::Duration) -> String {
        let (secret_id, secret) = secrets().issue(self.pool(), id).await.unwrap();
        let c = WebhookCommand::RotateSecret {
            endpoint_id: WebhookEndpointId::from_uuid(id),
            secret_id,
            previous_valid_until: Utc::now() + overlap,
        };
        self.org.run(Command::Webhook(c)).await.unwrap();
        secret.reveal()
    }

    async fn redeliver(&self, id: Uuid, after: Cursor) {
        let c = WebhookCommand::Redeliver { endpoint_id: WebhookEndpointId::from_uuid(id), after: after.to_string() };
        self.org.run(Command::Webhook(c)).await.unwrap();
    }

    /// The cursor the endpoint's creation event left.
    async fn created_after(&self, id: Uuid) -> Cursor {
        let created = self.store.read_stream(id).await.unwrap();
        created[0].cursor()
    }

    /// The events of `types` after the endpoint's creation, as stored.
    async fn expected(&self, id: Uuid, types: &[&str]) -> Vec<tandem_store::RecordedEvent> {
        let filter =
            ReadFilter { event_types: Some(types.iter().map(|t| (*t).to_owned()).collect()), ..ReadFilter::default() };
        self.store.read_all_filtered(self.created_after(id).await, 100_000, &filter).await.unwrap()
    }

    async fn checkpoint(&self, id: Uuid) -> Option<checkpoint::Checkpoint> {
        checkpoint::load(self.pool(), id).await.unwrap()
    }

    async fn deliveries(&self, id: Uuid) -> Vec<checkpoint::DeliveryRow> {
        checkpoint::deliveries(self.pool(), id, None, 0, 100_000).await.unwrap()
    }

    /// People registered and enrolled in one program: one event per person
    /// stream, and a growing program stream.
    async fn people(&self, program: tandem_domain::ProgramId, n: usize) {
        for i in 0..n {
            let p = self.org.register(&format!("Webhook Person {i} {}", Uuid::now_v7().simple()), 3, None).await;
            self.org.enrol(program, p).await;
        }
    }
}

/// Waits until `receiver` accepted every event of `expected`.
async fn all_accepted(receiver: &Receiver, expected: &[tandem_store::RecordedEvent]) -> Vec<Received> {
    let want: BTreeSet<String> = expected.iter().map(|e| format!("msg_{}", e.event_id.simple())).collect();
    wait::eventually(LIMIT, "every event accepted by the receiver", || {
        let accepted = receiver.accepted();
        let got: BTreeSet<String> = accepted.iter().map(|r| r.id().to_owned()).collect();
        let done = want.is_subset(&got);
        async move { done.then_some(accepted) }
    })
    .await
}

/// The first delivery of each message, in the order received.
fn firsts(received: &[Received]) -> Vec<Value> {
    let mut seen = BTreeSet::new();
    received.iter().filter(|r| seen.insert(r.id().to_owned())).map(Received::json).collect()
}

/// Checks that within each stream the versions delivered first grow.
fn in_order_per_stream(bodies: &[Value]) {
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for b in bodies {
        let env = &b["data"]["envelope"];
        let stream = env["streamId"].as_str().unwrap().to_owned();
        let version = env["streamVersion"].as_i64().unwrap();
        if let Some(prev) = last.insert(stream.clone(), version) {
            assert!(version > prev, "stream {stream}: version {version} delivered after {prev}");
        }
    }
}

const TYPES: &[&str] = &["PersonRegistered", "ProgramLaunched", "ParticipantEnrolled"];

#[sqlx::test(migrations = "../../migrations")]
async fn every_event_arrives_signed_and_in_order_through_failures_and_an_outage(pool: PgPool) {
    let w = world(pool, options()).await;
    let receiver = Receiver::start().await;
    receiver.fail_next(3);
    let (id, secret) = w.endpoint(&receiver.url(), TYPES, EndpointRole::Admin).await;
    let program = w.org.launch(2, GroupFormat::PAIRS).await;
    w.people(program, 8).await;

    // Some arrive, then the receiver goes away while more are written.
    wait::eventually(LIMIT, "a few deliveries", || {
        let n = receiver.accepted().len();
        async move { (n >= 4).then_some(()) }
    })
    .await;
    receiver.down().await;
    w.people(program, 8).await;
    wait::eventually(LIMIT, "an attempt refused while the receiver is down", || {
        let w = &w;
        async move {
            w.deliveries(id).await.iter().any(|d| d.error.as_deref() == Some("could not connect")).then_some(())
        }
    })
    .await;
    receiver.up().await;

    let expected = w.expected(id, TYPES).await;
    assert_eq!(expected.len(), 1 + 16 * 2);
    let accepted = all_accepted(&receiver, &expected).await;

    // Every request, failed ones included, verifies with the independent
    // implementation, and the verified payload is the body.
    let received = receiver.received();
    for (r, v) in received.iter().zip(verify(&secret, &received)) {
        let payload = v.unwrap_or_else(|e| panic!("signature of {} refused: {e}", r.id()));
        assert_eq!(payload, r.json());
    }
    assert!(received.iter().filter(|r| r.answered == 500).count() >= 3);

    // In log order per stream, each event once at least, none missing.
    let bodies = firsts(&accepted);
    in_order_per_stream(&bodies);
    let delivered: Vec<String> =
        bodies.iter().map(|b| b["data"]["envelope"]["eventId"].as_str().unwrap().to_owned()).collect();
    let wanted: Vec<String> = expected.iter().map(|e| e.event_id.to_string()).collect();
    assert_eq!(delivered, wanted, "delivered in the log's order");
    for (b, e) in bodies.iter().zip(&expected) {
        assert_eq!(b["type"], e.event_type.as_str());
        assert_eq!(b["data"]["envelope"]["cursor"], e.cursor().to_string().as_str());
        assert_eq!(b["data"]["envelope"]["eventType"], e.event_type.as_str());
    }
    // The admin endpoint sees names.
    let registered = bodies.iter().find(|b| b["type"] == "PersonRegistered").unwrap();
    assert!(registered["data"]["name"].as_str().unwrap().starts_with("Webhook Person"));

    // The checkpoint reached the last event, and the metrics counted.
    wait::eventually(LIMIT, "the checkpoint at the last event", || {
        let w = &w;
        let last = expected.last().unwrap().cursor();
        async move { w.checkpoint(id).await.filter(|c| c.cursor == last && c.status == Status::Active) }
    })
    .await;
    assert!(w.metrics.attempts(id, "retrying") >= 4);
    assert!(w.metrics.attempts(id, "delivered") >= 33);
    w.worker.unwrap().shutdown().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_analyst_endpoint_gets_the_feeds_pseudonymous_rendering(pool: PgPool) {
    let w = world(pool, options()).await;
    let (analyst, admin) = (Receiver::start().await, Receiver::start().await);
    let (a_id, a_secret) = w.endpoint(&analyst.url(), &["PersonRegistered"], EndpointRole::Analyst).await;
    let (d_id, _) = w.endpoint(&admin.url(), &["PersonRegistered"], EndpointRole::Admin).await;
    w.org.register("Ada Analysed", 3, None).await;
    let a = all_accepted(&analyst, &w.expected(a_id, &["PersonRegistered"]).await).await;
    let d = all_accepted(&admin, &w.expected(d_id, &["PersonRegistered"]).await).await;
    let (a, d) = (a[0].json(), d[0].json());
    assert_eq!(d["data"]["name"], "Ada Analysed");
    for field in ["name", "email", "externalId"] {
        assert!(a["data"][field].is_null(), "an analyst endpoint received {field}: {a}");
        assert!(a["data"]["envelope"]["redactedFields"].as_array().unwrap().iter().any(|f| f == field));
    }
    assert!(!a.to_string().contains("Ada"), "{a}");
    assert!(verify(&a_secret, &analyst.received()).iter().all(Result::is_ok));
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_dead_endpoint_never_delays_another(pool: PgPool) {
    // A request to the dead endpoint stays open for the whole test.
    let w = world(pool, DeliveryOptions { timeout: Duration::from_secs(600), ..options() }).await;
    let (dead, live) = (Receiver::start().await, Receiver::start().await);
    dead.answer(Answer::Hang);
    let (dead_id, _) = w.endpoint(&dead.url(), TYPES, EndpointRole::Admin).await;
    let (live_id, _) = w.endpoint(&live.url(), TYPES, EndpointRole::Admin).await;
    let program = w.org.launch(2, GroupFormat::PAIRS).await;
    w.people(program, 15).await;
    let expected = w.expected(live_id, TYPES).await;
    all_accepted(&live, &expected).await;
    // Meanwhile the dead endpoint still waits on its first attempt.
    assert_eq!(dead.received().len(), 1);
    assert!(w.deliveries(dead_id).await.is_empty());
    let cp = w.checkpoint(dead_id).await.unwrap();
    assert_eq!(cp.cursor, w.created_after(dead_id).await);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_4xx_fails_the_endpoint_until_a_redelivery(pool: PgPool) {
    let w = world(pool, options()).await;
    let receiver = Receiver::start().await;
    receiver.answer(Answer::Status(410, None));
    let (id, _) = w.endpoint(&receiver.url(), &["PersonRegistered"], EndpointRole::Admin).await;
    for i in 0..3 {
        w.org.register(&format!("Refused {i}"), 3, None).await;
    }
    let cp = wait::eventually(LIMIT, "the endpoint failing", || {
        let w = &w;
        async move { w.checkpoint(id).await.filter(|c| c.status == Status::Failing) }
    })
    .await;
    // No retry on a 4xx: one attempt, recorded as failed.
    assert_eq!(receiver.received().len(), 1);
    let rows = w.deliveries(id).await;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].status.as_str(), rows[0].http_status, rows[0].attempt), ("failed", Some(410), 1));
    assert_eq!(cp.cursor, w.created_after(id).await);
    assert_eq!(w.metrics.attempts(id, "failed"), 1);

    // Fixed on the receiver's side, the endpoint is resumed from a cursor.
    receiver.answer(Answer::Ok);
    w.redeliver(id, w.created_after(id).await).await;
    let expected = w.expected(id, &["PersonRegistered"]).await;
    let accepted = all_accepted(&receiver, &expected).await;
    let ids: Vec<String> =
        firsts(&accepted).iter().map(|b| b["data"]["envelope"]["eventId"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, expected.iter().map(|e| e.event_id.to_string()).collect::<Vec<_>>());
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_last_retry_fails_the_endpoint(pool: PgPool) {
    let w = world(pool, options()).await;
    let receiver = Receiver::start().await;
    receiver.answer(Answer::Status(503, None));
    let (id, _) = w.endpoint(&receiver.url(), &["PersonRegistered"], EndpointRole::Admin).await;
    w.org.register("Retried", 3, None).await;
    wait::eventually(LIMIT, "the endpoint failing", || {
        let w = &w;
        async move { w.checkpoint(id).await.filter(|c| c.status == Status::Failing) }
    })
    .await;
    let rows = w.deliveries(id).await;
    let statuses: Vec<(&str, i32)> = rows.iter().map(|r| (r.status.as_str(), r.attempt)).collect();
    let mut want: Vec<(&str, i32)> = (1..=7).map(|a| ("retrying", a)).collect();
    want.push(("failed", 8));
    assert_eq!(statuses, want, "eight attempts, the schedule's");
    assert!(rows.iter().all(|r| r.message_id == rows[0].message_id), "one webhook-id for every attempt");
    assert_eq!(receiver.received().len(), 8);
}

#[sqlx::test(migrations = "../../migrations")]
async fn retry_after_is_honoured_on_429(pool: PgPool) {
    let w = world(pool, options()).await;
    let receiver = Receiver::start().await;
    receiver.answer(Answer::Status(429, Some("3600".into())));
    let (id, _) = w.endpoint(&receiver.url(), &["PersonRegistered"], EndpointRole::Admin).await;
    w.org.register("Throttled", 3, None).await;
    let row = wait::eventually(LIMIT, "a retrying attempt", || {
        let w = &w;
        async move { w.deliveries(id).await.into_iter().next() }
    })
    .await;
    assert_eq!((row.status.as_str(), row.http_status), ("retrying", Some(429)));
    let wait = row.next_attempt_at.unwrap() - row.attempted_at;
    assert!(wait >= chrono::Duration::seconds(3590), "waits {wait} instead of the receiver's hour");
    let cp = w.checkpoint(id).await.unwrap();
    assert!(cp.next_attempt_at.unwrap() >= row.next_attempt_at.unwrap());
    assert_eq!(receiver.received().len(), 1);
}

#[sqlx::test(migrations = "../../migrations")]
async fn after_a_rotation_both_secrets_sign_until_the_overlap_ends(pool: PgPool) {
    let w = world(pool, options()).await;
    let receiver = Receiver::start().await;
    let (id, first) = w.endpoint(&receiver.url(), &["PersonRegistered"], EndpointRole::Admin).await;
    w.org.register("Rotated", 3, None).await;
    let expected = w.expected(id, &["PersonRegistered"]).await;
    all_accepted(&receiver, &expected).await;
    let start = w.created_after(id).await;

    // Rotated with a day of overlap: a redelivery (which the worker acts on
    // only with the rotation known) carries both signatures.
    let second = w.rotate(id, chrono::Duration::hours(24)).await;
    w.redeliver(id, start).await;
    let copies = wait::eventually(LIMIT, "the redelivered copy", || {
        let got = receiver.accepted();
        async move { (got.len() >= 2).then_some(got) }
    })
    .await;
    let copy = &copies[1];
    assert_eq!(copy.headers["webhook-signature"].split(' ').filter(|s| s.starts_with("v1,")).count(), 2);
    assert!(verify(&first, std::slice::from_ref(copy))[0].is_ok(), "the previous secret still verifies");
    assert!(verify(&second, std::slice::from_ref(copy))[0].is_ok(), "the new secret verifies");

    // Rotated again with the overlap over: only the newest secret signs.
    let third = w.rotate(id, chrono::Duration::seconds(-1)).await;
    w.redeliver(id, start).await;
    let copies = wait::eventually(LIMIT, "the second redelivered copy", || {
        let got = receiver.accepted();
        async move { (got.len() >= 3).then_some(got) }
    })
    .await;
    let copy = &copies[2];
    assert_eq!(copy.headers["webhook-signature"].split(' ').count(), 1);
    assert!(verify(&third, std::slice::from_ref(copy))[0].is_ok());
    assert!(verify(&second, std::slice::from_ref(copy))[0].is_err());
    assert!(verify(&first, std::slice::from_ref(copy))[0].is_err());
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_internal_address_is_refused_at_delivery_unless_allowed(pool: PgPool) {
    let strict = DeliveryOptions { safety: Safety { allow_http: true, allow_private: false }, ..options() };
    let w = world(pool, strict).await;
    let receiver = Receiver::start().await;
    let (id, _) = w.endpoint(&receiver.url(), &["PersonRegistered"], EndpointRole::Admin).await;
    w.org.register("Guarded", 3, None).await;
    let row = wait::eventually(LIMIT, "a refused attempt", || {
        let w = &w;
        async move { w.deliveries(id).await.into_iter().next() }
    })
    .await;
    assert_eq!(row.status, "retrying");
    assert_eq!(row.http_status, None);
    assert!(row.error.unwrap().contains("internal address"));
    assert!(receiver.received().is_empty(), "nothing reached the internal address");
}

#[sqlx::test(migrations = "../../migrations")]
async fn one_worker_delivers_across_processes_and_a_standby_takes_over(pool: PgPool) {
    let mut w = world(pool.clone(), options()).await;
    let store = w.store.clone();
    let second = Webhooks::new(pool, store.clone(), Arc::new(FeedRenderer::new(store)), secrets())
        .options(options())
        .spawn()
        .unwrap();
    let first = w.worker.take().unwrap();
    wait::eventually(LIMIT, "one leader", || {
        let leaders = usize::from(first.is_leader()) + usize::from(second.is_leader());
        async move { (leaders == 1).then_some(()) }
    })
    .await;
    let (leader, standby) = if first.is_leader() { (first, second) } else { (second, first) };
    let receiver = Receiver::start().await;
    let (id, _) = w.endpoint(&receiver.url(), &["PersonRegistered"], EndpointRole::Admin).await;
    w.org.register("Led Once", 3, None).await;
    all_accepted(&receiver, &w.expected(id, &["PersonRegistered"]).await).await;
    assert!(!standby.is_leader());

    // The leader goes; the standby takes over and carries on from the checkpoint.
    leader.shutdown().await;
    wait::eventually(LIMIT, "the standby leading", || {
        let leads = standby.is_leader();
        async move { leads.then_some(()) }
    })
    .await;
    w.org.register("Led Twice", 3, None).await;
    let expected = w.expected(id, &["PersonRegistered"]).await;
    let accepted = all_accepted(&receiver, &expected).await;
    assert_eq!(accepted.len(), 2, "each event once: {:?}", accepted.iter().map(Received::id).collect::<Vec<_>>());
    standby.shutdown().await;
}
