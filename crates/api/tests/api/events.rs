//! The event feed (`events`) and the event subscriptions (`pairEvents`,
//! `programEvents`, `myEvents`), run on the schema over a real server's
//! state: its database, projections and event hub.
//!
//! The organisation is written through the command service (the same path
//! the mutations take), so the tests control every value, e.g. feedback
//! visibility, and see exactly what the store holds.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_graphql::{Request, Response, Variables};
use chrono::Utc;
use futures::{Stream, StreamExt};
use serde_json::{Value, json};
use sqlx::PgPool;
use tandem_api::auth::{Principal, Role};
use tandem_api::schema::{self, ApiState, EventHub, TandemSchema, Viewer};
use tandem_commands::Command;
use tandem_domain::pair::{PairCommand, SetGoal};
use tandem_domain::person::{PersonChanges, PersonCommand, UpdatePerson};
use tandem_domain::values::{GroupFormat, Visibility};
use tandem_domain::{GoalId, PairId, PersonId, ProgramId, SessionId};
use tandem_store::{Cursor, EventStore, ReadFilter, RecordedEvent};
use tokio_util::sync::CancellationToken;

use tandem_testkit::fixtures;
use tandem_testkit::values::{day, long, text};

use crate::support::{Options, TestServer};

// ---- the organisation ------------------------------------------------------

/// Everything the tests look at, written through the command service.
struct World {
    server: TestServer,
    schema: TandemSchema,
    program: ProgramId,
    /// Ada, Bob (pair A); Cy, Di (pair B).
    people: Vec<PersonId>,
    pair_a: PairId,
    pair_b: PairId,
    /// The commit position of the last command run.
    last: Mutex<Cursor>,
}

impl World {
    /// The organisation, on a server without projection runners: the feed
    /// and pair subscriptions read only the log.
    async fn new(pool: PgPool) -> Self {
        Self::build(pool, false).await
    }

    /// The organisation, with the read models kept up to date (program and
    /// person subscriptions start from them).
    async fn with_read_models(pool: PgPool) -> Self {
        Self::build(pool, true).await
    }

    async fn build(pool: PgPool, read_models: bool) -> Self {
        let options = Options { no_projections: !read_models, ..Options::default() };
        let server = TestServer::start_with(pool, options).await;
        let schema = schema::build(server.state.clone());
        let mut world = Self {
            server,
            schema,
            program: ProgramId::new(),
            people: vec![],
            pair_a: PairId::new(),
            pair_b: PairId::new(),
            last: Mutex::new(Cursor::START),
        };
        for name in ["Ada Lovelace", "Bob Moses", "Cy Young", "Di Prince"] {
            let id = world.register(name).await;
            world.people.push(id);
        }
        world.launch(world.program).await;
        for p in world.people.clone() {
            world.enrol(world.program, p).await;
        }
        let (ada, bob, cy, di) = (world.people[0], world.people[1], world.people[2], world.people[3]);
        world.form(world.pair_a, world.program, &[ada, bob]).await;
        world.form(world.pair_b, world.program, &[cy, di]).await;
        world.hold(world.pair_a, ada, "Our secret notes").await;
        world.feedback(world.pair_a, ada, bob, Visibility::Recipient, "Shared with Bob").await;
        world.feedback(world.pair_a, ada, bob, Visibility::Private, "Ada's private note").await;
        world.feedback(world.pair_a, bob, ada, Visibility::Coordinators, "For the coordinators").await;
        world
            .run(Command::Pair(PairCommand::SetGoal {
                pair_id: world.pair_a,
                goal: SetGoal {
                    goal_id: GoalId::new(),
                    owner: ada,
                    title: text("Speak up in planning"),
                    description: long("Say one thing per meeting"),
                    due_on: None,
                    accountability_partner: Some(bob),
                    set_on: day(2024, 2, 2),
                },
            }))
            .await;
        world.settle().await;
        world
    }

    fn state(&self) -> &ApiState {
        &self.server.state
    }

    async fn run(&self, command: Command) {
        let committed = self.state().commands.handle(command, &fixtures::admin()).await.unwrap();
        let mut last = self.last.lock().unwrap();
        *last = (*last).max(committed.position);
    }

