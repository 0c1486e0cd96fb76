//! Figures 2 and 5, over HTTP against a `tandem serve` process:
//!
//! - [`dashboard`]: the program dashboard query (the program, its active
//!   pairs with their members, when each last met and its goals) through
//!   GraphQL, against one hand-written SQL statement that builds the same
//!   rows and columns as JSON from the same read-model tables;
//! - [`mutations`]: a GraphQL mutation end to end (HTTP, JSON, the command
//!   path, and the wait for the read models before the payload is read) at
//!   16 concurrent clients.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::Utc;
use futures::StreamExt as _;
use serde_json::{Value, json};
use sqlx::types::Json;
use tandem_api::auth::Role;
use uuid::Uuid;

use crate::server::{Server, cpu_time_of};
use crate::{Amount, BenchDb, BenchOptions, Figure, Goal, Latencies, Report, Size};

/// The names of the programs the suite's own fixtures launch (`LIKE`
/// pattern): the dashboard and the subscriptions run on the generated
/// history's programs, not on those.
pub const FIXTURE_PROGRAMS: &str = "Bench %";

/// Pairs on the dashboard, and goals per pair: one page each, the server's
/// largest page (`TANDEM_MAX_PAGE_SIZE`, default 100).
const PAGE: i64 = 100;

/// The dashboard as a front end would ask for it, as a coordinator. The
/// schema has no "last session" object nor a status filter on a pair's
/// goals: a pair carries `lastSessionAt` and `sessionsHeld`, and the page of
/// goals (with their status) is filtered to the open ones by the client.
const DASHBOARD_QUERY: &str = "query Dashboard($id: ID!, $page: Int!) {
  program(id: $id) {
    id name status participantCount cadenceDays startsOn
    pairs(status: ACTIVE, first: $page) {
      pageInfo { hasNextPage }
      edges { node {
        id status formedOn sessionsHeld lastSessionAt
        members { id name title level department }
        goals(first: $page) { edges { node { id title status dueOn latestPercent owner { id } } } }
      } }
    }
  }
}";

/// The same data by hand: one statement over the read models, the JSON
/// built by PostgreSQL. Members are in formation order with today's org
/// facts (title, level, department) from the dated org history, goals in
/// the order they were set, pairs in formation (id) order; `hasNextPage`
/// looks one pair past the page, as the server does.
///
/// The members are read through `unnest … WITH ORDINALITY` and a `LATERAL`
/// look-up of each one's history range, i.e. by primary key: joining
/// `people` on `person_id = ANY(member_ids)` lets the planner hash-join a
/// sequential scan of the whole org history once per pair (600 ms instead of
/// 3 ms on the 1,000,000-event history).
const DASHBOARD_SQL: &str = "
SELECT json_build_object(
  'id', pr.program_id, 'name', pr.name, 'status', pr.status, 'participantCount', pr.participants,
  'cadenceDays', pr.cadence_days, 'startsOn', pr.starts_on,
  'hasNextPage', (SELECT count(*) > $2 FROM (
      SELECT 1 FROM read.pairs WHERE program_id = pr.program_id AND status = 'ACTIVE' LIMIT $2 + 1) more),
  'pairs', COALESCE((
    SELECT json_agg(json_build_object(
      'id', p.pair_id, 'status', p.status, 'formedOn', p.formed_on,
      'sessionsHeld', p.sessions_held, 'lastSessionAt', p.last_session_at,
      'members', (
        SELECT COALESCE(json_agg(json_build_object(
                 'id', pe.person_id, 'name', pe.name, 'title', h.title, 'level', h.level,
                 'department', h.department) ORDER BY m.ord), '[]')
          FROM unnest(p.member_ids) WITH ORDINALITY AS m(person_id, ord)
          JOIN read.people pe ON pe.person_id = m.person_id
          CROSS JOIN LATERAL (
                SELECT title, level, department FROM read.person_org_history h
                 WHERE h.person_id = m.person_id
                   AND (h.valid_from IS NULL OR h.valid_from <= $3)
                   AND (h.valid_to IS NULL OR h.valid_to > $3)) h),
      'goals', (
        SELECT COALESCE(json_agg(json_build_object(
                 'id', g.goal_id, 'title', g.title, 'status', g.status, 'dueOn', g.due_on,
                 'latestPercent', g.latest_percent, 'ownerId', g.owner_id) ORDER BY g.set_on, g.goal_id), '[]')
          FROM (SELECT goal_id, title, status, due_on, latest_percent, owner_id, set_on
                  FROM read.goals WHERE pair_id = p.pair_id
                 ORDER BY set_on, goal_id LIMIT $2) g)
    ) ORDER BY p.pair_id)
      FROM (SELECT pair_id, status, formed_on, sessions_held, last_session_at, member_ids
              FROM read.pairs WHERE program_id = pr.program_id AND status = 'ACTIVE'
             ORDER BY pair_id LIMIT $2) p), '[]'))
  FROM read.programs pr
 WHERE pr.program_id = $1";

