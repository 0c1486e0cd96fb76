//! Finding a participant's person from a token claim, for identity
//! providers whose `sub` is their own user id (`TANDEM_JWT_PERSON_CLAIM`).
//!
//! [`PersonDirectory`] looks the claim up once and remembers the answer
//! briefly: a found person for [`FOUND_TTL`], an unknown one for
//! [`NOT_FOUND_TTL`] (shorter, so someone registered a moment ago can sign
//! in almost at once), so a participant's requests cost no query each. The
//! memory is bounded by [`MAX_ENTRIES`].
//!
//! * By e-mail: the people read model's `email` (`read.people`), compared without regard
//!   to case; erased people have no e-mail there and never match; two
//!   people with one address match neither (ambiguous).
//! * By external id: the command side's registration guard
//!   (`person_external_ids`, unique without regard to case), so a person
//!   is found as soon as their registration committed; an erased person
//!   (per the read model) does not match.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tandem_domain::PersonId;
use uuid::Uuid;

use super::AuthError;
use super::config::PersonMatch;

/// How long a found person is remembered.
pub const FOUND_TTL: Duration = Duration::from_secs(60);
/// How long "no such person" is remembered.
pub const NOT_FOUND_TTL: Duration = Duration::from_secs(5);
/// Most lookups remembered at once; past it, expired ones are dropped, and
/// if that is not enough, all of them.
pub const MAX_ENTRIES: usize = 10_000;

/// What a lookup found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Found {
    One(PersonId),
    None,
    Several,
}

/// Looks participants' people up by claim (see the module doc).
pub struct PersonDirectory {
    pool: PgPool,
    matching: PersonMatch,
    cache: Mutex<HashMap<String, (Found, Instant)>>,
}

impl std::fmt::Debug for PersonDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonDirectory").field("matching", &self.matching).finish_non_exhaustive()
    }
}

impl PersonDirectory {
    /// A directory over `pool`, matching by `matching`.
    #[must_use]
    pub fn new(pool: PgPool, matching: PersonMatch) -> Self {
        Self { pool, matching, cache: Mutex::new(HashMap::new()) }
    }

    /// The person whose e-mail or external id is `value`.
    ///
    /// # Errors
    /// [`AuthError::PersonNotFound`], [`AuthError::PersonAmbiguous`], or
    /// [`AuthError::PersonLookupFailed`] when the database cannot be read.
    pub async fn find(&self, value: &str) -> Result<PersonId, AuthError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(AuthError::PersonClaimMissing);
        }
        // The cache key only groups spellings; the database compares with
        // its own `lower`, the one its index on external ids is built with.
        let key = value.to_lowercase();
        let found = match self.remembered(&key) {
            Some(found) => found,
            None => {
                let found = self.look_up(value).await.map_err(AuthError::PersonLookupFailed)?;
                self.remember(key, found);
                found
            }
        };
        match found {
            Found::One(person) => Ok(person),
            Found::None => Err(AuthError::PersonNotFound),
            Found::Several => Err(AuthError::PersonAmbiguous),
        }
    }

    async fn look_up(&self, value: &str) -> Result<Found, sqlx::Error> {
        let rows: Vec<(Uuid,)> = match self.matching {
            PersonMatch::Email => {
                sqlx::query_as(
                    "SELECT person_id FROM read.people
                      WHERE lower(email) = lower($1) AND email IS NOT NULL AND NOT erased LIMIT 2",
                )
                .bind(value)
                .fetch_all(&self.pool)
                .await?
            }
            PersonMatch::ExternalId => {
                sqlx::query_as(
                    "SELECT g.person_id FROM person_external_ids g
                       LEFT JOIN read.people p ON p.person_id = g.person_id
                      WHERE lower(g.external_id) = lower($1) AND NOT coalesce(p.erased, false)
                      LIMIT 2",
                )
                .bind(value)
                .fetch_all(&self.pool)
                .await?
            }
        };
        Ok(match rows.as_slice() {
            [] => Found::None,
            [(one,)] => Found::One(PersonId::from_uuid(*one)),
            _ => Found::Several,
        })
    }

    fn remembered(&self, key: &str) -> Option<Found> {
        let cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.get(key).filter(|(_, until)| Instant::now() < *until).map(|(found, _)| *found)
    }

    fn remember(&self, key: String, found: Found) {
        let ttl = if matches!(found, Found::One(_)) { FOUND_TTL } else { NOT_FOUND_TTL };
        let now = Instant::now();
        // Every write replaces a whole entry: a poisoned lock holds nothing
        // half written.
        let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= MAX_ENTRIES {
            cache.retain(|_, (_, until)| now < *until);
            if cache.len() >= MAX_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(key, (found, now + ttl));
    }
}
