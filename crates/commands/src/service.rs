//! [`CommandService`]: the retry loop around one attempt, and the planning of
//! each kind of command (what to lock and load, what context to gather, what
//! to write).

use std::fmt::Write as _;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::sync::{Arc, OnceLock};
use tandem_domain::event::{DomainEvent, StreamType};
use tandem_domain::pair::{self, PairCommand, PairContext, PersonFacts};
use tandem_domain::person::{self, ManagerFacts, PersonCommand, PersonContext};
use tandem_domain::program::{self, ParticipantFacts, ProgramCommand, ProgramContext};
use tandem_domain::values::{DissolveReason, LongText, MAX_CIRCLE_SIZE};
use tandem_domain::{PairId, PersonId, ProgramId};
use tandem_store::{
    Actor, Cursor, EventStore, ExpectedVersion, Metadata, RecordedEvent, StoreError, idempotency_lookup_or_lock,
};
use uuid::Uuid;

use crate::batch::{Group, Job, Outcome, Prepared};
use crate::error::CommandError;
use crate::unit::{Key, Lock, StateCache, Unit};

/// Attempts per command before a persistent conflict is reported.
pub const MAX_ATTEMPTS: usize = 8;

/// Longest accepted idempotency key, in bytes.
const MAX_KEY_LEN: usize = 200;

/// Any command of the domain.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Person(PersonCommand),
    Program(ProgramCommand),
    Pair(PairCommand),
}

impl Command {
    /// The command's name, for logs and metrics.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Person(c) => match c {
                PersonCommand::Register(_) => "RegisterPerson",
                PersonCommand::Update(_) => "UpdatePerson",
                PersonCommand::RecordLeft { .. } => "RecordPersonLeft",
                PersonCommand::Rejoin { .. } => "RejoinPerson",
                PersonCommand::Erase { .. } => "ErasePerson",
            },
            Self::Program(c) => match c {
                ProgramCommand::Launch(_) => "LaunchProgram",
                ProgramCommand::Update { .. } => "UpdateProgram",
                ProgramCommand::Enrol(_) => "EnrolParticipant",
                ProgramCommand::Withdraw { .. } => "WithdrawParticipant",
                ProgramCommand::Close { .. } => "CloseProgram",
            },
            Self::Pair(c) => match c {
                PairCommand::Form(_) => "FormPair",
                PairCommand::ScheduleSession { .. } => "ScheduleSession",
                PairCommand::HoldSession { .. } => "HoldSession",
                PairCommand::CancelSession { .. } => "CancelSession",
                PairCommand::GiveFeedback { .. } => "GiveFeedback",
                PairCommand::SetGoal { .. } => "SetGoal",
                PairCommand::RecordGoalProgress { .. } => "RecordGoalProgress",
                PairCommand::CompleteGoal { .. } => "CompleteGoal",
                PairCommand::AbandonGoal { .. } => "AbandonGoal",
                PairCommand::Pause { .. } => "PausePair",
                PairCommand::Resume { .. } => "ResumePair",
                PairCommand::Dissolve { .. } => "DissolvePair",
            },
        }
    }
}

/// Who sends a command and how it relates to others.
#[derive(Clone, Debug)]
pub struct CommandMeta {
    pub actor: Actor,
    /// The same key again returns the first result and appends nothing.
    pub idempotency_key: Option<String>,
    /// What identifies "the same request" for the key. A transport sets it
    /// from the client's input (before it mints ids); by default it is a
    /// digest of the command itself.
    pub request_fingerprint: Option<String>,
    pub correlation_id: Option<Uuid>,
    pub causation_id: Option<Uuid>,
    pub trace_id: Option<String>,
}

impl CommandMeta {
    /// Metadata for `actor` with nothing else set.
    #[must_use]
    pub fn new(actor: Actor) -> Self {
        Self {
            actor,
            idempotency_key: None,
            request_fingerprint: None,
            correlation_id: None,
            causation_id: None,
            trace_id: None,
        }
    }

    /// Sets the idempotency key.
    #[must_use]
    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }
}

/// What a command committed.
#[derive(Clone, Debug, PartialEq)]
pub struct Committed {
    /// Every event the command appended, over all streams, in log order.
    /// Empty when the command changed nothing (e.g. an update to the same
    /// values).
    pub events: Vec<RecordedEvent>,
    /// Wait until readers reach this position to see the command's effects.
    pub position: Cursor,
    /// Whether this is the first result of an earlier call with the same
    /// idempotency key.
    pub replayed: bool,
}

