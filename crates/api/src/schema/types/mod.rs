//! Object types over the read models, and the pieces every list shares:
//! ids, Relay connections, page sizes.

pub mod enums;
pub mod pair;
pub mod person;
pub mod program;

use std::collections::HashSet;

use async_graphql::{Context, ID, SimpleObject};
use tandem_domain::PersonId;
use uuid::Uuid;

use super::loaders::{LoadError, Loaders};
use super::{state, viewer};
use crate::auth::Role;
use crate::error::ApiError;
use crate::policy;

pub use pair::{Feedback, Goal, Pair, Session};
pub use person::Person;
pub use program::{Program, ProgramStats};

/// Parses an `ID` argument into a typed id; a malformed one is
/// `BAD_USER_INPUT` on `field`.
pub(crate) fn parse_id<T: From<Uuid>>(field: &str, id: &ID) -> Result<T, ApiError> {
    Uuid::parse_str(id.as_str())
        .map(T::from)
        .map_err(|_| ApiError::bad_input(field, format!("{field} is not a valid id")))
}

/// The request's loaders.
pub(crate) fn loaders<'a>(ctx: &Context<'a>) -> Result<&'a Loaders, ApiError> {
    ctx.data::<Loaders>().map_err(|_| ApiError::internal(anyhow::anyhow!("no loaders in the request data")))
}

/// A failed batch load.
pub(crate) fn load_error(e: LoadError) -> ApiError {
    ApiError::internal(anyhow::anyhow!("read model query failed: {e}"))
}

/// The person the caller is, when they act as a participant.
pub(crate) fn me_as_participant(ctx: &Context<'_>) -> Option<PersonId> {
    viewer(ctx).filter(|p| p.has(Role::Participant)).and_then(|p| p.person_id())
}

/// Everyone who shares a pair (past or present) with the calling
/// participant, themself included; empty for other callers.
pub(crate) async fn my_circle(ctx: &Context<'_>) -> Result<HashSet<PersonId>, ApiError> {
    let Some(me) = me_as_participant(ctx) else {
        return Ok(HashSet::new());
    };
    let pairs = loaders(ctx)?.pairs_of_person.load_one(me).await.map_err(load_error)?.unwrap_or_default();
    let mut circle: HashSet<PersonId> =
        pairs.iter().flat_map(|p| p.member_ids.iter().copied().map(PersonId::from_uuid)).collect();
    circle.insert(me);
    Ok(circle)
}

/// Whether the caller may see a pair with these members under `operation`'s access.
pub(crate) fn can_see_pair(ctx: &Context<'_>, operation: &str, members: &[Uuid]) -> bool {
    let is_member = me_as_participant(ctx).is_some_and(|me| members.contains(&me.as_uuid()));
    policy::can_read_pair_field(viewer(ctx), operation, is_member)
}

/// The page size asked for, checked against the limit.
pub(crate) fn page_size(ctx: &Context<'_>, first: Option<i32>) -> Result<usize, ApiError> {
    let max = state(ctx).limits.max_page_size;
    match first {
        None => Ok(max.min(20)),
        Some(n) if n < 0 => Err(ApiError::bad_input("first", "first must not be negative")),
        Some(n) if usize::try_from(n).is_ok_and(|n| n <= max) => Ok(usize::try_from(n).unwrap_or(max)),
        Some(_) => Err(ApiError::bad_input("first", format!("first must be at most {max}"))),
    }
}

/// Relay page information.
#[derive(SimpleObject, Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageInfo {
    /// Whether more items follow this page.
    pub has_next_page: bool,
    /// Whether items precede this page.
    pub has_previous_page: bool,
    /// The cursor of the first item of this page.
    pub start_cursor: Option<String>,
    /// The cursor of the last item of this page; pass it as `after` for the next page.
    pub end_cursor: Option<String>,
}

/// Pages an in-memory list (children loaded for a whole level at once) by
/// an id cursor.
pub(crate) fn page_in_memory<T>(
    items: Vec<T>,
    first: usize,
    after: Option<&str>,
    cursor_of: impl Fn(&T) -> String,
) -> Result<(Vec<(String, T)>, PageInfo), ApiError> {
    let start = match after {
        None => 0,
        Some(a) => items
            .iter()
            .position(|i| cursor_of(i) == a)
            .map(|p| p + 1)
            .ok_or_else(|| ApiError::bad_input("after", "unknown cursor"))?,
    };
    let total = items.len();
    let page: Vec<(String, T)> = items.into_iter().skip(start).take(first).map(|i| (cursor_of(&i), i)).collect();
    let info = PageInfo {
        has_next_page: start + page.len() < total,
        has_previous_page: start > 0,
        start_cursor: page.first().map(|(c, _)| c.clone()),
        end_cursor: page.last().map(|(c, _)| c.clone()),
    };
    Ok((page, info))
}

/// Declares a Relay connection and edge type for a node type.
macro_rules! connection {
    ($conn:ident, $edge:ident, $node:ty, $what:literal) => {
        #[doc = concat!("An edge of a list of ", $what, ".")]
        #[derive(async_graphql::SimpleObject)]
        pub struct $edge {
            /// An opaque cursor; pass it as `after` to continue after this item.
            pub cursor: String,
            #[doc = concat!("The ", $what, " item.")]
            pub node: $node,
        }

        #[doc = concat!("A page of ", $what, " (a Relay connection).")]
        #[derive(async_graphql::SimpleObject)]
        pub struct $conn {
            /// The items of this page with their cursors.
            pub edges: Vec<$edge>,
            /// Where this page lies in the whole list.
            pub page_info: $crate::schema::types::PageInfo,
        }

        impl $conn {
            /// Builds a connection from cursor/node pairs.
            pub fn new(items: Vec<(String, $node)>, page_info: $crate::schema::types::PageInfo) -> Self {
                Self { edges: items.into_iter().map(|(cursor, node)| $edge { cursor, node }).collect(), page_info }
            }
        }
    };
}
pub(crate) use connection;
