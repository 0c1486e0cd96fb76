//! [`EventHub`]: one tail of the event log per process, fanned out to every
//! subscription in it.
//!
//! A task follows the store's gap-free tail from the head of the log as it
//! was at start-up and publishes each event, as an `Arc`, on a broadcast
//! channel. Publishing a batch and subscribing take the same lock, so a
//! subscriber learns exactly which events its receiver will hold: every
//! event after the cursor [`EventHub::subscribe`] returns, and none before.
//! That is what lets a subscription switch from reading the store to the
//! live channel with neither a gap nor a duplicate.
//!
//! A subscriber that falls more than the channel's capacity behind gets
//! `RecvError::Lagged` and must read the store again from its last event
//! (see `super::stream`). When the shutdown token fires, or the tail meets
//! an event it cannot read (which retrying cannot fix), the task stops and
//! drops the channel: receivers drain what is buffered and then see
//! `Closed`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tandem_store::{Cursor, EventStore, RecordedEvent};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

/// Events buffered per subscriber before it lags.
pub const DEFAULT_CAPACITY: usize = 4096;

/// The first pause before retrying a failed read of the log; it doubles up
/// to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The process-wide fan-out of the event log. Cheap to clone.
#[derive(Clone, Debug)]
pub struct EventHub {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// The channel; `None` once the tail has stopped. Publishing and
    /// subscribing lock it, which makes [`EventHub::subscribe`]'s cursor exact.
    channel: Mutex<Option<broadcast::Sender<Arc<RecordedEvent>>>>,
    /// The last cursor published (the head of the log at start-up before
    /// any event); `None` until the tail has read the head.
    cursor: watch::Sender<Option<Cursor>>,
    /// Open subscriptions, for metrics.
    open: AtomicUsize,
    /// Cancelled on shutdown: the tail stops and subscriptions end.
    shutdown: CancellationToken,
}

/// A live view of the hub: `receiver` holds every event published after
/// `cursor`.
#[derive(Debug)]
pub(crate) struct Live {
    pub receiver: broadcast::Receiver<Arc<RecordedEvent>>,
    pub cursor: Cursor,
}

/// Why the hub cannot be subscribed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HubClosed {
    /// The process is shutting down.
    Shutdown,
    /// The tail stopped on an error retrying cannot fix (logged by the hub).
    Failed,
}

/// Counts one open subscription while it lives.
#[derive(Debug)]
pub(crate) struct OpenSubscription {
    shared: Arc<Shared>,
}

