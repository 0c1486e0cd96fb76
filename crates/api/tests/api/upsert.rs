//! `upsertPeople` through the real HTTP server: people keyed by external id,
//! managers referenced within the call in any order, a result per person
//! with coded errors at their field path, and re-sending appends nothing.

use serde_json::{Value, json};
use sqlx::PgPool;
use tandem_api::auth::Role;

use crate::support::TestServer;

const UPSERT: &str = "mutation($i: UpsertPeopleInput!) { upsertPeople(input: $i) {
    consistent created updated unchanged failed
    results { index status personId error { code field message }
              person { externalId title level manager { externalId } } } } }";

async fn event_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(pool).await.unwrap()
}

fn person(ext: &str, manager: Option<&str>) -> Value {
    let mut p = json!({"externalId": ext, "name": format!("Person {ext}"), "email": format!("{ext}@example.com"),
        "title": "Engineer", "department": "Engineering", "level": 3, "hiredOn": "2022-01-01"});
    if let Some(m) = manager {
        p["managerExternalId"] = json!(m);
    }
    p
}

async fn upsert(s: &TestServer, token: &str, people: Value, effective_on: &str) -> Value {
    let (status, body) =
        s.post(Some(token), UPSERT, json!({"i": {"people": people, "effectiveOn": effective_on}})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["upsertPeople"].clone()
}

#[sqlx::test(migrations = "../../migrations")]
async fn people_are_created_then_unchanged_then_updated_on_the_effective_date(pool: PgPool) {
    let s = TestServer::start(pool.clone()).await;
    let token = s.token(&[Role::Integrator], "hris-sync");
    // Reports before their managers.
    let people = json!([person("u-3", Some("u-2")), person("u-2", Some("U-1")), person("u-1", None)]);
    let first = upsert(&s, &token, people.clone(), "2026-01-01").await;
    assert_eq!((first["created"].as_i64(), first["consistent"].as_bool()), (Some(3), Some(true)), "{first}");
    let results = first["results"].as_array().unwrap();
    assert_eq!(results.iter().map(|r| r["index"].as_i64().unwrap()).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert_eq!(results[0]["person"]["manager"]["externalId"], "u-2");
    assert_eq!(results[1]["person"]["manager"]["externalId"], "u-1");
    assert_eq!(event_count(&pool).await, 3);

    let again = upsert(&s, &token, people, "2026-01-01").await;
    assert_eq!(again["unchanged"].as_i64(), Some(3), "{again}");
    assert_eq!(event_count(&pool).await, 3);

    let mut promoted = person("u-3", Some("u-1"));
    promoted["title"] = json!("Senior Engineer");
    promoted["level"] = json!(4);
    let changed = upsert(&s, &token, json!([promoted]), "2026-06-01").await;
    assert_eq!(changed["results"][0]["status"], "UPDATED", "{changed}");
    assert_eq!(changed["results"][0]["person"]["title"], "Senior Engineer");
    assert_eq!(event_count(&pool).await, 4);
    // The dated history: before the effective date, the old manager.
    let q = "query($id: ID!) { person(id: $id) { before: orgOn(date: \"2026-05-31\") { level manager { externalId } }
                                                after: orgOn(date: \"2026-06-01\") { level manager { externalId } } } }";
    let id = changed["results"][0]["personId"].clone();
    let history = s.client().ok(&token, q, json!({"id": id})).await;
    assert_eq!(history["person"]["before"]["manager"]["externalId"], "u-2", "{history}");
    assert_eq!(history["person"]["before"]["level"], 3, "{history}");
    assert_eq!(history["person"]["after"]["manager"]["externalId"], "u-1", "{history}");

    // Leaving and rejoining.
    let left = upsert(&s, &token, json!([{"externalId": "u-3", "active": false}]), "2026-07-01").await;
    assert_eq!(left["results"][0]["status"], "LEFT", "{left}");
    let back = upsert(&s, &token, json!([{"externalId": "u-3", "active": true}]), "2026-08-01").await;
    assert_eq!(back["results"][0]["status"], "REJOINED", "{back}");
    assert_eq!(event_count(&pool).await, 6);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_refused_person_has_a_coded_error_at_its_field_and_the_others_go_in(pool: PgPool) {
    let s = TestServer::start(pool.clone()).await;
    let token = s.admin();
    let mut bad_mail = person("e-1", None);
    bad_mail["email"] = json!("not-an-email");
    let mut nul = person("e-2", None);
    nul["name"] = json!("Nul\u{0}Name");
    let mut new_without_title = person("e-9", None);
    new_without_title.as_object_mut().unwrap().remove("title");
    let people = json!([
        person("ok-1", None),
        bad_mail,
        nul,
        person("e-3", Some("nobody")),
        person("c-1", Some("c-2")),
        person("c-2", Some("c-1")),
        person("d-1", None),
        person("D-1", None),
        person("e-4", Some("e-1")),
        new_without_title,
        person("ok-2", Some("ok-1")),
    ]);
    let out = upsert(&s, &token, people, "2026-01-01").await;
    let expect = [
        (1, "INVALID_VALUE", "people.1.email"),
        (2, "INVALID_VALUE", "people.2.name"),
        (3, "UNKNOWN_MANAGER", "people.3.managerExternalId"),
        (4, "MANAGEMENT_CYCLE", "people.4.managerExternalId"),
        (5, "MANAGEMENT_CYCLE", "people.5.managerExternalId"),
        (6, "DUPLICATE_EXTERNAL_ID", "people.6.externalId"),
        (7, "DUPLICATE_EXTERNAL_ID", "people.7.externalId"),
        (8, "UNKNOWN_MANAGER", "people.8.managerExternalId"),
        (9, "REQUIRED", "people.9.title"),
    ];
    let results = out["results"].as_array().unwrap();
    for (i, code, field) in expect {
        let r = &results[i];
        assert_eq!(
            (r["status"].as_str(), r["error"]["code"].as_str(), r["error"]["field"].as_str()),
            (Some("FAILED"), Some(code), Some(field)),
            "{r}"
        );
        assert!(r["person"].is_null());
        for value in ["not-an-email", "nobody", "Nul"] {
            assert!(!r["error"]["message"].as_str().unwrap().contains(value), "{r}");
        }
    }
    assert_eq!(results[0]["status"], "CREATED");
    assert_eq!(results[10]["status"], "CREATED");
    assert_eq!(results[10]["person"]["manager"]["externalId"], "ok-1");
    assert_eq!((out["created"].as_i64(), out["failed"].as_i64()), (Some(2), Some(9)));
    assert_eq!(event_count(&pool).await, 2);
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_batch_is_capped_and_only_integrators_and_admins_upsert(pool: PgPool) {
    let s = TestServer::start(pool.clone()).await;
    let many: Vec<Value> = (0..501).map(|i| person(&format!("m-{i}"), None)).collect();
    let (_, body) = s.post(Some(&s.admin()), UPSERT, json!({"i": {"people": many}})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "people", "{body}");
    let (_, body) = s.post(Some(&s.admin()), UPSERT, json!({"i": {"people": [], "effectiveOn": "0000-01-01"}})).await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "effectiveOn", "{body}");
    for role in [Role::Analyst, Role::Coordinator] {
        let (_, body) =
            s.post(Some(&s.token(&[role], "x")), UPSERT, json!({"i": {"people": [person("f-1", None)]}})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN", "{body}");
    }
    assert_eq!(event_count(&pool).await, 0);
}
