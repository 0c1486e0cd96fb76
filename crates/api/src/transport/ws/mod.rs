//! GraphQL over websockets: the upgrade on `/graphql` and one task per
//! connection that speaks `graphql-transport-ws` or legacy `graphql-ws`.
//!
//! The subprotocol is negotiated from `Sec-WebSocket-Protocol`
//! (`graphql-transport-ws` preferred). An upgrade that offers neither is
//! accepted and then closed with 4406 "Subprotocol not acceptable", as the
//! graphql-ws reference server does, so a client sees why in the close frame.
//!
//! A connection is a loop over one `select!`: client messages, results of its
//! operations, and timers. Operations are streams polled in that loop (a
//! `SelectAll`), not tasks: the socket's write side is then the only
//! backpressure needed, and closing the socket drops every operation. The
//! rules it enforces (close codes of `graphql-transport-ws`, applied to the
//! legacy protocol too where it defines none):
//!
//! | event | outcome |
//! |---|---|
//! | no `connection_init` within `connection_init_timeout` | close 4408 |
//! | a second `connection_init` | close 4429 |
//! | the [`RequestContext`](super::RequestContext) refuses the payload | close 4403; 1011 for `INTERNAL_SERVER_ERROR`, 1013 for `RATE_LIMITED` and `AUTH_UNAVAILABLE` (legacy: `connection_error` first) |
//! | `subscribe` before `connection_ack` | close 4401 |
//! | `subscribe` with an id in use | close 4409 (legacy: the old operation is replaced) |
//! | invalid JSON, unknown type, missing id, bad payload, binary frame | close 4400 (legacy: `connection_error` first; a bad `start` payload only fails that operation) |
//! | a message over `max_body_bytes` | close 1009 |
//! | the credentials expire (`RequestData::expires_at`) | every operation gets `error` `UNAUTHENTICATED` "token expired", then close 4403 |
//! | more than `max_operations_per_connection` at once | `error` `TOO_MANY_OPERATIONS` for that operation |
//! | shutdown token fires | close 1001 |
//!
//! 4403 on expiry, rather than 4401, because the connection *was*
//! authorised: the client must re-authenticate and reconnect, and
//! graphql-ws clients do not retry 4403 blindly.

mod protocol;

use std::{
    collections::HashMap,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use async_graphql::{Data, Executor, Response, ServerError};
use axum::{
    extract::{
        FromRequestParts,
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade},
    },
    http::{Method, header, request::Parts},
    response::{IntoResponse, Response as HttpResponse},
};
use futures::{
    Stream, StreamExt,
    stream::{self, BoxStream, SelectAll},
};
use tokio::time::{Instant, Interval, MissedTickBehavior, Sleep, sleep_until, timeout, timeout_at};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, Span};

use self::protocol::{ClientMessage, Protocol};
use super::{
    Shared, TransportConfig,
    body::{self, Body, Outcome},
    codes, deadline_after,
    params::{self, Refused},
};

/// Initial read and write buffer of a websocket (see the upgrade).
const WS_BUFFER_BYTES: usize = 4 * 1024;

/// Close codes of `graphql-transport-ws` (and RFC 6455 where it has one).
mod close {
    pub(super) const NORMAL: u16 = 1000;
    pub(super) const GOING_AWAY: u16 = 1001;
    pub(super) const PROTOCOL_ERROR: u16 = 1002;
    pub(super) const MESSAGE_TOO_BIG: u16 = 1009;
    pub(super) const INTERNAL_ERROR: u16 = 1011;
    pub(super) const TRY_AGAIN_LATER: u16 = 1013;
    pub(super) const BAD_REQUEST: u16 = 4400;
    pub(super) const UNAUTHORIZED: u16 = 4401;
    pub(super) const FORBIDDEN: u16 = 4403;
    pub(super) const SUBPROTOCOL_NOT_ACCEPTABLE: u16 = 4406;
    pub(super) const INIT_TIMEOUT: u16 = 4408;
    pub(super) const SUBSCRIBER_EXISTS: u16 = 4409;
    pub(super) const TOO_MANY_INITS: u16 = 4429;
}

