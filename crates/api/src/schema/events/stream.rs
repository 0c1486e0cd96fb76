//! The engine behind every event subscription: catch up from the store,
//! then follow the hub, with neither a gap nor a duplicate.
//!
//! The stream keeps `pos`, the cursor up to which it has considered every
//! event of the log that its store filter lets through, and delivers only
//! events after `deliver_after` (the client's `after`, or the hub's cursor
//! when the subscription started without one). In order:
//!
//! 1. It subscribes to the hub *first*: the receiver holds every event
//!    after the hub's cursor `live.cursor`, so whatever the store reads
//!    below miss is buffered there.
//! 2. A scope that grows with `PairFormed` (program, person) knows the
//!    pairs formed up to the read model's checkpoint; it reads the
//!    `PairFormed` events from there up to `deliver_after` (or the head of
//!    the log, if that is earlier) to learn the rest.
//! 3. Catch-up: it reads the store after `pos` until it has passed
//!    `live.cursor`.
//! 4. Live: it takes events from the receiver, skipping those at or before
//!    `pos` (already read from the store).
//! 5. If the receiver lags (`RecvError::Lagged`: the channel dropped
//!    events this subscriber had not taken yet), it subscribes again and
//!    goes back to 3 from `pos`.
//!
//! Every event in scope goes through [`render`] (the same rules as the
//! queries) before it is delivered. The stream ends when the hub shuts
//! down, when the caller's token expires (with `UNAUTHENTICATED`), or after
//! an error it cannot get past (logged, sent as `INTERNAL_SERVER_ERROR`);
//! the client resumes with the last cursor it received.

use std::collections::HashSet;
use std::time::Duration;

use async_graphql::futures_util::stream::BoxStream;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use tandem_domain::DomainEvent;
use tandem_domain::pair::PairEvent;
use tandem_store::{Cursor, EventStore, ReadFilter, RecordedEvent, StoreError};
use tokio::sync::broadcast::error::RecvError;

use super::hub::{EventHub, HubClosed, Live};
use super::render::{Audience, erased_among, render};
use super::scope::{PAIR_FORMED, Scope};
use super::types::EventEdge;
use crate::error::ApiError;

/// Events per store read while catching up.
const BATCH: i64 = 500;

/// Attempts of one store read before the stream gives up.
const READ_ATTEMPTS: u32 = 3;

/// One subscription, ready to run.
#[derive(Debug)]
pub(crate) struct Follow {
    pub store: EventStore,
    pub hub: EventHub,
    pub scope: Scope,
    pub audience: Audience,
    /// The client's `after`; `None` starts at the hub's cursor.
    pub after: Option<Cursor>,
    /// For growing scopes: where the log must be read for `PairFormed`
    /// (the read model's checkpoint, see [`Scope::load_pairs`]).
    pub pairs_known_to: Option<Cursor>,
    /// When the caller's token expires.
    pub expires_at: Option<DateTime<Utc>>,
}

/// An error item; the stream ends after it.
fn fail(e: ApiError) -> async_graphql::Result<EventEdge> {
    Err(e.into())
}

/// Reads the store, retrying transient failures a few times.
async fn read(store: &EventStore, after: Cursor, filter: &ReadFilter) -> Result<Vec<RecordedEvent>, ApiError> {
    let mut attempt = 1;
    loop {
        match store.read_all_filtered(after, BATCH, filter).await {
            Ok(events) => return Ok(events),
            Err(e) if e.is_transient() && attempt < READ_ATTEMPTS => {
                tracing::debug!(error = %e, attempt, "subscription read failed; retrying");
                tokio::time::sleep(Duration::from_millis(100) * attempt).await;
                attempt += 1;
            }
            Err(e) => return Err(read_failed(e)),
        }
    }
}

fn read_failed(e: StoreError) -> ApiError {
    ApiError::internal(anyhow::Error::new(e).context("reading the event log for a subscription"))
}

fn hub_closed(closed: HubClosed) -> Option<ApiError> {
    match closed {
        HubClosed::Shutdown => None,
        HubClosed::Failed => Some(ApiError::internal(anyhow::anyhow!("the event hub has stopped"))),
    }
}

impl Follow {
    /// Considers one event in log order; the edge to deliver, if any.
    async fn consider(&mut self, rec: &RecordedEvent, deliver_after: Cursor) -> Result<Option<EventEdge>, ApiError> {
        let Some(event) = self.scope.admit(rec)? else {
            return Ok(None);
        };
        self.learn_membership(&event);
        if rec.cursor() <= deliver_after {
            return Ok(None);
        }
        let erased = match self.audience.personal_data_of(&event) {
            Some(person) => erased_among(&self.store, [person]).await?,
            None => HashSet::new(),
        };
        Ok(render(rec, &event, &self.audience, &erased)
            .map(|node| EventEdge { cursor: rec.cursor().to_string(), node }))
    }

