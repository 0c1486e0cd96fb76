//! The SCIM protocol over HTTP: filters, paging, sorting, attribute
//! selection, ETags and preconditions, media types, errors, DELETE, Groups,
//! and userName uniqueness under racing creates.

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::{Server, integrator_token, serve};

fn user(name: &str, title: &str, level: i64) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": format!("{name}@example.com"),
        "displayName": name,
        "title": title,
        "emails": [{"value": format!("{name}@example.com")}],
        "urn:ietf:params:scim:schemas:extension:tandem:2.0:User": {"level": level},
    })
}

async fn create(s: &Server, token: &str, body: Value) -> (String, String) {
    let (status, h, b) = s.scim(token, Method::POST, "/Users", Some(body), &[]).await;
    assert_eq!(status, 201, "{b:#}");
    assert_eq!(h["content-type"], "application/scim+json");
    assert_eq!(h["location"].to_str().unwrap(), b["meta"]["location"].as_str().unwrap());
    (b["id"].as_str().unwrap().to_owned(), h["etag"].to_str().unwrap().to_owned())
}

fn ids(list: &Value) -> Vec<String> {
    list["Resources"].as_array().unwrap().iter().map(|r| r["displayName"].as_str().unwrap().to_owned()).collect()
}

#[sqlx::test(migrations = "../../migrations")]
async fn queries_filter_sort_page_and_select(pool: PgPool) {
    let s = serve(&pool).await;
    let (t, _) = integrator_token().await;
    for (n, title, level) in
        [("ann", "Engineer", 2), ("bea", "Designer", 5), ("cid", "Engineer", 7), ("dan", "Manager", 9)]
    {
        create(&s, &t, user(n, title, level)).await;
    }
    let q = |query: &str| {
        let s = &s;
        let t = t.clone();
        let path = format!("/Users?{query}");
        async move { s.scim(&t, Method::GET, &path, None, &[]).await }
    };
    let (_, _, l) = q("filter=title+eq+%22engineer%22+and+not+(displayName+sw+%22c%22)").await;
    assert_eq!(ids(&l), vec!["ann"]);
    let (_, _, l) = q("filter=(title+eq+%22Designer%22+or+level+ge+7)&sortBy=displayName&sortOrder=descending").await;
    assert_eq!(ids(&l), vec!["dan", "cid", "bea"]);
    let (_, _, l) = q("filter=emails%5Btype+eq+%22work%22+and+value+ew+%22example.com%22%5D&sortBy=displayName").await;
    assert_eq!(l["totalResults"], 4);
    let (_, _, l) = q("sortBy=urn:ietf:params:scim:schemas:extension:tandem:2.0:User:level&startIndex=2&count=2").await;
    assert_eq!(
        (l["totalResults"].clone(), l["startIndex"].clone(), l["itemsPerPage"].clone()),
        (json!(4), json!(2), json!(2))
    );
    assert_eq!(ids(&l), vec!["bea", "cid"]);
    let (_, _, l) = q("count=0").await;
    assert_eq!((l["totalResults"].clone(), l["Resources"].clone()), (json!(4), json!([])));
    let (_, _, l) = q("attributes=userName&filter=displayName+co+%22nn%22").await;
    let r = &l["Resources"][0];
    assert_eq!(r.as_object().unwrap().keys().cloned().collect::<Vec<_>>(), vec!["id", "schemas", "userName"]);
    let (_, _, l) = q("excludedAttributes=emails,title&filter=displayName+eq+%22ann%22").await;
    assert!(l["Resources"][0].get("emails").is_none() && l["Resources"][0].get("title").is_none());
    assert!(l["Resources"][0].get("userName").is_some());
    // POST /.search takes the same parameters.
    let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "level gt 4", "sortBy": "displayName", "attributes": ["displayName"]});
    let (status, _, l) = s.scim(&t, Method::POST, "/Users/.search", Some(search), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&l), vec!["bea", "cid", "dan"]);
    // Bad filters are SCIM errors.
    for bad in ["filter=userName+eq", "filter=active+gt+true", "filter=(((title+pr"] {
        let (status, h, e) = q(bad).await;
        assert_eq!((status, e["scimType"].clone()), (400, json!("invalidFilter")), "{bad}: {e}");
        assert_eq!(h["content-type"], "application/scim+json");
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn etags_and_preconditions(pool: PgPool) {
    let s = serve(&pool).await;
    let (t, _) = integrator_token().await;
    let (id, etag) = create(&s, &t, user("eve", "Engineer", 3)).await;
    let path = format!("/Users/{id}");
    let (status, _, _) = s.scim(&t, Method::GET, &path, None, &[("if-none-match", &etag)]).await;
    assert_eq!(status, 304);
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "title", "value": "Lead"}]});
    let (status, h, b) = s.scim(&t, Method::PATCH, &path, Some(patch.clone()), &[("if-match", &etag)]).await;
    assert_eq!(status, 200, "{b}");
    let newer = h["etag"].to_str().unwrap().to_owned();
    assert_ne!(newer, etag);
    assert_eq!(b["meta"]["version"], json!(newer));
    // The old version no longer matches: 412, and nothing changes.
    let (status, _, e) = s.scim(&t, Method::PATCH, &path, Some(patch), &[("if-match", &etag)]).await;
    assert_eq!(status, 412, "{e}");
    let (status, _, _) = s.scim(&t, Method::DELETE, &path, None, &[("if-match", &etag)]).await;
    assert_eq!(status, 412);
    let (status, _, b) = s.scim(&t, Method::GET, &path, None, &[("if-none-match", &etag)]).await;
    assert_eq!((status, b["title"].clone()), (200, json!("Lead")));
}

