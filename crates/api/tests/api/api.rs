//! The API through the real HTTP server: a program played end to end with
//! read-your-writes, coded errors, limits, and no N+1 queries.

use serde_json::json;
use sqlx::ConnectOptions as _;
use sqlx::PgPool;
use tandem_api::auth::Role;
use tandem_api::schema::{self, Limits, Viewer, loaders::Loaders};

use crate::support::{self, FEEDBACK, HOLD, Options, TestServer};

#[sqlx::test(migrations = "../../migrations")]
async fn a_program_end_to_end_reads_its_own_writes(pool: PgPool) {
    let s = TestServer::start(pool).await;
    let org = support::org(&s).await;
    let admin = s.admin();
    let ada = s.token(&[Role::Participant], &org.people[0]);
    // A participant records a session in their pair; the payload already shows it.
    let d = s
        .ok(
            &ada,
            HOLD,
            json!({"i": {"pairId": org.pairs[0], "minutes": 45, "focus": "Hard conversations",
                "activities": ["ROLE_PLAY", "EMPATHY_EXERCISE"],
                "coaching": [{"coachId": org.people[0], "coacheeId": org.people[1]}]}}),
        )
        .await;
    assert_eq!(d["holdSession"]["session"]["status"], "HELD");
    assert_eq!(d["holdSession"]["session"]["activities"], json!(["ROLE_PLAY", "EMPATHY_EXERCISE"]));
    let d = s
        .ok(
            &ada,
            FEEDBACK,
            json!({"i": {"pairId": org.pairs[0], "toId": org.people[1], "ratings": {"empathy": 5, "curiosity": 4},
                "strengths": "Asked great questions", "visibility": "RECIPIENT"}}),
        )
        .await;
    assert_eq!(d["giveFeedback"]["feedback"]["strengths"], "Asked great questions");
    // The pair shows the session count right away.
    let d = s
        .ok(
            &admin,
            "query($id: ID!) { pair(id: $id) { sessionsHeld status members { name } } }",
            json!({"id": org.pairs[0]}),
        )
        .await;
    assert_eq!(d["pair"]["sessionsHeld"], 1);
    assert_eq!(d["pair"]["members"].as_array().unwrap().len(), 2);
    // Goals: set, complete; completing twice is a CONFLICT.
    let d = s
        .ok(
            &ada,
            "mutation($i: SetGoalInput!) { setGoal(input: $i) { goal { id status title } } }",
            json!({"i": {"pairId": org.pairs[0], "title": "Speak up in planning", "accountabilityPartnerId": org.people[1]}}),
        )
        .await;
    let goal = d["setGoal"]["goal"]["id"].as_str().unwrap().to_owned();
    let complete = "mutation($i: CloseGoalInput!) { completeGoal(input: $i) { goal { status } } }";
    let d = s.ok(&ada, complete, json!({"i": {"pairId": org.pairs[0], "goalId": goal}})).await;
    assert_eq!(d["completeGoal"]["goal"]["status"], "COMPLETED");
    assert_eq!(
        s.error_code(Some(&ada), complete, json!({"i": {"pairId": org.pairs[0], "goalId": goal}})).await,
        "CONFLICT"
    );
    // Statistics reflect it.
    let d = s
        .ok(
            &admin,
            "query($p: ID!) { programStats(programId: $p) { enrolled matched sessionsHeld goalsCompleted } }",
            json!({"p": org.program}),
        )
        .await;
    assert_eq!(d["programStats"]["enrolled"], 4);
    assert_eq!(d["programStats"]["matched"], 4);
    assert_eq!(d["programStats"]["sessionsHeld"], 1);
    assert_eq!(d["programStats"]["goalsCompleted"], 1);
    s.stop().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn errors_are_coded_with_the_offending_field(pool: PgPool) {
    let s = TestServer::start(pool).await;
    let org = support::org(&s).await;
    let admin = s.admin();
    // BAD_USER_INPUT names the field.
    let (_, body) = s
        .post(
            Some(&admin),
            support::REGISTER,
            json!({"i": {"externalId": "X-1", "name": "  ", "email": "x@example.com", "department": "D", "title": "T", "level": 3}}),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body:#}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "name");
    let (_, body) = s
        .post(Some(&admin), FEEDBACK, json!({"i": {"pairId": org.pairs[0], "toId": org.people[1], "ratings": {"empathy": 9}, "visibility": "RECIPIENT"}}))
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN", "admins do not give feedback: {body:#}");
    let ada = s.token(&[Role::Participant], &org.people[0]);
    let (_, body) = s
        .post(Some(&ada), FEEDBACK, json!({"i": {"pairId": org.pairs[0], "toId": org.people[1], "ratings": {"empathy": 9}, "visibility": "RECIPIENT"}}))
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body:#}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "ratings.empathy");
    // Self review.
    let (_, body) = s
        .post(
            Some(&ada),
            FEEDBACK,
            json!({"i": {"pairId": org.pairs[0], "toId": org.people[0], "strengths": "me", "visibility": "RECIPIENT"}}),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["reason"], "SELF_FEEDBACK", "{body:#}");
    // NOT_FOUND, CONFLICT, UNAUTHENTICATED, FORBIDDEN.
    let ghost = uuid::Uuid::now_v7().to_string();
    assert_eq!(
        s.error_code(
            Some(&admin),
            HOLD,
            json!({"i": {"pairId": ghost, "byId": org.people[0], "minutes": 30, "focus": "x"}})
        )
        .await,
        "NOT_FOUND"
    );
    assert_eq!(
        s.error_code(
            Some(&admin),
            support::FORM,
            json!({"i": {"programId": org.program, "memberIds": [org.people[0], org.people[2]]}})
        )
        .await,
        "CONFLICT"
    );
    assert_eq!(s.error_code(None, "{ people { edges { node { id } } } }", json!({})).await, "UNAUTHENTICATED");
    assert_eq!(s.error_code(Some(&ada), "{ people { edges { node { id } } } }", json!({})).await, "FORBIDDEN");
    // A malformed id.
    let (_, body) = s.post(Some(&admin), "query { person(id: \"nope\") { id } }", json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(body["errors"][0]["extensions"]["field"], "id");
    s.stop().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn internal_failures_never_reach_the_client(pool: PgPool) {
    let s = TestServer::start(pool.clone()).await;
    let admin = s.admin();
    support::org(&s).await;
    // Break the database under the API.
    sqlx::query("DROP TABLE read.people CASCADE").execute(&pool).await.unwrap();
    let (_, body) = s.post(Some(&admin), "{ people { edges { node { id name } } } }", json!({})).await;
    let err = &body["errors"][0];
    assert_eq!(err["extensions"]["code"], "INTERNAL_SERVER_ERROR", "{body:#}");
    let text = body.to_string();
    for leak in ["relation", "read.people", "sqlx", "database", "does not exist"] {
        assert!(!text.contains(leak), "internal detail {leak:?} leaked: {text}");
    }
    s.stop().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn limits_are_enforced(pool: PgPool) {
    let limits = Limits { max_depth: 6, max_complexity: 200, max_page_size: 10, ..Limits::default() };
    let s = TestServer::start_with(pool, Options { limits: Some(limits), ..Options::default() }).await;
    let admin = s.admin();
    // Page size.
    assert_eq!(
        s.error_code(Some(&admin), "{ people(first: 11) { edges { cursor } } }", json!({})).await,
        "BAD_USER_INPUT"
    );
    s.ok(&admin, "{ people(first: 10) { edges { cursor } } }", json!({})).await;
    // Depth.
    let deep =
        "{ programs { edges { node { pairs { edges { node { members { manager { manager { id } } } } } } } } } }";
    let (_, body) = s.post(Some(&admin), deep, json!({})).await;
    assert!(body["errors"][0]["message"].as_str().unwrap().to_lowercase().contains("nested"), "{body:#}");
    // Complexity.
    let wide = format!("{{ {} }}", (0..250).map(|i| format!("a{i}: me {{ subject }}")).collect::<Vec<_>>().join(" "));
    let (_, body) = s.post(Some(&admin), &wide, json!({})).await;
    assert!(body["errors"][0]["message"].as_str().unwrap().to_lowercase().contains("complex"), "{body:#}");
    // String length.
    let long = "x".repeat(201);
    let (_, body) = s
        .post(
            Some(&admin),
            support::REGISTER,
            json!({"i": {"externalId": "L-1", "name": long, "email": "l@example.com", "department": "D", "title": "T", "level": 3}}),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    // Body size.
    let huge = "#".repeat(2 * 1024 * 1024);
    let res = reqwest::Client::new()
        .post(s.url())
        .header("content-type", "application/json")
        .bearer_auth(&admin)
        .body(json!({"query": format!("{{ me {{ subject }} }} {huge}")}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 413);
    s.stop().await;
}

/// Counts the SQL statements sqlx logs, per thread: sqlx reports every
/// statement to the `log` facade under the target `sqlx::query`, and this
/// test's runtime runs all its tasks on its own thread.
struct StatementCounter;

static COUNTS: std::sync::Mutex<Vec<(std::thread::ThreadId, usize)>> = std::sync::Mutex::new(Vec::new());

impl log::Log for StatementCounter {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target() == "sqlx::query"
    }
    fn log(&self, record: &log::Record<'_>) {
        if record.target() != "sqlx::query" {
            return;
        }
        let me = std::thread::current().id();
        let mut counts = COUNTS.lock().unwrap();
        match counts.iter_mut().find(|(t, _)| *t == me) {
            Some((_, n)) => *n += 1,
            None => counts.push((me, 1)),
        }
    }
    fn flush(&self) {}
}

fn statements_on_this_thread() -> usize {
    let me = std::thread::current().id();
    COUNTS.lock().unwrap().iter().find(|(t, _)| *t == me).map_or(0, |(_, n)| *n)
}

/// A nested query over many pairs costs one statement per level, however
/// many rows each level has.
#[sqlx::test(migrations = "../../migrations")]
async fn nested_queries_batch_per_level(pool: PgPool) {
    let s = TestServer::start(pool.clone()).await;
    let org = support::org(&s).await;
    let admin_token = s.admin();
    for (i, pair) in org.pairs.iter().enumerate() {
        for _ in 0..3 {
            s.ok(
                &admin_token,
                HOLD,
                json!({"i": {"pairId": pair, "byId": org.people[i * 2], "minutes": 30, "focus": "x"}}),
            )
            .await;
        }
    }
    let mut state = s.state.clone();
    // Stop the server, its runners and hub, so that only the query runs SQL
    // on this thread; read through a fresh pool that logs every statement.
    s.stop().await;
    let options = pool.connect_options().as_ref().clone().log_statements(log::LevelFilter::Debug);
    state.pool = sqlx::postgres::PgPoolOptions::new().max_connections(5).connect_with(options).await.unwrap();
    let schema = schema::build(state.clone());
    let admin = tandem_api::auth::Verifier::new(&support::auth_config()).unwrap().verify(&admin_token).unwrap();
    let query = "query($p: ID!) { program(id: $p) { pairs { edges { node { id members { name manager { id } } \
                 sessions { edges { node { id coaching { coach { id } } } } } goals { edges { node { id } } } \
                 program { name } } } } } }";
    static LOGGER: StatementCounter = StatementCounter;
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Debug);
    let before = statements_on_this_thread();
    let request = async_graphql::Request::new(query)
        .variables(async_graphql::Variables::from_json(json!({"p": org.program})))
        .data(Viewer(Some(admin)))
        .data(Loaders::new(&state.pool));
    let response = schema.execute(request).await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let statements = statements_on_this_thread() - before;
    eprintln!("nested query ran {statements} SQL statements");
    // program, pairs page, members (people), sessions, goals, pair's program:
    // a handful — not one per pair, member or session.
    assert!(statements > 0, "the counter saw no statement at all");
    assert!(statements <= 10, "expected one statement per level, saw {statements}");
}

/// The graphql-http audit against the real Tandem server (the transport
/// tests run it against a toy schema too).
#[sqlx::test(migrations = "../../migrations")]
async fn the_real_server_passes_the_graphql_over_http_audit(pool: PgPool) {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance");
    assert!(
        dir.join("node_modules/graphql-http").is_dir(),
        "run `npm ci --prefix conformance` first (scripts/test does)"
    );
    let s = TestServer::start(pool).await;
    let url = s.url();
    let script = dir.join("audit.mjs");
    let output =
        tokio::process::Command::new("node").arg(script).arg(url).output().await.expect("node must be installed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(output.status.success(), "audit failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("0 MUST failed, 0 SHOULD warned"), "{stdout}");
    s.stop().await;
}

/// A subject past its request budget gets 429 with RATE_LIMITED,
/// `Retry-After` and the RateLimit fields; others are unaffected; a burst
/// of concurrent requests gets exactly the budget through.
#[sqlx::test(migrations = "../../migrations")]
async fn a_subject_over_its_budget_is_rate_limited(pool: PgPool) {
    let s = TestServer::start_with(pool, Options { rate_limit_per_minute: 5, ..Options::default() }).await;
    let busy = s.admin();
    for _ in 0..5 {
        s.ok(&busy, "{ me { subject } }", json!({})).await;
    }
    let response = reqwest::Client::new()
        .post(s.url())
        .bearer_auth(&busy)
        .header("accept", "application/graphql-response+json")
        .json(&json!({ "query": "{ me { subject } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    // Five a minute: the next request is allowed within 12 s.
    let retry_after: u64 = header("retry-after").expect("Retry-After on 429").parse().unwrap();
    assert!((1..=12).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(header("ratelimit-limit").as_deref(), Some("5"));
    assert_eq!(header("ratelimit-remaining").as_deref(), Some("0"));
    assert_eq!(header("ratelimit-reset"), Some(retry_after.to_string()));
    assert_eq!(header("ratelimit-policy").as_deref(), Some("5;w=60"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED", "{body:#}");

    let other = s.token(&[Role::Analyst], "analyst-1");
    s.ok(&other, "{ me { subject } }", json!({})).await;

    // Twenty at once from a fresh subject: five pass, fifteen are refused.
    let burst = s.token(&[Role::Analyst], "analyst-2");
    let statuses =
        futures::future::join_all((0..20).map(|_| s.post(Some(&burst), "{ me { subject } }", json!({})))).await;
    let passed = statuses.iter().filter(|(status, _)| *status == 200).count();
    let refused = statuses
        .iter()
        .filter(|(status, body)| *status == 429 && body["errors"][0]["extensions"]["code"] == "RATE_LIMITED")
        .count();
    assert_eq!((passed, refused), (5, 15), "{statuses:?}");
    s.stop().await;
}

/// A budget of 0 means no limit.
#[sqlx::test(migrations = "../../migrations")]
async fn a_zero_budget_is_unlimited(pool: PgPool) {
    let s = TestServer::start_with(pool, Options { rate_limit_per_minute: 0, ..Options::default() }).await;
    let admin = s.admin();
    let statuses =
        futures::future::join_all((0..50).map(|_| s.post(Some(&admin), "{ me { subject } }", json!({})))).await;
    assert!(statuses.iter().all(|(status, _)| *status == 200), "{statuses:?}");
    s.stop().await;
}

/// Over a websocket the budget is taken at `connection_init`: a subject
/// past it gets the socket closed with 1013 (try again later).
#[sqlx::test(migrations = "../../migrations")]
async fn a_websocket_over_the_budget_is_closed_with_try_again_later(pool: PgPool) {
    use futures::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::{Message, http::HeaderValue};

    let s = TestServer::start_with(pool, Options { rate_limit_per_minute: 2, ..Options::default() }).await;
    let admin = s.admin();
    for _ in 0..2 {
        s.ok(&admin, "{ me { subject } }", json!({})).await;
    }
    let mut request = s.ws_url().into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("graphql-transport-ws"));
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let init = json!({"type": "connection_init", "payload": {"token": admin}});
    ws.send(Message::text(init.to_string())).await.unwrap();
    let close = loop {
        match tokio::time::timeout(std::time::Duration::from_secs(5), ws.next()).await.expect("an answer within 5 s") {
            Some(Ok(Message::Close(frame))) => break frame.expect("a close frame with a code"),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close.code, CloseCode::Again, "{close:?}");
    s.stop().await;
}
