//! [`Tail`]: every committed event after a cursor, exactly once and in
//! order, first catching up and then following the log live.
//!
//! The data path is always [`EventStore::read_all`] (gap-free, see
//! [`crate::store`]); the tail only decides when to read again:
//!
//! - right away while batches come back full (catch-up);
//! - when `LISTEN tandem_events` delivers a notification (a commit
//!   happened), which usually makes a live event arrive within milliseconds;
//! - after a notification that found nothing readable (an older transaction
//!   still holds the horizon), again after a short, growing delay;
//! - and in any case every `poll_interval`, because notifications are only a
//!   hint: they are lost while the listening connection is down, a
//!   rollback that releases the horizon sends none, and a listener may not
//!   be configured at all.
//!
//! The listener is opened before the first read, so a commit between a
//! read and the wait is never missed for long (its notification is
//! buffered). When the listener fails it is dropped and reconnected with
//! exponential backoff; meanwhile the tail polls.
//!
//! Errors: [`Tail::next_batch`] returns read errors to its caller without
//! moving the cursor, so calling it again retries the same read.
//! [`Tail::into_stream`] retries transient (database) errors itself with
//! backoff, logging each one, and never ends because of them; an error that
//! retrying cannot fix (an undecodable or non-upcastable stored event, a
//! closed pool) is yielded as an `Err` item and then the stream ends,
//! because skipping the event would break "every event exactly once".

use std::time::Duration;

use futures::Stream;
use sqlx::postgres::PgListener;
use tokio::time::{Instant, sleep, timeout};

use crate::NOTIFY_CHANNEL;
use crate::cursor::Cursor;
use crate::error::Result;
use crate::event::RecordedEvent;
use crate::store::EventStore;

/// The first re-read delay after a notification that found nothing
/// readable; it doubles up to the poll interval.
const MIN_RECHECK: Duration = Duration::from_millis(5);

/// The first delay before reconnecting a listener or retrying a read.
const MIN_BACKOFF: Duration = Duration::from_millis(100);

/// How long to wait for a connection for the listener before giving up for
/// now (and polling): a saturated pool must not stall the tail.
const LISTENER_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How a [`Tail`] reads and waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailOptions {
    /// Events per read (>= 1).
    pub batch_size: i64,
    /// The longest wait between two reads when idle, whatever the
    /// notifications do.
    pub poll_interval: Duration,
    /// Whether to LISTEN for wake-ups at all (false: poll only).
    pub notifications: bool,
    /// The channel to LISTEN on; [`NOTIFY_CHANNEL`] unless testing.
    pub channel: String,
    /// The longest delay between reconnection attempts of the listener and
    /// between retries of a failed read in [`Tail::into_stream`].
    pub max_backoff: Duration,
}

