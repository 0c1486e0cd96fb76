//! The messages of the two websocket subprotocols: parsing what clients send
//! and encoding what the server sends.
//!
//! * `graphql-transport-ws`
//!   (<https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md>):
//!   `connection_init`/`connection_ack`, `ping`/`pong`, `subscribe`, `next`,
//!   `error`, `complete`. A malformed message closes the socket with 4400, so
//!   parsing validates the way the reference implementation does.
//! * legacy `graphql-ws` (subscriptions-transport-ws): `connection_init`/
//!   `connection_ack`/`connection_error`/`ka`, `start`, `data`, `error`,
//!   `complete`, `stop`, `connection_terminate`.
//!
//! Both map onto one [`ClientMessage`] so the connection loop is shared.

use async_graphql::{Request, ServerError};
use axum::http::HeaderValue;
use serde::Serialize;

use crate::transport::{
    body::Body,
    params::{self, ParamsError},
};

/// A negotiated subprotocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// `graphql-transport-ws`.
    TransportWs,
    /// `graphql-ws`, the subscriptions-transport-ws protocol.
    Legacy,
}

impl Protocol {
    pub(crate) const TRANSPORT_WS: &'static str = "graphql-transport-ws";
    pub(crate) const LEGACY: &'static str = "graphql-ws";

    pub(crate) fn from_header(value: &HeaderValue) -> Option<Self> {
        match value.as_bytes() {
            b"graphql-transport-ws" => Some(Self::TransportWs),
            b"graphql-ws" => Some(Self::Legacy),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::TransportWs => Self::TRANSPORT_WS,
            Self::Legacy => Self::LEGACY,
        }
    }
}

/// A message from a client, in either protocol.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "built once per message and moved once; boxing would only add an allocation"
)]
pub(crate) enum ClientMessage {
    /// `connection_init`, with its payload.
    Init(Option<serde_json::Value>),
    /// `ping` (`graphql-transport-ws`), with its payload to echo.
    Ping(Option<serde_json::Value>),
    /// `pong`: nothing to do.
    Pong,
    /// `subscribe` / `start`. Legacy parameters are checked when handled,
    /// since a bad legacy payload fails the operation, not the socket.
    Subscribe { id: String, params: Result<Request, ParamsError> },
    /// `complete` / `stop`.
    Complete { id: String },
    /// `connection_terminate` (legacy).
    Terminate,
}

type Object = serde_json::Map<String, serde_json::Value>;

/// Parses a text message; the error is the reason to close with (4400).
pub(crate) fn parse(protocol: Protocol, text: &str) -> Result<ClientMessage, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|error| format!("Invalid message received: {error}"))?;
    let serde_json::Value::Object(mut message) = value else {
        return Err("Message is expected to be an object".to_owned());
    };
    let Some(serde_json::Value::String(kind)) = message.remove("type") else {
        return Err("Message is missing the 'type' property".to_owned());
    };
    match protocol {
        Protocol::TransportWs => parse_transport_ws(&kind, message),
        Protocol::Legacy => parse_legacy(&kind, message),
    }
}

fn parse_transport_ws(kind: &str, mut message: Object) -> Result<ClientMessage, String> {
    match kind {
        "connection_init" => Ok(ClientMessage::Init(optional_payload(kind, &mut message)?)),
        "ping" => Ok(ClientMessage::Ping(optional_payload(kind, &mut message)?)),
        "pong" => {
            optional_payload(kind, &mut message)?;
            Ok(ClientMessage::Pong)
        }
        "subscribe" => {
            let id = id(kind, &mut message)?;
            let Some(payload @ serde_json::Value::Object(_)) = message.remove("payload") else {
                return Err(format!("\"{kind}\" message expects the 'payload' property to be an object"));
            };
            // A malformed subscribe payload is a bad message in this protocol.
            let request = params::from_json(payload)
                .map_err(|error| format!("\"{kind}\" message payload is invalid: {error}"))?;
            Ok(ClientMessage::Subscribe { id, params: Ok(request) })
        }
        "complete" => Ok(ClientMessage::Complete { id: id(kind, &mut message)? }),
        "connection_ack" | "next" | "error" => Err(format!("Unexpected message of type {kind} received")),
        other => Err(format!("Invalid message 'type' property \"{other}\"")),
    }
}

fn parse_legacy(kind: &str, mut message: Object) -> Result<ClientMessage, String> {
    match kind {
        // The legacy protocol puts no shape on the init payload.
        "connection_init" => Ok(ClientMessage::Init(message.remove("payload").filter(|payload| !payload.is_null()))),
        "start" => {
            let id = id(kind, &mut message)?;
            let params = params::from_json(message.remove("payload").unwrap_or(serde_json::Value::Null));
            Ok(ClientMessage::Subscribe { id, params })
        }
        "stop" => Ok(ClientMessage::Complete { id: id(kind, &mut message)? }),
        "connection_terminate" => Ok(ClientMessage::Terminate),
        other => Err(format!("Invalid message type \"{other}\"")),
    }
}

fn optional_payload(kind: &str, message: &mut Object) -> Result<Option<serde_json::Value>, String> {
    match message.remove("payload") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(payload @ serde_json::Value::Object(_)) => Ok(Some(payload)),
        Some(_) => {
            Err(format!("\"{kind}\" message expects the 'payload' property to be an object or nullish or missing"))
        }
    }
}

