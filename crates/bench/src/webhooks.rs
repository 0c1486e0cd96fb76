//! Webhook delivery: a `tandem serve` process delivering to a receiver of
//! the bench process (an axum server on 127.0.0.1 that answers 204 at once
//! and verifies every signature with the `standardwebhooks` crate).
//!
//! * **Throughput.** One endpoint, subscribed to `GoalProgressRecorded`;
//!   [`WRITERS`] clients write the events with the command service, and the
//!   time runs from the first write until the receiver has seen every one.
//!   Baseline: the same receiver getting as many POSTs of a body the worker
//!   sent, signed the same way, from one reqwest client in sequence (the
//!   worker too sends one request at a time per endpoint).
//! * **Backlog.** The same number of events written while the server is
//!   stopped, delivered once it is back: first arrival to last, against the
//!   same baseline. The live figure is bounded by the writers too; this one
//!   is the worker alone.
//! * **Lag beside a dead endpoint.** Events written at [`LAG_RATE`] per
//!   second, each from the command's answer to its arrival at the live
//!   receiver, first with that endpoint alone, then with a second endpoint
//!   of the same types whose receiver accepts connections and never answers
//!   (each attempt waits for the worker's timeout).
//!
//! Every event must arrive (by its `webhook-id`); duplicates and arrivals
//! out of log order are counted in the notes.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::json;
use standardwebhooks::Webhook;
use tandem_api::auth::Role;
use tandem_commands::CommandService;
use tandem_store::Cursor;
use tandem_webhooks::SigningSecret;
use tandem_webhooks::sign::signature_header;
use tokio::task::JoinHandle;

use crate::append::{Target, fixture, meta, progress_command};
use crate::server::{Server, random_secret};
use crate::{Amount, BenchDb, BenchOptions, Figure, Latencies, Report, Size};

