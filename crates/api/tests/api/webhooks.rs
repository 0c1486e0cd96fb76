//! Webhook endpoints over GraphQL: the SSRF guard and every refused input
//! answer `BAD_USER_INPUT` naming the field and write nothing; the secret
//! is shown once, in the Standard Webhooks form, and never stored in the
//! log; integrators see and manage integrator endpoints only; every change
//! is an event of the endpoint's stream.

use serde_json::{Value, json};
use sqlx::PgPool;
use tandem_api::auth::Role;

use crate::support::TestServer;

const CREATE: &str = "mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) {
    consistent secret endpoint { id url eventTypes description role status previousSecretValidUntil } } }";
const ROTATE: &str = "mutation($i: RotateWebhookSecretInput!) { rotateWebhookSecret(input: $i) {
    secret endpoint { id previousSecretValidUntil } } }";

fn create(url: &str) -> Value {
    json!({"i": {"url": url, "eventTypes": ["PairFormed", "PersonLeft"], "description": "HR sync"}})
}

fn error(body: &Value) -> (String, String) {
    let ext = &body["errors"][0]["extensions"];
    (ext["code"].as_str().unwrap_or_default().to_owned(), ext["field"].as_str().unwrap_or_default().to_owned())
}

async fn webhook_events(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE stream_type = 'webhook'").fetch_one(pool).await.unwrap()
}

