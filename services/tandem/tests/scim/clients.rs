//! Recorded request shapes of Microsoft Entra ID and Okta provisioning
//! (create, update, deactivate, reactivate, manager change), replayed
//! against the real server; the dated org history is then read back
//! through GraphQL.

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::{Server, integrator_token, serve};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const TANDEM: &str = "urn:ietf:params:scim:schemas:extension:tandem:2.0:User";

fn today() -> String {
    chrono_today()
}

fn chrono_today() -> String {
    // The server dates changes by its UTC day.
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let days = i64::try_from(secs / 86_400).unwrap();
    civil(days)
}

/// Days since 1970-01-01 to YYYY-MM-DD (Howard Hinnant's algorithm).
fn civil(z: i64) -> String {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

const PERSON: &str = "query($id: ID!, $on: NaiveDate!, $then: NaiveDate!) { person(id: $id) {
    name email title department level leftOn hiredOn externalId
    manager { id }
    now: orgOn(date: $on) { manager { id } title department }
    before: orgOn(date: $then) { manager { id } title department }
    orgHistory { validFrom validTo title department manager { id } } } }";

async fn person(s: &Server, id: &str) -> Value {
    s.graphql(PERSON, json!({"id": id, "on": today(), "then": "2024-06-01"})).await["person"].clone()
}

async fn create(s: &Server, token: &str, body: Value) -> String {
    let (status, _, b) = s.scim(token, Method::POST, "/Users", Some(body), &[]).await;
    assert_eq!(status, 201, "{b:#}");
    b["id"].as_str().unwrap().to_owned()
}

async fn patch(s: &Server, token: &str, id: &str, ops: Value) -> Value {
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
    let (status, _, b) = s.scim(token, Method::PATCH, &format!("/Users/{id}"), Some(body), &[]).await;
    assert_eq!(status, 200, "{b:#}");
    b
}

/// Entra's body for a new user (attribute mapping defaults), with the
/// hire date mapped to Tandem's extension.
fn entra_user(upn: &str, name: (&str, &str), department: &str, manager: Option<&str>) -> Value {
    let mut enterprise = json!({"department": department, "employeeNumber": "1001", "costCenter": "CC-7"});
    if let Some(m) = manager {
        enterprise["manager"] = json!(m);
    }
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "externalId": upn.split('@').next().unwrap(),
        "userName": upn,
        "active": true,
        "displayName": format!("{} {}", name.0, name.1),
        "emails": [{"primary": true, "type": "work", "value": upn}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": format!("{} {}", name.0, name.1), "familyName": name.1, "givenName": name.0},
        "title": "Engineer",
        "phoneNumbers": [{"type": "mobile", "value": "+1 555 0100"}],
        "preferredLanguage": "en-GB",
        ENTERPRISE: enterprise,
        TANDEM: {"hireDate": "2024-01-15T00:00:00Z", "level": 3},
    })
}