/// How long a closing socket waits for the peer's close frame: reading it
/// lets the close handshake finish, and leaves no unread bytes whose TCP
/// reset could destroy our close frame before the client reads it.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Whether a request to `/graphql` asks for a websocket (HTTP/1.1 upgrade,
/// or an HTTP/2 extended CONNECT).
pub(super) fn is_upgrade(parts: &Parts) -> bool {
    parts.method == Method::CONNECT
        || (parts.method == Method::GET
            && parts
                .headers
                .get(header::UPGRADE)
                .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"websocket")))
}

/// Upgrades the connection and runs it on its own task.
pub(super) async fn upgrade<E: Executor>(shared: Arc<Shared<E>>, mut parts: Parts) -> HttpResponse {
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            let status = rejection.status();
            let message = format!("invalid websocket upgrade: {}", rejection.body_text());
            let mut response = (status, body::error_json(codes::BAD_REQUEST, message)).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, super::negotiate::MediaType::Json.content_type());
            return response;
        }
    };
    let limit = shared.config.max_body_bytes;
    // Buffers start small and grow with the messages (up to the limits):
    // the library's 128 KiB read and write buffers per socket would cost a
    // quarter of a gigabyte for a thousand idle subscribers.
    let upgrade = upgrade
        .protocols([Protocol::TRANSPORT_WS, Protocol::LEGACY])
        .max_message_size(limit)
        .max_frame_size(limit)
        .read_buffer_size(WS_BUFFER_BYTES)
        .write_buffer_size(WS_BUFFER_BYTES);
    let protocol = upgrade.selected_protocol().and_then(Protocol::from_header);
    let tracker = shared.config.sockets.clone();
    let span = tracing::info_span!("graphql.ws", protocol = protocol.map_or("none", Protocol::name),);
    upgrade.on_failed_upgrade(|error| tracing::debug!(%error, "websocket upgrade failed")).on_upgrade(move |socket| {
        tracker.track_future(
            async move {
                tracing::debug!("websocket opened");
                match protocol {
                    Some(protocol) => Connection::new(shared, socket, protocol).run().await,
                    None => {
                        finish(
                            socket,
                            close::SUBPROTOCOL_NOT_ACCEPTABLE,
                            "Subprotocol not acceptable",
                            Duration::from_secs(1),
                        )
                        .await;
                    }
                }
                tracing::debug!("websocket closed");
            }
            .instrument(span),
        )
    })
}

/// Ends a connection's socket with a close frame, then reads until the
/// peer's close (or the grace period ends).
async fn finish(mut socket: WebSocket, code: u16, reason: &str, write_timeout: Duration) {
    tracing::debug!(code, reason, "closing websocket");
    let frame = CloseFrame { code, reason: truncate_reason(reason).to_owned().into() };
    if !matches!(timeout(write_timeout, socket.send(Message::Close(Some(frame)))).await, Ok(Ok(()))) {
        return;
    }
    let grace = Instant::now() + CLOSE_GRACE;
    while let Ok(Some(Ok(_))) = timeout_at(grace, socket.recv()).await {}
}

/// A close reason is at most 123 bytes (RFC 6455 §5.5: 125 minus the code).
fn truncate_reason(reason: &str) -> &str {
    const MAX: usize = 123;
    if reason.len() <= MAX {
        return reason;
    }
    let mut end = MAX;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

/// Why the loop of a connection ends.
#[derive(Debug)]
enum End {
    /// Close the socket with this code and reason.
    Close(u16, String),
    /// The client closed the socket (or it broke): nothing more to send.
    Gone,
}

impl End {
    fn close(code: u16, reason: impl Into<String>) -> Self {
        Self::Close(code, reason.into())
    }
}

/// One item of an operation's stream: a result, or its end (`None`).
struct OperationEvent {
    id: String,
    /// Tells a finished operation's late events from those of a new
    /// operation that reuses its id.
    generation: u64,
    response: Option<Response>,
}

/// A running operation.
struct Active {
    generation: u64,
    cancel: CancellationToken,
    /// Whether a result was sent: only the first can be a request error.
    delivered: bool,
}

/// What woke the connection loop.
#[expect(
    clippy::large_enum_variant,
    reason = "one event at a time, moved once; boxing would add an allocation per result"
)]
enum Event {
    Shutdown,
    InitTimeout,
    Expired,
    KeepAlive,
    Incoming(Option<Result<Message, axum::Error>>),
    Operation(OperationEvent),
}