    /// Waits until everything written so far is readable: reads only see
    /// events below the oldest running transaction of the cluster, and
    /// other tests' transactions may hold it back for a moment.
    async fn settle(&self) {
        let target = *self.last.lock().unwrap();
        settle_at(&self.state().store, target).await;
    }

    async fn finish(self) {
        self.server.stop().await;
    }

    async fn register(&self, name: &str) -> PersonId {
        let id = PersonId::new();
        self.run(fixtures::register_cmd(id, name, 3, None, Some("Lisbon"))).await;
        id
    }

    async fn launch(&self, program: ProgramId) {
        self.run(fixtures::launch_cmd(program, 2, GroupFormat::PAIRS)).await;
    }

    async fn enrol(&self, program: ProgramId, person: PersonId) {
        self.run(fixtures::enrol_cmd(program, person)).await;
    }

    async fn form(&self, pair: PairId, program: ProgramId, members: &[PersonId]) {
        self.run(fixtures::form_cmd(pair, program, members)).await;
    }

    async fn hold(&self, pair: PairId, by: PersonId, notes: &str) {
        self.run(fixtures::hold_cmd(pair, by, notes)).await;
    }

    async fn feedback(&self, pair: PairId, from: PersonId, to: PersonId, visibility: Visibility, strengths: &str) {
        self.run(fixtures::feedback_cmd(pair, from, to, visibility, strengths)).await;
    }

    /// A change that appends one event to a person's stream.
    async fn retitle(&self, person: PersonId, n: usize) {
        self.run(Command::Person(PersonCommand::Update(UpdatePerson {
            person_id: person,
            changes: PersonChanges { title: Some(text(&format!("Engineer {n}"))), ..PersonChanges::default() },
            effective_on: day(2024, 3, 1),
        })))
        .await;
    }

    /// Every readable event of the log, with a filter.
    async fn stored(&self, filter: ReadFilter) -> Vec<RecordedEvent> {
        let mut all = Vec::new();
        let mut at = Cursor::START;
        loop {
            let batch = self.state().store.read_all_filtered(at, 1000, &filter).await.unwrap();
            let Some(last) = batch.last() else { break };
            at = last.cursor();
            all.extend(batch);
        }
        all
    }

    async fn stored_cursors(&self, filter: ReadFilter) -> Vec<String> {
        self.stored(filter).await.iter().map(|e| e.cursor().to_string()).collect()
    }
}

/// Waits until the log's readable head has reached `target`.
async fn settle_at(store: &EventStore, target: Cursor) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.head().await.unwrap() < target {
        assert!(Instant::now() < deadline, "the log did not become readable up to {target}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn principal(roles: &[Role], subject: &str) -> Principal {
    Principal::new(subject, roles.iter().copied(), Utc::now() + chrono::Duration::hours(1), None).unwrap()
}

fn participant(person: PersonId) -> Principal {
    principal(&[Role::Participant], &person.to_string())
}

fn request(query: &str, variables: Value, viewer: Option<Principal>) -> Request {
    Request::new(query).variables(Variables::from_json(variables)).data(Viewer(viewer))
}

fn to_json(response: &Response) -> Value {
    serde_json::to_value(response).unwrap()
}

fn error_code(response: &Value) -> String {
    response["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {response:#}"))
        .to_owned()
}

// ---- queries -----------------------------------------------------------------

const TYPES: [&str; 22] = [
    "PersonRegistered",
    "PersonUpdated",
    "PersonLeft",
    "PersonRejoined",
    "PersonErased",
    "ProgramLaunched",
    "ProgramUpdated",
    "ParticipantEnrolled",
    "ParticipantWithdrew",
    "ProgramClosed",
    "PairFormed",
    "SessionScheduled",
    "SessionHeld",
    "SessionCancelled",
    "FeedbackGiven",
    "GoalSet",
    "GoalProgressRecorded",
    "GoalCompleted",
    "GoalAbandoned",
    "PairPaused",
    "PairResumed",
    "PairDissolved",
];

const ENVELOPE: &str = "fragment Env on EventEnvelope { cursor position eventId streamId streamType streamVersion \
                        eventType schemaVersion recordedAt actorRole correlationId causationId redactedFields }";

