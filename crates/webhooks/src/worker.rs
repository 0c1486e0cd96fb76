//! The delivery worker: one leader across every process, one task per
//! endpoint.
//!
//! * **Leadership.** Like the projection runners, the worker takes a
//!   session-level advisory lock (`RUNNER_LOCK_CLASS`, `hashtext` of
//!   [`LOCK_NAME`]) on a dedicated connection; standbys retry every
//!   `standby_retry`. When the leader's process dies its connection closes,
//!   PostgreSQL releases the lock and a standby takes over. Correctness does
//!   not rest on the lock: every checkpoint write names the cursor it was
//!   read at (see [`crate::checkpoint`]).
//! * **Endpoints.** The leader reads the endpoints from the read model
//!   `read.webhook_endpoints` every `poll_interval` and keeps one task per
//!   active endpoint, handing it the endpoint's settings as they change.
//!   A task never waits on another endpoint: a slow or dead receiver holds
//!   only its own task.
//! * **Delivery.** A task reads the log after its checkpoint (gap-free, in
//!   commit order, only the endpoint's event types, and only person
//!   streams for an integrator endpoint), renders each event as the feed
//!   renders it for the endpoint's role, and delivers one event at a time,
//!   so the receiver sees each stream in order. Attempts are recorded with
//!   the checkpoint in one transaction (deliveries in groups of up to 100
//!   or 200 ms, a failure at once): after a crash the events after the
//!   checkpoint are delivered again (at least once, none lost). Events the
//!   role may not see are passed over.
//! * **Retries** follow [`RetrySchedule`]; when an event's last attempt
//!   fails the endpoint is failing and waits, until a redelivery is asked
//!   for (`WebhookRedeliveryRequested`), which moves its checkpoint back to
//!   the cursor given and resumes it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use tandem_domain::webhook::EndpointRole;
use tandem_projections::RUNNER_LOCK_CLASS;
use tandem_projections::queries::webhook_endpoints;
use tandem_projections::read_models::webhooks::{EndpointStatus, WebhookEndpointRow};
use tandem_store::{Cursor, EventStore, ReadFilter, RecordedEvent};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use crate::checkpoint::{self, Attempt, Checkpoint, Next, Status};
use crate::error::WebhookError;
use crate::guard::{GuardedResolver, Refused, Safety};
use crate::metrics::WebhookMetrics;
use crate::schedule::{RetrySchedule, Verdict, judge};
use crate::secret::{SecretBox, SigningSecret};
use crate::sign::signature_header;

/// The name whose `hashtext` keys the worker's advisory lock.
pub const LOCK_NAME: &str = "webhook_delivery";

/// The channel the event log notifies on commit.
const EVENTS_CHANNEL: &str = "tandem_events";

/// The first pause after an error.
const MIN_BACKOFF: Duration = Duration::from_millis(100);

/// Deliveries recorded together at most, and the longest a delivered
/// event waits to be recorded (a crash before costs redeliveries of that
/// many, at most).
const GROUP_MAX: usize = 100;
const GROUP_TIME: Duration = Duration::from_millis(200);

/// Delivered events not yet recorded, and the checkpoint they follow.
struct Group {
    /// The checkpoint as stored.
    at: Cursor,
    /// The last event done (delivered or passed over) after it.
    done: Option<(Cursor, DateTime<Utc>)>,
    delivered: Vec<Attempt>,
    since: Instant,
}

/// Events counted for the lag at most (the gauge saturates there).
const LAG_CAP: i64 = 100_000;

/// Turns stored events into what an endpoint of a role receives as `data`:
/// the event as the event feed renders it for a caller of that role, or
/// `None` when such a caller is not shown the event at all. Implemented by
/// the API, which owns the feed's rendering.
pub trait Renderer: Send + Sync + 'static {
    /// One answer per event, in order.
    fn render<'a>(
        &'a self,
        role: EndpointRole,
        events: &'a [RecordedEvent],
    ) -> BoxFuture<'a, anyhow::Result<Vec<Option<Value>>>>;
}

