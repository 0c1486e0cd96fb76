//! The SCIM server of the real binary (`tandem serve`) over HTTP:
//! - `tester` — `scim2-tester` (PyPI), integrator tokens minted by
//!   `tandem token --role integrator --ttl 365d`, revocation by
//!   `tandem token revoke` without a restart;
//! - `clients` — recorded request shapes of Microsoft Entra ID and Okta
//!   provisioning, then the dated org history read back through GraphQL;
//! - `protocol` — filters, paging, sorting, attributes, ETags, errors.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod clients;
mod protocol;
mod tester;

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;

pub const SECRET: &str = "scim-test-secret-0123456789-0123456789-0123";

pub fn database_url(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").unwrap();
    let db = pool.connect_options().get_database().unwrap().to_owned();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    format!("{prefix}/{db}")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct Server {
    pub port: u16,
    pub url: String,
    _child: tokio::process::Child,
}

pub async fn serve(pool: &PgPool) -> Server {
    let port = free_port();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .arg("serve")
        .env("DATABASE_URL", database_url(pool))
        .env("TANDEM_MASTER_KEY", "7d1f0c3a9b2e4f6a8c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b")
        .env("TANDEM_LISTEN", format!("127.0.0.1:{port}"))
        .env("TANDEM_JWT_SECRET", SECRET)
        .env("TANDEM_RATE_LIMIT_PER_MINUTE", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if http.get(format!("http://127.0.0.1:{port}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(Instant::now() < deadline, "the server did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Server { port, url: format!("http://127.0.0.1:{port}/scim/v2"), _child: child }
}

/// `tandem token …` with the server's secret: (stdout, stderr, success).
pub async fn tandem(args: &[&str], database: Option<&str>) -> (String, String, bool) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"));
    cmd.args(args).env("TANDEM_JWT_SECRET", SECRET).env_remove("DATABASE_URL");
    if let Some(db) = database {
        cmd.env("DATABASE_URL", db)
            .env("TANDEM_MASTER_KEY", "7d1f0c3a9b2e4f6a8c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b");
    }
    let out = cmd.output().await.unwrap();
    (
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

/// An integrator token from the CLI, and its jti.
pub async fn integrator_token() -> (String, String) {
    let (token, stderr, ok) = tandem(&["token", "--role", "integrator", "--ttl", "365d"], None).await;
    assert!(ok, "{stderr}");
    let jti = stderr.split("token id (jti): ").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    (token, jti)
}

impl Server {
    /// A SCIM request with the integrator token: (status, headers, JSON body or Null).
    pub async fn scim(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut req = reqwest::Client::new().request(method, format!("{}{path}", self.url)).bearer_auth(token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/scim+json").body(b.to_string());
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let h = r.headers().clone();
        let text = r.text().await.unwrap();
        (status, h, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A GraphQL query as an admin; returns `data`.
    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        let (admin, _, _) = tandem(&["token", "--role", "admin", "--sub", "admin"], None).await;
        let r = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/graphql", self.port))
            .bearer_auth(admin)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        assert!(body.get("errors").is_none(), "{body:#}");
        body["data"].clone()
    }
}