/// What one dashboard answer holds, counted the same way for both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Shape {
    pairs: usize,
    members: usize,
    sessions_held: i64,
    met: usize,
    goals: usize,
    open_goals: usize,
}

impl Shape {
    /// Counts `pairs`, a list of pair objects (GraphQL nodes or SQL rows).
    fn of<'a>(pairs: impl Iterator<Item = &'a Value>, goals_of: impl Fn(&'a Value) -> Vec<&'a Value>) -> Self {
        let mut s = Shape::default();
        for p in pairs {
            s.pairs += 1;
            s.members += p["members"].as_array().map_or(0, Vec::len);
            s.sessions_held += p["sessionsHeld"].as_i64().unwrap_or(0);
            s.met += usize::from(!p["lastSessionAt"].is_null());
            let goals = goals_of(p);
            s.goals += goals.len();
            s.open_goals += goals.iter().filter(|g| g["status"] == "OPEN").count();
        }
        s
    }

    fn of_graphql(body: &Value) -> anyhow::Result<Self> {
        let edges = body["data"]["program"]["pairs"]["edges"].as_array().context("no pairs in the GraphQL answer")?;
        Ok(Self::of(edges.iter().map(|e| &e["node"]), |p| {
            p["goals"]["edges"].as_array().map(|g| g.iter().map(|e| &e["node"]).collect()).unwrap_or_default()
        }))
    }

    fn of_sql(row: &Value) -> anyhow::Result<Self> {
        let pairs = row["pairs"].as_array().context("no pairs in the SQL answer")?;
        Ok(Self::of(pairs.iter(), |p| p["goals"].as_array().map(|g| g.iter().collect()).unwrap_or_default()))
    }
}