impl Default for TailOptions {
    fn default() -> Self {
        TailOptions {
            batch_size: 500,
            poll_interval: Duration::from_millis(500),
            notifications: true,
            channel: NOTIFY_CHANNEL.to_owned(),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// Follows the global log from a cursor. Create it with
/// [`EventStore::tail`].
#[derive(Debug)]
pub struct Tail {
    store: EventStore,
    options: TailOptions,
    /// The last event delivered; the next read starts after it.
    cursor: Cursor,
    /// Holds one pooled connection while open.
    listener: Option<PgListener>,
    /// When to try (re)connecting the listener next.
    listener_retry_at: Instant,
    listener_backoff: Duration,
    /// Set after a notification that found nothing to read yet: the short
    /// delay before reading again.
    recheck: Option<Duration>,
}

impl EventStore {
    /// Delivers every event after `from`, catch-up then live, with the
    /// default [`TailOptions`].
    pub fn tail(&self, from: Cursor) -> Tail {
        self.tail_with(from, TailOptions::default())
    }

    /// [`EventStore::tail`] with explicit options.
    pub fn tail_with(&self, from: Cursor, options: TailOptions) -> Tail {
        Tail::new(self.clone(), from, options)
    }
}

impl Tail {
    fn new(store: EventStore, from: Cursor, options: TailOptions) -> Self {
        Tail {
            store,
            options: TailOptions { batch_size: options.batch_size.max(1), ..options },
            cursor: from,
            listener: None,
            listener_retry_at: Instant::now(),
            listener_backoff: MIN_BACKOFF,
            recheck: None,
        }
    }

    /// The cursor of the last event delivered (or the starting cursor):
    /// what a consumer stores to resume later.
    pub fn cursor(&self) -> Cursor {
        self.cursor
    }

    /// Waits until at least one event after the cursor is readable and
    /// returns the next batch (up to `batch_size`), moving the cursor past
    /// it. Never returns an empty batch.
    ///
    /// Cancel-safe for events: the cursor moves only when a batch is
    /// returned, so dropping the future (e.g. on a timeout) loses nothing.
    pub async fn next_batch(&mut self) -> Result<Vec<RecordedEvent>> {
        loop {
            self.ensure_listener().await;
            let events = self.store.read_all(self.cursor, self.options.batch_size).await?;
            if let Some(last) = events.last() {
                self.cursor = last.cursor();
                self.recheck = None;
                return Ok(events);
            }
            self.wait().await;
        }
    }

    /// The tail as a stream of single events; see the module docs for how
    /// it treats errors.
    pub fn into_stream(mut self) -> impl Stream<Item = Result<RecordedEvent>> + Send + 'static {
        async_stream::stream! {
            let mut backoff = MIN_BACKOFF;
            loop {
                match self.next_batch().await {
                    Ok(events) => {
                        backoff = MIN_BACKOFF;
                        for event in events {
                            yield Ok(event);
                        }
                    }
                    Err(error) if error.is_transient() => {
                        tracing::warn!(
                            error = %error,
                            cause = ?std::error::Error::source(&error),
                            cursor = %self.cursor,
                            retry_in = ?backoff,
                            "event tail read failed; retrying"
                        );
                        sleep(backoff).await;
                        backoff = (backoff * 2).min(self.options.max_backoff);
                    }
                    Err(error) => {
                        tracing::error!(
                            error = %error,
                            cause = ?std::error::Error::source(&error),
                            cursor = %self.cursor,
                            "event tail stopped"
                        );
                        yield Err(error);
                        break;
                    }
                }
            }
        }
    }

    /// Opens the listener if it should be open and its retry time has come.
    /// Failures are logged and retried later; the tail polls meanwhile.
    async fn ensure_listener(&mut self) {
        if !self.options.notifications || self.listener.is_some() || Instant::now() < self.listener_retry_at {
            return;
        }
        let connect = async {
            let mut listener = PgListener::connect_with(self.store.pool()).await?;
            listener.listen(&self.options.channel).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        match timeout(LISTENER_CONNECT_TIMEOUT, connect).await {
            Ok(Ok(listener)) => {
                self.listener = Some(listener);
                self.listener_backoff = MIN_BACKOFF;
            }
            Ok(Err(error)) => self.listener_failed(&error),
            Err(_elapsed) => self.listener_failed(&"timed out waiting for a connection"),
        }
    }

    fn listener_failed(&mut self, error: &dyn std::fmt::Display) {
        tracing::warn!(
            error = %error,
            retry_in = ?self.listener_backoff,
            "event tail cannot listen for notifications; polling until it can"
        );
        self.listener = None;
        self.listener_retry_at = Instant::now() + self.listener_backoff;
        self.listener_backoff = (self.listener_backoff * 2).min(self.options.max_backoff);
    }

    /// Waits for a notification, the poll interval, or the recheck delay.
    async fn wait(&mut self) {
        let poll = self.options.poll_interval;
        let delay = self.recheck.map_or(poll, |recheck| recheck.min(poll));
        let woken = match self.listener.as_mut() {
            None if self.options.notifications => {
                // Wake up in time to reconnect the listener, so that losing
                // it does not leave the tail deaf for a whole poll interval.
                let until_retry = self.listener_retry_at.saturating_duration_since(Instant::now());
                sleep(delay.min(until_retry)).await;
                false
            }
            None => {
                sleep(delay).await;
                false
            }
            Some(listener) => match timeout(delay, listener.try_recv()).await {
                Err(_elapsed) => false,
                Ok(Ok(Some(_notification))) => {
                    // One read covers every commit notified so far.
                    while listener.next_buffered().is_some() {}
                    true
                }
                Ok(Ok(None)) => {
                    // The connection dropped and was re-established;
                    // notifications sent meanwhile are gone, so read now.
                    tracing::debug!("event tail listener reconnected");
                    true
                }
                Ok(Err(error)) => {
                    self.listener_failed(&error);
                    true
                }
            },
        };
        self.recheck = if woken {
            Some(MIN_RECHECK)
        } else {
            // Back off towards plain polling while the horizon stays held.
            self.recheck.map(|recheck| recheck * 2).filter(|recheck| *recheck < poll)
        };
    }
}
