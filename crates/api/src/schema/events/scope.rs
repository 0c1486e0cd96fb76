//! Which events a subscription is about: [`Scope`].
//!
//! A pair subscription is one stream. A program's or a person's grows while
//! it runs: a `PairFormed` naming the program (or the person) brings the new
//! pair's stream into it. Pairs formed before the subscription starts come
//! from the read model, whose checkpoint says how far it is complete; the
//! subscription then reads the `PairFormed` events after that checkpoint
//! from the log itself ([`super::stream`]), so a read model that lags never
//! makes it miss a pair.

use std::collections::HashSet;

use tandem_domain::event::StreamType;
use tandem_domain::pair::PairEvent;
use tandem_domain::program::ProgramEvent;
use tandem_domain::{DomainEvent, PersonId, ProgramId};
use tandem_projections::queries;
use tandem_projections::read_models::pairs::NAME as PAIRS_PROJECTION;
use tandem_store::{Cursor, ReadFilter, RecordedEvent};
use uuid::Uuid;

use super::render::decode;
use crate::error::ApiError;

/// The events a subscription delivers (before the visibility rules).
#[derive(Clone, Debug)]
pub(crate) enum Scope {
    /// One pair's stream.
    Pair(Uuid),
    /// A program's stream and the streams of its pairs.
    Program { program: Uuid, pairs: HashSet<Uuid> },
    /// A person's stream, the streams of the pairs they are a member of,
    /// and their own enrolments in and withdrawals from programs.
    Person { person: Uuid, pairs: HashSet<Uuid> },
}

/// The event type that widens program and person scopes.
pub(crate) const PAIR_FORMED: &str = "PairFormed";

impl Scope {
    /// What the store can filter on: a superset of the scope.
    pub fn store_filter(&self) -> ReadFilter {
        match self {
            Self::Pair(pair) => ReadFilter { stream_id: Some(*pair), ..ReadFilter::default() },
            Self::Program { .. } | Self::Person { .. } => ReadFilter::default(),
        }
    }

    /// The pairs in scope so far.
    pub fn pairs(&self) -> HashSet<Uuid> {
        match self {
            Self::Pair(pair) => HashSet::from([*pair]),
            Self::Program { pairs, .. } | Self::Person { pairs, .. } => pairs.clone(),
        }
    }

    /// Considers one event, in log order: widens the scope on a
    /// `PairFormed` that concerns it, and returns the decoded event when it
    /// is in scope. Events of other streams are rejected without decoding.
    pub fn admit(&mut self, rec: &RecordedEvent) -> Result<Option<DomainEvent>, ApiError> {
        let stream = StreamType::parse(&rec.stream_type);
        let admitted = match self {
            Self::Pair(pair) => rec.stream_id == *pair,
            Self::Program { program, pairs } => match stream {
                Some(StreamType::Program) => rec.stream_id == *program,
                Some(StreamType::Pair) if rec.event_type == PAIR_FORMED => {
                    let event = decode(rec)?;
                    if let DomainEvent::Pair(PairEvent::PairFormed(f)) = &event
                        && f.program_id.as_uuid() == *program
                    {
                        pairs.insert(rec.stream_id);
                        return Ok(Some(event));
                    }
                    false
                }
                Some(StreamType::Pair) => pairs.contains(&rec.stream_id),
                Some(StreamType::Person | StreamType::Webhook) | None => false,
            },
            Self::Person { person, pairs } => match stream {
                Some(StreamType::Person) => rec.stream_id == *person,
                Some(StreamType::Pair) if rec.event_type == PAIR_FORMED => {
                    let event = decode(rec)?;
                    if let DomainEvent::Pair(PairEvent::PairFormed(f)) = &event
                        && f.members.iter().any(|m| m.as_uuid() == *person)
                    {
                        pairs.insert(rec.stream_id);
                        return Ok(Some(event));
                    }
                    false
                }
                Some(StreamType::Pair) => pairs.contains(&rec.stream_id),
                Some(StreamType::Program)
                    if matches!(rec.event_type.as_str(), "ParticipantEnrolled" | "ParticipantWithdrew") =>
                {
                    let event = decode(rec)?;
                    let about_them = match &event {
                        DomainEvent::Program(ProgramEvent::ParticipantEnrolled(e)) => e.person_id.as_uuid() == *person,
                        DomainEvent::Program(ProgramEvent::ParticipantWithdrew(e)) => e.person_id.as_uuid() == *person,
                        _ => false,
                    };
                    return Ok(about_them.then_some(event));
                }
                Some(StreamType::Program | StreamType::Webhook) | None => false,
            },
        };
        if admitted { decode(rec).map(Some) } else { Ok(None) }
    }

    /// Loads the pairs already in scope from the read model. Returns the
    /// read model's checkpoint: every pair formed up to it is now known,
    /// and the caller must learn later ones from the log. A read model that
    /// has never run gives nothing and [`Cursor::START`].
    pub async fn load_pairs(&mut self, pool: &sqlx::PgPool) -> Result<Cursor, ApiError> {
        // The checkpoint is read first: the tables are at least as far as it.
        let checkpoint = tandem_projections::checkpoints(pool)
            .await
            .map_err(|e| ApiError::internal(anyhow::Error::new(e).context("reading projection checkpoints")))?
            .into_iter()
            .find(|c| c.name == PAIRS_PROJECTION);
        let Some(checkpoint) = checkpoint else {
            return Ok(Cursor::START);
        };
        let failed = |e| ApiError::internal(anyhow::Error::new(e).context("reading pairs from the read model"));
        match self {
            Self::Pair(_) => {}
            Self::Person { person, pairs } => {
                let found =
                    queries::pairs_of_people(pool, &[PersonId::from_uuid(*person)], None).await.map_err(failed)?;
                pairs.extend(found.into_values().flatten().map(|p| p.pair_id));
            }
            Self::Program { program, pairs } => {
                let mut after: Option<String> = None;
                loop {
                    let page = queries::pairs_of_program(
                        pool,
                        ProgramId::from_uuid(*program),
                        None,
                        after.as_deref(),
                        queries::MAX_PAGE_SIZE,
                    )
                    .await
                    .map_err(failed)?;
                    pairs.extend(page.items.iter().map(|p| p.pair_id));
                    match page.next {
                        Some(next) => after = Some(next),
                        None => break,
                    }
                }
            }
        }
        Ok(checkpoint.cursor)
    }
}
