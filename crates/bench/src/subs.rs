//! Figure 6: `opts.subscribers` websocket clients (1,000 in a full run) of
//! one `tandem serve`, all following the same program's events
//! (`programEvents` over `graphql-transport-ws`, as a coordinator), while
//! events are committed at a steady rate: latency from commit to delivery,
//! and the server's resident memory.
//!
//! How it runs:
//!
//! 1. every client connects, authenticates in `connection_init`, and
//!    subscribes with `after` = the head of the log, so that it gets every
//!    event committed from then on whenever the server starts its
//!    subscription (no race between subscribing and the first event);
//! 2. a few warm-up events are committed and every client must receive
//!    them all: the subscriptions are then live and caught up;
//! 3. [`EVENTS_PER_SECOND`] `RecordGoalProgress` commands are committed,
//!    through the command service directly, for `opts.duration`, on a
//!    thread of their own (its own runtime and connections) so that the
//!    commit instant, taken right after the command returns, is not delayed
//!    by the clients' work;
//! 4. each client takes the instant it reads each event off its socket;
//!    latency = receive − commit (saturating at zero: the server may
//!    deliver an event before the command's own answer is read back);
//! 5. every client must have received every committed event exactly once.
//!
//! The client side. The sockets are spread over [`GROUPS`] tasks, each
//! polling its share as one `SelectAll`: a delivery costs the client a
//! wake-up, a read from its socket, a websocket frame decode (8 KiB read
//! buffer per socket, no write buffering), a scan for the edge's cursor
//! (the payload is not parsed; anything but a plain `next` is parsed in
//! full and checked) and one push of (subscriber, cursor, instant). In the
//! full run that is about 12 µs of CPU per delivery: some 2.5 s of CPU for
//! 200,000 deliveries in 10 s, a quarter of one of the two cores. Its CPU
//! time over the measurement is reported in the note beside the server's:
//! the clients, the server and PostgreSQL share the cores, so a receive
//! instant includes the time a client task waited for a core, and the
//! figure errs on the high side.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::Utc;
use futures::stream::SelectAll;
use futures::{SinkExt as _, StreamExt as _, TryStreamExt as _};
use serde::Deserialize;
use serde_json::json;
use tandem_api::auth::Role;
use tandem_commands::{Command, CommandMeta, CommandService};
use tandem_domain::pair::PairCommand;
use tandem_domain::values::{LongText, Percent};
use tandem_domain::{GoalId, PairId, PersonId};
use tandem_store::{Actor, Cursor};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use crate::server::{Memory, Server, cpu_time_of, raise_open_files_limit};
use crate::{Amount, BenchDb, BenchOptions, Figure, Goal, Latencies, Report};

/// Events committed per second during the measurement.
pub const EVENTS_PER_SECOND: u32 = 20;
/// Events committed (and awaited by every client) before the measurement.
const WARMUP_EVENTS: usize = 3;
/// Tasks the client sockets are spread over.
const GROUPS: usize = 4;
/// Sockets being opened at once.
const CONNECTING: usize = 32;
/// How long a client may wait for `connection_ack`, and the run for the
/// deliveries still missing, once progress stops.
const PATIENCE: Duration = Duration::from_secs(30);

/// What each client subscribes to: a realistic selection of the program's
/// feed (the events this part commits, and sessions being planned).
const SUBSCRIPTION: &str = "subscription Program($program: ID!, $after: String) {
  programEvents(programId: $program, after: $after) {
    cursor
    node {
      __typename
      ... on GoalProgressRecordedEvent {
        pairId goalId byId percent note recordedOn envelope { eventId eventType recordedAt }
      }
      ... on SessionScheduledEvent {
        pairId sessionId scheduledById scheduledFor focus envelope { eventId eventType recordedAt }
      }
    }
  }
}";

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Where events are committed: an open goal of an active pair in the
/// program with the most active pairs.
#[derive(Clone, Copy, Debug)]
struct Target {
    program: Uuid,
    pair: Uuid,
    goal: Uuid,
    owner: Uuid,
    active_pairs: i64,
}

/// One delivery, as a client saw it.
struct Receipt {
    subscriber: u32,
    cursor: Cursor,
    at: Instant,
}

/// What a group of clients saw.
#[derive(Default)]
struct GroupRun {
    receipts: Vec<Receipt>,
    /// (subscriber, what went wrong): an `error` or `complete` for the
    /// subscription, a close, a socket error, an unreadable message.
    failures: Vec<(u32, String)>,
}