/// How the worker delivers, waits and retries.
#[derive(Clone, Debug)]
pub struct DeliveryOptions {
    pub schedule: RetrySchedule,
    /// The whole request, connection to the last byte read.
    pub timeout: Duration,
    /// Bytes of a receiver's answer read at most (the rest is dropped).
    pub max_response_bytes: usize,
    /// Events read from the log at once, per endpoint.
    pub batch_size: i64,
    /// The longest wait between two reads of the log or of the endpoints.
    pub poll_interval: Duration,
    /// How often a standby tries to become leader.
    pub standby_retry: Duration,
    /// How often a leader checks that its lock connection is alive.
    pub lock_check_interval: Duration,
    /// How often an endpoint's lag is measured.
    pub lag_interval: Duration,
    /// The longest pause between retries after errors of the worker itself.
    pub max_backoff: Duration,
    pub safety: Safety,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        Self {
            schedule: RetrySchedule::default(),
            timeout: Duration::from_secs(10),
            max_response_bytes: 64 * 1024,
            batch_size: 100,
            poll_interval: Duration::from_millis(500),
            standby_retry: Duration::from_secs(5),
            lock_check_interval: Duration::from_secs(5),
            lag_interval: Duration::from_secs(2),
            max_backoff: Duration::from_secs(30),
            safety: Safety::default(),
        }
    }
}

/// The worker, before it runs. [`Webhooks::spawn`] starts it.
pub struct Webhooks {
    pool: PgPool,
    store: EventStore,
    renderer: Arc<dyn Renderer>,
    secrets: SecretBox,
    metrics: WebhookMetrics,
    options: DeliveryOptions,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks").field("options", &self.options).finish_non_exhaustive()
    }
}

struct Ctx {
    pool: PgPool,
    store: EventStore,
    renderer: Arc<dyn Renderer>,
    secrets: SecretBox,
    metrics: WebhookMetrics,
    options: DeliveryOptions,
    client: reqwest::Client,
    waker: watch::Receiver<u64>,
}

impl Webhooks {
    /// A worker reading `store` (whose upcaster should be the domain's) and
    /// the endpoints and checkpoints through connections like `pool`'s.
    #[must_use]
    pub fn new(pool: PgPool, store: EventStore, renderer: Arc<dyn Renderer>, secrets: SecretBox) -> Self {
        Self { pool, store, renderer, secrets, metrics: WebhookMetrics::default(), options: DeliveryOptions::default() }
    }

    /// Replaces the options.
    #[must_use]
    pub fn options(mut self, options: DeliveryOptions) -> Self {
        self.options = options;
        self
    }

    /// Records into `metrics`.
    #[must_use]
    pub fn metrics(mut self, metrics: WebhookMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Starts the worker on the current tokio runtime.
    pub fn spawn(self) -> Result<WebhooksHandle, WebhookError> {
        let client = client(&self.options)?;
        let connect = (*self.pool.connect_options()).clone().application_name("tandem webhooks");
        let pool = PgPoolOptions::new().max_connections(8).min_connections(0).connect_lazy_with(connect);
        let (stop_tx, stop_rx) = watch::channel(false);
        let (waker_tx, waker_rx) = watch::channel(0_u64);
        let (leading_tx, leading_rx) = watch::channel(false);
        let ctx = Arc::new(Ctx {
            pool: pool.clone(),
            store: self.store,
            renderer: self.renderer,
            secrets: self.secrets,
            metrics: self.metrics,
            options: self.options,
            client,
            waker: waker_rx,
        });
        let listener = tokio::spawn(wake_on_commits(pool, waker_tx, stop_rx.clone(), ctx.options.max_backoff));
        let main = tokio::spawn(run(ctx, stop_rx, leading_tx));
        Ok(WebhooksHandle { stop: stop_tx, tasks: vec![main, listener], leading: leading_rx })
    }
}

/// The running worker.
#[derive(Debug)]
pub struct WebhooksHandle {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    leading: watch::Receiver<bool>,
}

impl WebhooksHandle {
    /// Whether this process delivers now (holds the lock).
    #[must_use]
    pub fn is_leader(&self) -> bool {
        *self.leading.borrow()
    }

    /// Lets the attempts in flight finish and be recorded, then stops.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
    }
}

impl Drop for WebhooksHandle {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn client(options: &DeliveryOptions) -> Result<reqwest::Client, WebhookError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(options.timeout)
        .connect_timeout(options.timeout)
        // A proxy would connect on our behalf to addresses we never checked.
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver::new(options.safety)))
        .user_agent(concat!("Tandem-Webhooks/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| WebhookError::Client(e.to_string()))
}

/// Sleeps for `d`, or less when told to stop; true when told to stop.
async fn pause(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        () = tokio::time::sleep(d) => false,
        _ = stop.changed() => true,
    }
}

