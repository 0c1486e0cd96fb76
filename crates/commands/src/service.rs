//! [`CommandService`], the entry point: checks the idempotency key, hands
//! each attempt to the group-commit writers (`batch`), retries an attempt
//! that lost a race, answers a replayed idempotency key from the events of
//! the first call, and counts what it committed (`metrics`).

use std::sync::{Arc, OnceLock};

use sqlx::PgPool;
use tandem_store::{
    Cursor, DomainUpcaster, EventStore, IdempotencyKey, Metadata, RecordedEvent, RequestHash, ServerSecret, StoreError,
};
use uuid::Uuid;

use crate::batch::{Group, Job, Outcome};
use crate::cache::StateCache;
use crate::command::{Command, CommandMeta, Committed};
use crate::error::CommandError;
use crate::io::StoredResult;
use crate::metrics::EventMetrics;

/// Attempts per command before a persistent conflict is reported.
pub const MAX_ATTEMPTS: usize = 8;

/// Longest accepted idempotency key, in bytes.
const MAX_KEY_LEN: usize = 200;

/// Writer tasks of a service by default (see [`CommandService::with_group_commit`]).
pub const DEFAULT_WRITERS: usize = 2;

/// Stream states kept between commands (see `cache::StateCache`).
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
    /// Counts the events committed; nothing until [`CommandService::with_metrics`].
    metrics: EventMetrics,
    /// The key of the idempotency digests (see [`CommandService::with_secret`]).
    secret: ServerSecret,
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
    /// A service over `store` (whose upcaster should be [`DomainUpcaster`]).
    #[must_use]
    pub fn new(store: EventStore) -> Self {
        Self {
            store,
            writers: DEFAULT_WRITERS,
            max_batch: DEFAULT_MAX_BATCH,
            group: Arc::new(OnceLock::new()),
            cache: Arc::new(StateCache::new(STATE_CACHE_CAPACITY)),
            metrics: EventMetrics::default(),
            secret: ServerSecret::generate(),
        }
    }

    /// The same service keying its idempotency records with `secret`.
    ///
    /// Without it the service uses a secret of its own, generated at
    /// start: keys then replay within this process only. Every process
    /// writing to one database must be given the same secret, kept across
    /// restarts, for a retry to be recognised wherever and whenever it
    /// arrives.
    #[must_use]
    pub fn with_secret(self, secret: ServerSecret) -> Self {
        Self { secret, ..self }
    }

    /// The same service counting the events it commits in `registry`, as
    /// [`crate::EVENTS_APPENDED`] by event type. Fails when the registry
    /// already holds a metric of that name (e.g. a second service given the
    /// same registry).
    pub fn with_metrics(self, registry: &prometheus::Registry) -> Result<Self, prometheus::Error> {
        Ok(self.with_event_metrics(EventMetrics::register(registry)?))
    }

    /// The same service counting the events it commits in `metrics`
    /// (shared with every clone of `metrics`).
    #[must_use]
    pub fn with_event_metrics(self, metrics: EventMetrics) -> Self {
        Self { metrics, ..self }
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
        Self::new(EventStore::with_upcaster(pool, Arc::new(DomainUpcaster)))
    }

    /// The server secret keying the idempotency digests (also the root of
    /// other keys derived for one purpose each, e.g. sealing webhook secrets).
    #[must_use]
    pub fn secret(&self) -> &ServerSecret {
        &self.secret
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
        // Only a keyed request is ever compared with another. The key is
        // scoped to the subject who sent it, and neither it nor the request
        // is kept in clear (see `tandem_store::idempotency`).
        let keyed = meta.idempotency_key.as_deref().map(|key| {
            let canonical = match &meta.request_fingerprint {
                Some(f) => f.clone(),
                None => format!("{command:?}"),
            };
            (
                IdempotencyKey::scoped(&self.secret, &meta.actor.subject, key),
                RequestHash::of(&self.secret, canonical.as_bytes()),
            )
        });
        let metadata = Metadata {
            actor: meta.actor.clone(),
            correlation_id: meta.correlation_id.unwrap_or_else(Uuid::now_v7),
            causation_id: meta.causation_id,
            idempotency_key: meta.idempotency_key.clone(),
            trace_id: meta.trace_id.clone(),
        };
        for attempt in 1..=MAX_ATTEMPTS {
            tracing::Span::current().record("attempts", attempt);
            match self.attempt(&command, keyed.as_ref(), &metadata).await {
                Err(e) if retryable(&e) => {
                    tracing::debug!(attempt, error = %e, "command lost a race; re-deciding");
                    // Spread racing retries apart a little.
                    let jitter = u64::from(Uuid::now_v7().as_u128().to_le_bytes()[0] % 8);
                    tokio::time::sleep(std::time::Duration::from_millis(jitter * attempt as u64)).await;
                }
                // The store names the stored digest; the caller knows the key
                // they sent.
                Err(CommandError::IdempotencyKeyReused { .. }) => {
                    return Err(CommandError::IdempotencyKeyReused {
                        key: meta.idempotency_key.clone().unwrap_or_default(),
                    });
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
        keyed: Option<&(IdempotencyKey, RequestHash)>,
        metadata: &Metadata,
    ) -> Result<Committed, CommandError> {
        let group = self
            .group
            .get_or_init(|| Group::start(self.store.clone(), self.cache.clone(), self.writers, self.max_batch));
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Job { command: command.clone(), idempotency: keyed.cloned(), metadata: metadata.clone(), reply };
        let stopped = || CommandError::Store(StoreError::Database(sqlx::Error::WorkerCrashed));
        group.submit(job).await.ok_or_else(stopped)?;
        match answer.await.map_err(|_| stopped())?? {
            Outcome::Committed(c) => {
                // Counted here, once per commit; a replayed key appends
                // nothing and is not counted.
                self.metrics.record(&c.events);
                Ok(c)
            }
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