/// Figure 5: p50 and p99 of the program dashboard through GraphQL over
/// HTTP, against hand-written SQL fetching the same data, one client,
/// sequential, alternating the two so that both see the same conditions.
///
/// The program is the history's with the most active pairs (the suite's
/// fixture programs, see [`FIXTURE_PROGRAMS`], are left out). GraphQL's
/// time runs from sending the request to having the JSON body parsed;
/// SQL's from sending the statement to having its JSON result parsed, on
/// one held connection. Both answers are counted (pairs, members, goals) and must
/// agree, or the baseline is not doing the same work.
pub async fn dashboard(opts: &BenchOptions, db: &BenchDb, server: &Server, report: &mut Report) -> anyhow::Result<()> {
    let (warmups, iterations) = match opts.size {
        Size::Smoke => (2, 10),
        Size::Full => (20, 300),
    };
    let busiest: Option<(Uuid, i64)> = sqlx::query_as(
        "SELECT p.program_id, count(*) FROM read.pairs p JOIN read.programs pr USING (program_id) \
          WHERE p.status = 'ACTIVE' AND pr.name NOT LIKE $1 \
          GROUP BY p.program_id ORDER BY count(*) DESC, p.program_id LIMIT 1",
    )
    .bind(FIXTURE_PROGRAMS)
    .fetch_optional(&db.pool)
    .await?;
    let (program, active) = busiest.context("no program has an active pair: the history is empty")?;
    let token = server.token(Role::Coordinator, "bench-coordinator")?;
    let url = server.graphql_url();
    let http = server.http();
    let request = json!({ "query": DASHBOARD_QUERY, "variables": { "id": program.to_string(), "page": PAGE } });
    let graphql = async || {
        let started = Instant::now();
        let response = http
            .post(&url)
            .bearer_auth(&token)
            .header("accept", "application/graphql-response+json")
            .json(&request)
            .send()
            .await
            .context("sending the dashboard query")?;
        let status = response.status();
        let bytes = response.bytes().await?;
        let body: Value = serde_json::from_slice(&bytes).context("decoding the dashboard answer")?;
        let elapsed = started.elapsed();
        if !status.is_success() || body.get("errors").is_some() {
            bail!("the dashboard query failed ({status}): {body}");
        }
        anyhow::Ok((elapsed, body, bytes.len()))
    };
    let mut conn = db.pool.acquire().await?;
    let today = Utc::now().date_naive();
    let mut sql = async || {
        let started = Instant::now();
        let Json(row): Json<Value> = sqlx::query_scalar(DASHBOARD_SQL)
            .bind(program)
            .bind(PAGE)
            .bind(today)
            .fetch_one(&mut *conn)
            .await
            .context("running the dashboard SQL")?;
        anyhow::Ok((started.elapsed(), row))
    };

    let (_, first_graphql, body_bytes) = graphql().await?;
    let (_, first_sql) = sql().await?;
    let shape = Shape::of_graphql(&first_graphql)?;
    let sql_shape = Shape::of_sql(&first_sql)?;
    if shape.pairs != sql_shape.pairs {
        bail!(
            "the SQL baseline returns {} pairs and GraphQL {}: they do not do the same work",
            sql_shape.pairs,
            shape.pairs
        );
    }
    if shape != sql_shape {
        bail!("the SQL baseline returns {sql_shape:?} and GraphQL {shape:?}: they do not do the same work");
    }
    if first_graphql["data"]["program"]["pairs"]["pageInfo"]["hasNextPage"] != first_sql["hasNextPage"] {
        bail!("GraphQL and the SQL baseline disagree on hasNextPage");
    }

    let mut ours = Latencies::with_capacity(iterations);
    let mut baseline = Latencies::with_capacity(iterations);
    for i in 0..warmups + iterations {
        // Alternate which goes first, so neither always follows the other.
        let ((g, body, _), (s, row)) = if i % 2 == 0 {
            let g = graphql().await?;
            (g, sql().await?)
        } else {
            let s = sql().await?;
            (graphql().await?, s)
        };
        let pairs = body["data"]["program"]["pairs"]["edges"].as_array().map_or(0, Vec::len);
        let sql_pairs = row["pairs"].as_array().map_or(0, Vec::len);
        if pairs != shape.pairs || sql_pairs != shape.pairs {
            bail!("the dashboard changed during the run: {pairs} pairs by GraphQL, {sql_pairs} by SQL");
        }
        if i >= warmups {
            ours.record(g);
            baseline.record(s);
        }
    }
    drop(conn);

    let note = format!(
        "program with {active} active pairs; per answer: {} pairs (page of {PAGE}), {} members, {} sessions held \
         ({} pairs have met), {} goals ({} open), GraphQL body {:.0} KiB; coordinator token; {iterations} \
         iterations each after {warmups} warm-ups, one client, alternating; baseline: one SQL statement \
         building the same JSON, decoded by the client",
        shape.pairs,
        shape.members,
        shape.sessions_held,
        shape.met,
        shape.goals,
        shape.open_goals,
        body_bytes as f64 / 1024.0,
    );
    report.push(
        Figure::new("query", "dashboard p50", Amount::millis(ours.percentile(50.0)))
            .against(Amount::millis(baseline.percentile(50.0)))
            .goal(Goal::RatioAtMost(1.5))
            .note(note),
    );
    report.push(
        Figure::new("query", "dashboard p99", Amount::millis(ours.percentile(99.0)))
            .against(Amount::millis(baseline.percentile(99.0)))
            .goal(Goal::RatioAtMost(1.5))
            .note("the same samples as p50"),
    );
    Ok(())
}

/// Concurrent clients of figure 2.
const CLIENTS: usize = 16;
/// Mutations each client sends before the measurement (checked, not timed).
const WARMUP_MUTATIONS: usize = 3;

