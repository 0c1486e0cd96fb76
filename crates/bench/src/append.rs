//! Figure 1: commands per second through the command path (lock and load
//! the streams, decide, append, commit) at 1, 4 and 16 clients, against raw
//! single-row INSERTs of equally sized events, one transaction each, at the
//! same concurrency.
//!
//! The command is `RecordGoalProgress`, the commonest write of a running
//! program: it loads the pair, its program and both members, checks that
//! the writer is a member of a live pair and a participant of the open
//! goal, and appends one event. Each client cycles over pairs of its own
//! (so the figure measures the store, not contention on one stream); the
//! raw clients insert rows of the same size, taken from the events the
//! command path wrote, into a table with the events table's columns,
//! constraints and indexes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::NaiveDate;
use futures::StreamExt as _;
use tandem_commands::{Command, CommandMeta, CommandService};
use tandem_domain::pair::{FormPair, PairCommand, SetGoal};
use tandem_domain::person::{PersonCommand, RegisterPerson};
use tandem_domain::program::{EnrolParticipant, LaunchProgram, ProgramCommand};
use tandem_domain::values::{
    CadenceDays, Email, ExternalId, FormedBy, GroupFormat, Level, LevelGap, LongText, Percent, Purpose, ShortText,
};
use tandem_domain::{GoalId, PairId, PersonId, ProgramId};
use tandem_store::Actor;
use uuid::Uuid;

use crate::{Amount, BenchDb, BenchOptions, Figure, Goal, Report, Size};

/// Concurrency levels measured.
pub const CLIENTS: [usize; 3] = [1, 4, 16];

/// Pairs each of the 16 clients cycles over.
const PAIRS_PER_CLIENT: usize = 16;

/// The metadata of every bench command.
pub fn meta() -> CommandMeta {
    CommandMeta::new(Actor { subject: "bench".to_owned(), role: "admin".to_owned() })
}

fn day(y: i32, m: u32, d: u32) -> anyhow::Result<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d).context("date")
}

/// A pair with an open goal: what one `RecordGoalProgress` needs.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub pair: PairId,
    pub goal: GoalId,
    pub member: PersonId,
}