/// The part's name in the report.
const PART: &str = "webhooks";
/// The event type the endpoints subscribe to (what [`progress_command`] writes).
const EVENT_TYPE: &str = "GoalProgressRecorded";
/// Clients writing the events of the throughput measurement.
const WRITERS: usize = 4;
/// Events per second while measuring the lag.
const LAG_RATE: u64 = 50;
/// How long a single event may take to arrive (warm-up, lag runs).
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the part: its own server, with plain-http loopback endpoints allowed.
pub async fn run(opts: &BenchOptions, db: &BenchDb, report: &mut Report) -> anyhow::Result<()> {
    let pool = db.pool_of(u32::try_from(WRITERS)? + 4).await?;
    let svc = CommandService::from_pool(pool.clone());
    let targets = fixture(&svc, WRITERS, WRITERS).await?;
    let receiver = Receiver::start().await?;
    let env = [
        ("TANDEM_SERVER_SECRET", random_secret()?),
        ("TANDEM_WEBHOOKS_ALLOW_HTTP", "1".to_owned()),
        ("TANDEM_WEBHOOKS_ALLOW_PRIVATE", "1".to_owned()),
    ];
    let mut server = Some(Server::start_with(opts, db, &env).await.context("starting tandem serve")?);
    let mut dead = None;
    let result = async {
        let running = server.as_ref().context("the server")?;
        let admin = running.token(Role::Admin, "bench-admin")?;
        let secret = create_endpoint(running, &admin, &receiver.url(), "bench: the fast receiver").await?;
        receiver.expect(&secret)?;
        let sample = warm_up(&svc, &targets[0], &receiver).await?;
        let per_writer = if opts.size == Size::Smoke { 50 } else { 2_500 };
        let baseline = throughput(per_writer, &svc, &targets, &receiver, &sample, report).await?;
        receiver.expect(&secret)?;

        // A backlog: the events written while the server is down, delivered
        // when it is back.
        server.take().context("the server")?.stop().await?;
        receiver.clear();
        let (ids, _) = write_events(&svc, &targets, per_writer).await?;
        let running = server.insert(Server::start_with(opts, db, &env).await.context("starting tandem serve again")?);
        let arrived = receiver.wait_for(&ids, arrival_timeout(ids.len())?).await?;
        let first = arrived.first.values().min().copied();
        let last = arrived.first.values().max().copied();
        let span = first.zip(last).map_or(Duration::ZERO, |(f, l)| l.saturating_duration_since(f));
        let n = ids.len() as u64;
        report.push(
            Figure::new(
                PART,
                "delivery of a backlog to one endpoint",
                Amount::per_second(n.saturating_sub(1), span, "events/s"),
            )
            .against(baseline)
            .note(format!(
                "{n} events written while the server was stopped, first arrival to last after its start{}; \
                     baseline: as above",
                arrived.irregular(&ids)
            )),
        );
        if receiver.refused() > 0 {
            bail!("{} signatures refused", receiver.refused());
        }

        let duration =
            if opts.size == Size::Smoke { opts.duration } else { opts.duration.min(Duration::from_secs(10)) };
        let mut alone = lags(&svc, &targets, &receiver, duration).await?;
        let alone_p50 = Amount::millis(alone.latencies.percentile(50.0));
        let alone_p99 = Amount::millis(alone.latencies.percentile(99.0));
        report.push(Figure::new(PART, "live endpoint lag p50, alone", alone_p50.clone()).note(format!(
            "commit→arrival, {} events at {LAG_RATE}/s{}",
            alone.latencies.len(),
            alone.irregular()
        )));
        report.push(Figure::new(PART, "live endpoint lag p99, alone", alone_p99.clone()));

        let hanging = Hanging::start().await?;
        let admin = running.token(Role::Admin, "bench-admin")?;
        create_endpoint(running, &admin, &hanging.url(), "bench: a receiver that never answers").await?;
        let hanging = dead.insert(hanging);
        // Both endpoints are followed once an event reached the live one and
        // the dead one has a request open.
        warm_up(&svc, &targets[0], &receiver).await?;
        let deadline = Instant::now() + ARRIVAL_TIMEOUT;
        while hanging.connections() == 0 {
            if Instant::now() > deadline {
                bail!("the dead endpoint got no request within {ARRIVAL_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut beside = lags(&svc, &targets, &receiver, duration).await?;
        let note = format!(
            "{} events at {LAG_RATE}/s{}, with a second endpoint of the same type whose receiver accepts \
             connections and never answers (connections held: {}); baseline: the same endpoint alone",
            beside.latencies.len(),
            beside.irregular(),
            hanging.connections()
        );
        report.push(
            Figure::new(
                PART,
                "live endpoint lag p50, a dead one beside",
                Amount::millis(beside.latencies.percentile(50.0)),
            )
            .against(alone_p50),
        );
        report.push(
            Figure::new(
                PART,
                "live endpoint lag p99, a dead one beside",
                Amount::millis(beside.latencies.percentile(99.0)),
            )
            .against(alone_p99)
            .note(note),
        );
        anyhow::Ok(())
    }
    .await;
    // The held connections close first: the attempt in flight fails at once
    // instead of holding the server's shutdown.
    if let Some(hanging) = dead {
        hanging.stop();
    }
    let stopped = match server {
        Some(server) => server.stop().await,
        None => Ok(()),
    };
    receiver.stop();
    pool.close().await;
    result?;
    stopped
}

/// Creates an endpoint for [`EVENT_TYPE`] and returns its signing secret.
async fn create_endpoint(server: &Server, admin: &str, url: &str, description: &str) -> anyhow::Result<String> {
    let data = server
        .graphql(
            admin,
            "mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { secret endpoint { id } } }",
            json!({"i": {"url": url, "eventTypes": [EVENT_TYPE], "description": description}}),
        )
        .await?;
    data["createWebhookEndpoint"]["secret"].as_str().map(str::to_owned).context("no secret in the answer")
}

/// Writes one event and waits for it at `receiver`: the worker follows the
/// endpoints it was given. Returns the body that arrived.
async fn warm_up(svc: &CommandService, target: &Target, receiver: &Receiver) -> anyhow::Result<Bytes> {
    receiver.clear();
    let done = svc.handle(progress_command(target, 0)?, &meta()).await?;
    let ids: Vec<String> = done.events.iter().map(|e| message_id(e.event_id)).collect();
    receiver.wait_for(&ids, ARRIVAL_TIMEOUT).await?;
    receiver.sample().context("no body kept")
}

/// The `webhook-id` of an event.
fn message_id(event_id: uuid::Uuid) -> String {
    format!("msg_{}", event_id.simple())
}

/// Writes `per_writer` events from each of [`WRITERS`] clients; returns
/// their message ids in log order and how long the writes took.
async fn write_events(
    svc: &CommandService,
    targets: &[Target],
    per_writer: usize,
) -> anyhow::Result<(Vec<String>, Duration)> {
    let started = Instant::now();
    let written = futures::future::try_join_all(targets.iter().take(WRITERS).map(|target| async move {
        let mut events = Vec::with_capacity(per_writer);
        for n in 0..per_writer {
            let done = svc.handle(progress_command(target, n)?, &meta()).await?;
            events.extend(done.events.iter().map(|e| (message_id(e.event_id), e.cursor())));
        }
        anyhow::Ok(events)
    }))
    .await?;
    let took = started.elapsed();
    let mut committed: Vec<(String, Cursor)> = written.into_iter().flatten().collect();
    committed.sort_by_key(|(_, c)| *c);
    Ok((committed.into_iter().map(|(id, _)| id).collect(), took))
}

/// How long `n` events may take to arrive.
fn arrival_timeout(n: usize) -> anyhow::Result<Duration> {
    Ok(ARRIVAL_TIMEOUT + Duration::from_millis(20) * u32::try_from(n)?)
}

/// Delivery throughput to one endpoint against the same receiver fed by a
/// plain client; returns the baseline.
async fn throughput(
    per_writer: usize,
    svc: &CommandService,
    targets: &[Target],
    receiver: &Receiver,
    sample: &Bytes,
    report: &mut Report,
) -> anyhow::Result<Amount> {
    receiver.clear();
    let started = Instant::now();
    let (ids, writes_done) = write_events(svc, targets, per_writer).await?;
    let n = ids.len() as u64;
    let arrived = receiver.wait_for(&ids, arrival_timeout(ids.len())?).await?;
    let last = arrived.first.values().max().copied().unwrap_or(started);
    let ours = Amount::per_second(n, last.saturating_duration_since(started), "events/s");
    let refused = receiver.refused();

    // The baseline: the same receiver, the same number of signed POSTs of
    // the same body, one at a time.
    let secret = SigningSecret::generate()?;
    receiver.expect(&secret.reveal())?;
    receiver.clear();
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1)
        .build()
        .context("building the HTTP client")?;
    let url = receiver.url();
    let mut sent = Vec::with_capacity(ids.len());
    let base_started = Instant::now();
    for _ in 0..n {
        let id = message_id(uuid::Uuid::new_v4());
        let timestamp = chrono::Utc::now().timestamp();
        let signature = signature_header(std::slice::from_ref(&secret), &id, timestamp, sample)?;
        let response = http
            .post(&url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(sample.clone())
            .send()
            .await
            .context("posting to the receiver")?;
        if !response.status().is_success() {
            bail!("the receiver answered {}", response.status());
        }
        sent.push(id);
    }
    let base_arrived = receiver.wait_for(&sent, ARRIVAL_TIMEOUT).await?;
    let base_last = base_arrived.first.values().max().copied().unwrap_or(base_started);
    let baseline = Amount::per_second(n, base_last.saturating_duration_since(base_started), "POSTs/s");
    let base_refused = receiver.refused();
    if refused > 0 || base_refused > 0 {
        bail!("signatures refused: {refused} of Tandem's deliveries, {base_refused} of the baseline's POSTs");
    }
    report.push(Figure::new(PART, "delivery to one endpoint, live", ours).against(baseline.clone()).note(format!(
        "{n} {EVENT_TYPE} events from {WRITERS} writers (written in {:.2} s), every one arrived and its \
             signature verified{}, {} B bodies; baseline: the same receiver, {n} POSTs of the same body signed \
             the same way from one reqwest client in sequence",
        writes_done.as_secs_f64(),
        arrived.irregular(&ids),
        sample.len()
    )));
    Ok(baseline)
}

/// Latencies of one lag run and what was irregular about the arrivals.
struct Lags {
    latencies: Latencies,
    duplicates: usize,
    out_of_order: usize,
}

impl Lags {
    fn irregular(&self) -> String {
        irregular(self.duplicates, self.out_of_order)
    }
}

fn irregular(duplicates: usize, out_of_order: usize) -> String {
    match (duplicates, out_of_order) {
        (0, 0) => ", each once, in log order".to_owned(),
        (d, o) => format!(", {d} delivered more than once, {o} out of log order"),
    }
}

/// Writes events at [`LAG_RATE`] per second for `duration` and returns, for
/// each, the time from the command's answer to its arrival at `receiver`.
async fn lags(
    svc: &CommandService,
    targets: &[Target],
    receiver: &Receiver,
    duration: Duration,
) -> anyhow::Result<Lags> {
    receiver.clear();
    let mut committed: Vec<(String, Cursor, Instant)> = Vec::new();
    let started = Instant::now();
    let period = Duration::from_micros(1_000_000 / LAG_RATE);
    let mut n = 0usize;
    while started.elapsed() < duration {
        let target = &targets[n % targets.len()];
        let done = svc.handle(progress_command(target, n)?, &meta()).await?;
        let at = Instant::now();
        committed.extend(done.events.iter().map(|e| (message_id(e.event_id), e.cursor(), at)));
        n += 1;
        tokio::time::sleep_until((started + period * u32::try_from(n)?).into()).await;
    }
    committed.sort_by_key(|(_, c, _)| *c);
    let ids: Vec<String> = committed.iter().map(|(id, _, _)| id.clone()).collect();
    let arrived = receiver.wait_for(&ids, ARRIVAL_TIMEOUT).await?;
    if receiver.refused() > 0 {
        bail!("{} signatures refused", receiver.refused());
    }
    let mut latencies = Latencies::with_capacity(committed.len());
    for (id, _, at) in &committed {
        latencies.record(arrived.first[id].saturating_duration_since(*at));
    }
    Ok(Lags { latencies, duplicates: arrived.duplicates, out_of_order: arrived.out_of_order(&ids) })
}

/// What arrived of the events waited for.
struct Arrived {
    /// The first arrival of each.
    first: HashMap<String, Instant>,
    /// Their ids in the order they first arrived.
    order: Vec<String>,
    /// Arrivals beyond the first.
    duplicates: usize,
}

impl Arrived {
    /// Events that arrived before one earlier in `ids` (the log order).
    fn out_of_order(&self, ids: &[String]) -> usize {
        let rank: HashMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
        let mut highest = None;
        let mut late = 0;
        for id in &self.order {
            let r = rank[id.as_str()];
            if highest.is_some_and(|h| r < h) {
                late += 1;
            }
            highest = highest.max(Some(r));
        }
        late
    }

    fn irregular(&self, ids: &[String]) -> String {
        irregular(self.duplicates, self.out_of_order(ids))
    }
}

/// What the receiver saw since it was last cleared.
#[derive(Default)]
struct Seen {
    first: HashMap<String, Instant>,
    order: Vec<String>,
    times: HashMap<String, usize>,
    /// The first body, for the baseline.
    sample: Option<Bytes>,
}

struct Shared {
    verifier: Mutex<Option<Webhook>>,
    seen: Mutex<Seen>,
    refused: AtomicU64,
}

/// The fast receiver: answers 204 at once, after checking the signature.
struct Receiver {
    shared: Arc<Shared>,
    addr: std::net::SocketAddr,
    task: JoinHandle<()>,
}

async fn receive(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let verified = shared
        .verifier
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .is_some_and(|w| w.verify(&body, &headers).is_ok());
    if !verified {
        shared.refused.fetch_add(1, Ordering::Relaxed);
    }
    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let mut seen = shared.seen.lock().unwrap_or_else(PoisonError::into_inner);
    if seen.sample.is_none() {
        seen.sample = Some(body);
    }
    let times = seen.times.entry(id.clone()).or_default();
    *times += 1;
    if *times == 1 {
        seen.first.insert(id.clone(), at);
        seen.order.push(id);
    }
    StatusCode::NO_CONTENT
}

impl Receiver {
    async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the receiver")?;
        let addr = listener.local_addr()?;
        let shared =
            Arc::new(Shared { verifier: Mutex::new(None), seen: Mutex::default(), refused: AtomicU64::new(0) });
        let app = Router::new().route("/hook", post(receive)).with_state(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("bench: webhooks: the receiver stopped: {e}");
            }
        });
        Ok(Self { shared, addr, task })
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Verifies later requests with `secret` (`whsec_…`).
    fn expect(&self, secret: &str) -> anyhow::Result<()> {
        let hook = Webhook::new(secret).map_err(|e| anyhow::anyhow!("the signing secret: {e}"))?;
        *self.shared.verifier.lock().unwrap_or_else(PoisonError::into_inner) = Some(hook);
        self.shared.refused.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Forgets what arrived (the sample body stays).
    fn clear(&self) {
        let mut seen = self.shared.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let sample = seen.sample.take();
        *seen = Seen { sample, ..Seen::default() };
    }

    fn sample(&self) -> Option<Bytes> {
        self.shared.seen.lock().unwrap_or_else(PoisonError::into_inner).sample.clone()
    }

    fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::Relaxed)
    }

    /// Waits until every one of `ids` arrived.
    async fn wait_for(&self, ids: &[String], timeout: Duration) -> anyhow::Result<Arrived> {
        let deadline = Instant::now() + timeout;
        loop {
            let (done, missing) = {
                let seen = self.shared.seen.lock().unwrap_or_else(PoisonError::into_inner);
                let missing = if seen.first.len() < ids.len() {
                    ids.len() - seen.first.len()
                } else {
                    ids.iter().filter(|id| !seen.first.contains_key(*id)).count()
                };
                let done = (missing == 0).then(|| {
                    let wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
                    Arrived {
                        first: ids.iter().map(|id| (id.clone(), seen.first[id])).collect(),
                        order: seen.order.iter().filter(|id| wanted.contains(id.as_str())).cloned().collect(),
                        duplicates: ids.iter().map(|id| seen.times[id] - 1).sum(),
                    }
                });
                (done, missing)
            };
            if let Some(arrived) = done {
                return Ok(arrived);
            }
            if Instant::now() > deadline {
                bail!("{missing} of {} events did not arrive at the receiver within {timeout:?}", ids.len());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    fn stop(self) {
        self.task.abort();
    }
}

/// A dead receiver: accepts connections, holds them and never answers.
struct Hanging {
    addr: std::net::SocketAddr,
    connections: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Hanging {
    async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the dead receiver")?;
        let addr = listener.local_addr()?;
        let connections = Arc::new(AtomicU64::new(0));
        let count = connections.clone();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::Relaxed);
                held.push(socket);
            }
        });
        Ok(Self { addr, connections, task })
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Closes the listener and every connection held.
    fn stop(self) {
        self.task.abort();
    }
}