/// What the run saw besides the deliveries.
struct Measurement {
    /// The warm-up events.
    warmup: Vec<Cursor>,
    /// The measured events, each with the instant its command returned.
    commits: Vec<(Cursor, Instant)>,
    /// Whether every delivery arrived before progress stopped.
    complete: bool,
    /// The server's memory once every subscriber had caught up, and at the end.
    connected: Memory,
    end: Memory,
    /// From the first measured commit to the last delivery.
    measured: Duration,
    /// CPU time used meanwhile by the server and by this process.
    cpu_server: Duration,
    cpu_bench: Duration,
}

/// Figure 6. See the module's documentation.
pub async fn run(opts: &BenchOptions, db: &BenchDb, server: &Server, report: &mut Report) -> anyhow::Result<()> {
    let subscribers = opts.subscribers;
    if subscribers == 0 {
        bail!("no subscribers asked for");
    }
    // One socket per client here (the server raised its own at start).
    raise_open_files_limit(subscribers as u64 + 1024)?;
    let target = find_target(db).await?;
    let svc = CommandService::from_pool(db.pool.clone());
    let after = svc.store().head().await?;
    let token = server.token(Role::Coordinator, "bench-coordinator")?;
    let subscribe = json!({ "type": "subscribe", "id": "1", "payload": {
        "query": SUBSCRIPTION,
        "variables": { "program": target.program.to_string(), "after": after.to_string() },
    } })
    .to_string();
    let before = server.rss()?;

    let connecting = Instant::now();
    let url = server.ws_url();
    let sockets: Vec<Ws> = futures::stream::iter(0..subscribers)
        .map(|_| connect(&url, &token, &subscribe))
        .buffer_unordered(CONNECTING)
        .try_collect()
        .await
        .with_context(|| format!("opening {subscribers} subscriptions"))?;
    let connect_time = connecting.elapsed();

    let received = Arc::new(AtomicU64::new(0));
    let (stop, stopped) = watch::channel(false);
    let mut groups = tokio::task::JoinSet::new();
    let mut sockets = sockets.into_iter().enumerate().peekable();
    let per_group = subscribers.div_ceil(GROUPS);
    while sockets.peek().is_some() {
        let share: Vec<(u32, Ws)> =
            sockets.by_ref().take(per_group).map(|(i, ws)| (u32::try_from(i).unwrap_or(u32::MAX), ws)).collect();
        groups.spawn(follow(share, received.clone(), stopped.clone()));
    }

    let result = async {
        // Warm-up: every client must get every warm-up event.
        let mut warmup = Vec::with_capacity(WARMUP_EVENTS);
        for n in 0..WARMUP_EVENTS {
            let committed = svc.handle(progress(&target, n)?, &meta()).await.context("a warm-up event")?;
            warmup.extend(committed.events.iter().map(tandem_store::RecordedEvent::cursor));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let expected = (subscribers * warmup.len()) as u64;
        if !wait_for(&received, expected).await {
            bail!(
                "the subscriptions did not all catch up: {} of {expected} warm-up deliveries",
                received.load(Ordering::Relaxed)
            );
        }
        let connected = server.rss()?;

        let cpu_server = server.cpu_time()?;
        let cpu_bench = cpu_time_of("/proc/self/stat")?;
        let measuring = Instant::now();
        let commits = commit_steadily(db, target, opts.duration).await?;
        let expected = (subscribers * (warmup.len() + commits.len())) as u64;
        let complete = wait_for(&received, expected).await;
        let measured = measuring.elapsed();
        let cpu_server = server.cpu_time()?.saturating_sub(cpu_server);
        let cpu_bench = cpu_time_of("/proc/self/stat")?.saturating_sub(cpu_bench);
        let end = server.rss()?;
        anyhow::Ok(Measurement { warmup, commits, complete, connected, end, measured, cpu_server, cpu_bench })
    }
    .await;
    // Stop the clients (their sockets close when the groups end).
    let _ = stop.send(true);
    let mut runs = Vec::with_capacity(GROUPS);
    while let Some(run) = groups.join_next().await {
        runs.push(run.context("a subscriber group panicked")?);
    }
    let Measurement { warmup, commits, complete, connected, end, measured, cpu_server, cpu_bench } = result?;

    // Every client must have every event exactly once.
    let mut index: HashMap<Cursor, (Option<Instant>, usize)> = HashMap::new();
    for (i, c) in warmup.iter().enumerate() {
        index.insert(*c, (None, i));
    }
    for (i, (c, at)) in commits.iter().enumerate() {
        index.insert(*c, (Some(*at), warmup.len() + i));
    }
    let events = index.len();
    let mut seen = vec![0u8; subscribers * events];
    let mut latencies = Latencies::with_capacity(subscribers * commits.len());
    // Per measured event, its first and last delivery: the first is the
    // pipeline (commit, tail, hub, one rendering, the socket), the gap to
    // the last is the fan-out to every subscriber.
    let mut spread = vec![(Duration::MAX, Duration::ZERO); commits.len()];
    let (mut unexpected, mut failures) = (0usize, Vec::new());
    for run in runs {
        failures.extend(run.failures);
        for r in run.receipts {
            let Some((committed, i)) = index.get(&r.cursor) else {
                unexpected += 1;
                continue;
            };
            let slot = &mut seen[r.subscriber as usize * events + i];
            *slot = slot.saturating_add(1);
            if let Some(committed) = committed {
                let latency = r.at.saturating_duration_since(*committed);
                latencies.record(latency);
                let (first, last) = &mut spread[i - warmup.len()];
                *first = (*first).min(latency);
                *last = (*last).max(latency);
            }
        }
    }
    let missing = seen.iter().filter(|n| **n == 0).count();
    let repeated = seen.iter().filter(|n| **n > 1).count();
    if !complete || missing > 0 || repeated > 0 || unexpected > 0 || !failures.is_empty() {
        let failed: std::collections::HashSet<u32> = failures.iter().map(|(s, _)| *s).collect();
        let first = failures.first().map(|(s, f)| format!("; first failure (subscriber {s}): {f}")).unwrap_or_default();
        bail!(
            "deliveries to {subscribers} subscribers of {events} events: {missing} missing, {repeated} delivered \
             more than once, {unexpected} unexpected, {} subscribers failed{first}",
            failed.len()
        );
    }

    let mut firsts = Latencies::with_capacity(spread.len());
    let mut lasts = Latencies::with_capacity(spread.len());
    for (first, last) in spread {
        firsts.record(first);
        lasts.record(last);
    }
    let note = format!(
        "{subscribers} subscribers of programEvents (coordinator), one socket each, connected in {:.1} s; \
         {} events at {EVENTS_PER_SECOND}/s after {} warm-up events, {} deliveries, each exactly once; \
         per event, median of its first delivery {:.1} ms and of its last {:.1} ms; \
         program with {} active pairs; CPU over the measurement ({:.1} s): server {:.1} s, bench (clients and \
         committer) {:.1} s",
        connect_time.as_secs_f64(),
        commits.len(),
        warmup.len(),
        latencies.len(),
        firsts.percentile(50.0).as_secs_f64() * 1000.0,
        lasts.percentile(50.0).as_secs_f64() * 1000.0,
        target.active_pairs,
        measured.as_secs_f64(),
        cpu_server.as_secs_f64(),
        cpu_bench.as_secs_f64(),
    );
    report.push(
        Figure::new("subscriptions", "commit→delivery p50", Amount::millis(latencies.percentile(50.0))).note(note),
    );
    report.push(
        Figure::new("subscriptions", "commit→delivery p99", Amount::millis(latencies.percentile(99.0)))
            .goal(Goal::AtMost(50.0))
            .note("the same deliveries as p50"),
    );
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    report.push(
        Figure::new(
            "subscriptions",
            format!("server RSS, {subscribers} subscribers"),
            Amount::mebibytes(connected.rss),
        )
        .note(format!("after every subscriber caught up; {:.1} MiB before they connected", mib(before.rss))),
    );
    report.push(
        Figure::new("subscriptions", "server RSS at the end", Amount::mebibytes(end.rss))
            .note("after the last delivery, subscribers still connected"),
    );
    report.push(
        Figure::new("subscriptions", "server peak RSS (VmHWM)", Amount::mebibytes(end.peak))
            .goal(Goal::AtMost(150.0))
            .note("the server's peak over its whole run (the query and mutation parts included)"),
    );
    Ok(())
}

/// The open goal, in an active pair of an open program, of the history's
/// program with the most active pairs that has one (the suite's fixture
/// programs left out).
async fn find_target(db: &BenchDb) -> anyhow::Result<Target> {
    let row: Option<(Uuid, Uuid, Uuid, Uuid, i64)> = sqlx::query_as(
        "WITH busy AS (
             SELECT program_id, count(*) AS active FROM read.pairs WHERE status = 'ACTIVE' GROUP BY program_id)
         SELECT g.program_id, g.pair_id, g.goal_id, g.owner_id, b.active
           FROM read.goals g
           JOIN read.pairs p ON p.pair_id = g.pair_id AND p.status = 'ACTIVE'
           JOIN read.programs pr ON pr.program_id = p.program_id AND pr.status = 'OPEN' AND pr.name NOT LIKE $1
           JOIN busy b ON b.program_id = p.program_id
          WHERE g.status = 'OPEN'
          ORDER BY b.active DESC, g.program_id, g.goal_id
          LIMIT 1",
    )
    .bind(crate::api::FIXTURE_PROGRAMS)
    .fetch_optional(&db.pool)
    .await?;
    let (program, pair, goal, owner, active_pairs) =
        row.context("no open goal in an active pair of an open program: the history has nothing to follow")?;
    Ok(Target { program, pair, goal, owner, active_pairs })
}

