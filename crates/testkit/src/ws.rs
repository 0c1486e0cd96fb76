//! A graphql-transport-ws client for tests: connect with a subprotocol,
//! send and receive JSON messages, wait for the close frame, and the
//! `connection_init` / `connection_ack` handshake.

use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::header;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The subprotocol Tandem speaks.
pub const TRANSPORT_WS: &str = "graphql-transport-ws";
/// The legacy subprotocol (subscriptions-transport-ws), for refusal tests.
pub const LEGACY_WS: &str = "graphql-ws";

/// How long a test waits for the next frame.
const PATIENCE: Duration = Duration::from_secs(5);

/// Opens a socket to `url`, offering `protocol`; when one is offered, the
/// server must have chosen it.
pub async fn connect(url: &str, protocol: Option<&str>) -> Ws {
    let mut request = url.into_client_request().expect("a websocket URL");
    if let Some(protocol) = protocol {
        request.headers_mut().insert(header::SEC_WEBSOCKET_PROTOCOL, protocol.parse().expect("a header value"));
    }
    let (ws, response) = tokio_tungstenite::connect_async(request).await.expect("open the websocket");
    if let Some(protocol) = protocol {
        assert_eq!(
            response.headers().get(header::SEC_WEBSOCKET_PROTOCOL).and_then(|v| v.to_str().ok()),
            Some(protocol),
            "the server chose another subprotocol"
        );
    }
    ws
}

pub async fn send(ws: &mut Ws, message: Value) {
    send_raw(ws, &message.to_string()).await;
}

pub async fn send_raw(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.expect("send a websocket message");
}

/// The next frame that is not a websocket ping or pong.
pub async fn next_frame(ws: &mut Ws) -> Message {
    loop {
        let frame = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("no message within 5 s")
            .expect("the socket ended without a close frame")
            .expect("a websocket frame");
        if !matches!(frame, Message::Ping(_) | Message::Pong(_)) {
            return frame;
        }
    }
}

/// The next message, which must be JSON text.
pub async fn recv(ws: &mut Ws) -> Value {
    match next_frame(ws).await {
        Message::Text(text) => serde_json::from_str(text.as_str()).expect("a JSON message"),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// The close frame that must come next: its code and reason.
pub async fn expect_close(ws: &mut Ws) -> (u16, String) {
    match next_frame(ws).await {
        Message::Close(Some(CloseFrame { code, reason })) => (u16::from(code), reason.to_string()),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

/// A graphql-transport-ws socket to `url` past `connection_ack`, the init
/// message carrying `payload`.
pub async fn acked(url: &str, payload: Value) -> Ws {
    let mut ws = connect(url, Some(TRANSPORT_WS)).await;
    send(&mut ws, json!({"type": "connection_init", "payload": payload})).await;
    assert_eq!(recv(&mut ws).await, json!({"type": "connection_ack"}));
    ws
}

/// The `subscribe` message of operation `id`.
pub fn subscribe(id: &str, query: &str) -> Value {
    json!({"type": "subscribe", "id": id, "payload": {"query": query}})
}