/// Runs an operation's stream inside its span, so the executor's events (and
/// the resolvers') are attributed to the operation.
struct Instrumented {
    inner: BoxStream<'static, Response>,
    span: Span,
}

impl Stream for Instrumented {
    type Item = Response;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Response>> {
        let this = &mut *self;
        let _entered = this.span.enter();
        this.inner.poll_next_unpin(cx)
    }
}

/// The state of one websocket connection.
struct Connection<E> {
    shared: Arc<Shared<E>>,
    socket: WebSocket,
    protocol: Protocol,
    /// Whether `connection_init` arrived (a second one is refused).
    init_received: bool,
    /// The connection's data, once acknowledged.
    session: Option<Arc<Data>>,
    init_deadline: Instant,
    init_timer: Pin<Box<Sleep>>,
    /// Fires when the credentials expire.
    expiry: Option<Pin<Box<Sleep>>>,
    keep_alive: Option<Interval>,
    operations: SelectAll<BoxStream<'static, OperationEvent>>,
    active: HashMap<String, Active>,
    next_generation: u64,
}

impl<E: Executor> Connection<E> {
    fn new(shared: Arc<Shared<E>>, socket: WebSocket, protocol: Protocol) -> Self {
        let config = &shared.config;
        let init_deadline = deadline_after(config.connection_init_timeout);
        let keep_alive = (!config.keep_alive_interval.is_zero()).then(|| {
            let period = config.keep_alive_interval;
            let mut interval = tokio::time::interval_at(deadline_after(period), period);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            interval
        });
        Self {
            init_timer: Box::pin(sleep_until(init_deadline)),
            init_deadline,
            shared,
            socket,
            protocol,
            init_received: false,
            session: None,
            expiry: None,
            keep_alive,
            operations: SelectAll::new(),
            active: HashMap::new(),
            next_generation: 0,
        }
    }

    fn config(&self) -> &TransportConfig {
        &self.shared.config
    }

    async fn run(mut self) {
        let end = loop {
            let event = self.next_event().await;
            if let Err(end) = self.handle(event).await {
                break end;
            }
        };
        for active in self.active.values() {
            active.cancel.cancel();
        }
        match end {
            End::Close(code, reason) => {
                let write_timeout = self.config().websocket_write_timeout;
                finish(self.socket, code, &reason, write_timeout).await;
            }
            End::Gone => tracing::debug!("client went away"),
        }
    }

    async fn next_event(&mut self) -> Event {
        let acknowledged = self.session.is_some();
        let expiry = self.expiry.as_mut();
        let keep_alive = self.keep_alive.as_mut().filter(|_| acknowledged);
        tokio::select! {
            () = self.shared.config.shutdown.cancelled() => Event::Shutdown,
            () = &mut self.init_timer, if !acknowledged => Event::InitTimeout,
            () = async {
                match expiry {
                    Some(expiry) => expiry.await,
                    None => std::future::pending().await,
                }
            } => Event::Expired,
            _ = async {
                match keep_alive {
                    Some(interval) => interval.tick().await,
                    None => std::future::pending().await,
                }
            } => Event::KeepAlive,
            Some(event) = self.operations.next(), if !self.operations.is_empty() => {
                Event::Operation(event)
            }
            message = self.socket.recv() => Event::Incoming(message),
        }
    }