/// The idempotency record's `result`: where the first call's events are.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredResult {
    pub position: String,
    pub streams: Vec<StoredRange>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredRange {
    pub stream_id: Uuid,
    pub from_version: i32,
    pub to_version: i32,
}

/// A write the plan will make to one stream.
pub(crate) struct Write {
    pub stream_id: Uuid,
    pub stream_type: StreamType,
    pub expected: ExpectedVersion,
    pub events: Vec<DomainEvent>,
}

/// A guard-table change the plan will make.
pub(crate) enum Guard {
    Memberships {
        program: ProgramId,
        pair: PairId,
        members: Vec<PersonId>,
    },
    /// Ends the current memberships of a pair (of these members in this program).
    Release {
        pair: PairId,
        program: Option<ProgramId>,
        members: Vec<PersonId>,
    },
    ExternalId {
        external_id: String,
        person: PersonId,
    },
}

#[derive(Default)]
pub(crate) struct Plan {
    pub writes: Vec<Write>,
    pub guards: Vec<Guard>,
}

impl Plan {
    /// Everything committing the plan changes, for the batch's selection.
    pub fn keys(&self, idempotency_key: Option<&str>) -> Vec<Key> {
        let mut keys: Vec<Key> = self.writes.iter().map(|w| Key::Stream(w.stream_id)).collect();
        for g in &self.guards {
            match g {
                Guard::Memberships { program, members, .. }
                | Guard::Release { program: Some(program), members, .. } => {
                    keys.push(Key::ProgramMemberships(*program));
                    keys.extend(members.iter().map(|m| Key::Memberships(*m)));
                }
                Guard::Release { program: None, members, .. } => {
                    keys.extend(members.iter().map(|m| Key::Memberships(*m)));
                }
                Guard::ExternalId { external_id, .. } => keys.push(Key::ExternalId(external_id.clone())),
            }
        }
        if let Some(k) = idempotency_key {
            keys.push(Key::Idempotency(k.to_owned()));
        }
        keys
    }

    fn write(&mut self, stream_id: Uuid, stream_type: StreamType, expected: ExpectedVersion, events: Vec<DomainEvent>) {
        if !events.is_empty() {
            self.writes.push(Write { stream_id, stream_type, expected, events });
        }
    }
}

/// Writer tasks of a service by default (see [`CommandService::with_group_commit`]).
pub const DEFAULT_WRITERS: usize = 2;

/// Stream states kept between commands (see `unit::StateCache`).
const STATE_CACHE_CAPACITY: usize = 20_000;

/// Most commands in one group commit by default.
pub const DEFAULT_MAX_BATCH: usize = 64;

/// Handles commands against the event store.
#[derive(Clone)]
pub struct CommandService {
    store: EventStore,
    writers: usize,
    max_batch: usize,
    /// Started on first use, on the runtime of the first command.
    group: Arc<OnceLock<Group>>,
    cache: Arc<StateCache>,
}

impl std::fmt::Debug for CommandService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandService")
            .field("store", &self.store)
            .field("writers", &self.writers)
            .field("max_batch", &self.max_batch)
            .finish_non_exhaustive()
    }
}

impl CommandService {
    /// A service over `store` (whose upcaster should be [`crate::DomainUpcaster`]).
    #[must_use]
    pub fn new(store: EventStore) -> Self {
        Self {
            store,
            writers: DEFAULT_WRITERS,
            max_batch: DEFAULT_MAX_BATCH,
            group: Arc::new(OnceLock::new()),
            cache: Arc::new(StateCache::new(STATE_CACHE_CAPACITY)),
        }
    }

    /// The same service with `writers` writer tasks, each committing up to
    /// `max_batch` concurrent commands in one transaction (see the `batch`
    /// module). `max_batch = 1` gives one transaction per command.
    #[must_use]
    pub fn with_group_commit(self, writers: usize, max_batch: usize) -> Self {
        Self { writers: writers.max(1), max_batch: max_batch.max(1), group: Arc::new(OnceLock::new()), ..self }
    }