/// The mutation measured: the payload reads the goal from the read model,
/// so it resolves only once the projections have applied the write.
const PROGRESS_MUTATION: &str = "mutation Progress($i: RecordGoalProgressInput!) {
  recordGoalProgress(input: $i) { position replayed goal { id status latestPercent } }
}";

/// One client's pair, goal and participant token.
struct MutationClient {
    pair: String,
    goal: String,
    token: String,
}

/// What one client measured.
#[derive(Default)]
struct ClientRun {
    latencies: Latencies,
    ok: u64,
    errors: u64,
    stale: u64,
    first_error: Option<String>,
    finished: Option<Instant>,
}

/// Figure 2: a GraphQL mutation end to end at 16 concurrent clients for
/// `opts.duration`: throughput, p50 and p99.
///
/// Each client is the participant who owns the open goal of a pair of its
/// own (created through GraphQL first: people, a program, enrolments,
/// pairs, goals) and sends `recordGoalProgress` back to back, each with a
/// new percentage. A mutation counts when its answer is 200 without
/// `errors` and its payload — read from the read model after the write —
/// shows the percentage just sent; anything else fails the part.
pub async fn mutations(opts: &BenchOptions, db: &BenchDb, server: &Server, report: &mut Report) -> anyhow::Result<()> {
    let fixtures = mutation_fixtures(server).await.context("creating the mutation fixtures through GraphQL")?;
    let url = server.graphql_url();
    // Warm-up: connections, statement caches, the server's loaders.
    let warmup = run_clients(server.http(), &url, &fixtures, Instant::now(), None, WARMUP_MUTATIONS).await?;
    check_clean(&warmup, "warm-up")?;

    let cpu_server = server.cpu_time()?;
    let cpu_bench = cpu_time_of("/proc/self/stat")?;
    let started = Instant::now() + Duration::from_millis(20);
    let deadline = started + opts.duration;
    let runs = run_clients(server.http(), &url, &fixtures, started, Some(deadline), 0).await?;
    let cpu_server = server.cpu_time()?.saturating_sub(cpu_server);
    let cpu_bench = cpu_time_of("/proc/self/stat")?.saturating_sub(cpu_bench);
    check_clean(&runs, "measurement")?;

    let finished = runs.iter().filter_map(|r| r.finished).max().unwrap_or(deadline);
    let elapsed = finished.saturating_duration_since(started);
    let total: u64 = runs.iter().map(|r| r.ok).sum();
    let mut latencies = Latencies::with_capacity(usize::try_from(total).unwrap_or(0));
    for r in runs {
        latencies.extend(r.latencies);
    }
    let note = format!(
        "{CLIENTS} clients, each the participant owning the goal of its own pair; {total} mutations in {:.1} s, \
         none failed, every payload showed its own write; CPU over the run: server {:.1} s, bench (clients) \
         {:.1} s; baseline: raw single-row INSERTs at 16 clients (figure 1)",
        elapsed.as_secs_f64(),
        cpu_server.as_secs_f64(),
        cpu_bench.as_secs_f64(),
    );
    // The raw baseline: single-row INSERTs at the same concurrency, from
    // figure 1 of this run when it ran.
    let label = format!("commands/s, {CLIENTS} clients");
    let raw = report.figures.iter().find(|f| f.part == "append" && f.label == label).and_then(|f| f.baseline.clone());
    let raw = match raw {
        Some(raw) => raw,
        None => crate::append::raw_insert_rate(&db.pool, CLIENTS, opts.duration).await?,
    };
    report.push(
        Figure::new("mutation", "recordGoalProgress, 16 clients", Amount::per_second(total, elapsed, "mut/s"))
            .against(raw)
            .goal(Goal::RatioAtLeast(0.5))
            .note(note),
    );
    let same = format!("the same {total} mutations");
    let p99 = Amount::millis(latencies.percentile(99.0));
    report.push(Figure::new("mutation", "mutation p50", Amount::millis(latencies.percentile(50.0))).note(same.clone()));
    report.push(Figure::new("mutation", "mutation p99", p99.clone()).goal(Goal::AtMost(20.0)).note(same));

    // The stall case: the same load while a transaction that writes no
    // events holds an xid open, here and then in another database of the
    // cluster. Normal latency means within half again of the baseline.
    for at in crate::stall::UnrelatedIn::ALL {
        let unrelated = crate::stall::Unrelated::open(db, at).await?;
        let started = Instant::now() + Duration::from_millis(20);
        let stalled = run_clients(server.http(), &url, &fixtures, started, Some(started + opts.duration), 0).await;
        let described = unrelated.describe();
        unrelated.close().await?;
        let stalled = stalled?;
        check_clean(&stalled, "measurement with an unrelated transaction open")?;
        let count: u64 = stalled.iter().map(|r| r.ok).sum();
        let mut latencies = Latencies::with_capacity(usize::try_from(count).unwrap_or(0));
        for r in stalled {
            latencies.extend(r.latencies);
        }
        report.push(
            Figure::new("stall", format!("mutation p99, {}", at.label()), Amount::millis(latencies.percentile(99.0)))
                .against(p99.clone())
                .goal(Goal::RatioAtMost(1.5))
                .note(format!(
                    "{count} mutations, none failed, every payload showed its own write, {described}; baseline: \
                     mutation p99 without it"
                )),
        );
    }
    Ok(())
}