fn meta() -> CommandMeta {
    CommandMeta::new(Actor { subject: "bench".to_owned(), role: "admin".to_owned() })
}

/// The `n`th progress entry on the target goal, by its owner.
fn progress(t: &Target, n: usize) -> anyhow::Result<Command> {
    Ok(Command::Pair(PairCommand::RecordGoalProgress {
        pair_id: PairId::from_uuid(t.pair),
        goal_id: GoalId::from_uuid(t.goal),
        by: PersonId::from_uuid(t.owner),
        percent: Some(Percent::parse("percent", i64::try_from(n % 100)?)?),
        note: LongText::parse("note", "Asked an open question first in the one-to-one; it went better.")?,
        recorded_on: Utc::now().date_naive(),
    }))
}

/// Commits [`EVENTS_PER_SECOND`] events for `duration` on a thread of its
/// own and returns each event's cursor with the instant its command
/// returned.
async fn commit_steadily(db: &BenchDb, target: Target, duration: Duration) -> anyhow::Result<Vec<(Cursor, Instant)>> {
    let options = db.options.clone();
    let thread = std::thread::Builder::new().name("bench-committer".into()).spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async move {
            let pool = sqlx::postgres::PgPoolOptions::new().max_connections(2).connect_with(options).await?;
            let svc = CommandService::from_pool(pool.clone());
            let mut ticks = tokio::time::interval(Duration::from_secs(1) / EVENTS_PER_SECOND);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut commits = Vec::new();
            let started = Instant::now();
            let mut n = WARMUP_EVENTS;
            while started.elapsed() < duration {
                ticks.tick().await;
                let committed = svc.handle(progress(&target, n)?, &meta()).await.context("committing an event")?;
                let at = Instant::now();
                commits.extend(committed.events.iter().map(|e| (e.cursor(), at)));
                n += 1;
            }
            pool.close().await;
            anyhow::Ok(commits)
        })
    })?;
    tokio::task::spawn_blocking(move || thread.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the committer thread panicked"))?
}