    /// A service over `pool` with the domain's upcaster.
    #[must_use]
    pub fn from_pool(pool: PgPool) -> Self {
        Self::new(EventStore::with_upcaster(pool, std::sync::Arc::new(crate::DomainUpcaster)))
    }

    /// The store the service writes to.
    #[must_use]
    pub fn store(&self) -> &EventStore {
        &self.store
    }

    /// Decides and commits `command` on behalf of `meta.actor`.
    #[tracing::instrument(
        name = "command",
        skip_all,
        fields(command = command.name(), actor = %meta.actor.subject, role = %meta.actor.role, attempts)
    )]
    pub async fn handle(&self, command: Command, meta: &CommandMeta) -> Result<Committed, CommandError> {
        if let Some(key) = &meta.idempotency_key
            && (key.is_empty() || key.len() > MAX_KEY_LEN)
        {
            return Err(CommandError::InvalidIdempotencyKey);
        }
        // Only a keyed request is ever compared with another.
        let fingerprint = match (&meta.idempotency_key, &meta.request_fingerprint) {
            (None, _) => String::new(),
            (Some(_), Some(f)) => f.clone(),
            (Some(_), None) => digest(&format!("{command:?}")),
        };
        let metadata = Metadata {
            actor: meta.actor.clone(),
            correlation_id: meta.correlation_id.unwrap_or_else(Uuid::now_v7),
            causation_id: meta.causation_id,
            idempotency_key: meta.idempotency_key.clone(),
            trace_id: meta.trace_id.clone(),
        };
        for attempt in 1..=MAX_ATTEMPTS {
            tracing::Span::current().record("attempts", attempt);
            match self.attempt(&command, meta, &fingerprint, &metadata).await {
                Err(e) if retryable(&e) => {
                    tracing::debug!(attempt, error = %e, "command lost a race; re-deciding");
                    // Spread racing retries apart a little.
                    let jitter = u64::from(Uuid::now_v7().as_u128().to_le_bytes()[0] % 8);
                    tokio::time::sleep(std::time::Duration::from_millis(jitter * attempt as u64)).await;
                }
                other => return other,
            }
        }
        Err(CommandError::Conflict { attempts: MAX_ATTEMPTS })
    }

    /// One attempt: the command goes to a writer, which plans and commits it,
    /// alone or with others (see the `batch` module).
    async fn attempt(
        &self,
        command: &Command,
        meta: &CommandMeta,
        fingerprint: &str,
        metadata: &Metadata,
    ) -> Result<Committed, CommandError> {
        let group = self
            .group
            .get_or_init(|| Group::start(self.store.clone(), self.cache.clone(), self.writers, self.max_batch));
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Job {
            command: command.clone(),
            idempotency_key: meta.idempotency_key.clone(),
            fingerprint: fingerprint.to_owned(),
            metadata: metadata.clone(),
            reply,
        };
        let stopped = || CommandError::Store(StoreError::Database(sqlx::Error::WorkerCrashed));
        group.submit(job).await.ok_or_else(stopped)?;
        match answer.await.map_err(|_| stopped())?? {
            Outcome::Committed(c) => Ok(c),
            Outcome::Replay(stored) => self.replay(stored).await,
        }
    }

    /// Re-reads the events of a first call from its idempotency record.
    async fn replay(&self, result: serde_json::Value) -> Result<Committed, CommandError> {
        let stored: StoredResult = serde_json::from_value(result)
            .map_err(|e| CommandError::Store(StoreError::Decode { position: 0, reason: e.to_string() }))?;
        let position: Cursor = stored.position.parse()?;
        let mut events = Vec::new();
        for r in stored.streams {
            let read = self.store.read_stream_from(r.stream_id, r.from_version - 1).await?;
            events.extend(read.into_iter().take_while(|e| e.stream_version <= r.to_version));
        }
        events.sort_by_key(RecordedEvent::cursor);
        Ok(Committed { events, position, replayed: true })
    }
}

/// Plans one command inside its batch: the idempotency lookup, then the
/// command's own planning.
pub(crate) async fn prepare(
    unit: &mut Unit,
    command: Command,
    idempotency_key: Option<String>,
    fingerprint: String,
) -> Result<Prepared, CommandError> {
    if let Some(key) = idempotency_key {
        unit.touched.insert(Key::Idempotency(key.clone()));
        let found = unit
            .io
            .run(move |conn| Box::pin(async move { Ok(idempotency_lookup_or_lock(conn, &key, &fingerprint).await?) }))
            .await?;
        if let Some(record) = found {
            return Ok(Prepared::Replay(record.result));
        }
    }
    Ok(Prepared::Plan(match command {
        Command::Person(c) => plan_person(unit, c).await?,
        Command::Program(c) => plan_program(unit, c).await?,
        Command::Pair(c) => plan_pair(unit, c).await?,
    }))
}

