//! A `tandem serve` process for the API parts: started from the `tandem`
//! binary itself on the bench database, on a free local port, with a
//! random HS256 secret and the rate limit off, and stopped with SIGTERM.
//!
//! The server is a separate process, as in production, so that its memory
//! (`/proc/<pid>/status`) and CPU are its own, and the clients of the bench
//! process compete with it for the machine's cores as real clients on the
//! same host would.
//!
//! Its environment is the bench's without any `TANDEM_*`, `OTEL_*` or
//! `RUST_LOG` variable, plus the settings below; everything else keeps the
//! defaults a deployment gets (20 database connections, page size 100,
//! read-your-writes wait of 5 s, …). Its stdout and stderr are echoed to the
//! bench's stderr line by line (prefixed `tandem serve:`) and the last lines
//! are kept for the error when it fails to start or stops badly.

use std::collections::VecDeque;
use std::io::Read as _;
use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use secrecy::SecretString;
use tandem_api::auth::{AuthConfig, Role, mint};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::{BenchDb, BenchOptions};

/// How long the server has to answer `/readyz` with 200 and to have every
/// read model caught up with the log.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `stop` waits after SIGTERM before it kills the process.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// The server's own grace period for open requests and sockets on SIGTERM.
const SHUTDOWN_GRACE_SECS: u64 = 10;
/// Lines of the server's output kept for error messages.
const KEPT_LINES: usize = 200;
/// Lifetime of the tokens minted for the clients.
const TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);
/// Open files a process needs besides its websocket sockets (database
/// connections, the HTTP clients, the binary's own files).
const OTHER_FILES: u64 = 1024;

/// The server's memory, from `/proc/<pid>/status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident now, in bytes.
    pub rss: u64,
    /// `VmHWM`: the peak resident size since the process started, in bytes.
    pub peak: u64,
}

/// A running `tandem serve`.
pub struct Server {
    child: Child,
    pid: u32,
    addr: SocketAddr,
    auth: AuthConfig,
    http: reqwest::Client,
    output: Arc<Mutex<VecDeque<String>>>,
    echo: Vec<JoinHandle<()>>,
}

impl Server {
    /// Starts `opts.server_exe serve` on `db` and waits until it is ready
    /// and its read models have caught up with the log.
    pub async fn start(opts: &BenchOptions, db: &BenchDb) -> anyhow::Result<Server> {
        Self::start_with(opts, db, &[]).await
    }