/// Waits until `received` reaches `expected`; false when it stops growing
/// for [`PATIENCE`] first.
async fn wait_for(received: &AtomicU64, expected: u64) -> bool {
    let mut last = received.load(Ordering::Relaxed);
    let mut progress_at = Instant::now();
    loop {
        let now = received.load(Ordering::Relaxed);
        if now >= expected {
            return true;
        }
        if now != last {
            (last, progress_at) = (now, Instant::now());
        } else if progress_at.elapsed() > PATIENCE {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Opens one socket: handshake with `graphql-transport-ws`,
/// `connection_init` with the token, `connection_ack`, `subscribe`.
async fn connect(url: &str, token: &str, subscribe: &str) -> anyhow::Result<Ws> {
    let mut request = url.into_client_request()?;
    request.headers_mut().insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("graphql-transport-ws"));
    // Small buffers: a client reads one small message at a time.
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024).write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
        .await
        .context("opening a websocket")?;
    ws.send(Message::text(json!({ "type": "connection_init", "payload": { "token": token } }).to_string())).await?;
    loop {
        let message = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .context("no connection_ack")?
            .context("the socket closed before connection_ack")??;
        match message {
            Message::Ping(_) | Message::Pong(_) => {}
            Message::Text(text) if kind_of(text.as_str())? == "connection_ack" => break,
            other => bail!("expected connection_ack, got {other:?}"),
        }
    }
    ws.send(Message::text(subscribe.to_owned())).await?;
    Ok(ws)
}

/// A message's `type`, without building the rest.
fn kind_of(text: &str) -> anyhow::Result<Cow<'_, str>> {
    #[derive(Deserialize)]
    struct Head<'a> {
        #[serde(rename = "type", borrow)]
        kind: Cow<'a, str>,
    }
    Ok(serde_json::from_str::<Head<'_>>(text).context("an unreadable message")?.kind)
}