/// Builds a program with `pairs` pairs, each with an open goal, through the
/// command path (`concurrency` commands at a time).
pub async fn fixture(svc: &CommandService, pairs: usize, concurrency: usize) -> anyhow::Result<Vec<Target>> {
    let program = ProgramId::new();
    let text = |s: &str| ShortText::parse("text", s);
    svc.handle(
        Command::Program(ProgramCommand::Launch(LaunchProgram {
            program_id: program,
            name: text("Bench peer coaching")?,
            description: LongText::default(),
            purpose: Purpose::SkillBuilding,
            format: GroupFormat::PAIRS,
            max_level_gap: LevelGap::parse("gap", 2)?,
            cadence_days: CadenceDays::parse("cadence", 14)?,
            starts_on: day(2026, 1, 5)?,
            ends_on: None,
        })),
        &meta(),
    )
    .await?;
    let people: Vec<PersonId> = (0..pairs * 2).map(|_| PersonId::new()).collect();
    let mut register = Vec::with_capacity(people.len());
    for (i, id) in people.iter().enumerate() {
        register.push(Command::Person(PersonCommand::Register(RegisterPerson {
            person_id: *id,
            external_id: ExternalId::parse("externalId", &format!("B-{id}"))?,
            name: text(&format!("Bench Person {i}"))?,
            email: Email::parse("email", &format!("bench.{i}.{}@example.com", id.as_uuid().simple()))?,
            department: text("Engineering")?,
            title: text("Engineer")?,
            level: Level::parse("level", 4)?,
            manager: None,
            location: None,
            hired_on: day(2020, 3, 1)?,
        })));
    }
    run_all(svc, register, concurrency).await?;
    let enrol = people
        .iter()
        .map(|p| {
            Ok(Command::Program(ProgramCommand::Enrol(EnrolParticipant {
                program_id: program,
                person_id: *p,
                enrolled_on: day(2026, 1, 6)?,
                interests: vec![],
                skills: vec![],
                wants_to_work_on: LongText::default(),
            })))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Enrolments all write the program stream: one at a time is what they get anyway.
    run_all(svc, enrol, 1).await?;
    let mut targets = Vec::with_capacity(pairs);
    let mut form = Vec::with_capacity(pairs);
    let mut goals = Vec::with_capacity(pairs);
    for members in people.chunks_exact(2) {
        let t = Target { pair: PairId::new(), goal: GoalId::new(), member: members[0] };
        form.push(Command::Pair(PairCommand::Form(FormPair {
            pair_id: t.pair,
            program_id: program,
            members: members.to_vec(),
            formed_by: FormedBy::Admin,
            match_score: None,
            formed_on: day(2026, 1, 12)?,
        })));
        goals.push(Command::Pair(PairCommand::SetGoal {
            pair_id: t.pair,
            goal: SetGoal {
                goal_id: t.goal,
                owner: members[0],
                title: text("Run a difficult conversation calmly")?,
                description: LongText::parse("description", "Prepare, listen first, agree on a next step.")?,
                due_on: Some(day(2026, 6, 30)?),
                accountability_partner: Some(members[1]),
                set_on: day(2026, 1, 14)?,
            },
        }));
        targets.push(t);
    }
    run_all(svc, form, concurrency).await?;
    run_all(svc, goals, concurrency).await?;
    Ok(targets)
}

async fn run_all(svc: &CommandService, commands: Vec<Command>, concurrency: usize) -> anyhow::Result<()> {
    let mut results = futures::stream::iter(commands.into_iter().map(|c| {
        let svc = svc.clone();
        async move { svc.handle(c, &meta()).await }
    }))
    .buffer_unordered(concurrency.max(1));
    while let Some(r) = results.next().await {
        r.context("fixture command refused")?;
    }
    Ok(())
}

/// The command one client sends next.
pub fn progress_command(t: &Target, n: usize) -> anyhow::Result<Command> {
    Ok(Command::Pair(PairCommand::RecordGoalProgress {
        pair_id: t.pair,
        goal_id: t.goal,
        by: t.member,
        percent: Some(Percent::parse("percent", i64::try_from(n % 100)?)?),
        note: LongText::parse(
            "note",
            "Practised opening the conversation with a question; agreed to try it with the team on Thursday.",
        )?,
        recorded_on: day(2026, 2, 1)?,
    }))
}

/// Runs `clients` loops of `body` for `duration`; returns the operations done
/// and the time they took.
pub async fn for_duration<F, Fut>(clients: usize, duration: Duration, body: F) -> anyhow::Result<(u64, Duration)>
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let body = Arc::new(body);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let stop = stop.clone();
        let body = body.clone();
        tasks.spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                body(client, n).await?;
                n += 1;
            }
            anyhow::Ok(n as u64)
        });
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    while let Some(r) = tasks.join_next().await {
        total += r??;
    }
    Ok((total, started.elapsed()))
}

