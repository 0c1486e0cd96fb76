//! Per-request DataLoaders: every list of children is fetched for all the
//! parents of a level in one query, so a nested query costs one statement
//! per level, not one per row.
//!
//! A [`Loaders`] is built per HTTP request (and per websocket connection),
//! never stored in the schema: loaders must not outlive the caller whose
//! view they serve. They batch but do not cache (async-graphql's default),
//! so a long-lived websocket never sees stale rows.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use chrono::Utc;
use sqlx::PgPool;
use tandem_domain::{GoalId, PairId, PersonId, ProgramId};
use tandem_projections::ProjectionError;
use tandem_projections::queries::{self, PersonView, SessionView};
use tandem_projections::read_models::pairs::{FeedbackRow, GoalProgressRow, GoalRow, PairRow};
use tandem_projections::read_models::programs::{EnrolmentRow, ProgramRow};

/// A loader's error: shared, since one failed batch answers many keys.
pub type LoadError = Arc<ProjectionError>;

/// The loaders of one request.
#[derive(Clone)]
pub struct Loaders {
    pub people: Arc<DataLoader<PeopleLoader>>,
    pub programs: Arc<DataLoader<ProgramsLoader>>,
    pub pairs: Arc<DataLoader<PairsLoader>>,
    pub pairs_of_person: Arc<DataLoader<PairsOfPersonLoader>>,
    pub sessions: Arc<DataLoader<SessionsOfPairLoader>>,
    pub goals: Arc<DataLoader<GoalsOfPairLoader>>,
    pub progress: Arc<DataLoader<ProgressOfGoalLoader>>,
    pub feedback: Arc<DataLoader<FeedbackOfPairLoader>>,
    pub enrolments: Arc<DataLoader<EnrolmentsOfPersonLoader>>,
}

impl std::fmt::Debug for Loaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Loaders")
    }
}

/// How long a loader waits for more keys before it queries. The keys of one
/// level of a query are all asked for within one poll of the executor (a few
/// microseconds), so a short wait still batches them; the library's default
/// of 1 ms was paid once per level of every nested query.
const LOADER_DELAY: std::time::Duration = std::time::Duration::from_micros(100);

impl Loaders {
    /// Fresh loaders over `pool`.
    #[must_use]
    pub fn new(pool: &PgPool) -> Self {
        let p = || pool.clone();
        Self {
            people: Arc::new(DataLoader::new(PeopleLoader(p()), tokio::spawn).delay(LOADER_DELAY)),
            programs: Arc::new(DataLoader::new(ProgramsLoader(p()), tokio::spawn).delay(LOADER_DELAY)),
            pairs: Arc::new(DataLoader::new(PairsLoader(p()), tokio::spawn).delay(LOADER_DELAY)),
            pairs_of_person: Arc::new(DataLoader::new(PairsOfPersonLoader(p()), tokio::spawn).delay(LOADER_DELAY)),
            sessions: Arc::new(DataLoader::new(SessionsOfPairLoader(p()), tokio::spawn).delay(LOADER_DELAY)),
            goals: Arc::new(DataLoader::new(GoalsOfPairLoader(p()), tokio::spawn).delay(LOADER_DELAY)),
            progress: Arc::new(DataLoader::new(ProgressOfGoalLoader(p()), tokio::spawn).delay(LOADER_DELAY)),
            feedback: Arc::new(DataLoader::new(FeedbackOfPairLoader(p()), tokio::spawn).delay(LOADER_DELAY)),
            enrolments: Arc::new(DataLoader::new(EnrolmentsOfPersonLoader(p()), tokio::spawn).delay(LOADER_DELAY)),
        }
    }
}

macro_rules! by_id_loader {
    ($(#[$doc:meta])* $name:ident, $key:ty, $value:ty, |$pool:ident, $keys:ident| $fetch:expr, |$row:ident| $id:expr) => {
        $(#[$doc])*
        pub struct $name(PgPool);

        impl Loader<$key> for $name {
            type Value = $value;
            type Error = LoadError;

            async fn load(&self, $keys: &[$key]) -> Result<HashMap<$key, $value>, LoadError> {
                let $pool = &self.0;
                let rows: Vec<$value> = $fetch.await.map_err(Arc::new)?;
                Ok(rows.into_iter().map(|$row| ($id, $row)).collect())
            }
        }
    };
}

macro_rules! grouped_loader {
    ($(#[$doc:meta])* $name:ident, $key:ty, $value:ty, |$pool:ident, $keys:ident| $fetch:expr) => {
        $(#[$doc])*
        pub struct $name(PgPool);

        impl Loader<$key> for $name {
            type Value = Vec<$value>;
            type Error = LoadError;

            async fn load(&self, $keys: &[$key]) -> Result<HashMap<$key, Vec<$value>>, LoadError> {
                let $pool = &self.0;
                $fetch.await.map_err(Arc::new)
            }
        }
    };
}

by_id_loader!(
    /// People by id, with today's org facts.
    PeopleLoader, PersonId, PersonView,
    |pool, keys| queries::people_by_ids(pool, keys, Utc::now().date_naive()),
    |row| row.person_id
);
by_id_loader!(
    /// Programs by id.
    ProgramsLoader, ProgramId, ProgramRow,
    |pool, keys| queries::programs_by_ids(pool, keys),
    |row| ProgramId::from_uuid(row.program_id)
);
by_id_loader!(
    /// Pairs by id.
    PairsLoader, PairId, PairRow,
    |pool, keys| queries::pairs_by_ids(pool, keys),
    |row| PairId::from_uuid(row.pair_id)
);
grouped_loader!(
    /// The pairs a person is or was in, newest first.
    PairsOfPersonLoader, PersonId, PairRow,
    |pool, keys| queries::pairs_of_people(pool, keys, None)
);
grouped_loader!(
    /// The sessions of a pair.
    SessionsOfPairLoader, PairId, SessionView,
    |pool, keys| queries::sessions_of_pairs(pool, keys)
);
grouped_loader!(
    /// The goals of a pair.
    GoalsOfPairLoader, PairId, GoalRow,
    |pool, keys| queries::goals_of_pairs(pool, keys)
);
grouped_loader!(
    /// The progress entries of a goal.
    ProgressOfGoalLoader, GoalId, GoalProgressRow,
    |pool, keys| queries::goal_progress(pool, keys)
);
grouped_loader!(
    /// All feedback of a pair, unfiltered: callers filter by the policy.
    FeedbackOfPairLoader, PairId, FeedbackRow,
    |pool, keys| queries::feedback_of_pairs(pool, keys)
);
grouped_loader!(
    /// The enrolment periods of a person.
    EnrolmentsOfPersonLoader, PersonId, EnrolmentRow,
    |pool, keys| queries::enrolments_of_people(pool, keys)
);