#[sqlx::test(migrations = "../../migrations")]
async fn refused_urls_and_inputs_are_bad_user_input_and_write_nothing(pool: PgPool) {
    let s = TestServer::start(pool.clone()).await;
    let admin = s.admin();
    let cases: Vec<(Value, &str)> = vec![
        (create("http://hooks.example.com/x"), "url"),
        (create("https://127.0.0.1/x"), "url"),
        (create("https://10.0.0.8/x"), "url"),
        (create("https://169.254.169.254/latest/meta-data"), "url"),
        (create("https://[::1]/x"), "url"),
        (create("https://[fd12::1]/x"), "url"),
        (create("https://[::ffff:192.168.0.1]/x"), "url"),
        (create("https://localhost:8443/x"), "url"),
        (create("https://user:pw@hooks.example.com/x"), "url"),
        (create("ftp://hooks.example.com/x"), "url"),
        (create("not a url"), "url"),
        (create(&format!("https://hooks.example.com/{}", "x".repeat(3000))), "url"),
        (json!({"i": {"url": "https://hooks.example.com/x", "eventTypes": []}}), "eventTypes"),
        (json!({"i": {"url": "https://hooks.example.com/x", "eventTypes": ["NoSuchEvent"]}}), "eventTypes"),
        (json!({"i": {"url": "https://hooks.example.com/x", "eventTypes": ["WebhookEndpointCreated"]}}), "eventTypes"),
    ];
    for (vars, field) in cases {
        let (_, body) = s.post(Some(&admin), CREATE, vars.clone()).await;
        assert_eq!(error(&body), ("BAD_USER_INPUT".to_owned(), field.to_owned()), "{vars}: {body:#}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(
            !message.contains("example.com") && !message.contains("127.0.0.1"),
            "the input is not echoed: {message}"
        );
    }
    assert_eq!(webhook_events(&pool).await, 0);

    // An update is checked the same way.
    let id =
        s.ok(&admin, CREATE, create("https://hooks.example.com/x")).await["createWebhookEndpoint"]["endpoint"]["id"]
            .clone();
    let (_, body) = s
        .post(
            Some(&admin),
            "mutation($i: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(input: $i) { position } }",
            json!({"i": {"endpointId": id, "url": "https://192.168.1.10/hook"}}),
        )
        .await;
    assert_eq!(error(&body), ("BAD_USER_INPUT".to_owned(), "url".to_owned()), "{body:#}");
    let (_, body) = s
        .post(
            Some(&admin),
            "mutation($i: RedeliverWebhooksInput!) { redeliverWebhooks(input: $i) { position } }",
            json!({"i": {"endpointId": id, "after": "yesterday"}}),
        )
        .await;
    assert_eq!(error(&body), ("BAD_USER_INPUT".to_owned(), "after".to_owned()), "{body:#}");
    assert_eq!(webhook_events(&pool).await, 1);
    s.stop().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_secret_is_shown_once_and_never_stored_in_the_log(pool: PgPool) {
    let s = TestServer::start(pool.clone()).await;
    let admin = s.admin();
    let vars = json!({"i": {"url": "https://hooks.example.com/x", "eventTypes": ["PersonLeft", "PairFormed", "PersonLeft"],
        "idempotencyKey": "create-hook-1"}});
    let first = s.ok(&admin, CREATE, vars.clone()).await["createWebhookEndpoint"].clone();
    assert_eq!(first["consistent"], true);
    let secret = first["secret"].as_str().unwrap().to_owned();
    let key = secret.strip_prefix("whsec_").expect("the Standard Webhooks form");
    assert_eq!(key.len(), 44, "base64 of 32 bytes");
    let ep = &first["endpoint"];
    assert_eq!(ep["eventTypes"], json!(["PairFormed", "PersonLeft"]));
    assert_eq!((ep["role"].as_str(), ep["status"].as_str()), (Some("ADMIN"), Some("ACTIVE")));
    // The same request again returns the same endpoint and secret.
    let again = s.ok(&admin, CREATE, vars).await["createWebhookEndpoint"].clone();
    assert_eq!((&again["endpoint"]["id"], &again["secret"]), (&ep["id"], &first["secret"]));

    let rotated = s.ok(&admin, ROTATE, json!({"i": {"endpointId": ep["id"]}})).await["rotateWebhookSecret"].clone();
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert!(rotated["endpoint"]["previousSecretValidUntil"].is_string());

    // Neither secret is anywhere in the log, nor in the secrets table in clear.
    let log: Vec<String> = sqlx::query_scalar("SELECT data::text FROM events").fetch_all(&pool).await.unwrap();
    let sealed: Vec<Vec<u8>> = sqlx::query_scalar("SELECT sealed FROM webhook_secrets").fetch_all(&pool).await.unwrap();
    for s in [&secret, &new_secret] {
        let b64 = s.strip_prefix("whsec_").unwrap();
        assert!(log.iter().all(|d| !d.contains(b64)), "a secret in the log");
        assert!(sealed.iter().all(|b| !String::from_utf8_lossy(b).contains(b64)));
    }
    let types: Vec<String> =
        sqlx::query_scalar("SELECT event_type FROM events WHERE stream_type = 'webhook' ORDER BY position")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(types, ["WebhookEndpointCreated", "WebhookSecretRotated"]);
    s.stop().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn integrators_manage_integrator_endpoints_only(pool: PgPool) {
    let s = TestServer::start(pool.clone()).await;
    let admin = s.admin();
    let integrator = s.token(&[Role::Integrator], "hris-sync");
    let admins = s.ok(&admin, CREATE, create("https://hooks.example.com/admin")).await["createWebhookEndpoint"]["endpoint"]
        ["id"]
        .clone();
    // An integrator endpoint is shown person events only, so it takes no other.
    let (_, body) = s.post(Some(&integrator), CREATE, create("https://hooks.example.com/hris")).await;
    assert_eq!(error(&body), ("BAD_USER_INPUT".to_owned(), "eventTypes".to_owned()), "{body:#}");
    let person_events =
        json!({"i": {"url": "https://hooks.example.com/hris", "eventTypes": ["PersonLeft", "PersonRegistered"]}});
    let theirs = s.ok(&integrator, CREATE, person_events).await["createWebhookEndpoint"].clone();
    assert_eq!(theirs["endpoint"]["role"], "INTEGRATOR");
    let (_, body) = s
        .post(
            Some(&integrator),
            CREATE,
            json!({"i": {"url": "https://hooks.example.com/x", "eventTypes": ["PairFormed"], "role": "ADMIN"}}),
        )
        .await;
    assert_eq!(error(&body), ("BAD_USER_INPUT".to_owned(), "role".to_owned()), "{body:#}");

    let listed = s.ok(&integrator, "{ webhookEndpoints { edges { node { id role } } } }", json!({})).await;
    let ids: Vec<&Value> =
        listed["webhookEndpoints"]["edges"].as_array().unwrap().iter().map(|e| &e["node"]["id"]).collect();
    assert_eq!(ids, [&theirs["endpoint"]["id"]]);
    let all = s.ok(&admin, "{ webhookEndpoints { edges { node { id } } } }", json!({})).await;
    assert_eq!(all["webhookEndpoints"]["edges"].as_array().unwrap().len(), 2);
    // The admin's endpoint does not exist for the integrator.
    let (_, body) = s.post(Some(&integrator), ROTATE, json!({"i": {"endpointId": admins}})).await;
    assert_eq!(error(&body).0, "NOT_FOUND", "{body:#}");
    let (_, body) = s
        .post(
            Some(&integrator),
            "query($id: ID!) { webhookDeliveries(endpointId: $id) { edges { node { id } } } }",
            json!({"id": admins}),
        )
        .await;
    assert_eq!(error(&body).0, "NOT_FOUND", "{body:#}");

    // Disabled for good: a later change is a conflict, and nothing is written.
    let disabled = s
        .ok(
            &admin,
            "mutation($i: DisableWebhookEndpointInput!) { disableWebhookEndpoint(input: $i) { endpoint { status } } }",
            json!({"i": {"endpointId": admins}}),
        )
        .await;
    assert_eq!(disabled["disableWebhookEndpoint"]["endpoint"]["status"], "DISABLED");
    let (_, body) = s.post(Some(&admin), ROTATE, json!({"i": {"endpointId": admins}})).await;
    assert_eq!(error(&body).0, "CONFLICT", "{body:#}");
    assert_eq!(body["errors"][0]["extensions"]["reason"], "WEBHOOK_ENDPOINT_DISABLED");
    s.stop().await;
}