async fn wake_on_commits(
    pool: PgPool,
    waker: watch::Sender<u64>,
    mut stop: watch::Receiver<bool>,
    max_backoff: Duration,
) {
    let mut backoff = MIN_BACKOFF;
    while !*stop.borrow() {
        let listened = async {
            let mut l = PgListener::connect_with(&pool).await?;
            l.listen(EVENTS_CHANNEL).await?;
            loop {
                l.recv().await?;
                waker.send_modify(|n| *n = n.wrapping_add(1));
            }
            #[expect(unreachable_code, reason = "the loop ends by an error only")]
            Ok::<(), sqlx::Error>(())
        };
        tokio::select! {
            r = listened => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "webhook wake-up listener lost its connection");
                }
            }
            _ = stop.changed() => return,
        }
        if pause(backoff, &mut stop).await {
            return;
        }
        backoff = (backoff * 2).min(max_backoff);
    }
}

async fn run(ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>, leading: watch::Sender<bool>) {
    let mut backoff = MIN_BACKOFF;
    while !*stop.borrow() {
        let outcome = async {
            let mut conn = PgConnection::connect_with(&ctx.pool.connect_options()).await?;
            let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
                .bind(RUNNER_LOCK_CLASS)
                .bind(LOCK_NAME)
                .fetch_one(&mut conn)
                .await?;
            if !got {
                let _ = conn.close().await;
                return Ok::<bool, WebhookError>(false);
            }
            tracing::info!("webhook delivery: leading");
            let _ = leading.send(true);
            let led = lead(&ctx, &mut conn, &mut stop).await;
            let _ = leading.send(false);
            let _ = sqlx::query("SELECT pg_advisory_unlock($1, hashtext($2))")
                .bind(RUNNER_LOCK_CLASS)
                .bind(LOCK_NAME)
                .execute(&mut conn)
                .await;
            let _ = conn.close().await;
            led.map(|()| true)
        }
        .await;
        let wait = match outcome {
            Ok(true) => {
                backoff = MIN_BACKOFF;
                continue;
            }
            Ok(false) => ctx.options.standby_retry,
            Err(e) => {
                tracing::error!(error = %e, "webhook delivery: standing down after an error");
                let b = backoff;
                backoff = (backoff * 2).min(ctx.options.max_backoff);
                b
            }
        };
        if pause(wait, &mut stop).await {
            break;
        }
    }
    tracing::info!("webhook delivery stopped");
}

struct Running {
    config: watch::Sender<WebhookEndpointRow>,
    task: JoinHandle<()>,
}

/// Leads until told to stop or the lock connection fails.
async fn lead(ctx: &Arc<Ctx>, lock: &mut PgConnection, stop: &mut watch::Receiver<bool>) -> Result<(), WebhookError> {
    let mut running: HashMap<Uuid, Running> = HashMap::new();
    let (tasks_stop, tasks_stop_rx) = watch::channel(false);
    let mut checked = Instant::now();
    let result = loop {
        if *stop.borrow() {
            break Ok(());
        }
        if checked.elapsed() >= ctx.options.lock_check_interval {
            if let Err(e) = sqlx::query("SELECT 1").execute(&mut *lock).await {
                break Err(e.into());
            }
            checked = Instant::now();
        }
        let rows = match webhook_endpoints(&ctx.pool, None).await {
            Ok(rows) => rows,
            Err(e) => {
                // The read model may not exist yet (its runner builds it on
                // first start), or the database is away for a moment: keep
                // the lead and the tasks, and look again.
                tracing::warn!(error = %e, "webhook delivery: reading the endpoints failed; retrying");
                if pause(ctx.options.poll_interval, stop).await {
                    break Ok(());
                }
                continue;
            }
        };
        let mut active = std::collections::HashSet::new();
        for row in rows {
            if row.status != EndpointStatus::Active {
                continue;
            }
            let id = row.endpoint_id;
            active.insert(id);
            match running.get(&id) {
                Some(r) if !r.task.is_finished() => {
                    r.config.send_if_modified(|current| {
                        if *current == row {
                            false
                        } else {
                            *current = row.clone();
                            true
                        }
                    });
                }
                _ => {
                    let (tx, rx) = watch::channel(row);
                    let task = tokio::spawn(endpoint_task(Arc::clone(ctx), rx, tasks_stop_rx.clone()));
                    running.insert(id, Running { config: tx, task });
                }
            }
        }
        // Endpoints disabled (or gone): dropping the sender ends the task.
        let gone: Vec<Uuid> = running.keys().filter(|id| !active.contains(id)).copied().collect();
        for id in gone {
            running.remove(&id);
            ctx.metrics.forget(id);
        }
        if pause(ctx.options.poll_interval, stop).await {
            break Ok(());
        }
    };
    let _ = tasks_stop.send(true);
    for (_, r) in running {
        drop(r.config);
        // An attempt in flight ends within the request timeout.
        let grace = ctx.options.timeout + Duration::from_secs(5);
        let abort = r.task.abort_handle();
        if tokio::time::timeout(grace, r.task).await.is_err() {
            abort.abort();
        }
    }
    result
}

