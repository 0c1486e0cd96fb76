//! A webhook receiver for tests: a small HTTP server on 127.0.0.1 that
//! records every request it gets (headers and body), answers as told (fail
//! the first N, a given status, hang, or go down and come back on the same
//! port), and [`verify`], which checks signatures with an independent
//! implementation: the `standardwebhooks` npm package, through
//! `conformance/webhook-verify.mjs`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: BTreeMap<String, String>,
    pub body: String,
    /// The status it was answered with (0 when it was left hanging).
    pub answered: u16,
}

impl Received {
    /// The body, parsed.
    #[must_use]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a webhook body is JSON")
    }

    /// The `webhook-id` header.
    #[must_use]
    pub fn id(&self) -> &str {
        self.headers.get("webhook-id").map_or("", String::as_str)
    }
}

/// How the receiver answers.
#[derive(Clone, Debug)]
pub enum Answer {
    /// 200.
    Ok,
    /// This status, with this `Retry-After` if any.
    Status(u16, Option<String>),
    /// Never answer (the request times out on the sender's side).
    Hang,
}

#[derive(Debug)]
struct Inner {
    received: Vec<Received>,
    /// Requests still to fail with 500 before `answer` applies.
    fail_first: usize,
    answer: Answer,
}

/// The server task while it listens, and what stops it.
type Running = Arc<Mutex<Option<(CancellationToken, JoinHandle<()>)>>>;

/// The receiver; clones share it.
#[derive(Clone, Debug)]
pub struct Receiver {
    inner: Arc<Mutex<Inner>>,
    addr: SocketAddr,
    running: Running,
}

async fn handle(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap, body: Bytes) -> Response {
    let answer = {
        let mut i = inner.lock().unwrap_or_else(PoisonError::into_inner);
        let answer = if i.fail_first > 0 {
            i.fail_first -= 1;
            Answer::Status(500, None)
        } else {
            i.answer.clone()
        };
        let answered = match &answer {
            Answer::Ok => 200,
            Answer::Status(s, _) => *s,
            Answer::Hang => 0,
        };
        let headers = headers
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned())))
            .collect();
        i.received.push(Received { headers, body: String::from_utf8_lossy(&body).into_owned(), answered });
        answer
    };
    match answer {
        Answer::Ok => StatusCode::OK.into_response(),
        Answer::Status(s, retry_after) => {
            let status = StatusCode::from_u16(s).expect("a valid status");
            match retry_after {
                Some(r) => (status, [("retry-after", r)]).into_response(),
                None => status.into_response(),
            }
        }
        Answer::Hang => {
            std::future::pending::<()>().await;
            StatusCode::OK.into_response()
        }
    }
}

impl Receiver {
    /// A receiver answering 200, on a free port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the receiver");
        let addr = listener.local_addr().expect("the receiver's address");
        let r = Self {
            inner: Arc::new(Mutex::new(Inner { received: Vec::new(), fail_first: 0, answer: Answer::Ok })),
            addr,
            running: Arc::new(Mutex::new(None)),
        };
        r.serve(listener);
        r
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let token = CancellationToken::new();
        let app = Router::new().route("/hook", post(handle)).with_state(self.inner.clone());
        let stop = token.clone();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await }).await;
        });
        *self.running.lock().unwrap_or_else(PoisonError::into_inner) = Some((token, task));
    }

    /// The URL to register.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Fails the next `n` requests with 500.
    pub fn fail_next(&self, n: usize) {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).fail_first = n;
    }

    /// How later requests are answered.
    pub fn answer(&self, a: Answer) {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).answer = a;
    }

    /// Everything received so far.
    #[must_use]
    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).received.clone()
    }

    /// The requests answered 2xx so far.
    #[must_use]
    pub fn accepted(&self) -> Vec<Received> {
        self.received().into_iter().filter(|r| (200..300).contains(&r.answered)).collect()
    }

    /// How many requests were answered 2xx so far (without copying them).
    #[must_use]
    pub fn accepted_count(&self) -> usize {
        let i = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        i.received.iter().filter(|r| (200..300).contains(&r.answered)).count()
    }

    /// Stops listening (connections are refused) until [`Receiver::up`].
    pub async fn down(&self) {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some((token, task)) = running {
            token.cancel();
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again, on the same port.
    pub async fn up(&self) {
        let mut tries = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) => {
                    tries += 1;
                    assert!(tries < 100, "rebinding the receiver on {}: {e}", self.addr);
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
        };
        self.serve(listener);
    }
}

/// Where `conformance/` is.
fn conformance_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("conformance"))
        .find(|dir| dir.join("webhook-verify.mjs").is_file())
        .expect("conformance/webhook-verify.mjs above the testkit")
}

/// Verifies each request with the `standardwebhooks` npm package under
/// `secret`; one answer per request: the verified payload or why not.
#[must_use]
pub fn verify(secret: &str, requests: &[Received]) -> Vec<Result<Value, String>> {
    let dir = conformance_dir();
    assert!(
        dir.join("node_modules/standardwebhooks").is_dir(),
        "conformance/node_modules/standardwebhooks is missing: run `npm ci --prefix {}` first",
        dir.display()
    );
    let mut input = String::new();
    for r in requests {
        input.push_str(&json!({"secret": secret, "headers": r.headers, "body": r.body}).to_string());
        input.push('\n');
    }
    let mut child = Command::new("node")
        .arg(dir.join("webhook-verify.mjs"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("`node` runs conformance/webhook-verify.mjs");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write to the verifier");
    let out = child.wait_with_output().expect("the verifier ends");
    assert!(out.status.success(), "the verifier failed: {}", String::from_utf8_lossy(&out.stderr));
    let answers: Vec<Result<Value, String>> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("the verifier answers JSON");
            if v["ok"] == true { Ok(v["payload"].clone()) } else { Err(v["error"].to_string()) }
        })
        .collect();
    assert_eq!(answers.len(), requests.len(), "one answer per request");
    answers
}