fn digest(s: &str) -> String {
    let hash = Sha256::digest(s.as_bytes());
    let mut out = String::with_capacity(64);
    for b in hash {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Whether an attempt failed only because a concurrent command won a race.
fn retryable(e: &CommandError) -> bool {
    match e {
        CommandError::Store(StoreError::Conflict { .. } | StoreError::IdempotencyRace { .. }) => true,
        CommandError::Store(StoreError::Database(db)) => db
            .as_database_error()
            .and_then(|d| d.code())
            // unique violation on a guard table, deadlock, serialization failure
            .is_some_and(|c| c == "23505" || c == "40P01" || c == "40001"),
        _ => false,
    }
}

fn today() -> chrono::NaiveDate {
    Utc::now().date_naive()
}

async fn plan_person(unit: &mut Unit, command: PersonCommand) -> Result<Plan, CommandError> {
    let id = command.person_id();
    let target = unit.person(id, Lock::Exclusive).await?;
    let mut ctx = PersonContext::default();
    if let (Some(m), Some(date)) = (command.new_manager(), command.effective_on())
        && m != id
    {
        let manager = unit.person(m, Lock::Shared).await?;
        let chain = if manager.state.is_registered() { unit.chain(m, date).await? } else { Vec::new() };
        ctx.manager =
            Some(ManagerFacts { exists: manager.state.is_registered(), left: manager.state.has_left(), chain });
    }
    let mut plan = Plan::default();
    if let PersonCommand::Register(r) = &command {
        ctx.external_id_taken = unit.external_id_taken(r.external_id.as_str(), id).await?;
        plan.guards.push(Guard::ExternalId { external_id: r.external_id.as_str().to_owned(), person: id });
    }
    let cascade = match &command {
        PersonCommand::RecordLeft { left_on, .. } => Some(*left_on),
        PersonCommand::Erase { .. } => Some(today()),
        _ => None,
    };
    let events = person::decide(&target.state, command, &ctx)?;
    let changed = !events.is_empty();
    // The person's own events first, so they precede the dissolutions in the log.
    plan.write(
        id.as_uuid(),
        StreamType::Person,
        target.expected(),
        events.into_iter().map(DomainEvent::Person).collect(),
    );
    if let Some(on) = cascade
        && changed
    {
        // A member who leaves ends their pairs: nothing can happen in them any more.
        for pair_id in unit.pairs_of_person(id).await? {
            let p = unit.pair(pair_id, Lock::Exclusive).await?;
            if let Some(e) = pair::dissolve_for_cleanup(&p.state, DissolveReason::MemberLeft, LongText::default(), on) {
                plan.write(pair_id.as_uuid(), StreamType::Pair, p.expected(), vec![DomainEvent::Pair(e)]);
                plan.guards.push(release(pair_id, &p.state));
            }
        }
    }
    Ok(plan)
}

async fn plan_program(unit: &mut Unit, command: ProgramCommand) -> Result<Plan, CommandError> {
    let id = command.program_id();
    let target = unit.program(id, Lock::Exclusive).await?;
    let mut ctx = ProgramContext::default();
    match &command {
        ProgramCommand::Enrol(c) => {
            let p = unit.person(c.person_id, Lock::Shared).await?;
            ctx.person = Some(ParticipantFacts {
                exists: p.state.is_registered(),
                left: p.state.has_left(),
                erased: p.state.erased,
                in_active_pair: false,
            });
        }
        ProgramCommand::Withdraw { person_id, .. } => {
            let paired = unit.paired_in_program(id, &[*person_id]).await?;
            ctx.person =
                Some(ParticipantFacts { exists: true, in_active_pair: !paired.is_empty(), ..Default::default() });
        }
        _ => {}
    }
    let closing = match &command {
        ProgramCommand::Close { closed_on, .. } => Some(*closed_on),
        _ => None,
    };
    let events = program::decide(&target.state, command, &ctx)?;
    let mut plan = Plan::default();
    plan.write(
        id.as_uuid(),
        StreamType::Program,
        target.expected(),
        events.into_iter().map(DomainEvent::Program).collect(),
    );
    if let Some(on) = closing {
        // Closing a program ends its pairs, so that nothing more happens in them.
        for pair_id in unit.pairs_of_program(id).await? {
            let p = unit.pair(pair_id, Lock::Exclusive).await?;
            if let Some(e) =
                pair::dissolve_for_cleanup(&p.state, DissolveReason::ProgramClosed, LongText::default(), on)
            {
                plan.write(pair_id.as_uuid(), StreamType::Pair, p.expected(), vec![DomainEvent::Pair(e)]);
                plan.guards.push(release(pair_id, &p.state));
            }
        }
    }
    Ok(plan)
}

/// The guard change of a pair that ends.
fn release(pair: PairId, state: &pair::Pair) -> Guard {
    Guard::Release { pair, program: state.program_id, members: state.members.clone() }
}

async fn plan_pair(unit: &mut Unit, command: PairCommand) -> Result<Plan, CommandError> {
    let pair_id = command.pair_id();
    // A pair seen before: lock and load it with its program and members in
    // one round each (the pair first in intent, all in key order).
    let known = unit.cached_pair_streams(pair_id);
    if !known.is_empty() {
        let mut streams = vec![(pair_id.as_uuid(), Lock::Exclusive)];
        streams.extend(known.into_iter().map(|id| (id, Lock::Shared)));
        unit.preload(&streams).await?;
    }
    let target = unit.pair(pair_id, Lock::Exclusive).await?;
    let mut ctx = PairContext::default();
    let mut plan = Plan::default();
    if let PairCommand::Form(f) = &command {
        // An oversized member list is refused by `decide` on its size alone;
        // do not load a hostile number of streams first.
        if f.members.len() <= usize::from(MAX_CIRCLE_SIZE) {
            let mut streams = vec![(f.program_id.as_uuid(), Lock::Shared)];
            streams.extend(f.members.iter().map(|m| (m.as_uuid(), Lock::Shared)));
            unit.preload(&streams).await?;
        }
        ctx.program = unit.program(f.program_id, Lock::Shared).await?.state;
        if f.members.len() <= usize::from(MAX_CIRCLE_SIZE) {
            for m in &f.members {
                let p = unit.person(*m, Lock::Shared).await?;
                let org = p.state.org_on(f.formed_on);
                let chain = if p.state.is_registered() { unit.chain(*m, f.formed_on).await? } else { Vec::new() };
                ctx.people.insert(
                    *m,
                    PersonFacts {
                        exists: p.state.is_registered(),
                        left: p.state.has_left(),
                        erased: p.state.erased,
                        level: org.map(|o| o.level),
                        chain,
                    },
                );
            }
            ctx.already_paired = unit.paired_in_program(f.program_id, &f.members).await?;
        }
        plan.guards.push(Guard::Memberships { program: f.program_id, pair: pair_id, members: f.members.clone() });
    } else {
        // Everything the decision reads, locked in one round and loaded in another.
        let mut streams: Vec<(Uuid, Lock)> =
            target.state.program_id.map(|p| (p.as_uuid(), Lock::Shared)).into_iter().collect();
        streams.extend(target.state.members.iter().map(|m| (m.as_uuid(), Lock::Shared)));
        unit.preload(&streams).await?;
        if let Some(program_id) = target.state.program_id {
            ctx.program = unit.program(program_id, Lock::Shared).await?.state;
        }
        for m in target.state.members.clone() {
            let p = unit.person(m, Lock::Shared).await?;
            ctx.people.insert(
                m,
                PersonFacts {
                    exists: p.state.is_registered(),
                    left: p.state.has_left(),
                    erased: p.state.erased,
                    ..Default::default()
                },
            );
        }
        if matches!(command, PairCommand::Dissolve { .. }) {
            plan.guards.push(release(pair_id, &target.state));
        }
    }
    let events = pair::decide(&target.state, command, &ctx)?;
    if events.is_empty() {
        plan.guards.clear();
    }
    plan.write(
        pair_id.as_uuid(),
        StreamType::Pair,
        target.expected(),
        events.into_iter().map(DomainEvent::Pair).collect(),
    );
    Ok(plan)
}