/// Why a task's wait ended.
enum Woken {
    Time,
    Config,
    Stop,
}

struct Task {
    ctx: Arc<Ctx>,
    config: watch::Receiver<WebhookEndpointRow>,
    stop: watch::Receiver<bool>,
    waker: watch::Receiver<u64>,
    secrets: HashMap<Uuid, SigningSecret>,
    lag_at: Option<Instant>,
}

async fn endpoint_task(ctx: Arc<Ctx>, config: watch::Receiver<WebhookEndpointRow>, stop: watch::Receiver<bool>) {
    let id = config.borrow().endpoint_id;
    let waker = ctx.waker.clone();
    let mut t = Task { ctx, config, stop, waker, secrets: HashMap::new(), lag_at: None };
    let mut backoff = MIN_BACKOFF;
    loop {
        if *t.stop.borrow() || t.config.has_changed().is_err() {
            break;
        }
        match t.step().await {
            Ok(()) => backoff = MIN_BACKOFF,
            Err(e) => {
                tracing::error!(endpoint = %id, error = %e, "webhook delivery failed; retrying");
                let mut stop = t.stop.clone();
                if pause(backoff, &mut stop).await {
                    break;
                }
                backoff = (backoff * 2).min(t.ctx.options.max_backoff);
            }
        }
    }
}

impl Task {
    /// Waits at most `d` for a change of the endpoint, a commit (when
    /// `commits`), or the stop.
    async fn wait(&mut self, d: Duration, commits: bool) -> Woken {
        let mut waker = self.waker.clone();
        tokio::select! {
            () = tokio::time::sleep(d) => Woken::Time,
            r = self.config.changed() => match r { Ok(()) => Woken::Config, Err(_) => Woken::Stop },
            _ = self.stop.changed() => Woken::Stop,
            _ = waker.changed(), if commits => Woken::Time,
        }
    }

    /// The secrets that sign for `row` now: the current one, and the
    /// previous one until its time runs out.
    async fn signing(&mut self, row: &WebhookEndpointRow) -> Result<Vec<SigningSecret>, WebhookError> {
        let mut ids = vec![row.secret_id];
        if let (Some(prev), Some(until)) = (row.previous_secret_id, row.previous_valid_until)
            && until > Utc::now()
        {
            ids.push(prev);
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(s) = self.secrets.get(&id) {
                out.push(s.clone());
                continue;
            }
            let s = self
                .ctx
                .secrets
                .load(&self.ctx.pool, row.endpoint_id, id)
                .await?
                .ok_or(WebhookError::MissingSecret(id))?;
            self.secrets.insert(id, s.clone());
            out.push(s);
        }
        Ok(out)
    }

    fn filter(row: &WebhookEndpointRow, role: EndpointRole) -> ReadFilter {
        ReadFilter {
            event_types: Some(row.event_types.clone()),
            stream_id: None,
            stream_type: (role == EndpointRole::Integrator).then(|| "person".to_owned()),
        }
    }

