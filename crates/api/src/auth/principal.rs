//! [`Principal`]: the verified caller of one request.
//!
//! Built only through [`Principal::new`], which enforces what every
//! principal must satisfy (at least one role; a participant is a person), so
//! code holding a `Principal` never re-checks it. The verifier builds one
//! from a token; tests and internal callers may build one directly.

use chrono::{DateTime, Utc};
use tandem_domain::PersonId;
use uuid::Uuid;

use super::{AuthError, Role};

/// Who is calling, with which roles, until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    subject: String,
    roles: Vec<Role>,
    person_id: Option<PersonId>,
    expires_at: DateTime<Utc>,
    token_id: Option<String>,
}

impl Principal {
    /// Builds a principal. `roles` are sorted and deduplicated.
    ///
    /// # Errors
    /// [`AuthError::InvalidClaim`] (`sub`) for an empty subject,
    /// [`AuthError::NoKnownRole`] without roles, and
    /// [`AuthError::SubjectNotAPerson`] for a participant whose subject is
    /// not a hyphenated UUID.
    pub fn new(
        subject: impl Into<String>,
        roles: impl IntoIterator<Item = Role>,
        expires_at: DateTime<Utc>,
        token_id: Option<String>,
    ) -> Result<Self, AuthError> {
        let subject = subject.into();
        let person_id = parse_person_id(&subject);
        Self::build(subject, roles, person_id, expires_at, token_id).map_err(|err| match err {
            AuthError::PersonNotFound => AuthError::SubjectNotAPerson,
            other => other,
        })
    }

    /// Builds a principal whose person was found apart from the subject
    /// (from another claim of the token), or who is none (`None`).
    ///
    /// # Errors
    /// As [`Principal::new`], and [`AuthError::PersonNotFound`] for a
    /// participant without a person.
    pub fn with_person(
        subject: impl Into<String>,
        roles: impl IntoIterator<Item = Role>,
        person_id: Option<PersonId>,
        expires_at: DateTime<Utc>,
        token_id: Option<String>,
    ) -> Result<Self, AuthError> {
        Self::build(subject.into(), roles, person_id, expires_at, token_id)
    }

    fn build(
        subject: String,
        roles: impl IntoIterator<Item = Role>,
        person_id: Option<PersonId>,
        expires_at: DateTime<Utc>,
        token_id: Option<String>,
    ) -> Result<Self, AuthError> {
        if subject.trim().is_empty() {
            return Err(AuthError::InvalidClaim { claim: "sub" });
        }
        let mut roles: Vec<Role> = roles.into_iter().collect();
        roles.sort_unstable();
        roles.dedup();
        if roles.is_empty() {
            return Err(AuthError::NoKnownRole);
        }
        if person_id.is_none() && roles.contains(&Role::Participant) {
            return Err(AuthError::PersonNotFound);
        }
        Ok(Self { subject, roles, person_id, expires_at, token_id })
    }

    /// The token's `sub`: a person id for people (or the identity
    /// provider's user id, when people are found by another claim), a
    /// client name for machine callers (an integrator, say).
    #[must_use]
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The granted roles, sorted, without duplicates, never empty.
    #[must_use]
    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    /// The caller's person: the subject as a person id when it is one, or
    /// the person the configured claim names (always set for a participant).
    #[must_use]
    pub const fn person_id(&self) -> Option<PersonId> {
        self.person_id
    }

    /// When the token stops being valid (its `exp`); long-lived connections
    /// such as subscriptions must end by then.
    #[must_use]
    pub const fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }

    /// The token's `jti`, when it has one (for audit and revocation lists).
    #[must_use]
    pub fn token_id(&self) -> Option<&str> {
        self.token_id.as_deref()
    }

    /// Whether the principal holds `role`.
    #[must_use]
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether the principal is an administrator.
    #[must_use]
    pub fn is_admin(&self) -> bool {
        self.has(Role::Admin)
    }

    /// The role that speaks for this principal (see [`Role::precedence`]).
    #[must_use]
    pub fn primary_role(&self) -> Role {
        // `new` guarantees at least one role; the fallback only satisfies
        // the type and is the least privileged choice.
        self.roles.iter().copied().min_by_key(|role| role.precedence()).unwrap_or(Role::Participant)
    }

    /// The primary role's name, for the actor role in event metadata
    /// (admin > coordinator > integrator > analyst > participant).
    #[must_use]
    pub fn actor_role(&self) -> &'static str {
        self.primary_role().as_str()
    }
}

/// A person id is the canonical hyphenated UUID only: `Uuid::parse_str` also
/// takes braced, `urn:uuid:` and unhyphenated forms, which would let one
/// person appear under several different subjects.
fn parse_person_id(subject: &str) -> Option<PersonId> {
    if subject.len() != 36 {
        return None;
    }
    Uuid::try_parse(subject).ok().map(PersonId::from_uuid)
}