/// Runs figure 1.
pub async fn run(opts: &BenchOptions, db: &BenchDb, report: &mut Report) -> anyhow::Result<()> {
    let max_clients = CLIENTS.iter().copied().max().unwrap_or(1);
    let pairs_per_client = if opts.size == Size::Smoke { 2 } else { PAIRS_PER_CLIENT };
    let pool = db.pool_of(u32::try_from(max_clients)? + 4).await?;
    let svc = CommandService::from_pool(pool.clone());
    eprintln!("bench: append: building {} pairs with open goals", max_clients * pairs_per_client);
    let targets = Arc::new(fixture(&svc, max_clients * pairs_per_client, 8).await?);

    // Equally sized raw rows: the stored shape of the events the command path writes.
    let mut sample = None;
    for clients in CLIENTS {
        let svc = svc.clone();
        let targets = targets.clone();
        // Client c cycles over targets c, c + 16, c + 32, … so that no two
        // clients share a pair at any concurrency.
        let (n, elapsed) = for_duration(clients, opts.duration, move |client, n| {
            let svc = svc.clone();
            let targets = targets.clone();
            async move {
                let t = targets[(client + (n % pairs_per_client) * max_clients) % targets.len()];
                svc.handle(progress_command(&t, n)?, &meta()).await.context("RecordGoalProgress")?;
                Ok(())
            }
        })
        .await?;
        if sample.is_none() {
            sample = Some(sample_event(&pool).await?);
        }
        let Some(sample) = sample.clone() else { continue };
        let raw = raw_inserts(&pool, clients, opts.duration, sample).await?;
        report.push(
            Figure::new(
                "append",
                format!("commands/s, {clients} client{}", if clients == 1 { "" } else { "s" }),
                Amount::per_second(n, elapsed, "cmd/s"),
            )
            .against(Amount::per_second(raw.0, raw.1, "inserts/s"))
            .goal_if(clients == max_clients, Goal::RatioAtLeast(1.0))
            .goal_if(clients == 1, Goal::RatioAtLeast(0.7))
            .note(format!("{n} RecordGoalProgress vs {} single-row INSERT transactions", raw.0)),
        );
    }
    pool.close().await;
    Ok(())
}

/// Raw single-row INSERTs per second at `clients`, as figure 1 measures
/// them, for parts that compare with it when figure 1 did not run: rows the
/// size of the last `GoalProgressRecorded` stored.
pub async fn raw_insert_rate(pool: &sqlx::PgPool, clients: usize, duration: Duration) -> anyhow::Result<Amount> {
    let sample = sample_event(pool).await?;
    let (n, elapsed) = raw_inserts(pool, clients, duration, sample).await?;
    Ok(Amount::per_second(n, elapsed, "inserts/s"))
}

/// The stored columns of one event the command path wrote.
#[derive(Clone, Debug, sqlx::FromRow)]
struct Sample {
    stream_type: String,
    event_type: String,
    schema_version: i16,
    data: serde_json::Value,
    metadata: serde_json::Value,
}

async fn sample_event(pool: &sqlx::PgPool) -> anyhow::Result<Sample> {
    Ok(sqlx::query_as(
        "SELECT stream_type, event_type, schema_version, data, metadata FROM events \
         WHERE event_type = 'GoalProgressRecorded' ORDER BY position DESC LIMIT 1",
    )
    .fetch_one(pool)
    .await?)
}

/// The baseline: one single-row INSERT per transaction (autocommit) per
/// client, for `duration`, into a copy of the events table (same columns,
/// defaults, constraints and indexes; no triggers).
async fn raw_inserts(
    pool: &sqlx::PgPool,
    clients: usize,
    duration: Duration,
    sample: Sample,
) -> anyhow::Result<(u64, Duration)> {
    sqlx::query("DROP TABLE IF EXISTS bench_raw_events").execute(pool).await?;
    sqlx::query("CREATE TABLE bench_raw_events (LIKE events INCLUDING ALL)").execute(pool).await?;
    let pool = pool.clone();
    let sample = Arc::new(sample);
    let streams: Arc<Vec<Uuid>> = Arc::new((0..clients).map(|_| Uuid::now_v7()).collect());
    for_duration(clients, duration, move |client, n| {
        let pool = pool.clone();
        let sample = sample.clone();
        let stream = streams[client];
        async move {
            sqlx::query(
                "INSERT INTO bench_raw_events \
                 (stream_id, stream_type, stream_version, event_id, event_type, schema_version, data, metadata) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(stream)
            .bind(&sample.stream_type)
            .bind(i32::try_from(n + 1)?)
            .bind(Uuid::now_v7())
            .bind(&sample.event_type)
            .bind(sample.schema_version)
            .bind(&sample.data)
            .bind(&sample.metadata)
            .execute(&pool)
            .await?;
            Ok(())
        }
    })
    .await
}