    async fn measure_lag(&mut self, row: &WebhookEndpointRow, role: EndpointRole, cp: &Checkpoint) {
        if self.lag_at.is_some_and(|at| at.elapsed() < self.ctx.options.lag_interval) {
            return;
        }
        self.lag_at = Some(Instant::now());
        let stream = (role == EndpointRole::Integrator).then_some("person");
        match checkpoint::lag(&self.ctx.pool, cp.cursor, &row.event_types, stream, LAG_CAP).await {
            Ok((events, oldest)) => {
                let secs = oldest.map_or(0.0, |t| (Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0);
                self.ctx.metrics.lag(row.endpoint_id, events, secs);
            }
            Err(e) => tracing::warn!(endpoint = %row.endpoint_id, error = %e, "measuring webhook lag failed"),
        }
    }

    /// One round: act on a redelivery, wait if there is nothing to do, or
    /// deliver what the log holds after the checkpoint.
    async fn step(&mut self) -> Result<(), WebhookError> {
        let row = self.config.borrow_and_update().clone();
        let id = row.endpoint_id;
        let role = EndpointRole::parse(&row.role).unwrap_or(EndpointRole::Analyst);
        let start: Cursor = row.created_after.parse().map_err(|_| WebhookError::Cursor(row.created_after.clone()))?;
        let mut cp = checkpoint::load_or_start(&self.ctx.pool, id, start).await?;
        if row.redeliveries > cp.redeliveries {
            let after = row.redeliver_after.as_deref().unwrap_or_default();
            let after: Cursor = after.parse().map_err(|_| WebhookError::Cursor(after.to_owned()))?;
            checkpoint::redeliver(&self.ctx.pool, id, after, row.redeliveries).await?;
            tracing::info!(endpoint = %id, after = %after, "webhook redelivery");
            cp = checkpoint::load_or_start(&self.ctx.pool, id, start).await?;
        }
        self.measure_lag(&row, role, &cp).await;
        if cp.status == Status::Failing {
            self.wait(self.ctx.options.lag_interval, false).await;
            return Ok(());
        }
        if let Some(at) = cp.next_attempt_at {
            let left = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            if !left.is_zero() {
                self.wait(left.min(self.ctx.options.lag_interval), false).await;
                return Ok(());
            }
        }
        let events =
            self.ctx.store.read_all_filtered(cp.cursor, self.ctx.options.batch_size, &Self::filter(&row, role)).await?;
        if events.is_empty() {
            self.wait(self.ctx.options.poll_interval, true).await;
            return Ok(());
        }
        let rendered = self.ctx.renderer.render(role, &events).await.map_err(WebhookError::Render)?;
        let secrets = self.signing(&row).await?;
        let mut group = Group { at: cp.cursor, done: None, delivered: Vec::new(), since: Instant::now() };
        // Failed attempts so far belong to the first event after the checkpoint.
        let mut attempts = cp.attempts;
        for (rec, data) in events.iter().zip(rendered) {
            if *self.stop.borrow() || self.config.has_changed().unwrap_or(true) {
                break;
            }
            let Some(data) = data else {
                group.done = Some((rec.cursor(), rec.recorded_at));
                continue;
            };
            let (attempt, next) = self.attempt(&row, &secrets, rec, &data, attempts + 1).await?;
            attempts = 0;
            if next == Next::Done {
                group.done = Some((rec.cursor(), rec.recorded_at));
                group.delivered.push(attempt);
                if (group.delivered.len() >= GROUP_MAX || group.since.elapsed() >= GROUP_TIME)
                    && !self.flush(id, &mut group).await?
                {
                    return Ok(());
                }
                continue;
            }
            // A failure: what was delivered first, then the failure, each
            // recorded with its checkpoint; the next round waits.
            if !self.flush(id, &mut group).await? {
                return Ok(());
            }
            if checkpoint::record(&self.ctx.pool, id, group.at, &attempt, next).await? {
                self.ctx.metrics.attempt(id, next.label());
                if next == Next::Fail {
                    tracing::warn!(endpoint = %id, cursor = %attempt.cursor, "webhook endpoint failing: deliveries wait for a redelivery");
                }
            }
            return Ok(());
        }
        self.flush(id, &mut group).await?;
        Ok(())
    }

    /// Records the group's deliveries and moves the checkpoint past them;
    /// false when the checkpoint moved meanwhile (nothing recorded).
    async fn flush(&self, id: Uuid, group: &mut Group) -> Result<bool, WebhookError> {
        let Some((to, recorded_at)) = group.done.take() else { return Ok(true) };
        let delivered = std::mem::take(&mut group.delivered);
        group.since = Instant::now();
        if !checkpoint::advance(&self.ctx.pool, id, group.at, to, recorded_at, &delivered).await? {
            return Ok(false);
        }
        group.at = to;
        for _ in &delivered {
            self.ctx.metrics.attempt(id, Next::Done.label());
        }
        Ok(true)
    }

    /// Makes one attempt (nothing recorded yet): what it was, and what
    /// follows from it.
    async fn attempt(
        &self,
        row: &WebhookEndpointRow,
        secrets: &[SigningSecret],
        rec: &RecordedEvent,
        data: &Value,
        number: i32,
    ) -> Result<(Attempt, Next), WebhookError> {
        let message_id = format!("msg_{}", rec.event_id.simple());
        let body = json!({
            "type": rec.event_type,
            "timestamp": rec.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true),
            "data": data,
        });
        let body = serde_json::to_vec(&body).map_err(|e| WebhookError::Signing(e.to_string()))?;
        let timestamp = Utc::now().timestamp();
        let signature = signature_header(secrets, &message_id, timestamp, &body)?;
        let started = Instant::now();
        let sent = self.send(&row.url, &message_id, timestamp, &signature, body).await;
        let now = Utc::now();
        let verdict = match sent.status {
            Some(s) => judge(s, sent.retry_after.as_deref(), now),
            None => Verdict::Retry { retry_after: None },
        };
        let failed = usize::try_from(number).unwrap_or(usize::MAX);
        let next = match verdict {
            Verdict::Delivered => Next::Done,
            Verdict::Retry { retry_after } => match self.ctx.options.schedule.after_failure(failed) {
                Some(delay) => {
                    let wait = retry_after.unwrap_or(delay);
                    Next::RetryAt(now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX))
                }
                None => Next::Fail,
            },
            Verdict::Final => Next::Fail,
        };
        let error = match (&sent.error, sent.status) {
            (Some(e), _) => Some(e.clone()),
            (None, Some(s)) if next != Next::Done => Some(format!("the receiver answered {s}")),
            _ => None,
        };
        let attempt = Attempt {
            message_id,
            event_id: rec.event_id,
            event_type: rec.event_type.clone(),
            cursor: rec.cursor(),
            recorded_at: rec.recorded_at,
            number,
            http_status: sent.status,
            error,
            duration_ms: i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX),
        };
        Ok((attempt, next))
    }

    async fn send(&self, url: &str, id: &str, timestamp: i64, signature: &str, body: Vec<u8>) -> Sent {
        let safety = self.ctx.options.safety;
        let url = match safety.check_url(url) {
            Ok(u) => u,
            Err(r) => return Sent::error(r.to_string()),
        };
        if let Err(r) = safety.check_resolved(&url).await {
            return Sent::error(r.to_string());
        }
        let response = self
            .ctx
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        let mut response = match response {
            Ok(r) => r,
            Err(e) => return Sent::error(describe(&e)),
        };
        let status = response.status().as_u16();
        let retry_after =
            response.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        // Read a bounded part of the answer (it is not kept), so that the
        // connection can be reused; a body larger than the cap closes it.
        let mut read = 0_usize;
        loop {
            match response.chunk().await {
                Ok(Some(c)) => {
                    read += c.len();
                    if read >= self.ctx.options.max_response_bytes {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    if (200..300).contains(&status) {
                        // The receiver answered 2xx: it has the event.
                        break;
                    }
                    return Sent { status: Some(status), retry_after, error: Some(describe(&e)) };
                }
            }
        }
        Sent { status: Some(status), retry_after, error: None }
    }
}

/// What a request came to.
struct Sent {
    status: Option<u16>,
    retry_after: Option<String>,
    error: Option<String>,
}

impl Sent {
    fn error(e: String) -> Self {
        Self { status: None, retry_after: None, error: Some(e) }
    }
}

/// A short description of a client error, without the URL.
fn describe(e: &reqwest::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<Refused>() {
            return r.0.to_string();
        }
        source = s.source();
    }
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else if e.is_body() || e.is_decode() {
        "the answer broke off".to_owned()
    } else {
        "the request failed".to_owned()
    }
}
