//! The webhook stream: given events, when a command, then events or a
//! refusal.

use chrono::{DateTime, Utc};
use tandem_domain::webhook::{
    self, CreateEndpoint, Endpoint, EndpointChanges, EndpointRole, EndpointUrl, WebhookCommand, WebhookEvent,
};
use tandem_domain::{DomainError, WebhookEndpointId};
use uuid::Uuid;

use crate::support::lt;

fn url(u: &str) -> EndpointUrl {
    EndpointUrl::parse("url", u).expect("a valid URL")
}

fn create(id: WebhookEndpointId, types: &[&str]) -> WebhookCommand {
    WebhookCommand::Create(CreateEndpoint {
        endpoint_id: id,
        url: url("https://hooks.example.com/a"),
        event_types: types.iter().map(|t| (*t).to_owned()).collect(),
        description: lt("HR sync"),
        role: EndpointRole::Integrator,
        secret_id: Uuid::from_u128(1),
    })
}

fn given(events: &[WebhookEvent]) -> Endpoint {
    events.iter().fold(Endpoint::default(), webhook::evolve)
}

fn created(id: WebhookEndpointId) -> Vec<WebhookEvent> {
    webhook::decide(&Endpoint::default(), create(id, &["PersonLeft", "PairFormed", "PersonLeft"])).expect("created")
}

fn until() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).expect("a time")
}

#[test]
fn creation_keeps_the_event_types_sorted_once_and_names_the_secret() {
    let id = WebhookEndpointId::new();
    let events = created(id);
    let [WebhookEvent::WebhookEndpointCreated(e)] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!(e.event_types, ["PairFormed", "PersonLeft"]);
    assert_eq!(e.secret_id, Uuid::from_u128(1));
    let state = given(&events);
    assert_eq!(
        webhook::decide(&state, create(id, &["PairFormed"])),
        Err(DomainError::AlreadyExists { entity: "webhook endpoint" })
    );
}

#[test]
fn event_types_must_be_known_and_deliverable() {
    let id = WebhookEndpointId::new();
    for types in [&[][..], &["NoSuchEvent"][..], &["WebhookEndpointCreated"][..]] {
        let refused = webhook::decide(&Endpoint::default(), create(id, types)).expect_err("refused");
        assert_eq!(refused.field(), Some("eventTypes"), "{types:?}");
    }
}

#[test]
fn urls_are_absolute_http_or_https_without_spaces() {
    for bad in
        ["", "hooks.example.com", "ftp://x.org/", "https://", "https:///path", "https://a b.org/", "https://x.org/\n"]
    {
        assert_eq!(EndpointUrl::parse("url", bad).expect_err(bad).field(), Some("url"), "{bad:?}");
    }
    assert!(EndpointUrl::parse("url", &format!("https://x.org/{}", "a".repeat(3000))).is_err());
    assert!(EndpointUrl::parse("url", "HTTPS://Hooks.Example.com:8443/a?b=c").is_ok());
}

#[test]
fn an_update_records_only_what_changes() {
    let id = WebhookEndpointId::new();
    let state = given(&created(id));
    let same = EndpointChanges {
        url: Some(url("https://hooks.example.com/a")),
        event_types: Some(vec!["PersonLeft".into(), "PairFormed".into()]),
        description: Some(lt("HR sync")),
    };
    assert_eq!(webhook::decide(&state, WebhookCommand::Update { endpoint_id: id, changes: same }), Ok(vec![]));
    let changes = EndpointChanges { url: Some(url("https://hooks.example.com/b")), ..EndpointChanges::default() };
    let events = webhook::decide(&state, WebhookCommand::Update { endpoint_id: id, changes: changes.clone() }).unwrap();
    let [WebhookEvent::WebhookEndpointUpdated(u)] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!(u.changes, changes);
    assert_eq!(webhook::evolve(state, &events[0]).url, Some(url("https://hooks.example.com/b")));
}

#[test]
fn a_rotation_keeps_the_previous_secret_until_a_time() {
    let id = WebhookEndpointId::new();
    let state = given(&created(id));
    let rotate = |secret: u128| WebhookCommand::RotateSecret {
        endpoint_id: id,
        secret_id: Uuid::from_u128(secret),
        previous_valid_until: until(),
    };
    assert_eq!(webhook::decide(&state, rotate(1)).expect_err("the same secret").field(), Some("secretId"));
    let events = webhook::decide(&state, rotate(2)).unwrap();
    let state = webhook::evolve(state, &events[0]);
    assert_eq!(state.secret_id, Some(Uuid::from_u128(2)));
    assert_eq!(state.previous_secret, Some((Uuid::from_u128(1), until())));
}

#[test]
fn nothing_changes_a_disabled_endpoint_and_an_unknown_one_is_not_found() {
    let id = WebhookEndpointId::new();
    let mut events = created(id);
    events.extend(webhook::decide(&given(&events), WebhookCommand::Disable { endpoint_id: id }).unwrap());
    let state = given(&events);
    assert!(state.disabled);
    assert_eq!(webhook::decide(&state, WebhookCommand::Disable { endpoint_id: id }), Ok(vec![]));
    let redeliver = WebhookCommand::Redeliver { endpoint_id: id, after: "1-2".into() };
    assert_eq!(webhook::decide(&state, redeliver.clone()), Err(DomainError::WebhookEndpointDisabled(id)));
    assert_eq!(webhook::decide(&Endpoint::default(), redeliver), Err(DomainError::WebhookEndpointNotFound(id)));
}

#[test]
fn a_redelivery_names_a_cursor() {
    let id = WebhookEndpointId::new();
    let state = given(&created(id));
    let bad = WebhookCommand::Redeliver { endpoint_id: id, after: "1-2; drop".into() };
    assert_eq!(webhook::decide(&state, bad).expect_err("refused").field(), Some("after"));
    let events = webhook::decide(&state, WebhookCommand::Redeliver { endpoint_id: id, after: "10-20".into() }).unwrap();
    assert_eq!(webhook::evolve(state, &events[0]).redeliveries, 1);
}