/// A selection of the `Event` union: the envelope of every type and the
/// sensitive fields the tests check.
fn node() -> String {
    let mut s = String::from("__typename ");
    for t in TYPES {
        s.push_str(&format!("... on {t}Event {{ envelope {{ ...Env }} }} "));
    }
    s.push_str(
        "... on PersonRegisteredEvent { personId name email externalId location department level } \
         ... on PersonUpdatedEvent { changedFields title } \
         ... on PairFormedEvent { pairId memberIds } \
         ... on SessionHeldEvent { notes focus } \
         ... on GoalSetEvent { title description ownerId } \
         ... on FeedbackGivenEvent { fromId toId strengths improvements visibility ratings { empathy } }",
    );
    s
}

fn feed_query() -> String {
    format!(
        "query($after: String, $first: Int, $types: [String!], $stream: ID) {{ \
           events(after: $after, first: $first, types: $types, streamId: $stream) {{ \
             edges {{ cursor node {{ {} }} }} \
             pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} }} }} {ENVELOPE}",
        node()
    )
}

async fn feed(world: &World, viewer: &Principal, variables: Value) -> Value {
    let response = world.schema.execute(request(&feed_query(), variables, Some(viewer.clone()))).await;
    let json = to_json(&response);
    assert!(response.errors.is_empty(), "{json:#}");
    json["data"]["events"].clone()
}

/// Every page of the feed, `first` at a time; the edges' nodes in order.
async fn whole_feed(world: &World, viewer: &Principal, first: usize, extra: Value) -> Vec<Value> {
    let mut nodes = Vec::new();
    let mut after = Value::Null;
    loop {
        let mut variables = json!({"after": after, "first": first});
        variables.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let page = feed(world, viewer, variables.clone()).await;
        let edges = page["edges"].as_array().unwrap();
        assert!(edges.len() <= first);
        for edge in edges {
            assert_eq!(edge["cursor"], edge["node"]["envelope"]["cursor"]);
            nodes.push(edge["node"].clone());
        }
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        assert_eq!(edges.len(), first, "a page before the last is full");
        after = page["pageInfo"]["endCursor"].clone();
    }
    nodes
}

fn cursors(nodes: &[Value]) -> Vec<String> {
    nodes.iter().map(|n| n["envelope"]["cursor"].as_str().unwrap().to_owned()).collect()
}

fn assert_strictly_increasing(cursors: &[String]) {
    let parsed: Vec<Cursor> = cursors.iter().map(|c| c.parse().unwrap()).collect();
    for w in parsed.windows(2) {
        assert!(w[0] < w[1], "cursors out of order or repeated: {} then {}", w[0], w[1]);
    }
}

// ---- the feed ----------------------------------------------------------------

