//! A real JavaScript GraphQL client (urql, graphql-ws) plays a whole program
//! against the real server: `conformance/story.mjs`. The story registers the
//! people itself; this side only mints their tokens when it asks for them.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use sqlx::PgPool;
use tandem_api::auth::{Role, mint};

use crate::support::{self, TestServer};

/// Where `conformance/` is: the workspace root holds it.
fn conformance_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("conformance"))
        .find(|dir| dir.join("story.mjs").is_file())
        .unwrap_or_else(|| panic!("conformance/story.mjs not found above {}", env!("CARGO_MANIFEST_DIR")))
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_real_client_plays_a_whole_program(pool: PgPool) {
    let dir = conformance_dir();
    let node = std::process::Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|output| output.status.success()),
        "`node` (v20 or later) is needed to run the client story conformance/story.mjs: {node:?}"
    );
    for package in ["@urql/core", "graphql-ws", "ws"] {
        assert!(
            dir.join("node_modules").join(package).is_dir(),
            "conformance/node_modules/{package} is missing: run `npm ci --prefix {}` first",
            dir.display()
        );
    }

    let s = TestServer::start(pool).await;
    let mut child = Command::new("node")
        .arg(dir.join("story.mjs"))
        .current_dir(&dir)
        .env("TANDEM_GRAPHQL_URL", s.url())
        .env("TANDEM_GRAPHQL_WS_URL", s.ws_url())
        .env("TANDEM_ADMIN_TOKEN", s.admin())
        .env("TANDEM_COORDINATOR_TOKEN", s.token(&[Role::Coordinator], "coordinator-1"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn node");
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    // Echo the story's output; answer its one request for participant tokens.
    let run = tokio::task::spawn_blocking(move || {
        let mut output = String::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            println!("{line}");
            if let Some(people) = line.strip_prefix("TANDEM_PEOPLE ") {
                let people: BTreeMap<String, String> = serde_json::from_str(people).unwrap();
                let tokens: BTreeMap<&String, String> = people
                    .iter()
                    .map(|(key, id)| {
                        (
                            key,
                            mint(&support::auth_config(), &[Role::Participant], id, Duration::from_secs(3600)).unwrap(),
                        )
                    })
                    .collect();
                writeln!(stdin, "TANDEM_TOKENS {}", serde_json::to_string(&tokens).unwrap()).unwrap();
                stdin.flush().unwrap();
            }
            output.push_str(&line);
            output.push('\n');
        }
        output
    });
    let Ok(output) = tokio::time::timeout(Duration::from_secs(120), run).await else {
        let _ = child.kill();
        panic!("conformance/story.mjs did not finish within 120 s");
    };
    let output = output.unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    let errors = errors.join().unwrap();
    eprintln!("{errors}");
    assert!(status.success(), "conformance/story.mjs failed ({status}):\n{output}\n{errors}");
    assert!(output.contains("story passed"), "{output}");
    s.stop().await;
}

/// Runs `conformance/introspect.mjs` (graphql-js's standard introspection
/// query, every option on) against `s` as `token`; its output and success.
async fn introspect(s: &TestServer, token: Option<String>, expect_refused: bool) -> (bool, String) {
    let dir = conformance_dir();
    let sdl = dir.parent().unwrap().join("schema").join("schema.graphql");
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(dir.join("introspect.mjs")).current_dir(&dir).env("TANDEM_GRAPHQL_URL", s.url()).env("TANDEM_SDL", sdl);
    if let Some(t) = token {
        cmd.env("TANDEM_TOKEN", t);
    }
    if expect_refused {
        cmd.env("TANDEM_EXPECT_REFUSED", "1");
    }
    let out =
        tokio::time::timeout(Duration::from_secs(60), cmd.output()).await.expect("node answers").expect("run node");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_standard_introspection_query_of_graphql_js_passes_the_limits(pool: PgPool) {
    let s = TestServer::start(pool).await;
    let (ok, text) = introspect(&s, Some(s.admin()), false).await;
    assert!(ok, "{text}");
    assert!(text.contains("introspection: OK"), "{text}");
    // The depth limit still holds for everything else.
    let deep = "{ people(first: 1) { edges { node { manager { manager { manager { manager { manager { manager \
                { manager { manager { manager { manager { id } } } } } } } } } } } } } }";
    let (status, body) = s.client().post(Some(&s.admin()), deep, serde_json::json!({})).await;
    assert_eq!(
        (status, &body["errors"][0]["extensions"]["code"]),
        (400, &serde_json::json!("GRAPHQL_VALIDATION_FAILED"))
    );
    assert!(body["errors"][0]["message"].as_str().unwrap_or_default().contains("nested too deep"), "{body}");
    // So does the cap of a whole document: introspection nested past it.
    let of_type = (0..24).fold("name".to_owned(), |inner, _| format!("ofType {{ {inner} }}"));
    let abuse = format!("{{ __schema {{ types {{ fields {{ type {{ {of_type} }} }} }} }} }}");
    let (_, body) = s.client().post(Some(&s.admin()), &abuse, serde_json::json!({})).await;
    assert!(body["errors"][0]["message"].as_str().unwrap_or_default().contains("nested too deep"), "{body}");
}

#[sqlx::test(migrations = "../../migrations")]
async fn introspection_can_be_turned_off(pool: PgPool) {
    let limits = tandem_api::schema::Limits { introspection: false, ..Default::default() };
    let s = TestServer::start_with(pool, support::Options { limits: Some(limits), ..Default::default() }).await;
    let (ok, text) = introspect(&s, Some(s.admin()), true).await;
    assert!(ok && text.contains("introspection refused as expected"), "{text}");
    let (status, body) = s.client().post(Some(&s.admin()), "{ __typename }", serde_json::json!({})).await;
    assert_eq!((status, &body["data"]["__typename"]), (200, &serde_json::json!("Query")), "{body}");
}