    /// [`Server::start`] with these variables set too (after the defaults,
    /// so they override them).
    pub async fn start_with(opts: &BenchOptions, db: &BenchDb, env: &[(&str, String)]) -> anyhow::Result<Server> {
        // The child inherits the limit: it holds one socket per subscriber too.
        raise_open_files_limit(opts.subscribers as u64 + OTHER_FILES)?;
        let addr = free_port()?;
        let secret = random_secret()?;
        let mut command = Command::new(&opts.server_exe);
        command.arg("serve");
        for (name, _) in std::env::vars_os() {
            let n = name.to_string_lossy();
            if n.starts_with("TANDEM_") || n.starts_with("OTEL_") || n == "RUST_LOG" || n == "DATABASE_URL" {
                command.env_remove(&name);
            }
        }
        command
            .env("DATABASE_URL", db.url())
            .env("TANDEM_LISTEN", addr.to_string())
            .env("TANDEM_JWT_SECRET", &secret)
            // The server reads what this process wrote: the same master key.
            .env("TANDEM_MASTER_KEY", tandem_store::Vault::installed().master().to_base64())
            // 0 turns the per-subject limit off (requests and new websockets):
            // every client of a part shares one or a few subjects.
            .env("TANDEM_RATE_LIMIT_PER_MINUTE", "0")
            .env("TANDEM_SHUTDOWN_GRACE", SHUTDOWN_GRACE_SECS.to_string())
            .env("TANDEM_GRAPHIQL", "false")
            .env("TANDEM_LOG_FORMAT", "text")
            .env("RUST_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().with_context(|| format!("starting {}", opts.server_exe.display()))?;
        let pid = child.id().context("the server exited at once")?;
        let output = Arc::new(Mutex::new(VecDeque::with_capacity(KEPT_LINES)));
        let mut echo = Vec::new();
        if let Some(out) = child.stdout.take() {
            echo.push(tokio::spawn(keep_lines(out, output.clone())));
        }
        if let Some(err) = child.stderr.take() {
            echo.push(tokio::spawn(keep_lines(err, output.clone())));
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(64)
            .build()
            .context("building the HTTP client")?;
        let auth = AuthConfig { hs256_secret: Some(SecretString::from(secret)), ..AuthConfig::default() };
        let mut server = Server { child, pid, addr, auth, http, output, echo };
        let started = Instant::now();
        if let Err(e) = server.wait_until_ready(db).await {
            let tail = server.output_tail();
            let _ = server.child.start_kill();
            let _ = server.child.wait().await;
            return Err(e.context(format!("tandem serve did not become ready; its last output:\n{tail}")));
        }
        eprintln!("bench: tandem serve (pid {pid}) ready at {addr} in {:.1} s", started.elapsed().as_secs_f64());
        Ok(server)
    }

    async fn wait_until_ready(&mut self, db: &BenchDb) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = format!("http://{}/readyz", self.addr);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("tandem serve exited with {status}");
            }
            let last = match self.http.get(&url).timeout(Duration::from_secs(5)).send().await {
                Ok(r) if r.status().is_success() => break,
                Ok(r) => format!("{}: {}", r.status(), r.text().await.unwrap_or_default()),
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                bail!("/readyz did not answer 200 within {READY_TIMEOUT:?} (last: {last})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // /readyz tolerates a lag (TANDEM_READY_MAX_LAG); the queries are to
        // run on read models that hold the whole log.
        loop {
            let lags = tandem_projections::lag::lag_of_read_models(&db.pool).await?;
            if lags.iter().all(tandem_projections::ProjectionLag::caught_up) {
                return Ok(());
            }
            if Instant::now() > deadline {
                let behind: Vec<String> = lags
                    .iter()
                    .filter(|l| !l.caught_up())
                    .map(|l| format!("{} {} events behind", l.name, l.events_behind))
                    .collect();
                bail!("the read models did not catch up within {READY_TIMEOUT:?}: {}", behind.join(", "));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the server: SIGTERM, then a wait for its graceful shutdown,
    /// then SIGKILL after [`STOP_TIMEOUT`]. Fails when it did not exit
    /// cleanly.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let status = match self.child.try_wait()? {
            Some(status) => Some(status),
            None => {
                if let Some(pid) = i32::try_from(self.pid).ok().and_then(rustix::process::Pid::from_raw) {
                    rustix::process::kill_process(pid, rustix::process::Signal::TERM)
                        .context("sending SIGTERM to tandem serve")?;
                }
                match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
                    Ok(status) => Some(status?),
                    Err(_) => None,
                }
            }
        };
        let result = match status {
            Some(status) if status.success() => Ok(()),
            Some(status) => Err(self.failure(status)),
            None => {
                self.child.start_kill().context("killing tandem serve")?;
                self.child.wait().await?;
                Err(anyhow::anyhow!("tandem serve did not stop within {STOP_TIMEOUT:?} of SIGTERM; killed"))
            }
        };
        for task in self.echo.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
        }
        result
    }

    fn failure(&self, status: ExitStatus) -> anyhow::Error {
        anyhow::anyhow!("tandem serve exited with {status}; its last output:\n{}", self.output_tail())
    }

    /// The last lines the server wrote.
    #[must_use]
    pub fn output_tail(&self) -> String {
        let lines = self.output.lock().unwrap_or_else(PoisonError::into_inner);
        lines.iter().map(String::as_str).collect::<Vec<_>>().join("\n")
    }

    /// `http://127.0.0.1:<port>/graphql`.
    #[must_use]
    pub fn graphql_url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }

    /// `ws://127.0.0.1:<port>/graphql`.
    #[must_use]
    pub fn ws_url(&self) -> String {
        format!("ws://{}/graphql", self.addr)
    }