#[sqlx::test(migrations = "../../migrations")]
async fn feed_pages_every_event_exactly_once_in_cursor_order(pool: PgPool) {
    let world = World::new(pool).await;
    let analyst = principal(&[Role::Analyst], "analyst-1");
    let stored = world.stored_cursors(ReadFilter::default()).await;
    assert!(stored.len() > 15, "the organisation has {} events", stored.len());

    // Analysts see every event (feedback without its texts), page after page.
    let nodes = whole_feed(&world, &analyst, 4, json!({})).await;
    assert_eq!(cursors(&nodes), stored);
    assert_strictly_increasing(&cursors(&nodes));
    for node in &nodes {
        let t = node["envelope"]["eventType"].as_str().unwrap();
        assert_eq!(node["__typename"], format!("{t}Event"));
        assert_eq!(node["envelope"]["actorRole"], "admin");
    }

    // A page from the start has no previous page; one after a cursor has.
    let page = feed(&world, &analyst, json!({"first": 2})).await;
    assert_eq!(page["pageInfo"]["hasPreviousPage"], false);
    assert_eq!(page["pageInfo"]["startCursor"], stored[0].as_str());
    let next = feed(&world, &analyst, json!({"first": 2, "after": page["pageInfo"]["endCursor"]})).await;
    assert_eq!(next["pageInfo"]["hasPreviousPage"], true);
    assert_eq!(next["edges"][0]["cursor"], stored[2].as_str());

    // After the last event: an empty page, and a null endCursor.
    let last = feed(&world, &analyst, json!({"after": stored.last().unwrap()})).await;
    assert_eq!(last["edges"], json!([]));
    assert_eq!(last["pageInfo"]["hasNextPage"], false);
    assert_eq!(last["pageInfo"]["endCursor"], Value::Null);

    // Admins page the same log, without the feedback not shared with them:
    // pages stay full even where hidden events are skipped.
    let admin = principal(&[Role::Admin], "admin-1");
    let nodes = whole_feed(&world, &admin, 3, json!({})).await;
    let feedback: Vec<&Value> = nodes.iter().filter(|n| n["__typename"] == "FeedbackGivenEvent").collect();
    assert_eq!(feedback.len(), 1);
    assert_eq!(feedback[0]["visibility"], "COORDINATORS");
    assert_eq!(feedback[0]["strengths"], "For the coordinators");
    assert_eq!(nodes.len(), stored.len() - 2);
    assert_strictly_increasing(&cursors(&nodes));
    world.finish().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn feed_filters_by_type_and_stream(pool: PgPool) {
    let world = World::new(pool).await;
    let admin = principal(&[Role::Admin], "admin-1");

    let formed = whole_feed(&world, &admin, 10, json!({"types": ["PairFormed"]})).await;
    assert_eq!(formed.len(), 2);
    assert!(formed.iter().all(|n| n["__typename"] == "PairFormedEvent"));
    assert_eq!(formed[0]["pairId"], world.pair_a.to_string());
    assert_eq!(formed[0]["memberIds"], json!([world.people[0].to_string(), world.people[1].to_string()]));

    let pair_a = world.pair_a.to_string();
    let stream = whole_feed(&world, &admin, 2, json!({"stream": pair_a})).await;
    assert!(stream.iter().all(|n| n["envelope"]["streamId"] == pair_a.as_str()));
    assert!(stream.iter().all(|n| n["envelope"]["streamType"] == "PAIR"));
    let versions: Vec<i64> = stream.iter().map(|n| n["envelope"]["streamVersion"].as_i64().unwrap()).collect();
    // Versions 3 and 4 are feedback shared with Bob and private to Ada,
    // which admins do not get; 5 is shared with coordinators.
    assert_eq!(versions, vec![1, 2, 5, 6]);

    let both = whole_feed(&world, &admin, 10, json!({"stream": pair_a, "types": ["SessionHeld", "GoalSet"]})).await;
    let types: Vec<&str> = both.iter().map(|n| n["__typename"].as_str().unwrap()).collect();
    assert_eq!(types, ["SessionHeldEvent", "GoalSetEvent"]);
    assert_eq!(both[0]["notes"], "Our secret notes");
    assert_eq!(both[1]["title"], "Speak up in planning");
    world.finish().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn feed_refuses_bad_input_with_the_field(pool: PgPool) {
    let world = World::new(pool).await;
    let admin = principal(&[Role::Admin], "admin-1");
    let max = world.state().limits.max_page_size;
    for (variables, field) in [
        (json!({"after": "garbage"}), "after"),
        (json!({"after": "12-"}), "after"),
        (json!({"after": "-1-5"}), "after"),
        (json!({"first": max + 1}), "first"),
        (json!({"first": -1}), "first"),
        (json!({"types": ["PairFormed", "NoSuchEvent"]}), "types"),
        (json!({"types": []}), "types"),
        (json!({"stream": "not-a-uuid"}), "streamId"),
    ] {
        let response =
            to_json(&world.schema.execute(request(&feed_query(), variables.clone(), Some(admin.clone()))).await);
        assert_eq!(error_code(&response), "BAD_USER_INPUT", "{variables}: {response:#}");
        assert_eq!(response["errors"][0]["extensions"]["field"], field, "{variables}: {response:#}");
        assert_eq!(response["data"], Value::Null);
    }
    // `first: maxPageSize` is fine; 0 gives an empty page that still says more exists.
    let page = feed(&world, &admin, json!({"first": 0})).await;
    assert_eq!(page["edges"], json!([]));
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    feed(&world, &admin, json!({"first": max})).await;
    world.finish().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn feed_access_depends_on_the_role(pool: PgPool) {
    let world = World::new(pool).await;
    let query = feed_query();

    let anonymous = to_json(&world.schema.execute(request(&query, json!({}), None)).await);
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
    for viewer in [participant(world.people[0]), principal(&[Role::Coordinator], "coord-1")] {
        let response = to_json(&world.schema.execute(request(&query, json!({}), Some(viewer))).await);
        assert_eq!(error_code(&response), "FORBIDDEN");
    }

    // Integrators: person streams only, with the personal data they sync.
    let integrator = principal(&[Role::Integrator], "hris-sync");
    let nodes = whole_feed(&world, &integrator, 50, json!({})).await;
    assert_eq!(nodes.len(), 4);
    assert!(nodes.iter().all(|n| n["envelope"]["streamType"] == "PERSON"));
    assert_eq!(nodes[0]["name"], "Ada Lovelace");
    assert_eq!(nodes[0]["email"], "ada.lovelace@example.com");
    assert_eq!(nodes[0]["envelope"]["redactedFields"], json!([]));
    // Even when they ask for another stream.
    let other = whole_feed(&world, &integrator, 50, json!({"stream": world.pair_a.to_string()})).await;
    assert!(other.is_empty());

    // Analysts: pseudonymous. No names, e-mails, external ids or locations;
    // org facts stay; feedback ratings without texts; no notes or goal texts.
    let analyst = principal(&[Role::Analyst], "analyst-1");
    let nodes = whole_feed(&world, &analyst, 50, json!({})).await;
    let registered: Vec<&Value> = nodes.iter().filter(|n| n["__typename"] == "PersonRegisteredEvent").collect();
    assert_eq!(registered.len(), 4);
    for n in &registered {
        for field in ["name", "email", "externalId", "location"] {
            assert_eq!(n[field], Value::Null, "{field} in {n:#}");
        }
        assert_eq!(n["department"], "Engineering");
        assert_eq!(n["level"], 3);
        assert_eq!(n["envelope"]["redactedFields"], json!(["externalId", "name", "email", "location"]));
    }
    let feedback: Vec<&Value> = nodes.iter().filter(|n| n["__typename"] == "FeedbackGivenEvent").collect();
    assert_eq!(feedback.len(), 3);
    for n in &feedback {
        assert_eq!(n["strengths"], Value::Null);
        assert_eq!(n["improvements"], Value::Null);
        assert_eq!(n["ratings"]["empathy"], 4);
        assert_eq!(n["envelope"]["redactedFields"], json!(["strengths", "improvements"]));
    }
    let held = nodes.iter().find(|n| n["__typename"] == "SessionHeldEvent").unwrap();
    assert_eq!(held["notes"], Value::Null);
    assert_eq!(held["focus"], "Giving feedback");
    let goal = nodes.iter().find(|n| n["__typename"] == "GoalSetEvent").unwrap();
    assert_eq!(goal["title"], Value::Null);
    assert_eq!(goal["description"], Value::Null);
    assert_eq!(goal["ownerId"], world.people[0].to_string());
    let text = serde_json::to_string(&nodes).unwrap();
    for secret in ["Lovelace", "example.com", "Lisbon", "Shared with Bob", "secret notes", "Speak up"] {
        assert!(!text.contains(secret), "analysts saw {secret:?}");
    }
    world.finish().await;
}

// ---- subscriptions ---------------------------------------------------------

/// A subscription's responses, as JSON.
fn subscribe(
    schema: &TandemSchema,
    query: &str,
    variables: Value,
    viewer: Principal,
) -> impl Stream<Item = Value> + Unpin + use<> {
    schema.execute_stream(request(query, variables, Some(viewer))).map(|r| to_json(&r)).boxed()
}

fn subscription(field: &str, arguments: &str, parameters: &str) -> String {
    format!("subscription({parameters}) {{ {field}({arguments}) {{ cursor node {{ {} }} }} }} {ENVELOPE}", node())
}

/// The next edge of `field`, failing on an error or after a few seconds.
async fn next_edge(stream: &mut (impl Stream<Item = Value> + Unpin), field: &str) -> Value {
    let response = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap_or_else(|_| panic!("no {field} event within 10 s"))
        .unwrap_or_else(|| panic!("{field} ended"));
    assert!(response.get("errors").is_none(), "{response:#}");
    response["data"][field].clone()
}

/// Takes `n` edges of `field`.
async fn take_edges(stream: &mut (impl Stream<Item = Value> + Unpin), field: &str, n: usize) -> Vec<Value> {
    let mut edges = Vec::with_capacity(n);
    for _ in 0..n {
        edges.push(next_edge(stream, field).await);
    }
    edges
}

/// Asserts that nothing more arrives for a moment.
async fn assert_quiet(stream: &mut (impl Stream<Item = Value> + Unpin)) {
    if let Ok(extra) = tokio::time::timeout(Duration::from_millis(400), stream.next()).await {
        panic!("unexpected extra item: {extra:#?}");
    }
}

fn edge_cursors(edges: &[Value]) -> Vec<String> {
    edges.iter().map(|e| e["cursor"].as_str().unwrap().to_owned()).collect()
}

/// The first response of a subscription that is refused.
async fn refusal(stream: &mut (impl Stream<Item = Value> + Unpin)) -> String {
    let response = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.unwrap().unwrap();
    error_code(&response)
}

#[sqlx::test(migrations = "../../migrations")]
async fn catch_up_then_live_has_no_gap_and_no_duplicate(pool: PgPool) {
    let world = World::new(pool).await;
    let admin = principal(&[Role::Admin], "admin-1");
    let (ada, cy) = (world.people[0], world.people[2]);
    let pair_filter = ReadFilter { stream_id: Some(world.pair_a.as_uuid()), ..ReadFilter::default() };
    // Resume after the pair's first event (PairFormed).
    let after = world.stored_cursors(pair_filter.clone()).await[0].clone();

    // Appends to the pair (and to other streams) keep coming while the
    // subscription catches up and switches to live.
    const SESSIONS: usize = 40;
    let writer = {
        let state = world.state().clone();
        let (pair_a, pair_b) = (world.pair_a, world.pair_b);
        tokio::spawn(async move {
            let mut last = Cursor::START;
            for n in 0..SESSIONS {
                let (pair, by) = if n % 3 == 0 { (pair_b, cy) } else { (pair_a, ada) };
                let command = Command::Pair(PairCommand::ScheduleSession {
                    pair_id: pair,
                    session_id: SessionId::new(),
                    by,
                    scheduled_for: Utc::now(),
                    focus: None,
                });
                last = state.commands.handle(command, &fixtures::admin()).await.unwrap().position;
            }
            last
        })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    let query = subscription("pairEvents", "pairId: $pair, after: $after", "$pair: ID!, $after: String");
    let mut stream =
        subscribe(&world.schema, &query, json!({"pair": world.pair_a.to_string(), "after": after}), admin.clone());
    let first = next_edge(&mut stream, "pairEvents").await;
    settle_at(&world.state().store, writer.await.unwrap()).await;

    // Admins get the pair's events but the feedback not shared with coordinators.
    let after_cursor: Cursor = after.parse().unwrap();
    let expected: Vec<String> = world
        .stored(pair_filter)
        .await
        .iter()
        .filter(|e| e.cursor() > after_cursor)
        .filter(|e| !(e.event_type == "FeedbackGiven" && e.stream_version != 5))
        .map(|e| e.cursor().to_string())
        .collect();
    assert_eq!(expected.len(), 3 + (0..SESSIONS).filter(|n| n % 3 != 0).count());
    let mut edges = vec![first];
    edges.extend(take_edges(&mut stream, "pairEvents", expected.len() - 1).await);
    let delivered = edge_cursors(&edges);
    assert_strictly_increasing(&delivered);
    assert_eq!(delivered, expected);
    assert!(edges.iter().all(|e| e["node"]["envelope"]["streamId"] == world.pair_a.to_string()));
    assert_quiet(&mut stream).await;

    // Live events keep coming after the switch.
    world.hold(world.pair_a, ada, "Later notes").await;
    let live = next_edge(&mut stream, "pairEvents").await;
    assert_eq!(live["node"]["__typename"], "SessionHeldEvent");
    assert_eq!(live["node"]["notes"], "Later notes");
    assert!(live["cursor"].as_str().unwrap().parse::<Cursor>().unwrap() > delivered.last().unwrap().parse().unwrap());
    world.finish().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_lagging_subscriber_catches_up_from_the_store(pool: PgPool) {
    let world = World::with_read_models(pool).await;
    // A hub that buffers only two events per subscriber.
    let shutdown = CancellationToken::new();
    let mut state = world.state().clone();
    state.hub = EventHub::with_capacity(state.store.clone(), shutdown.clone(), 2);
    let schema = schema::build(state.clone());
    let admin = principal(&[Role::Admin], "admin-1");
    let query = subscription("programEvents", "programId: $program", "$program: ID!");
    let mut stream = subscribe(&schema, &query, json!({"program": world.program.to_string()}), admin);
    // Start it (live from now), then let events pile up unread.
    assert!(tokio::time::timeout(Duration::from_millis(300), stream.next()).await.is_err());
    assert_eq!(state.hub.open_subscriptions(), 1);
    let start = state.hub.cursor().unwrap();
    for n in 0..12 {
        world.retitle(world.people[n % 4], n).await;
        world.hold(world.pair_b, world.people[2], "Notes").await;
    }
    world.settle().await;
    let expected: Vec<String> = world
        .stored(ReadFilter::default())
        .await
        .iter()
        .filter(|e| e.cursor() > start && e.stream_type == "pair")
        .map(|e| e.cursor().to_string())
        .collect();
    assert_eq!(expected.len(), 12);
    let edges = take_edges(&mut stream, "programEvents", expected.len()).await;
    assert_eq!(edge_cursors(&edges), expected);
    assert_quiet(&mut stream).await;
    drop(stream);
    assert_eq!(state.hub.open_subscriptions(), 0);
    shutdown.cancel();
    world.finish().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn participants_follow_only_their_pairs_and_readable_feedback(pool: PgPool) {
    let world = World::new(pool).await;
    let (ada, bob, cy) = (world.people[0], world.people[1], world.people[2]);
    let query = subscription("pairEvents", "pairId: $pair, after: $after", "$pair: ID!, $after: String");
    let pair_a = world.pair_a.to_string();

    // Not a member: FORBIDDEN, whether or not the pair exists.
    let mut stream = subscribe(&world.schema, &query, json!({"pair": pair_a, "after": "0-0"}), participant(cy));
    assert_eq!(refusal(&mut stream).await, "FORBIDDEN");
    let mut stream = subscribe(&world.schema, &query, json!({"pair": PairId::new().to_string()}), participant(cy));
    assert_eq!(refusal(&mut stream).await, "FORBIDDEN");
    // Garbage cursor: BAD_USER_INPUT, before anything else.
    let mut stream = subscribe(&world.schema, &query, json!({"pair": pair_a, "after": "x"}), participant(bob));
    assert_eq!(refusal(&mut stream).await, "BAD_USER_INPUT");
    // Integrators may not follow pairs at all.
    let mut stream = subscribe(&world.schema, &query, json!({"pair": pair_a}), principal(&[Role::Integrator], "hris"));
    assert_eq!(refusal(&mut stream).await, "FORBIDDEN");

    // Bob, the recipient: the feedback shared with him, not Ada's private note.
    let pair_events =
        world.stored(ReadFilter { stream_id: Some(world.pair_a.as_uuid()), ..ReadFilter::default() }).await;
    assert_eq!(pair_events.len(), 6);
    let mut stream = subscribe(&world.schema, &query, json!({"pair": pair_a, "after": "0-0"}), participant(bob));
    let edges = take_edges(&mut stream, "pairEvents", 5).await;
    assert_quiet(&mut stream).await;
    let feedback: Vec<&Value> =
        edges.iter().map(|e| &e["node"]).filter(|n| n["__typename"] == "FeedbackGivenEvent").collect();
    let texts: Vec<&str> = feedback.iter().map(|n| n["strengths"].as_str().unwrap()).collect();
    assert_eq!(texts, ["Shared with Bob", "For the coordinators"]);
    let held = edges.iter().find(|e| e["node"]["__typename"] == "SessionHeldEvent").unwrap();
    assert_eq!(held["node"]["notes"], "Our secret notes", "members read their session notes");
    let goal = edges.iter().find(|e| e["node"]["__typename"] == "GoalSetEvent").unwrap();
    assert_eq!(goal["node"]["title"], "Speak up in planning");

    // Ada gets what she wrote, not Bob's note for the coordinators; live, a
    // new private note reaches her only.
    let mut ada_stream = subscribe(&world.schema, &query, json!({"pair": pair_a, "after": "0-0"}), participant(ada));
    let edges = take_edges(&mut ada_stream, "pairEvents", 5).await;
    let expected: Vec<String> =
        pair_events.iter().filter(|e| e.stream_version != 5).map(|e| e.cursor().to_string()).collect();
    assert_eq!(edge_cursors(&edges), expected);
    world.feedback(world.pair_a, ada, bob, Visibility::Private, "Another private note").await;
    world.feedback(world.pair_a, ada, bob, Visibility::RecipientAndCoordinators, "For everyone").await;
    let to_ada = take_edges(&mut ada_stream, "pairEvents", 2).await;
    assert_eq!(to_ada[0]["node"]["strengths"], "Another private note");
    assert_eq!(to_ada[1]["node"]["strengths"], "For everyone");
    let to_bob = next_edge(&mut stream, "pairEvents").await;
    assert_eq!(to_bob["node"]["strengths"], "For everyone");
    assert_quiet(&mut stream).await;

    // Bob's own events, resumed after his pair's formation; with no read
    // model running, the pair is learnt from the log itself.
    let my = subscription("myEvents", "after: $after", "$after: String");
    let formed = pair_events[0].cursor().to_string();
    let mut mine = subscribe(&world.schema, &my, json!({"after": formed}), participant(bob));
    let edges = take_edges(&mut mine, "myEvents", 5).await;
    let types: Vec<&str> = edges.iter().map(|e| e["node"]["__typename"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["SessionHeldEvent", "FeedbackGivenEvent", "FeedbackGivenEvent", "GoalSetEvent", "FeedbackGivenEvent"]
    );
    let texts: Vec<&Value> = edges.iter().map(|e| &e["node"]["strengths"]).filter(|t| !t.is_null()).collect();
    assert_eq!(texts, [&json!("Shared with Bob"), &json!("For the coordinators"), &json!("For everyone")]);
    assert_quiet(&mut mine).await;
    world.finish().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn my_events_follow_new_pairs_and_own_enrolments(pool: PgPool) {
    let world = World::with_read_models(pool).await;
    let (ada, cy) = (world.people[0], world.people[2]);
    let query = subscription("myEvents", "after: $after", "$after: String");
    let mut stream = subscribe(&world.schema, &query, json!({"after": "0-0"}), participant(cy));
    // Catch-up: Cy's registration, enrolment, pair B's formation; nothing of pair A.
    let edges = take_edges(&mut stream, "myEvents", 3).await;
    let types: Vec<&str> = edges.iter().map(|e| e["node"]["__typename"].as_str().unwrap()).collect();
    assert_eq!(types, ["PersonRegisteredEvent", "ParticipantEnrolledEvent", "PairFormedEvent"]);
    assert_eq!(edges[0]["node"]["name"], "Cy Young", "their own personal data");
    assert_quiet(&mut stream).await;

    // A second program: Cy enrols and forms a pair with Ada while subscribed.
    let second = ProgramId::new();
    let pair_c = PairId::new();
    world.launch(second).await;
    world.enrol(second, cy).await;
    world.enrol(second, ada).await;
    world.form(pair_c, second, &[cy, ada]).await;
    world.hold(pair_c, ada, "Circle notes").await;
    world.hold(world.pair_a, ada, "Not Cy's").await;
    let edges = take_edges(&mut stream, "myEvents", 3).await;
    let types: Vec<&str> = edges.iter().map(|e| e["node"]["__typename"].as_str().unwrap()).collect();
    assert_eq!(types, ["ParticipantEnrolledEvent", "PairFormedEvent", "SessionHeldEvent"]);
    assert_eq!(edges[1]["node"]["pairId"], pair_c.to_string());
    assert_eq!(edges[2]["node"]["notes"], "Circle notes");
    assert_quiet(&mut stream).await;

    // Resuming from the last cursor delivers nothing twice.
    let mut resumed = subscribe(&world.schema, &query, json!({"after": edges[2]["cursor"]}), participant(cy));
    world.hold(pair_c, cy, "After the resume").await;
    let next = next_edge(&mut resumed, "myEvents").await;
    assert_eq!(next["node"]["notes"], "After the resume");

    // A caller who is not a person: the subscription completes at once.
    let mut none = subscribe(&world.schema, &query, json!({}), principal(&[Role::Integrator], "hris"));
    assert!(tokio::time::timeout(Duration::from_secs(5), none.next()).await.unwrap().is_none());
    world.finish().await;
}