#[sqlx::test(migrations = "../../migrations")]
async fn refusals_are_scim_errors(pool: PgPool) {
    let s = serve(&pool).await;
    let (t, _) = integrator_token().await;
    let (id, _) = create(&s, &t, user("fay", "Engineer", 3)).await;
    let path = format!("/Users/{id}");
    let err =
        |(status, _, b): (u16, reqwest::header::HeaderMap, Value)| (status, b["scimType"].as_str().map(str::to_owned));
    // userName is fixed once the person exists.
    let mut renamed = user("fay2", "Engineer", 3);
    renamed["emails"] = json!([{"value": "fay@example.com"}]);
    assert_eq!(err(s.scim(&t, Method::PUT, &path, Some(renamed), &[]).await), (400, Some("mutability".into())));
    // The same userName in another case is the same user: accepted on PUT.
    let mut same = user("FAY", "Engineer", 3);
    same["emails"] = json!([{"value": "fay@example.com"}]);
    assert_eq!(s.scim(&t, Method::PUT, &path, Some(same), &[]).await.0, 200);
    assert_eq!(
        err(s.scim(&t, Method::POST, "/Users", Some(user("Fay", "x", 1)), &[]).await),
        (409, Some("uniqueness".into()))
    );
    assert_eq!(
        err(s.scim(&t, Method::POST, "/Users", Some(json!({"displayName": "x"})), &[]).await),
        (400, Some("invalidValue".into()))
    );
    assert_eq!(
        err(s.scim(&t, Method::POST, "/Users", Some(json!({"userName": "nomail"})), &[]).await),
        (400, Some("invalidValue".into()))
    );
    let mut bad_level = user("gus", "x", 99);
    bad_level["active"] = json!("perhaps");
    assert_eq!(err(s.scim(&t, Method::POST, "/Users", Some(bad_level), &[]).await), (400, Some("invalidValue".into())));
    let mut self_managed = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": {"value": id}}]});
    assert_eq!(
        err(s.scim(&t, Method::PATCH, &path, Some(self_managed.clone()), &[]).await),
        (400, Some("invalidValue".into()))
    );
    self_managed["Operations"][0]["path"] = json!("emails[value");
    assert_eq!(err(s.scim(&t, Method::PATCH, &path, Some(self_managed), &[]).await), (400, Some("invalidPath".into())));
    let r = reqwest::Client::new()
        .post(format!("{}/Users", s.url))
        .bearer_auth(&t)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let r = reqwest::Client::new()
        .post(format!("{}/Users", s.url))
        .bearer_auth(&t)
        .header("content-type", "application/scim+json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Groups are not served; unknown addresses are SCIM 404s.
    let (status, _, b) = s.scim(&t, Method::GET, "/Groups", None, &[]).await;
    assert_eq!((status, b["status"].clone()), (501, json!("501")));
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "remove", "path": "members[value eq \"2819c223\"]"}]});
    assert_eq!(s.scim(&t, Method::PATCH, "/Groups/abc", Some(body), &[]).await.0, 501);
    assert_eq!(s.scim(&t, Method::GET, "/Nothing", None, &[]).await.0, 404);
    assert_eq!(s.scim(&t, Method::GET, "/Users/not-an-id", None, &[]).await.0, 404);
    // Unknown attributes are ignored, not refused.
    let mut extra = user("hal", "Engineer", 3);
    extra["nickName"] = json!("H");
    extra["urn:example:params:scim:schemas:extension:acme:2.0:User"] = json!({"badge": 7});
    create(&s, &t, extra).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn delete_erases_and_answers_404_after(pool: PgPool) {
    let s = serve(&pool).await;
    let (t, _) = integrator_token().await;
    let (id, _) = create(&s, &t, user("ida", "Engineer", 3)).await;
    let path = format!("/Users/{id}");
    assert_eq!(s.scim(&t, Method::DELETE, &path, None, &[]).await.0, 204);
    assert_eq!(s.scim(&t, Method::GET, &path, None, &[]).await.0, 404);
    assert_eq!(s.scim(&t, Method::DELETE, &path, None, &[]).await.0, 404);
    let (_, _, l) = s.scim(&t, Method::GET, "/Users?filter=userName+eq+%22ida%40example.com%22", None, &[]).await;
    assert_eq!(l["totalResults"], 0);
    let p = s.graphql("query($id: ID!) { person(id: $id) { erased leftOn name } }", json!({"id": id})).await;
    assert_eq!(p["person"]["erased"], true);
    assert_eq!(p["person"]["name"], Value::Null);
}