    /// The server's process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// An HTTP client for the server (keep-alive, no proxy, Nagle off).
    #[must_use]
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The server's resident memory now and its peak.
    pub fn rss(&self) -> anyhow::Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .with_context(|| format!("reading /proc/{}/status", self.pid))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            let line = status
                .lines()
                .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
                .with_context(|| format!("no {name} in /proc/{}/status", self.pid))?;
            let kib: u64 =
                line.trim().trim_end_matches("kB").trim().parse().with_context(|| format!("{name}: {line}"))?;
            Ok(kib * 1024)
        };
        Ok(Memory { rss: field("VmRSS")?, peak: field("VmHWM")? })
    }

    /// CPU time the server has used so far (user and system).
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        cpu_time_of(&format!("/proc/{}/stat", self.pid))
    }

    /// A token the server accepts, for `role` and `subject` (a person id for
    /// a participant), valid for 12 hours.
    pub fn token(&self, role: Role, subject: &str) -> anyhow::Result<String> {
        mint(&self.auth, &[role], subject, TOKEN_TTL).with_context(|| format!("minting a {} token", role.as_str()))
    }

    /// POSTs a GraphQL request as `token` and returns its `data`, failing on
    /// a non-200 status or any error in the response. For fixtures and
    /// look-ups, not for measurements.
    pub async fn graphql(
        &self,
        token: &str,
        query: &str,
        variables: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let response = self
            .http
            .post(self.graphql_url())
            .bearer_auth(token)
            .header("accept", "application/graphql-response+json")
            .json(&serde_json::json!({ "query": query, "variables": variables }))
            .send()
            .await
            .context("sending a GraphQL request")?;
        let status = response.status();
        let mut body: serde_json::Value = response.json().await.context("decoding a GraphQL response")?;
        if !status.is_success() || body.get("errors").is_some() {
            bail!("GraphQL request failed ({status}): {body}\nrequest: {query}");
        }
        Ok(body.get_mut("data").map(serde_json::Value::take).unwrap_or_default())
    }
}

/// CPU time (user + system) of a process or thread, from its `stat` file.
pub fn cpu_time_of(stat_path: &str) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(stat_path).with_context(|| format!("reading {stat_path}"))?;
    // The command name (field 2) is in parentheses and may hold blanks:
    // fields are counted after its closing parenthesis.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("malformed stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 (state) is fields[0]; utime and stime are fields 14 and 15.
    let ticks = |i: usize| -> anyhow::Result<u64> { Ok(fields.get(i).context("short stat")?.parse()?) };
    let total = ticks(11)? + ticks(12)?;
    let per_second = rustix::param::clock_ticks_per_second().max(1);
    Ok(Duration::from_nanos(total.saturating_mul(1_000_000_000) / per_second))
}

/// Raises this process's soft limit of open files to at least `wanted` (to
/// the hard limit, and the hard limit too when allowed, e.g. as root). Child
/// processes started afterwards inherit it.
pub fn raise_open_files_limit(wanted: u64) -> anyhow::Result<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    if current >= wanted {
        return Ok(current);
    }
    let maximum = limit.maximum.unwrap_or(u64::MAX);
    if maximum >= wanted {
        setrlimit(Resource::Nofile, Rlimit { current: Some(wanted), maximum: limit.maximum })
            .with_context(|| format!("raising the open-files limit from {current} to {wanted}"))?;
        return Ok(wanted);
    }
    setrlimit(Resource::Nofile, Rlimit { current: Some(wanted), maximum: Some(wanted) }).with_context(|| {
        format!(
            "the open-files limit is {current} (hard limit {maximum}) and {wanted} are needed; raising the hard \
             limit needs privileges: run `ulimit -Hn {wanted}` as root, or use fewer subscribers"
        )
    })?;
    Ok(wanted)
}

/// A free port on 127.0.0.1 (bound and released: the server binds it next).
fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?)
}

/// 32 random bytes from the kernel, as 64 hex digits.
pub(crate) fn random_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).context("reading /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Echoes the server's output to the bench's stderr and keeps its last lines.
async fn keep_lines(stream: impl AsyncRead + Unpin, kept: Arc<Mutex<VecDeque<String>>>) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        eprintln!("tandem serve: {line}");
        let mut kept = kept.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() == KEPT_LINES {
            kept.pop_front();
        }
        kept.push_back(line);
    }
}