/// Fails when any mutation of `runs` errored or read stale data.
fn check_clean(runs: &[ClientRun], phase: &str) -> anyhow::Result<()> {
    let errors: u64 = runs.iter().map(|r| r.errors).sum();
    let stale: u64 = runs.iter().map(|r| r.stale).sum();
    let ok: u64 = runs.iter().map(|r| r.ok).sum();
    if errors > 0 || stale > 0 {
        let first = runs.iter().find_map(|r| r.first_error.clone()).unwrap_or_default();
        bail!(
            "{phase}: {errors} mutations failed and {stale} returned a goal without their own write \
             ({ok} succeeded); first: {first}"
        );
    }
    Ok(())
}

/// Runs one task per client, from `start`, until `deadline` (or `count`
/// mutations each without a deadline).
async fn run_clients(
    http: &reqwest::Client,
    url: &str,
    clients: &[MutationClient],
    start: Instant,
    deadline: Option<Instant>,
    count: usize,
) -> anyhow::Result<Vec<ClientRun>> {
    let mut tasks = tokio::task::JoinSet::new();
    for (index, client) in clients.iter().enumerate() {
        let http = http.clone();
        let url = url.to_owned();
        let (pair, goal, token) = (client.pair.clone(), client.goal.clone(), client.token.clone());
        tasks.spawn(async move {
            tokio::time::sleep_until(start.into()).await;
            let mut run = ClientRun { latencies: Latencies::with_capacity(4096), ..ClientRun::default() };
            let mut n = index;
            loop {
                let done = match deadline {
                    Some(d) => Instant::now() >= d,
                    None => n - index >= count,
                };
                if done {
                    break;
                }
                let percent = n % 100 + 1;
                n += 1;
                let variables = json!({ "i": {
                    "pairId": pair, "goalId": goal, "percent": percent,
                    "note": "Practised opening with a question; will try it with the team on Thursday.",
                } });
                let sent = Instant::now();
                match progress(&http, &url, &token, &variables).await {
                    Ok(answer) => {
                        let latency = sent.elapsed();
                        if answer["recordGoalProgress"]["goal"]["latestPercent"].as_u64() == Some(percent as u64) {
                            run.ok += 1;
                            run.latencies.record(latency);
                        } else {
                            run.stale += 1;
                            run.first_error.get_or_insert_with(|| format!("stale payload: {answer}"));
                        }
                    }
                    Err(e) => {
                        run.errors += 1;
                        run.first_error.get_or_insert_with(|| format!("{e:#}"));
                    }
                }
            }
            run.finished = Some(Instant::now());
            run
        });
    }
    let mut runs = Vec::with_capacity(clients.len());
    while let Some(run) = tasks.join_next().await {
        runs.push(run.context("a mutation client panicked")?);
    }
    Ok(runs)
}