    /// Notes a pair the caller (as a person) has just become a member of.
    fn learn_membership(&mut self, event: &DomainEvent) {
        let me = self.audience.viewer.as_ref().and_then(crate::auth::Principal::person_id);
        if let (Some(me), DomainEvent::Pair(PairEvent::PairFormed(f))) = (me, event)
            && f.members.contains(&me)
        {
            self.audience.member_of.insert(f.pair_id.as_uuid());
        }
    }

    /// Learns the pairs formed in `(from, to]` from the log.
    async fn learn_pairs(&mut self, from: Cursor, to: Cursor) -> Result<(), ApiError> {
        let filter = ReadFilter { event_types: Some(vec![PAIR_FORMED.to_owned()]), ..ReadFilter::default() };
        let mut at = from;
        while at < to {
            let batch = read(&self.store, at, &filter).await?;
            for rec in &batch {
                if rec.cursor() > to {
                    return Ok(());
                }
                at = rec.cursor();
                if let Some(event) = self.scope.admit(rec)? {
                    self.learn_membership(&event);
                }
            }
            if batch.len() < usize::try_from(BATCH).unwrap_or(usize::MAX) {
                break;
            }
        }
        Ok(())
    }

    /// The whole subscription as a stream of edges.
    pub fn run(mut self) -> BoxStream<'static, async_graphql::Result<EventEdge>> {
        let stream = async_stream::stream! {
            let _open = self.hub.open();
            let shutdown = self.hub.shutdown().clone();
            let expiry = self.expires_at.map_or(Duration::MAX, |at| (at - Utc::now()).to_std().unwrap_or_default());
            let expired = tokio::time::sleep(expiry.min(Duration::from_secs(10 * 365 * 24 * 3600)));
            tokio::pin!(expired);

            // 1. The hub first, so nothing committed from now on is missed.
            let mut live: Live = match self.hub.subscribe().await {
                Ok(live) => live,
                Err(closed) => {
                    if let Some(e) = hub_closed(closed) { yield fail(e); }
                    return;
                }
            };
            let deliver_after = self.after.unwrap_or(live.cursor);
            let mut pos = deliver_after;

            // 2. Pairs formed between the read model's checkpoint and the start.
            if let Some(known_to) = self.pairs_known_to.filter(|k| *k < deliver_after) {
                let head = match self.store.head().await {
                    Ok(head) => head,
                    Err(e) => { yield fail(read_failed(e)); return; }
                };
                let target = deliver_after.min(head);
                if let Err(e) = self.learn_pairs(known_to, target).await {
                    yield fail(e);
                    return;
                }
                pos = target;
            }

            let filter = self.scope.store_filter();
            loop {
                // 3. Catch up from the store to (at least) the hub's cursor.
                while pos < live.cursor {
                    if shutdown.is_cancelled() {
                        return;
                    }
                    if self.expires_at.is_some_and(|at| at <= Utc::now()) {
                        yield fail(ApiError::Unauthenticated);
                        return;
                    }
                    let batch = match read(&self.store, pos, &filter).await {
                        Ok(batch) => batch,
                        Err(e) => { yield fail(e); return; }
                    };
                    for rec in &batch {
                        pos = rec.cursor();
                        match self.consider(rec, deliver_after).await {
                            Ok(Some(edge)) => yield Ok(edge),
                            Ok(None) => {}
                            Err(e) => { yield fail(e); return; }
                        }
                    }
                    if batch.len() < usize::try_from(BATCH).unwrap_or(usize::MAX) {
                        break;
                    }
                }

                // 4. Live from the hub.
                loop {
                    let received = tokio::select! {
                        biased;
                        () = shutdown.cancelled() => return,
                        () = &mut expired => {
                            yield fail(ApiError::Unauthenticated);
                            return;
                        }
                        received = live.receiver.recv() => received,
                    };
                    match received {
                        Ok(rec) => {
                            if rec.cursor() <= pos {
                                continue;
                            }
                            pos = rec.cursor();
                            match self.consider(&rec, deliver_after).await {
                                Ok(Some(edge)) => yield Ok(edge),
                                Ok(None) => {}
                                Err(e) => { yield fail(e); return; }
                            }
                        }
                        Err(RecvError::Lagged(missed)) => {
                            // 5. Too slow: re-read the store from `pos`.
                            tracing::debug!(missed, cursor = %pos, "subscription lagged; catching up from the store");
                            break;
                        }
                        Err(RecvError::Closed) => {
                            if !shutdown.is_cancelled() {
                                yield fail(ApiError::internal(anyhow::anyhow!("the event hub has stopped")));
                            }
                            return;
                        }
                    }
                }
                live = match self.hub.subscribe().await {
                    Ok(live) => live,
                    Err(closed) => {
                        if let Some(e) = hub_closed(closed) { yield fail(e); }
                        return;
                    }
                };
            }
        };
        stream.boxed()
    }
}
