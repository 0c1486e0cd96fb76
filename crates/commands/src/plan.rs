//! What a command will write once decided: a [`Plan`] of stream appends
//! ([`Write`]) and guard-table changes ([`Guard`]), and the [`Key`]s by which
//! a batch tells apart commands that may commit together. Plain values; the
//! planning itself is in `decide`, the writing in `io`.

use tandem_domain::event::{DomainEvent, StreamType};
use tandem_domain::{PairId, PersonId, ProgramId};
use tandem_store::{ExpectedVersion, IdempotencyKey};
use uuid::Uuid;

/// What a command read or wrote, for telling apart the commands of one
/// batch that may commit together (see `batch`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    Stream(Uuid),
    /// The guard rows of a person (their current pairs, in any program).
    Memberships(PersonId),
    /// The guard rows of a program (its current pairs).
    ProgramMemberships(ProgramId),
    ExternalId(String),
    Idempotency(IdempotencyKey),
}

/// A write the plan will make to one stream.
pub(crate) struct Write {
    pub stream_id: Uuid,
    pub stream_type: StreamType,
    pub expected: ExpectedVersion,
    pub events: Vec<DomainEvent>,
    /// The members of the pair, for a pair stream: the people its free
    /// text is sealed under (see `tandem_domain::personal`).
    pub members: Vec<Uuid>,
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
    /// Frees the external id of a person being erased: the guard row would
    /// otherwise keep it in clear.
    ReleaseExternalId {
        /// As last known, for the batch's selection.
        external_id: Option<String>,
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
    pub fn keys(&self, idempotency_key: Option<&IdempotencyKey>) -> Vec<Key> {
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
                Guard::ExternalId { external_id, .. } => keys.push(Key::ExternalId(external_id.to_lowercase())),
                Guard::ReleaseExternalId { external_id, .. } => {
                    keys.extend(external_id.iter().map(|e| Key::ExternalId(e.to_lowercase())));
                }
            }
        }
        if let Some(k) = idempotency_key {
            keys.push(Key::Idempotency(k.clone()));
        }
        keys
    }

    /// Adds the events of one stream; a decision that changed nothing adds none.
    pub fn write(
        &mut self,
        stream_id: Uuid,
        stream_type: StreamType,
        expected: ExpectedVersion,
        events: Vec<DomainEvent>,
        members: &[PersonId],
    ) {
        if !events.is_empty() {
            let members = members.iter().map(|m| m.as_uuid()).collect();
            self.writes.push(Write { stream_id, stream_type, expected, events, members });
        }
    }
}
