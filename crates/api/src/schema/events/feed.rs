//! The `events` query: the gap-free event log as a Relay connection.
//!
//! A page is a read of the store after the `after` cursor, in the log's
//! global order, with the filters the caller asked for (and, for an
//! integrator, only person streams). Events the caller may not see at all
//! (feedback not shared with them) are skipped and the read goes on until
//! the page is full, so a page has `first` events whenever that many
//! visible ones exist; `hasNextPage` says whether one more does.
//!
//! `first` defaults to [`DEFAULT_PAGE`] and may not exceed the schema's
//! `maxPageSize`: a larger value is refused with `BAD_USER_INPUT` rather
//! than silently clamped, so a client never mistakes a short page for the
//! end of the log. The page's cost does not grow with nesting (events have
//! no nested lists or loaders), so its complexity is not weighted by `first`.

use std::collections::BTreeSet;

use async_graphql::{Context, ID, Object};
use tandem_domain::event::{EVENT_TYPES, event_type_info};
use tandem_store::{Cursor, ReadFilter};
use uuid::Uuid;

use super::render::{Audience, decode, erased_among, render};
use super::types::{EventConnection, EventEdge};
use crate::error::ApiError;
use crate::policy::Access;
use crate::schema::types::{PageInfo, parse_id};
use crate::schema::{check, state, viewer};

/// Events per page when `first` is not given (or `maxPageSize` if smaller).
pub const DEFAULT_PAGE: usize = 50;

/// The fewest events one read of the store asks for while filling a page.
const MIN_READ: usize = 32;

/// The event feed's root query field.
#[derive(Default, Debug)]
pub struct FeedQuery;

#[Object]
impl FeedQuery {
    /// The event log in its global order: every event exactly once,
    /// resumable from any cursor, in today's event shapes. Admins and
    /// analysts read all of it (analysts pseudonymously: no names, e-mails,
    /// external ids, locations, feedback texts, session notes or goal
    /// texts); integrators read the events of person streams. Feedback is
    /// delivered only to those who may read it, and to analysts without its
    /// texts.
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Start after this cursor (an edge's `cursor` or a page's `endCursor`); \
                          omit to start at the beginning of the log.")]
        after: Option<String>,
        #[graphql(desc = "How many events to return: 0 to maxPageSize, 50 when omitted.")] first: Option<i32>,
        #[graphql(desc = "Only events of these types, by event type name (e.g. `PairFormed`).")] types: Option<
            Vec<String>,
        >,
        #[graphql(desc = "Only events of this stream (a person, program or pair id).")] stream_id: Option<ID>,
    ) -> async_graphql::Result<EventConnection> {
        Ok(page(ctx, after, first, types, stream_id).await?)
    }
}

/// Parses an `after` argument.
pub(crate) fn parse_after(after: Option<&str>) -> Result<Option<Cursor>, ApiError> {
    after
        .map(|a| {
            a.parse::<Cursor>().map_err(|_| ApiError::bad_input("after", "after is not a cursor of the event log"))
        })
        .transpose()
}

fn page_size(first: Option<i32>, max: usize) -> Result<usize, ApiError> {
    match first {
        None => Ok(DEFAULT_PAGE.min(max)),
        Some(n) => match usize::try_from(n) {
            Err(_) => Err(ApiError::bad_input("first", "first must not be negative")),
            Ok(n) if n > max => Err(ApiError::bad_input("first", format!("first must be at most {max}"))),
            Ok(n) => Ok(n),
        },
    }
}

fn event_types(types: Vec<String>) -> Result<Vec<String>, ApiError> {
    if types.is_empty() {
        return Err(ApiError::bad_input("types", "types must name at least one event type; omit it for all"));
    }
    let mut known = BTreeSet::new();
    for (i, t) in types.into_iter().enumerate() {
        if event_type_info(&t).is_none() {
            // The entry is named by its place, not echoed: an error must not
            // repeat what was sent (it may be a personal value).
            let names: Vec<&str> = EVENT_TYPES.iter().map(|(n, _, _)| *n).collect();
            return Err(ApiError::bad_input(
                "types",
                format!("types[{i}] is not an event type; known types: {}", names.join(", ")),
            ));
        }
        known.insert(t);
    }
    Ok(known.into_iter().collect())
}

async fn page(
    ctx: &Context<'_>,
    after: Option<String>,
    first: Option<i32>,
    types: Option<Vec<String>>,
    stream_id: Option<ID>,
) -> Result<EventConnection, ApiError> {
    let access = check(ctx, "events")?;
    let state = state(ctx);
    let after = parse_after(after.as_deref())?.unwrap_or(Cursor::START);
    let first = page_size(first, state.limits.max_page_size)?;
    let filter = ReadFilter {
        event_types: types.map(event_types).transpose()?,
        stream_id: stream_id.map(|id| parse_id::<Uuid>("streamId", &id)).transpose()?,
        // `Own` is the integrator's: person streams only.
        stream_type: (access == Access::Own).then(|| "person".to_owned()),
    };
    let audience = Audience::new(viewer(ctx).cloned());

    // One more than asked for, to know whether a next page exists.
    let want = first + 1;
    let mut edges: Vec<EventEdge> = Vec::with_capacity(want);
    let mut at = after;
    'read: loop {
        let limit = (want - edges.len()).max(MIN_READ);
        let batch = state
            .store
            .read_all_filtered(at, i64::try_from(limit).unwrap_or(i64::MAX), &filter)
            .await
            .map_err(|e| ApiError::internal(anyhow::Error::new(e).context("reading the event log")))?;
        let read = batch.len();
        let mut decoded = Vec::with_capacity(read);
        for rec in batch {
            let event = decode(&rec)?;
            decoded.push((rec, event));
        }
        let erased =
            erased_among(&state.store, decoded.iter().filter_map(|(_, e)| audience.personal_data_of(e))).await?;
        for (rec, event) in &decoded {
            at = rec.cursor();
            if let Some(node) = render(rec, event, &audience, &erased) {
                edges.push(EventEdge { cursor: at.to_string(), node });
                if edges.len() == want {
                    break 'read;
                }
            }
        }
        if read < limit {
            break;
        }
    }
    let has_next_page = edges.len() > first;
    edges.truncate(first);
    let page_info = PageInfo {
        has_next_page,
        has_previous_page: after != Cursor::START,
        start_cursor: edges.first().map(|e| e.cursor.clone()),
        end_cursor: edges.last().map(|e| e.cursor.clone()),
    };
    Ok(EventConnection { edges, page_info })
}
