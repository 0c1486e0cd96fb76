//! The analysts' story on the demo organisation, through the real binary:
//! `tandem demo`, then every export with `tandem export` and over HTTP
//! (`GET /export/events`), the metrics and retention over GraphQL, and the
//! Python checks: DuckDB and pandas read every format as written with the
//! right counts and types and no personal value (`analysis/check_exports.py`),
//! and the retention curves and log-rank test equal lifelines for every
//! interval transform (`analysis/check_survival.py`); and the recipes of
//! docs/ANALYSTS.md give the answers printed there on the documented demo
//! (`analysis/check_recipes.py`). Python runs in the
//! venv `analysis/venv.sh` creates under `target/`; without Python the test
//! fails and says why.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use tandem_api::auth::{AuthConfig, Role, mint};

const SECRET: &str = "analysts-test-secret-0123456789-0123456789";
const SALT: &str = "the analysts' salt, sixteen bytes or more";

fn database_url(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").unwrap();
    let db = pool.connect_options().get_database().unwrap().to_owned();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    format!("{prefix}/{db}")
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    let out = Command::new("bash").arg(root().join("analysis/venv.sh")).output().unwrap();
    assert!(
        out.status.success(),
        "analysis/venv.sh failed; the analysts' checks need Python 3 with venv and pip:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn tandem(url: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(args)
        .env("DATABASE_URL", url)
        .env("TANDEM_MASTER_KEY", "7d1f0c3a9b2e4f6a8c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "tandem {args:?} failed:\n{stderr}");
    stderr
}

fn run_python(script: &str, arg: &Path) -> String {
    let out = Command::new(python()).arg(root().join("analysis").join(script)).arg(arg).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

fn token(role: Role, sub: &str) -> String {
    let config = AuthConfig { hs256_secret: Some(SECRET.to_owned().into()), ..AuthConfig::default() };
    mint(&config, &[role], sub, Duration::from_secs(600)).unwrap()
}

/// Free-text and identifying strings stored in the log, and person ids.
async fn personal(pool: &PgPool) -> (BTreeSet<String>, BTreeSet<String>) {
    const KEYS: &[&str] = &[
        "name",
        "email",
        "externalId",
        "title",
        "location",
        "description",
        "wantsToWorkOn",
        "interests",
        "skills",
        "focus",
        "notes",
        "note",
        "strengths",
        "improvements",
        "reason",
    ];
    fn walk(v: &Value, key: Option<&str>, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => m.iter().for_each(|(k, v)| walk(v, Some(k), out)),
            Value::Array(a) => a.iter().for_each(|v| walk(v, key, out)),
            Value::String(s)
                if key.is_some_and(|k| KEYS.contains(&k))
                    && s.len() >= 6
                    && !s.chars().all(|c| c.is_ascii_uppercase() || c == '_') =>
            {
                out.insert(s.clone());
            }
            _ => {}
        }
    }
    let rows: Vec<(Value,)> = sqlx::query_as("SELECT data FROM events").fetch_all(pool).await.unwrap();
    let mut texts = BTreeSet::new();
    rows.iter().for_each(|(d,)| walk(d, None, &mut texts));
    let ids: Vec<(uuid::Uuid,)> = sqlx::query_as("SELECT DISTINCT stream_id FROM events WHERE stream_type = 'person'")
        .fetch_all(pool)
        .await
        .unwrap();
    (texts, ids.into_iter().map(|(u,)| u.to_string()).collect())
}

struct Server {
    child: tokio::process::Child,
    port: u16,
}

async fn serve(url: &str) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .arg("serve")
        .env("DATABASE_URL", url)
        .env("TANDEM_MASTER_KEY", "7d1f0c3a9b2e4f6a8c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b")
        .env("TANDEM_LISTEN", format!("127.0.0.1:{port}"))
        .env("TANDEM_JWT_SECRET", SECRET)
        .env("TANDEM_EXPORT_SALT", SALT)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if http.get(format!("http://127.0.0.1:{port}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
            return Server { child, port };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server did not come up");
}

async fn graphql(s: &Server, token: &str, query: &str, variables: Value) -> Value {
    reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/graphql", s.port))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn code(body: &Value) -> Option<&str> {
    body["errors"][0]["extensions"]["code"].as_str()
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_demo_organisation_exports_and_studies_as_lifelines_duckdb_and_pandas_expect(pool: PgPool) {
    let url = database_url(&pool);
    tandem(&url, &["demo", "--people", "150", "--months", "6", "--seed", "5"]);
    let dir = root().join(format!("target/analysis-checks/demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let d = |p: &str| dir.join(p).to_string_lossy().into_owned();

    // The exports from the command line.
    for format in ["ndjson", "csv", "parquet"] {
        let out = d(&format!("events.{format}"));
        let log =
            tandem(&url, &["export", "events", "--format", format, "--out", &out, "--pseudonymize", SALT, "--quiet"]);
        assert!(log.contains("resume with --after"), "{log}");
        let facts = d(&format!("facts-{format}"));
        tandem(&url, &["export", "facts", "--format", format, "--out", &facts, "--pseudonymize", SALT]);
    }
    let split = d("events-by-type");
    let log = tandem(
        &url,
        &[
            "export",
            "events",
            "--format",
            "parquet",
            "--split-by-type",
            "--out",
            &split,
            "--pseudonymize",
            SALT,
            "--quiet",
        ],
    );
    assert!(log.contains("resume with --after"), "{log}");
    // A split export goes into a new or empty directory, never over another.
    let refused = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["export", "events", "--format", "parquet", "--split-by-type", "--out", &split, "--pseudonymize", SALT])
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is not empty"));
    tandem(&url, &["export", "retention", "--out", &d("retention.json"), "--pseudonymize", SALT]);

    // The same log over HTTP, as an analyst: the same bytes as the command line.
    let server = serve(&url).await;
    let analyst = token(Role::Analyst, "analyst-1");
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}/export/events", server.port);
    for format in ["ndjson", "csv", "parquet"] {
        let r = http.get(format!("{base}?format={format}")).bearer_auth(&analyst).send().await.unwrap();
        assert_eq!(r.status(), 200, "{format}");
        let end = r.headers().get("tandem-export-end").unwrap().to_str().unwrap().to_owned();
        let body = r.bytes().await.unwrap();
        let cli = std::fs::read(dir.join(format!("events.{format}"))).unwrap();
        assert!(body.as_ref() == cli.as_slice(), "HTTP and CLI exports of {format} differ");
        // Resuming after the end gives nothing more (no new events).
        let r = http.get(format!("{base}?format=ndjson&after={end}")).bearer_auth(&analyst).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.bytes().await.unwrap().is_empty());
    }
    for (who, query, status, want) in [
        (None, "format=csv", 401, "UNAUTHENTICATED"),
        (Some(token(Role::Coordinator, "c")), "format=csv", 403, "FORBIDDEN"),
        (Some(token(Role::Integrator, "i")), "format=csv", 403, "FORBIDDEN"),
        (Some(analyst.clone()), "format=xlsx", 400, "BAD_USER_INPUT"),
        (Some(analyst.clone()), "types=NoSuchEvent", 400, "BAD_USER_INPUT"),
        (Some(analyst.clone()), "after=12-x", 400, "BAD_USER_INPUT"),
        (Some(analyst.clone()), "until=2999-01-01T00:00:00Z", 400, "BAD_USER_INPUT"),
        (Some(analyst.clone()), "limit=3", 400, "BAD_USER_INPUT"),
    ] {
        let mut req = http.get(format!("{base}?{query}"));
        if let Some(t) = &who {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), status, "{query}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(code(&body), Some(want), "{query}: {body}");
    }

    // The metrics and retention over GraphQL.
    let programs: Vec<(uuid::Uuid,)> =
        sqlx::query_as("SELECT DISTINCT stream_id FROM events WHERE event_type = 'ProgramLaunched'")
            .fetch_all(&pool)
            .await
            .unwrap();
    let q = "query($p: ID!) { programMetrics(programId: $p) { asOf cursor total { suppressed people matched matchRate \
             medianDaysToMatch medianDaysToFirstSession medianSessionGapDays activePairRate earlyClosures \
             earlyClosureRate earlyClosureReasons { reason count } goalsSet goalsCompleted goalCompletionRate } \
             cohorts { cohort suppressed people matchRate } } }";
    for (p,) in &programs {
        let body = graphql(&server, &analyst, q, json!({ "p": p })).await;
        assert!(body["errors"].is_null(), "{body:#}");
        let m = &body["data"]["programMetrics"];
        assert_eq!(m["total"]["suppressed"], false, "{m:#}");
        assert!(m["total"]["people"].as_i64().unwrap() >= 5);
        for c in m["cohorts"].as_array().unwrap() {
            assert_eq!(c["suppressed"].as_bool().unwrap(), c["people"].is_null(), "{c}");
        }
        let body =
            graphql(&server, &token(Role::Participant, &uuid::Uuid::now_v7().to_string()), q, json!({ "p": p })).await;
        assert_eq!(code(&body), Some("FORBIDDEN"));
    }
    let rq = "query($t: SurvivalCiTransform!) { retention(transform: $t) { studyEnd indexDate \
              participants { suppressed people events medianSurvivalDays points { time atRisk events censored survival lower upper } } \
              nonParticipants { suppressed people events points { time survival lower upper } } \
              logRank { statistic pValue degreesOfFreedom observed expected } } }";
    let file: Value = serde_json::from_slice(&std::fs::read(dir.join("retention.json")).unwrap()).unwrap();
    for t in ["LOG_LOG", "LOG", "PLAIN"] {
        let body = graphql(&server, &analyst, rq, json!({ "t": t })).await;
        assert!(body["errors"].is_null(), "{body:#}");
        let r = &body["data"]["retention"];
        // The API answers with the very numbers the checked file holds.
        let points = r["participants"]["points"].as_array().unwrap();
        let expected = file[0]["curves"][t]["a"]["points"].as_array().unwrap();
        assert_eq!(points.len(), expected.len(), "{t}");
        for (p, e) in points.iter().zip(expected) {
            for (a, b) in [("survival", "survival"), ("lower", "lower"), ("upper", "upper"), ("time", "time")] {
                assert_eq!(p[a].as_f64(), e[b].as_f64(), "{t} {a}");
            }
        }
        assert_eq!(r["logRank"]["pValue"].as_f64(), file[0]["log_rank"]["p_value"].as_f64());
    }
    let mut server = server;
    server.child.start_kill().unwrap();
    let _ = server.child.wait().await;

    // What the Python checks compare with.
    let (texts, ids) = personal(&pool).await;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&pool).await.unwrap();
    let by_type: Vec<(String, i64)> =
        sqlx::query_as("SELECT event_type, count(*) FROM events GROUP BY 1").fetch_all(&pool).await.unwrap();
    let mut facts = BTreeMap::new();
    for table in ["people", "participants", "pairs", "sessions", "goals"] {
        let text = std::fs::read_to_string(dir.join(format!("facts-ndjson/{table}.ndjson"))).unwrap();
        facts.insert(table, text.lines().count());
    }
    let expected = json!({
        "events": total,
        "event_types": by_type.into_iter().collect::<BTreeMap<_, _>>(),
        "facts": facts,
        "personal": texts,
        "person_ids": ids,
    });
    std::fs::write(dir.join("expected.json"), serde_json::to_vec(&expected).unwrap()).unwrap();
    let report = run_python("check_exports.py", &dir);
    assert!(report.contains(": 0 failures"), "{report}");
    println!("{report}");
    let report = run_python("check_survival.py", &dir.join("retention.json"));
    assert!(report.contains(": 0 differences"), "{report}");
    println!("{report}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_documented_recipes_give_the_documented_answers(pool: PgPool) {
    let url = database_url(&pool);
    // The demo of docs/ANALYSTS.md's recipes, exported as they say.
    tandem(&url, &["demo", "--today", "2026-06-01"]);
    let dir = root().join(format!("target/analysis-checks/recipes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let d = |p: &str| dir.join(p).to_string_lossy().into_owned();
    let salt = ["--pseudonymize", SALT, "--quiet"];
    tandem(&url, &[&["export", "events", "--format", "parquet", "--out", &d("events.parquet")][..], &salt].concat());
    tandem(
        &url,
        &[&["export", "events", "--format", "parquet", "--split-by-type", "--out", &d("by-type")][..], &salt].concat(),
    );
    tandem(&url, &["export", "facts", "--format", "parquet", "--out", &d("facts"), "--pseudonymize", SALT]);
    let report = run_python("check_recipes.py", &dir);
    assert!(report.contains(": 0 differences"), "{report}");
    println!("{report}");
    std::fs::remove_dir_all(&dir).unwrap();
}