/// One `recordGoalProgress`: its `data`, or why it failed.
async fn progress(http: &reqwest::Client, url: &str, token: &str, variables: &Value) -> anyhow::Result<Value> {
    let response = http
        .post(url)
        .bearer_auth(token)
        .header("accept", "application/graphql-response+json")
        .json(&json!({ "query": PROGRESS_MUTATION, "variables": variables }))
        .send()
        .await?;
    let status = response.status();
    let bytes = response.bytes().await?;
    let mut body: Value = serde_json::from_slice(&bytes).context("decoding the mutation's answer")?;
    if !status.is_success() || body.get("errors").is_some() {
        bail!("{status}: {body}");
    }
    Ok(body.get_mut("data").map(Value::take).unwrap_or_default())
}

/// A program with one pair per client, each with an open goal, made
/// through GraphQL: the admin registers the people, launches the program,
/// enrols them and forms the pairs; each goal's owner sets it.
async fn mutation_fixtures(server: &Server) -> anyhow::Result<Vec<MutationClient>> {
    let admin = server.token(Role::Admin, "bench-admin")?;
    let d = server
        .graphql(
            &admin,
            "mutation($i: LaunchProgramInput!) { launchProgram(input: $i) { program { id } } }",
            json!({ "i": { "name": "Bench mutations", "purpose": "SKILL_BUILDING", "kind": "PAIRS",
                           "maxLevelGap": 2, "cadenceDays": 14 } }),
        )
        .await?;
    let program = id_at(&d, &["launchProgram", "program", "id"])?;
    let register = futures::stream::iter(0..CLIENTS * 2)
        .map(|i| {
            let admin = &admin;
            async move {
                let key = Uuid::now_v7().simple().to_string();
                let d = server
                    .graphql(
                        admin,
                        "mutation($i: RegisterPersonInput!) { registerPerson(input: $i) { person { id } } }",
                        json!({ "i": { "externalId": format!("BM-{key}"), "name": format!("Bench Client {i}"),
                                       "email": format!("bench.client.{key}@example.com"),
                                       "department": "Engineering", "title": "Engineer", "level": 4,
                                       "hiredOn": "2020-03-01" } }),
                    )
                    .await?;
                id_at(&d, &["registerPerson", "person", "id"])
            }
        })
        .buffered(8)
        .collect::<Vec<_>>()
        .await;
    let people = register.into_iter().collect::<anyhow::Result<Vec<String>>>()?;
    // Enrolments all write the program's stream: one at a time.
    for person in &people {
        server
            .graphql(
                &admin,
                "mutation($i: EnrolParticipantInput!) { enrolParticipant(input: $i) { program { id } } }",
                json!({ "i": { "programId": program, "personId": person } }),
            )
            .await?;
    }
    let clients = futures::stream::iter(people.chunks_exact(2).map(<[String]>::to_vec))
        .map(|members| {
            let (admin, program) = (&admin, &program);
            async move {
                let d = server
                    .graphql(
                        admin,
                        "mutation($i: FormPairInput!) { formPair(input: $i) { pair { id } } }",
                        json!({ "i": { "programId": program, "memberIds": members } }),
                    )
                    .await?;
                let pair = id_at(&d, &["formPair", "pair", "id"])?;
                let token = server.token(Role::Participant, &members[0])?;
                let d = server
                    .graphql(
                        &token,
                        "mutation($i: SetGoalInput!) { setGoal(input: $i) { goal { id status } } }",
                        json!({ "i": { "pairId": pair, "title": "Run a difficult conversation calmly",
                                       "description": "Prepare, listen first, agree on a next step.",
                                       "accountabilityPartnerId": members[1] } }),
                    )
                    .await?;
                let goal = id_at(&d, &["setGoal", "goal", "id"])?;
                anyhow::Ok(MutationClient { pair, goal, token })
            }
        })
        .buffered(8)
        .collect::<Vec<_>>()
        .await;
    clients.into_iter().collect()
}

/// The string at `path` in `data`.
fn id_at(data: &Value, path: &[&str]) -> anyhow::Result<String> {
    let mut v = data;
    for key in path {
        v = &v[*key];
    }
    v.as_str().map(str::to_owned).with_context(|| format!("no {} in {data}", path.join(".")))
}
