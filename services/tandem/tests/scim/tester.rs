//! scim2-tester against the real server, and integrator tokens.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::{database_url, integrator_token, serve, tandem};

/// A venv under the target directory with the pinned scim2-tester.
fn venv() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scim2-tester-venv");
    let python = dir.join("bin/python");
    let requirements = root.join("conformance/scim/requirements.txt");
    let stamp = dir.join("installed.txt");
    let wanted = std::fs::read_to_string(&requirements).unwrap();
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        let status = std::process::Command::new("python3").args(["-m", "venv"]).arg(&dir).status().unwrap();
        assert!(status.success(), "python3 -m venv failed: install python3-venv");
        let status = std::process::Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "-r"])
            .arg(&requirements)
            .status()
            .unwrap();
        assert!(status.success(), "installing scim2-tester failed");
        std::fs::write(&stamp, wanted).unwrap();
    }
    python
}

/// Checks of scim2-tester 0.5.2 that do not succeed, as (check, text of
/// its reason), each a dispute of the checker with its reason:
/// - `check_remove_attribute` of `active`: RFC 7644 3.5.2.2 makes a removed
///   single-valued attribute unassigned, and Tandem has no unassigned
///   state (every person is in the organisation or has left), so the
///   removal is refused with 400 `mutability`. Declaring `active` required
///   (RFC 7643 2.2) would make the checker skip it, but the checker then
///   creates the managers it references with a random `active`, and a
///   person who has left cannot be made anyone's manager in Tandem: half
///   of the manager checks would fail at random instead.
const KNOWN_GAPS: &[(&str, &str)] = &[("check_remove_attribute", "'active'")];

fn known_gap(r: &Value) -> bool {
    let title = r["title"].as_str().unwrap_or_default();
    let reason = r["reason"].as_str().unwrap_or_default();
    KNOWN_GAPS.iter().any(|(t, why)| *t == title && reason.contains(why))
}

#[sqlx::test(migrations = "../../migrations")]
async fn scim2_tester_passes_every_check(pool: PgPool) {
    let server = serve(&pool).await;
    let (token, _) = integrator_token().await;
    let python = venv();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/scim/check.py");
    let out = tokio::process::Command::new(&python).arg(&script).arg(&server.url).arg(&token).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let results: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut failed = Vec::new();
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for r in &results {
        let status = r["status"].as_str().unwrap().to_owned();
        *counts.entry(status.clone()).or_default() += 1;
        if status != "SUCCESS" && !known_gap(r) {
            failed.push(r.clone());
        }
    }
    eprintln!("scim2-tester: {counts:?}");
    assert!(results.len() > 20, "too few checks ran: {stdout}");
    assert!(counts.get("SUCCESS").copied().unwrap_or(0) > 20, "{counts:?}");
    assert!(failed.is_empty(), "checks that did not succeed:\n{failed:#?}");
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_revoked_token_is_refused_without_a_restart(pool: PgPool) {
    let server = serve(&pool).await;
    let (token, jti) = integrator_token().await;
    let (other, _) = integrator_token().await;
    let http = reqwest::Client::new();
    let users = format!("{}/Users", server.url);
    let get = |t: &str| http.get(&users).bearer_auth(t).send();
    assert_eq!(get(&token).await.unwrap().status(), 200);

    let (out, err, ok) = tandem(&["token", "revoke", &jti, "--reason", "test"], Some(&database_url(&pool))).await;
    assert!(ok && out.contains("revoked"), "{out}\n{err}");
    let (again, _, ok) = tandem(&["token", "revoke", &jti], Some(&database_url(&pool))).await;
    assert!(ok && again.contains("already revoked"), "{again}");

    // Each replica re-reads the deny list at most a second after the last read.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = get(&token).await.unwrap();
        if r.status() == 401 {
            assert_eq!(r.headers()["content-type"], "application/scim+json");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["status"], "401");
            assert!(body["detail"].as_str().unwrap().contains("revoked"), "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "the revoked token still works");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The same deny list guards GraphQL; other tokens are unaffected.
    let gql = http
        .post(format!("http://127.0.0.1:{}/graphql", server.port))
        .bearer_auth(&token)
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(gql.status(), 401);
    assert_eq!(get(&other).await.unwrap().status(), 200);
}

#[tokio::test]
async fn integrator_tokens_live_up_to_a_year_and_others_do_not() {
    let (_, err, ok) = tandem(&["token", "--role", "integrator", "--ttl", "365d"], None).await;
    assert!(ok, "{err}");
    let (_, err, ok) = tandem(&["token", "--role", "admin", "--sub", "a", "--ttl", "365d"], None).await;
    assert!(!ok && err.contains("2592000"), "{err}");
    let (_, err, ok) = tandem(&["token", "--role", "integrator", "--ttl", "400d"], None).await;
    assert!(!ok, "{err}");
    let (_, err, ok) = tandem(&["token", "--role", "participant", "--ttl", "1h"], None).await;
    assert!(!ok && err.contains("--sub"), "{err}");
}

#[sqlx::test(migrations = "../../migrations")]
async fn scim_needs_the_integrator_or_admin_role(pool: PgPool) {
    let server = serve(&pool).await;
    let http = reqwest::Client::new();
    let users = format!("{}/Users", server.url);
    let r = http.get(&users).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["content-type"], "application/scim+json");
    let (analyst, _, ok) = tandem(&["token", "--role", "analyst"], None).await;
    assert!(ok);
    let r = http.get(&users).bearer_auth(analyst).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error");
    let (admin, _, _) = tandem(&["token", "--role", "admin", "--sub", "root"], None).await;
    assert_eq!(http.get(&users).bearer_auth(admin).send().await.unwrap().status(), 200);
}