impl Drop for OpenSubscription {
    fn drop(&mut self) {
        self.shared.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl EventHub {
    /// Starts the process's tail of `store` from the current head of the
    /// log. Must be called inside a Tokio runtime. The tail and every
    /// subscription end when `shutdown` is cancelled.
    #[must_use]
    pub fn start(store: EventStore, shutdown: CancellationToken) -> Self {
        Self::with_capacity(store, shutdown, DEFAULT_CAPACITY)
    }

    /// [`EventHub::start`] with another channel capacity (tests use a small
    /// one to make subscribers lag).
    #[must_use]
    pub fn with_capacity(store: EventStore, shutdown: CancellationToken, capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        let shared = Arc::new(Shared {
            channel: Mutex::new(Some(sender)),
            cursor: watch::Sender::new(None),
            open: AtomicUsize::new(0),
            shutdown,
        });
        tokio::spawn(run(store, Arc::clone(&shared)));
        Self { shared }
    }

    /// The cursor of the last event published (the head of the log at
    /// start-up before any); `None` until the tail has started.
    #[must_use]
    pub fn cursor(&self) -> Option<Cursor> {
        *self.shared.cursor.borrow()
    }

    /// Follows [`EventHub::cursor`] as it moves (for lag metrics).
    #[must_use]
    pub fn watch_cursor(&self) -> watch::Receiver<Option<Cursor>> {
        self.shared.cursor.subscribe()
    }

    /// How many subscriptions are open in this process.
    #[must_use]
    pub fn open_subscriptions(&self) -> usize {
        self.shared.open.load(Ordering::Relaxed)
    }

    /// Whether the tail is running (started, and neither shut down nor failed).
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.cursor().is_some() && self.lock().is_some()
    }

    /// The token that ends the hub and every subscription.
    pub(crate) fn shutdown(&self) -> &CancellationToken {
        &self.shared.shutdown
    }

    /// Counts a subscription as open until the returned guard is dropped.
    pub(crate) fn open(&self) -> OpenSubscription {
        self.shared.open.fetch_add(1, Ordering::Relaxed);
        OpenSubscription { shared: Arc::clone(&self.shared) }
    }

    /// A receiver of every event after the returned cursor. Waits for the
    /// tail to start.
    pub(crate) async fn subscribe(&self) -> Result<Live, HubClosed> {
        let mut started = self.shared.cursor.subscribe();
        tokio::select! {
            () = self.shared.shutdown.cancelled() => return Err(HubClosed::Shutdown),
            // Err: the sender is gone, which cannot happen while `self` holds it.
            r = started.wait_for(Option::is_some) => { r.map_err(|_| HubClosed::Failed)?; }
        }
        let channel = self.lock();
        let Some(sender) = channel.as_ref() else {
            return Err(if self.shared.shutdown.is_cancelled() { HubClosed::Shutdown } else { HubClosed::Failed });
        };
        let receiver = sender.subscribe();
        let cursor = self.cursor().unwrap_or(Cursor::START);
        Ok(Live { receiver, cursor })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<broadcast::Sender<Arc<RecordedEvent>>>> {
        // Nothing panics while holding the lock; a poisoned lock still holds
        // a consistent channel.
        self.shared.channel.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Shared {
    /// Publishes a batch and moves the cursor, atomically for subscribers.
    fn publish(&self, events: Vec<RecordedEvent>) {
        let Some(last) = events.last().map(RecordedEvent::cursor) else { return };
        let channel = self.channel.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = channel.as_ref() {
            for event in events {
                // Err only means nobody is subscribed right now.
                let _ = sender.send(Arc::new(event));
            }
        }
        self.cursor.send_replace(Some(last));
    }

    /// Drops the channel: receivers drain their buffers, then see `Closed`.
    fn close(&self) {
        self.channel.lock().unwrap_or_else(PoisonError::into_inner).take();
    }
}

/// The tail task: find the head, then publish every event after it.
async fn run(store: EventStore, shared: Arc<Shared>) {
    let shutdown = shared.shutdown.clone();
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = follow(&store, &shared) => {}
    }
    shared.close();
    tracing::debug!("event hub stopped");
}

async fn follow(store: &EventStore, shared: &Shared) {
    let mut backoff = MIN_BACKOFF;
    let head = loop {
        match store.head().await {
            Ok(head) => break head,
            Err(error) => {
                tracing::warn!(error = %error, retry_in = ?backoff, "event hub cannot read the head of the log; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    };
    shared.cursor.send_replace(Some(head));
    tracing::debug!(head = %head, "event hub started");
    let mut tail = store.tail(head);
    let mut backoff = MIN_BACKOFF;
    loop {
        match tail.next_batch().await {
            Ok(events) => {
                backoff = MIN_BACKOFF;
                shared.publish(events);
            }
            Err(error) if error.is_transient() => {
                tracing::warn!(
                    error = %error,
                    cause = ?std::error::Error::source(&error),
                    cursor = %tail.cursor(),
                    retry_in = ?backoff,
                    "event hub read failed; retrying"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(error) => {
                tracing::error!(
                    error = %error,
                    cause = ?std::error::Error::source(&error),
                    cursor = %tail.cursor(),
                    "event hub stopped: the log holds an event it cannot read"
                );
                return;
            }
        }
    }
}
