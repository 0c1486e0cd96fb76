//! Graceful shutdown of the real binary: on SIGTERM, `tandem serve` closes
//! open subscriptions with 1001 (Going Away), stops its projections and
//! exits cleanly.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::time::Duration;

use futures::StreamExt as _;
use serde_json::json;
use sqlx::PgPool;
use tandem_api::auth::Role;
use tandem_testkit::{db, tokens, ws};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const SECRET: &str = "shutdown-test-secret-0123456789-0123456789";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[sqlx::test(migrations = "../../migrations")]
async fn sigterm_closes_subscriptions_and_exits_cleanly(pool: PgPool) {
    let port = free_port();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .arg("serve")
        .env("DATABASE_URL", db::database_url(&pool))
        .env("TANDEM_MASTER_KEY", "7d1f0c3a9b2e4f6a8c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b")
        .env("TANDEM_LISTEN", format!("127.0.0.1:{port}"))
        .env("TANDEM_JWT_SECRET", SECRET)
        .env("TANDEM_SERVER_SECRET", SECRET)
        .env("TANDEM_SHUTDOWN_GRACE", "10")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..300 {
        if http.get(format!("http://127.0.0.1:{port}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the server did not come up");

    let token = tokens::token_with(&tokens::auth_config_with(SECRET), &[Role::Admin], "admin");
    let url = format!("ws://127.0.0.1:{port}/graphql");
    let mut ws = ws::acked(&url, json!({"authorization": format!("Bearer {token}")})).await;
    ws::send(&mut ws, ws::subscribe("1", "subscription { myEvents { cursor } }")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let pid = child.id().unwrap();
    let status = tokio::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status().await.unwrap();
    assert!(status.success());

    // The subscription's socket is closed with Going Away.
    let close = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Close(frame)) => return frame,
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .expect("no close frame after SIGTERM");
    assert_eq!(close.map(|f| f.code), Some(CloseCode::Away));

    // And the process ends cleanly, after its projections stopped.
    let out =
        tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await.expect("did not exit").unwrap();
    let log = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit status {:?}:\n{log}", out.status);
    assert!(log.contains("shutdown requested") && log.contains("stopped"), "{log}");
    // New connections are refused once it is gone.
    assert!(http.get(format!("http://127.0.0.1:{port}/healthz")).send().await.is_err());
}
