//! Typed reads of the read models, for the API.
//!
//! Shape of the functions:
//! - `…_by_ids` / `…_of_pairs` / `…_of_people` take many ids and answer in
//!   one query, for the API's per-request DataLoaders; the batched
//!   children come back grouped by parent id (parents without children are
//!   absent from the map).
//! - Lists are keyset-paginated: they take the opaque cursor of the previous
//!   page's [`Page::next`] and a limit (clamped to `1..=`[`MAX_PAGE_SIZE`]).
//! - Org facts are "as of a date" (`on`): pass today's date for the current
//!   facts; future-dated changes only show from their date.
//!
//! Every query reads `read.*` and returns rows as `to_jsonb(…)`, decoded by
//! serde into the row types of [`mod@crate::read_models`]: one column of one
//! type, so a rebuild that changes a table's columns never breaks a cached
//! prepared statement ("cached plan must not change result type").
//!
//! Read models trail the log: call [`crate::Waiter::wait_for`] with a
//! mutation's commit position before reading its effects.

pub mod pairs;
pub mod people;
pub mod programs;
pub mod webhooks;

pub use pairs::{
    CoachingPair, SessionView, feedback_of_pairs, goal_progress, goals_of_pairs, pairs_by_ids, pairs_of_people,
    pairs_of_program, sessions_of_pairs,
};
pub use people::{
    OrgFacts, PeopleCursor, PeopleFilter, PersonView, all_people, count_people_here, manager_on, org_history, org_on,
    people, people_by_external_ids, people_by_ids, people_here_after, person, person_by_external_id, reports_on,
};
pub use programs::{
    enrolments_of_people, enrolments_of_program, participation_of_people, participation_of_program, program, programs,
    programs_by_ids,
};
pub use webhooks::{webhook_endpoint, webhook_endpoints};

use std::collections::HashMap;
use std::hash::Hash;

use crate::error::{ProjectionError, Result};

/// The largest page a list returns.
pub const MAX_PAGE_SIZE: i64 = 500;

/// One page of a list.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The cursor to pass for the next page; `None` on the last page.
    pub next: Option<String>,
}

/// Clamps a requested page size.
pub(crate) fn page_size(limit: i64) -> i64 {
    limit.clamp(1, MAX_PAGE_SIZE)
}

/// Makes a page from up to `limit + 1` rows (the extra row only says that
/// there is more).
pub(crate) fn page<T>(mut rows: Vec<T>, limit: i64, cursor_of: impl Fn(&T) -> String) -> Page<T> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more { rows.last().map(cursor_of) } else { None };
    Page { items: rows, next }
}

/// Parses an id cursor (the lists ordered by id).
pub(crate) fn parse_id_cursor(cursor: Option<&str>) -> Result<Option<uuid::Uuid>> {
    cursor.map(|c| uuid::Uuid::parse_str(c).map_err(|_| ProjectionError::InvalidCursor("expected an id"))).transpose()
}

/// Groups rows by a key, keeping their order.
pub(crate) fn group<K: Eq + Hash, T>(rows: Vec<T>, key: impl Fn(&T) -> K) -> HashMap<K, Vec<T>> {
    let mut map: HashMap<K, Vec<T>> = HashMap::new();
    for row in rows {
        map.entry(key(&row)).or_default().push(row);
    }
    map
}