#[sqlx::test(migrations = "../../migrations")]
async fn racing_creates_of_one_user_name_make_one_user(pool: PgPool) {
    let s = serve(&pool).await;
    let (t, _) = integrator_token().await;
    let spellings =
        ["jo@example.com", "JO@example.com", "Jo@Example.com", "jO@example.COM", "jo@EXAMPLE.com", "JO@EXAMPLE.COM"];
    let mut tasks = Vec::new();
    for u in spellings {
        let body = json!({"userName": u, "emails": [{"value": "jo@example.com"}]});
        let url = format!("{}/Users", s.url);
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let r = reqwest::Client::new()
                .post(url)
                .bearer_auth(t)
                .header("content-type", "application/scim+json")
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let b: Value = r.json().await.unwrap();
            (status, b)
        }));
    }
    let mut created = 0;
    for task in tasks {
        let (status, b) = task.await.unwrap();
        match status {
            201 => created += 1,
            409 => assert_eq!(b["scimType"], "uniqueness", "{b}"),
            other => panic!("{other}: {b}"),
        }
    }
    assert_eq!(created, 1);
    let (_, _, l) = s.scim(&t, Method::GET, "/Users?filter=userName+eq+%22jo%40example.com%22", None, &[]).await;
    assert_eq!(l["totalResults"], 1);
}

#[sqlx::test(migrations = "../../migrations")]
async fn external_ids_are_kept_returned_filtered_and_versioned(pool: PgPool) {
    let s = serve(&pool).await;
    let (t, _) = integrator_token().await;
    let mut body = user("eve", "Engineer", 3);
    body["externalId"] = json!("00u-Okta-1");
    let (id, etag) = create(&s, &t, body).await;
    let path = format!("/Users/{id}");
    let (_, _, got) = s.scim(&t, Method::GET, &path, None, &[]).await;
    assert_eq!(got["externalId"], "00u-Okta-1");
    create(&s, &t, user("fay", "Engineer", 3)).await;

    // Case-exact (RFC 7643 3.1), unlike userName.
    let (_, _, l) = s.scim(&t, Method::GET, "/Users?filter=externalId+eq+%2200u-Okta-1%22", None, &[]).await;
    assert_eq!(ids(&l), vec!["eve"]);
    let (_, _, l) = s.scim(&t, Method::GET, "/Users?filter=externalId+eq+%2200U-OKTA-1%22", None, &[]).await;
    assert_eq!(l["totalResults"], 0);
    let (_, _, l) = s.scim(&t, Method::GET, "/Users?filter=externalId+pr&attributes=externalId", None, &[]).await;
    assert_eq!(l["Resources"][0]["externalId"], "00u-Okta-1", "{l:#}");

    // A change of externalId alone is a new version.
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "externalId", "value": "00u-Okta-2"}]});
    let (status, h, b) = s.scim(&t, Method::PATCH, &path, Some(patch), &[("if-match", &etag)]).await;
    assert_eq!((status, b["externalId"].as_str()), (200, Some("00u-Okta-2")), "{b:#}");
    let changed = h["etag"].to_str().unwrap().to_owned();
    assert_ne!(changed, etag);
    let (status, _, _) = s.scim(&t, Method::GET, &path, None, &[("if-none-match", &changed)]).await;
    assert_eq!(status, 304);

    // Removed, and a control character refused.
    let remove = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "remove", "path": "externalId"}]});
    let (status, h, b) = s.scim(&t, Method::PATCH, &path, Some(remove), &[]).await;
    assert_eq!(status, 200);
    assert!(b.get("externalId").is_none(), "{b:#}");
    assert_ne!(h["etag"].to_str().unwrap(), changed);
    let bad = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "externalId", "value": "a\u{0}b"}]});
    let (status, _, b) = s.scim(&t, Method::PATCH, &path, Some(bad), &[]).await;
    assert_eq!((status, b["scimType"].as_str()), (400, Some("invalidValue")), "{b:#}");

    // `active` cannot be removed: every person is here or has left.
    let remove = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "remove", "path": "active"}]});
    let (status, _, b) = s.scim(&t, Method::PATCH, &path, Some(remove), &[]).await;
    assert_eq!((status, b["scimType"].as_str()), (400, Some("mutability")), "{b:#}");

    // DELETE takes the client's id with the User.
    let (status, _, _) = s.scim(&t, Method::DELETE, &path, None, &[]).await;
    assert_eq!(status, 204);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM scim_external_ids").fetch_one(&pool).await.unwrap();
    assert_eq!(left, 0);
}