#[sqlx::test(migrations = "../../migrations")]
async fn entra_id_provisioning_cycle(pool: PgPool) {
    let s = serve(&pool).await;
    let (token, _) = integrator_token().await;
    // Entra first looks the user up by userName; then creates.
    let probe = "/Users?filter=userName+eq+%22ada%40contoso.com%22";
    let (status, _, b) = s.scim(&token, Method::GET, probe, None, &[]).await;
    assert_eq!((status, b["totalResults"].clone()), (200, json!(0)), "{b}");
    let boss = create(&s, &token, entra_user("grace@contoso.com", ("Grace", "Hopper"), "Research", None)).await;
    let ada = create(&s, &token, entra_user("ada@contoso.com", ("Ada", "Lovelace"), "Research", Some(&boss))).await;
    let (_, _, b) = s.scim(&token, Method::GET, probe, None, &[]).await;
    assert_eq!(b["totalResults"], 1);
    assert_eq!(b["Resources"][0]["id"], json!(ada));
    assert_eq!(b["Resources"][0][ENTERPRISE]["manager"]["value"], json!(boss));

    // Update: Entra's PascalCase ops, a path-less map of attribute paths,
    // and a value-path address.
    let new_boss = create(&s, &token, entra_user("alan@contoso.com", ("Alan", "Turing"), "Research", None)).await;
    let b = patch(
        &s,
        &token,
        &ada,
        json!([
            {"op": "Replace", "path": "title", "value": "Senior Engineer"},
            {"op": "Replace", "value": {"displayName": "Ada King", "name.familyName": "King",
                ENTERPRISE.to_owned() + ":department": "Analytical Engines"}},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "ada.king@contoso.com"},
            {"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": new_boss},
        ]),
    )
    .await;
    assert_eq!(b["title"], "Senior Engineer");
    // Entra's own id of the user comes back as it was sent.
    assert_eq!(b["externalId"], "ada");
    assert_eq!(b["emails"][0]["value"], "ada.king@contoso.com");
    assert_eq!(b[ENTERPRISE]["manager"]["value"], json!(new_boss));
    let p = person(&s, &ada).await;
    assert_eq!(p["name"], "Ada King");
    assert_eq!(p["email"], "ada.king@contoso.com");
    assert_eq!(p["externalId"], "ada@contoso.com");
    assert_eq!(p["hiredOn"], "2024-01-15");
    // The dated org history: Grace and "Engineer" before today, Alan and
    // "Senior Engineer" from today.
    assert_eq!(p["before"]["manager"]["id"], json!(boss));
    assert_eq!(p["before"]["title"], "Engineer");
    assert_eq!(p["now"]["manager"]["id"], json!(new_boss));
    assert_eq!(p["now"]["department"], "Analytical Engines");
    let history = p["orgHistory"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{history:#?}");
    assert_eq!(history[1]["validFrom"], json!(today()));

    // Deactivate with a string boolean, then reactivate.
    let b = patch(&s, &token, &ada, json!([{"op": "Replace", "path": "active", "value": "False"}])).await;
    assert_eq!(b["active"], false);
    assert_eq!(person(&s, &ada).await["leftOn"], json!(today()));
    // A deactivated user stays readable and filterable.
    let (_, _, l) = s.scim(&token, Method::GET, "/Users?filter=active+eq+false", None, &[]).await;
    assert_eq!(l["totalResults"], 1);
    assert_eq!(l["Resources"][0]["id"], json!(ada));
    let b = patch(&s, &token, &ada, json!([{"op": "Replace", "path": "active", "value": "True"}])).await;
    assert_eq!(b["active"], true);
    assert_eq!(person(&s, &ada).await["leftOn"], Value::Null);

    // Manager removal as Entra sends it.
    patch(
        &s,
        &token,
        &ada,
        json!([{"op": "Remove", "path": format!("{ENTERPRISE}:manager"), "value": [{"value": new_boss}]}]),
    )
    .await;
    assert_eq!(person(&s, &ada).await["manager"], Value::Null);
}

#[sqlx::test(migrations = "../../migrations")]
async fn okta_provisioning_cycle(pool: PgPool) {
    let s = serve(&pool).await;
    let (token, _) = integrator_token().await;
    let okta = |login: &str, first: &str, last: &str| {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": login,
            "name": {"givenName": first, "familyName": last},
            "emails": [{"primary": true, "value": login, "type": "work"}],
            "displayName": format!("{first} {last}"),
            "locale": "en-US",
            "groups": [],
            "password": "never-stored",
            "active": true
        })
    };
    let boss = create(&s, &token, okta("karen@example.com", "Karen", "Jones")).await;
    let mut bob = okta("bob@example.com", "Bob", "Smith");
    bob[ENTERPRISE] = json!({"manager": {"value": boss, "displayName": "Karen Jones"}, "department": "Sales"});
    let bob_id = create(&s, &token, bob.clone()).await;
    // Okta's lookup is case-insensitive, and so is uniqueness.
    let (_, _, l) = s
        .scim(
            &token,
            Method::GET,
            "/Users?filter=userName+eq+%22BOB%40example.com%22&startIndex=1&count=100",
            None,
            &[],
        )
        .await;
    assert_eq!(l["Resources"][0]["id"], json!(bob_id));
    let (status, _, e) = s.scim(&token, Method::POST, "/Users", Some(okta("Bob@Example.com", "B", "S")), &[]).await;
    assert_eq!((status, e["scimType"].clone()), (409, json!("uniqueness")), "{e}");

    // Okta updates with PUT of the whole user.
    let mut put = bob.clone();
    put["id"] = json!(bob_id);
    put["title"] = json!("Account Executive");
    put[ENTERPRISE]["department"] = json!("Enterprise Sales");
    let (status, _, b) = s.scim(&token, Method::PUT, &format!("/Users/{bob_id}"), Some(put.clone()), &[]).await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["title"], "Account Executive");
    // Okta's deactivation: a path-less replace.
    let b = patch(&s, &token, &bob_id, json!([{"op": "replace", "value": {"active": false}}])).await;
    assert_eq!(b["active"], false);
    let p = person(&s, &bob_id).await;
    assert_eq!(p["leftOn"], json!(today()));
    let b = patch(&s, &token, &bob_id, json!([{"op": "replace", "value": {"active": true}}])).await;
    assert_eq!(b["active"], true);
    // Manager change to a new manager given by userName, as a bare string.
    let new_boss = create(&s, &token, okta("lee@example.com", "Lee", "Wong")).await;
    patch(
        &s,
        &token,
        &bob_id,
        json!([{"op": "replace", "path": format!("{ENTERPRISE}:manager"), "value": "lee@example.com"}]),
    )
    .await;
    let p = person(&s, &bob_id).await;
    assert_eq!(p["now"]["manager"]["id"], json!(new_boss));
    assert_eq!(p["now"]["department"], "Enterprise Sales");
    assert_eq!(p["title"], "Account Executive");
    assert_eq!(p["name"], "Bob Smith");
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_configured_termination_date_dates_the_leave(pool: PgPool) {
    let s = serve(&pool).await;
    let (token, _) = integrator_token().await;
    let id = create(&s, &token, entra_user("kay@contoso.com", ("Kay", "Ess"), "Ops", None)).await;
    patch(
        &s,
        &token,
        &id,
        json!([{"op": "Replace", "value": {"active": "False", TANDEM.to_owned() + ":terminationDate": "2025-03-31"}}]),
    )
    .await;
    assert_eq!(person(&s, &id).await["leftOn"], "2025-03-31");
    // A deactivated user may still be corrected, and stays deactivated.
    let b = patch(&s, &token, &id, json!([{"op": "replace", "path": "title", "value": "Retired Engineer"}])).await;
    assert_eq!((b["title"].clone(), b["active"].clone()), (json!("Retired Engineer"), json!(false)));
    let p = person(&s, &id).await;
    assert_eq!((p["title"].clone(), p["leftOn"].clone()), (json!("Retired Engineer"), json!("2025-03-31")));
}