    async fn handle(&mut self, event: Event) -> Result<(), End> {
        match event {
            Event::Shutdown => Err(End::close(close::GOING_AWAY, "server shutting down")),
            Event::InitTimeout => Err(End::close(close::INIT_TIMEOUT, "Connection initialisation timeout")),
            Event::Expired => self.expire().await,
            Event::KeepAlive => match self.protocol {
                Protocol::TransportWs => self.send(Message::Ping(Default::default())).await,
                Protocol::Legacy => self.send_text(protocol::keep_alive()).await,
            },
            Event::Operation(event) => self.deliver(event).await,
            Event::Incoming(message) => self.receive(message).await,
        }
    }

    async fn receive(&mut self, message: Option<Result<Message, axum::Error>>) -> Result<(), End> {
        let text = match message {
            None => return Err(End::Gone),
            Some(Err(error)) => {
                // Tungstenite reports an oversized message as a capacity error;
                // axum's error type hides the variant, so its text is checked.
                let text = error.to_string();
                tracing::debug!(%error, "websocket read failed");
                return Err(if text.contains("Message too long") || text.contains("Space limit exceeded") {
                    End::close(close::MESSAGE_TOO_BIG, "Message too big")
                } else {
                    End::close(close::PROTOCOL_ERROR, "Protocol error")
                });
            }
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Binary(_))) => {
                return self.bad_message("Binary messages are not supported".to_owned()).await;
            }
            // Websocket-level pings are answered by the library.
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Ok(()),
            Some(Ok(Message::Close(frame))) => {
                tracing::debug!(?frame, "client closed the websocket");
                // Reading on lets the library answer the close handshake.
                let grace = Instant::now() + CLOSE_GRACE;
                while let Ok(Some(Ok(_))) = timeout_at(grace, self.socket.recv()).await {}
                return Err(End::Gone);
            }
        };
        match protocol::parse(self.protocol, text.as_str()) {
            Ok(message) => self.dispatch(message).await,
            Err(reason) => self.bad_message(reason).await,
        }
    }

    async fn dispatch(&mut self, message: ClientMessage) -> Result<(), End> {
        match message {
            ClientMessage::Init(payload) => self.init(payload).await,
            ClientMessage::Ping(payload) => self.send_text(protocol::pong(payload)).await,
            ClientMessage::Pong => Ok(()),
            ClientMessage::Subscribe { id, params } => self.subscribe(id, params).await,
            ClientMessage::Complete { id } => {
                if let Some(active) = self.active.remove(&id) {
                    active.cancel.cancel();
                    tracing::debug!(id, "operation completed by the client");
                    // Legacy clients expect `complete` to acknowledge `stop`.
                    if self.protocol == Protocol::Legacy {
                        self.send_text(protocol::complete(&id)).await?;
                    }
                }
                Ok(())
            }
            ClientMessage::Terminate => Err(End::close(close::NORMAL, "")),
        }
    }

    async fn bad_message(&mut self, reason: String) -> Result<(), End> {
        tracing::debug!(reason, "invalid websocket message");
        if self.protocol == Protocol::Legacy {
            let error = body::error(codes::BAD_REQUEST, reason.clone());
            self.send_text(protocol::connection_error(&error)).await?;
        }
        Err(End::Close(close::BAD_REQUEST, reason))
    }

    async fn init(&mut self, payload: Option<serde_json::Value>) -> Result<(), End> {
        if self.init_received {
            return Err(End::close(close::TOO_MANY_INITS, "Too many initialisation requests"));
        }
        self.init_received = true;
        // The payload is checked within the init deadline too: a slow check
        // must not keep an unauthenticated socket open.
        let verdict = timeout_at(self.init_deadline, self.shared.context.websocket(payload)).await;
        let data = match verdict {
            Err(_) => {
                return Err(End::close(close::INIT_TIMEOUT, "Connection initialisation timeout"));
            }
            Ok(Err(error)) => {
                tracing::debug!(code = error.code, "connection_init refused");
                // A refusal that is not about the credentials must not read as
                // one: clients retry 1011 and 1013, and give up on 4403.
                let (code, reason) = match error.code {
                    codes::INTERNAL_SERVER_ERROR => (close::INTERNAL_ERROR, "Internal error".to_owned()),
                    codes::RATE_LIMITED | codes::AUTH_UNAVAILABLE => {
                        (close::TRY_AGAIN_LATER, format!("Try again later: {}", error.message))
                    }
                    _ => (close::FORBIDDEN, format!("Forbidden: {}", error.message)),
                };
                return self.refuse(body::error(error.code, error.message.clone()), code, reason).await;
            }
            Ok(Ok(data)) => data,
        };
        if let Some(expires_at) = data.expires_at {
            let Ok(left) = (expires_at - chrono::Utc::now()).to_std() else {
                return self
                    .refuse(
                        body::error(codes::UNAUTHENTICATED, "token expired"),
                        close::FORBIDDEN,
                        "Forbidden: token expired".to_owned(),
                    )
                    .await;
            };
            self.expiry = Some(Box::pin(sleep_until(deadline_after(left))));
        }
        self.session = Some(Arc::new(data.data));
        self.send_text(protocol::ack()).await?;
        if self.protocol == Protocol::Legacy {
            // Legacy clients start their keep-alive watchdog on the first `ka`.
            self.send_text(protocol::keep_alive()).await?;
        }
        if let Some(keep_alive) = &mut self.keep_alive {
            keep_alive.reset();
        }
        tracing::debug!("connection acknowledged");
        Ok(())
    }

    /// Refuses the connection (after `connection_error` for legacy).
    async fn refuse(&mut self, error: ServerError, code: u16, reason: String) -> Result<(), End> {
        if self.protocol == Protocol::Legacy {
            self.send_text(protocol::connection_error(&error)).await?;
        }
        Err(End::Close(code, reason))
    }

    async fn subscribe(
        &mut self,
        id: String,
        params: Result<async_graphql::Request, params::ParamsError>,
    ) -> Result<(), End> {
        let Some(session) = self.session.clone() else {
            return Err(End::close(close::UNAUTHORIZED, "Unauthorized"));
        };
        if let Some(previous) = self.active.remove(&id) {
            match self.protocol {
                Protocol::TransportWs => {
                    self.active.insert(id.clone(), previous);
                    return Err(End::Close(close::SUBSCRIBER_EXISTS, format!("Subscriber for {id} already exists")));
                }
                // The legacy reference server replaces the operation.
                Protocol::Legacy => previous.cancel.cancel(),
            }
        }
        let request = match params {
            Ok(request) => request,
            // Only legacy defers payload checks here (see `protocol`).
            Err(error) => {
                let error = body::error(codes::BAD_REQUEST, error.to_string());
                return self.send_text(protocol::error(self.protocol, &id, &[error])).await;
            }
        };
        let limit = self.config().max_operations_per_connection;
        if self.active.len() >= limit {
            let error =
                body::error(codes::TOO_MANY_OPERATIONS, format!("this connection already runs {limit} operations"));
            return self.send_text(protocol::error(self.protocol, &id, &[error])).await;
        }
        let prepared = match params::prepare(request, self.config().max_query_bytes) {
            Ok(prepared) => prepared,
            Err(Refused::QueryTooLarge { limit }) => {
                let error =
                    body::error(codes::PAYLOAD_TOO_LARGE, format!("the GraphQL document is longer than {limit} bytes"));
                return self.send_text(protocol::error(self.protocol, &id, &[error])).await;
            }
            Err(Refused::RequestError(error)) => {
                return self.send_request_errors(&id, &[error]).await;
            }
        };
        let span = tracing::info_span!(
            "graphql.ws.operation",
            id = %id,
            graphql.operation.name = prepared.operation_name.as_deref().unwrap_or(""),
            graphql.operation.type = prepared.operation_type.map(|kind| kind.to_string()).unwrap_or_default(),
        );
        span.in_scope(|| tracing::debug!("operation started"));
        let mut request = prepared.request;
        request.data = self.shared.context.operation_data(&session);
        let results = self.shared.executor.execute_stream(request, Some(session));
        let generation = self.next_generation;
        self.next_generation += 1;
        let cancel = CancellationToken::new();
        let event_id = id.clone();
        let events = Instrumented { inner: results, span }
            .map(Some)
            .chain(stream::once(async { None }))
            .take_until(cancel.clone().cancelled_owned())
            .map(move |response| OperationEvent { id: event_id.clone(), generation, response });
        self.operations.push(events.boxed());
        self.active.insert(id, Active { generation, cancel, delivered: false });
        Ok(())
    }

    /// Sends an operation's result or its end.
    async fn deliver(&mut self, event: OperationEvent) -> Result<(), End> {
        let Some(active) = self.active.get_mut(&event.id).filter(|active| active.generation == event.generation) else {
            // The client completed it, or it was replaced.
            return Ok(());
        };
        let Some(mut response) = event.response else {
            self.active.remove(&event.id);
            return self.send_text(protocol::complete(&event.id)).await;
        };
        let first = !std::mem::replace(&mut active.delivered, true);
        let outcome = match body::classify(&mut response) {
            Outcome::RequestError if first => Outcome::RequestError,
            _ => Outcome::Executed,
        };
        if outcome == Outcome::RequestError && self.protocol == Protocol::TransportWs {
            // `error` ends the operation: no `complete` follows.
            if let Some(active) = self.active.remove(&event.id) {
                active.cancel.cancel();
            }
            return self.send_text(protocol::error(self.protocol, &event.id, &response.errors)).await;
        }
        let body = Body::of(&response, outcome);
        self.send_text(protocol::next(self.protocol, &event.id, &body)).await
    }

    /// Request errors raised before execution: `error` for
    /// `graphql-transport-ws`; for legacy, as the reference server does,
    /// `data` with the errors and then `complete`.
    async fn send_request_errors(&mut self, id: &str, errors: &[ServerError]) -> Result<(), End> {
        match self.protocol {
            Protocol::TransportWs => self.send_text(protocol::error(self.protocol, id, errors)).await,
            Protocol::Legacy => {
                let body = Body::errors(errors);
                self.send_text(protocol::next(self.protocol, id, &body)).await?;
                self.send_text(protocol::complete(id)).await
            }
        }
    }

    /// The credentials expired: end every operation, then the connection.
    async fn expire(&mut self) -> Result<(), End> {
        tracing::debug!(operations = self.active.len(), "credentials expired");
        let ids: Vec<String> = self
            .active
            .drain()
            .map(|(id, active)| {
                active.cancel.cancel();
                id
            })
            .collect();
        let error = body::error(codes::UNAUTHENTICATED, "token expired");
        for id in ids {
            self.send_text(protocol::error(self.protocol, &id, std::slice::from_ref(&error))).await?;
        }
        Err(End::close(close::FORBIDDEN, "token expired"))
    }

    async fn send_text(&mut self, text: String) -> Result<(), End> {
        self.send(Message::Text(text.into())).await
    }

    /// Writes a message within the write timeout; a client that does not
    /// read is dropped rather than left holding its operations.
    async fn send(&mut self, message: Message) -> Result<(), End> {
        match timeout(self.config().websocket_write_timeout, self.socket.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => {
                tracing::debug!(%error, "websocket write failed");
                Err(End::Gone)
            }
            Err(_) => {
                tracing::debug!("websocket write timed out");
                Err(End::Gone)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_fit_a_frame() {
        assert_eq!(truncate_reason("short"), "short");
        let long = "é".repeat(100);
        let cut = truncate_reason(&long);
        assert!(cut.len() <= 123);
        assert!(long.starts_with(cut));
    }
}