fn id(kind: &str, message: &mut Object) -> Result<String, String> {
    match message.remove("id") {
        Some(serde_json::Value::String(id)) if !id.is_empty() => Ok(id),
        _ => Err(format!("\"{kind}\" message requires a non-empty 'id' property")),
    }
}

/// A message from the server.
#[derive(Debug, Serialize)]
struct Outgoing<'a, P: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<P>,
}

fn encode<P: Serialize>(kind: &'static str, id: Option<&str>, payload: Option<P>) -> String {
    let message = Outgoing { kind, id, payload };
    match serde_json::to_string(&message) {
        Ok(text) => text,
        Err(cause) => {
            // Unreachable for the payloads sent here (GraphQL values and
            // errors); the client still gets a well-formed message.
            tracing::error!(%cause, kind, "could not serialize a websocket message");
            serde_json::json!({
                "type": kind,
                "id": id,
                "payload": [{"message": "internal server error",
                             "extensions": {"code": "INTERNAL_SERVER_ERROR"}}],
            })
            .to_string()
        }
    }
}

/// `connection_ack`.
pub(crate) fn ack() -> String {
    encode::<()>("connection_ack", None, None)
}

/// `ka`, the legacy keep-alive.
pub(crate) fn keep_alive() -> String {
    encode::<()>("ka", None, None)
}

/// `pong`, echoing the ping's payload.
pub(crate) fn pong(payload: Option<serde_json::Value>) -> String {
    encode("pong", None, payload)
}

/// A result of an operation: `next` / `data`.
pub(crate) fn next(protocol: Protocol, id: &str, body: &Body<'_>) -> String {
    let kind = match protocol {
        Protocol::TransportWs => "next",
        Protocol::Legacy => "data",
    };
    encode(kind, Some(id), Some(body))
}

/// The operation failed: `error`. `graphql-transport-ws` carries the list of
/// errors; legacy clients expect one error object.
pub(crate) fn error(protocol: Protocol, id: &str, errors: &[ServerError]) -> String {
    match protocol {
        Protocol::TransportWs => encode("error", Some(id), Some(errors)),
        Protocol::Legacy => encode("error", Some(id), errors.first()),
    }
}

/// `complete`.
pub(crate) fn complete(id: &str) -> String {
    encode::<()>("complete", Some(id), None)
}

/// `connection_error` (legacy), before the socket closes.
pub(crate) fn connection_error(error: &ServerError) -> String {
    encode("connection_error", None, Some(error))
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use serde_json::json;

    use super::*;

    fn reason(protocol: Protocol, text: &str) -> String {
        parse(protocol, text).unwrap_err()
    }

    #[test]
    fn transport_ws_messages_are_validated() {
        let ws = Protocol::TransportWs;
        assert!(reason(ws, "{").starts_with("Invalid message received"));
        assert_eq!(reason(ws, "[]"), "Message is expected to be an object");
        assert_eq!(reason(ws, "{}"), "Message is missing the 'type' property");
        assert_eq!(reason(ws, r#"{"type":"nope"}"#), "Invalid message 'type' property \"nope\"");
        assert_eq!(
            reason(ws, r#"{"type":"subscribe","payload":{"query":"{a}"}}"#),
            "\"subscribe\" message requires a non-empty 'id' property"
        );
        assert!(reason(ws, r#"{"type":"subscribe","id":"1","payload":{"query":1}}"#).contains("`query`"));
        assert!(reason(ws, r#"{"type":"connection_init","payload":"x"}"#).contains("payload"));
        assert_eq!(reason(ws, r#"{"type":"next","id":"1"}"#), "Unexpected message of type next received");
        assert!(matches!(parse(ws, r#"{"type":"connection_init"}"#), Ok(ClientMessage::Init(None))));
        assert!(matches!(parse(ws, r#"{"type":"ping","payload":{"a":1}}"#), Ok(ClientMessage::Ping(Some(_)))));
        assert!(matches!(
            parse(ws, r#"{"type":"subscribe","id":"1","payload":{"query":"{a}"}}"#),
            Ok(ClientMessage::Subscribe { params: Ok(_), .. })
        ));
    }

    #[test]
    fn legacy_messages_defer_payload_checks() {
        let legacy = Protocol::Legacy;
        assert!(matches!(
            parse(legacy, r#"{"type":"start","id":"1","payload":{"query":2}}"#),
            Ok(ClientMessage::Subscribe { params: Err(_), .. })
        ));
        assert!(matches!(parse(legacy, r#"{"type":"connection_terminate"}"#), Ok(ClientMessage::Terminate)));
        assert_eq!(reason(legacy, r#"{"type":"subscribe","id":"1"}"#), "Invalid message type \"subscribe\"");
    }

    #[test]
    fn server_messages_have_the_protocol_shape() {
        let parse = |text: String| serde_json::from_str::<serde_json::Value>(&text).unwrap();
        assert_eq!(parse(ack()), json!({"type": "connection_ack"}));
        assert_eq!(parse(pong(None)), json!({"type": "pong"}));
        assert_eq!(parse(complete("7")), json!({"type": "complete", "id": "7"}));
        let errors = [ServerError::new("no", None)];
        assert_eq!(
            parse(error(Protocol::TransportWs, "1", &errors)),
            json!({"type": "error", "id": "1", "payload": [{"message": "no"}]})
        );
        assert_eq!(
            parse(error(Protocol::Legacy, "1", &errors)),
            json!({"type": "error", "id": "1", "payload": {"message": "no"}})
        );
    }
}
