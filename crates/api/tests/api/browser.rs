//! A real browser against the real server: headless Chromium driven by
//! playwright-core from `conformance/` (`browser-cors.mjs`,
//! `browser-graphiql.mjs`).
//!
//! `scripts/test` installs Debian's `chromium` when it is missing, so these
//! tests fail without it; `TANDEM_SKIP_BROWSER=1` skips them on a machine
//! that has no browser (they then print why).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use sqlx::PgPool;
use tandem_api::auth::Role;
use tandem_api::transport::CorsOrigins;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::support::{Options, TestServer};

/// Requests a minute in the CORS test: a few, so the page meets a 429.
const BUDGET: u32 = 3;

/// `conformance/`, with playwright-core installed, and the browser, or
/// `None` when browser tests are skipped.
fn browser_setup(test: &str) -> Option<(PathBuf, PathBuf)> {
    if std::env::var("TANDEM_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED {test}: TANDEM_SKIP_BROWSER=1");
        return None;
    }
    let chromium =
        std::env::var_os("TANDEM_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        chromium.is_file(),
        "{test} needs Chromium at {} (Debian: `apt-get install chromium`; scripts/test installs it as root), \
         or TANDEM_CHROMIUM=<path>; TANDEM_SKIP_BROWSER=1 skips the browser tests",
        chromium.display()
    );
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("conformance"))
        .find(|dir| dir.join("browser.mjs").is_file())
        .unwrap_or_else(|| panic!("conformance/browser.mjs not found above {}", env!("CARGO_MANIFEST_DIR")));
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "conformance/node_modules/playwright-core is missing: run `npm ci --prefix {}` first",
        dir.display()
    );
    Some((dir, chromium))
}

/// Waits for `child` and returns its output, failing after `seconds`.
async fn finish(child: tokio::process::Child, seconds: u64) -> (bool, String) {
    let out = tokio::time::timeout(Duration::from_secs(seconds), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("the browser script did not finish within {seconds} s"))
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{text}");
    (out.status.success(), text)
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_page_on_an_allowed_origin_calls_the_api_and_others_are_refused(pool: PgPool) {
    let Some((dir, chromium)) = browser_setup("a_page_on_an_allowed_origin_calls_the_api_and_others_are_refused")
    else {
        return;
    };
    let mut child = tokio::process::Command::new("node")
        .arg(dir.join("browser-cors.mjs"))
        .current_dir(&dir)
        .env("TANDEM_CHROMIUM", chromium)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn node");
    // The script's page servers come first: their origins are only known then.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut head = String::new();
    let origins = loop {
        let mut line = String::new();
        let read = tokio::time::timeout(Duration::from_secs(30), stdout.read_line(&mut line)).await;
        assert!(read.is_ok_and(|n| n.is_ok_and(|n| n > 0)), "no ORIGINS line from browser-cors.mjs: {head}");
        head.push_str(&line);
        if let Some(json) = line.trim().strip_prefix("ORIGINS ") {
            break serde_json::from_str::<serde_json::Value>(json).unwrap();
        }
    };
    let allowed = origins["allowed"].as_str().unwrap().to_owned();
    let s = TestServer::start_with(
        pool,
        Options { cors: Some(CorsOrigins::List(vec![allowed])), rate_limit_per_minute: BUDGET, ..Options::default() },
    )
    .await;
    let token = s.token(&[Role::Coordinator], "coordinator-cors");
    let tandem = serde_json::json!({"url": s.url(), "token": token, "subject": "coordinator-cors", "limit": BUDGET});
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("TANDEM {tandem}\n").as_bytes()).await.unwrap();
    stdin.flush().await.unwrap();
    // The rest of stdout, beside stderr.
    let rest = tokio::spawn(async move {
        let mut text = String::new();
        let mut line = String::new();
        while stdout.read_line(&mut line).await.is_ok_and(|n| n > 0) {
            text.push_str(&line);
            line.clear();
        }
        text
    });
    let (ok, errors) = finish(child, 120).await;
    let output = format!("{head}{}", rest.await.unwrap());
    println!("{output}");
    assert!(ok, "conformance/browser-cors.mjs failed:\n{output}\n{errors}");
    assert!(output.contains("cors browser: OK"), "{output}");
    s.stop().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn graphiql_renders_with_the_outside_network_blocked_and_runs_a_query(pool: PgPool) {
    let Some((dir, chromium)) = browser_setup("graphiql_renders_with_the_outside_network_blocked_and_runs_a_query")
    else {
        return;
    };
    let s = TestServer::start(pool).await;
    let child = tokio::process::Command::new("node")
        .arg(dir.join("browser-graphiql.mjs"))
        .current_dir(&dir)
        .env("TANDEM_CHROMIUM", chromium)
        .env("TANDEM_BASE", s.origin())
        .env("TANDEM_TOKEN", s.token(&[Role::Analyst], "analyst-graphiql"))
        .env("TANDEM_SUBJECT", "analyst-graphiql")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn node");
    let (ok, output) = finish(child, 120).await;
    assert!(ok, "conformance/browser-graphiql.mjs failed:\n{output}");
    assert!(output.contains("graphiql browser: OK"), "{output}");
    s.stop().await;
}