/// The cursor of a `next` message's edge, without building the payload.
fn cursor_of(text: &str) -> anyhow::Result<Cursor> {
    #[derive(Deserialize)]
    struct Next<'a> {
        #[serde(borrow)]
        payload: Payload<'a>,
    }
    #[derive(Deserialize)]
    struct Payload<'a> {
        #[serde(borrow)]
        data: Option<Data<'a>>,
        errors: Option<serde::de::IgnoredAny>,
    }
    #[derive(Deserialize)]
    struct Data<'a> {
        #[serde(rename = "programEvents", borrow)]
        edge: Edge<'a>,
    }
    #[derive(Deserialize)]
    struct Edge<'a> {
        #[serde(borrow)]
        cursor: Cow<'a, str>,
    }
    let next: Next<'_> = serde_json::from_str(text).context("an unreadable next message")?;
    if next.payload.errors.is_some() {
        bail!("a next message with errors: {text}");
    }
    let edge = next.payload.data.context("a next message without data")?.edge;
    Ok(edge.cursor.parse()?)
}

/// One group of clients: reads every socket of `share` until `stop`.
async fn follow(share: Vec<(u32, Ws)>, received: Arc<AtomicU64>, mut stop: watch::Receiver<bool>) -> GroupRun {
    enum Item {
        Message(Result<Message, tokio_tungstenite::tungstenite::Error>),
        Ended,
    }
    let mut run = GroupRun::default();
    let mut sockets = SelectAll::new();
    for (subscriber, ws) in share {
        let ended = futures::stream::once(async move { (subscriber, Item::Ended) });
        sockets.push(ws.map(move |m| (subscriber, Item::Message(m))).chain(ended).boxed());
    }
    loop {
        let (subscriber, item) = tokio::select! {
            biased;
            _ = stop.changed() => break,
            item = sockets.next() => match item {
                Some(item) => item,
                None => break,
            },
        };
        let at = Instant::now();
        let text = match item {
            Item::Message(Ok(Message::Text(text))) => text,
            Item::Message(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Item::Message(Ok(other)) => {
                run.failures.push((subscriber, format!("unexpected frame {other:?}")));
                continue;
            }
            Item::Message(Err(e)) => {
                run.failures.push((subscriber, format!("socket error: {e}")));
                continue;
            }
            Item::Ended => {
                run.failures.push((subscriber, "the socket ended".to_owned()));
                continue;
            }
        };
        let delivered = match fast_cursor(text.as_str()) {
            Some(cursor) => Ok(Some(cursor)),
            None => delivery(text.as_str()),
        };
        match delivered {
            Ok(Some(cursor)) => {
                run.receipts.push(Receipt { subscriber, cursor, at });
                received.fetch_add(1, Ordering::Relaxed);
            }
            Ok(None) => {}
            Err(e) => run.failures.push((subscriber, format!("{e:#}"))),
        }
    }
    run
}

/// The cursor of a plain `next` message, found without parsing: the server
/// writes the edge's fields in the order selected, so the message starts
/// with its type and holds `"cursor":"…"` once. Inside a JSON string a quote
/// is escaped, so neither `"cursor":"` nor `"errors":` can match text of the
/// payload. `None` sends the message to the full parse ([`delivery`]).
fn fast_cursor(text: &str) -> Option<Cursor> {
    const CURSOR: &str = r#""cursor":""#;
    if !text.starts_with(r#"{"type":"next""#) || text.contains(r#""errors":"#) {
        return None;
    }
    let start = text.find(CURSOR)? + CURSOR.len();
    let end = start + text[start..].find('"')?;
    text[start..end].parse().ok()
}

/// A message parsed in full: the cursor of a `next`, nothing for the
/// protocol's keep-alives, an error for anything else.
fn delivery(text: &str) -> anyhow::Result<Option<Cursor>> {
    match kind_of(text)? {
        kind if kind == "next" => cursor_of(text).map(Some),
        kind if kind == "ping" || kind == "pong" => Ok(None),
        kind => bail!("a {kind} message: {text}"),
    }
}
