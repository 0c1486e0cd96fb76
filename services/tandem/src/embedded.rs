//! The embedded default database: a private PostgreSQL cluster under the
//! data directory, run from the PostgreSQL binaries installed on the
//! machine, for `tandem serve` without `DATABASE_URL`.
//!
//! The first start runs `initdb` (password authentication with a generated
//! password kept in the data directory, readable by its owner only) and
//! picks a free port on 127.0.0.1; later starts reuse both. PostgreSQL
//! refuses to run as root, so when Tandem runs as root the cluster is
//! initialised and started as the `postgres` system user (created by
//! Debian's package), which then owns the cluster directory.
//! Unix sockets are disabled: the path of a socket is limited to about 100
//! bytes and the data directory may be deep; TCP on loopback always works.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::process::Command;

/// The database Tandem uses inside the embedded cluster.
const DATABASE: &str = "tandem";

/// A running private cluster.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    bin_dir: PathBuf,
    cluster_dir: PathBuf,
    run_as: Option<String>,
    port: u16,
    password: String,
}

/// The directory of the newest PostgreSQL server binaries: `initdb` and
/// `pg_ctl` on the PATH, else `/usr/lib/postgresql/<version>/bin`.
pub fn find_binaries() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
                return Some(std::fs::canonicalize(dir.join("initdb")).ok()?.parent()?.to_path_buf());
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.split('.').next()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p)
}

fn is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn free_port() -> anyhow::Result<u16> {
    for port in 54329..54429 {
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    let l = TcpListener::bind(("127.0.0.1", 0)).context("finding a free port for the embedded PostgreSQL")?;
    Ok(l.local_addr()?.port())
}

fn random_password() -> String {
    // Two v4 UUIDs: 244 random bits from the OS generator, hex only.
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

impl EmbeddedPostgres {
    /// Starts (initialising on first use) the cluster under `data_dir`.
    pub async fn start(data_dir: &Path) -> anyhow::Result<Self> {
        let Some(bin_dir) = find_binaries() else {
            bail!(
                "no DATABASE_URL is set and no PostgreSQL server binaries (initdb, pg_ctl) were found on the PATH \
                 or in /usr/lib/postgresql/*/bin. Install them (on Debian or Ubuntu: `sudo apt-get install postgresql`) \
                 or set DATABASE_URL to an existing server."
            );
        };
        std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let data_dir = std::fs::canonicalize(data_dir)?;
        let cluster_dir = data_dir.join("postgres");
        let run_as = is_root().then(|| "postgres".to_owned());
        if let Some(user) = &run_as
            && std::process::Command::new("id").arg(user).output().map_or(true, |o| !o.status.success())
        {
            bail!(
                "running as root, PostgreSQL needs an unprivileged user to run as, and user {user:?} does not exist; \
                 install Debian's postgresql package (which creates it) or run tandem as a normal user"
            );
        }
        let secrets = data_dir.join("postgres.secret");
        let port_file = data_dir.join("postgres.port");
        if !cluster_dir.join("PG_VERSION").is_file() {
            let password = random_password();
            let pwfile = data_dir.join(".pwfile");
            std::fs::write(&pwfile, &password)?;
            restrict(&pwfile)?;
            std::fs::create_dir_all(&cluster_dir)?;
            restrict_dir(&cluster_dir)?;
            if let Some(user) = &run_as {
                chown(user, &cluster_dir).await?;
                chown(user, &pwfile).await?;
            }
            tracing::info!(dir = %cluster_dir.display(), "initialising the embedded PostgreSQL cluster");
            let out = run(
                &run_as,
                &bin_dir.join("initdb"),
                &[
                    "-D".as_ref(),
                    cluster_dir.as_os_str(),
                    "-U".as_ref(),
                    "postgres".as_ref(),
                    "--auth=scram-sha-256".as_ref(),
                    "-E".as_ref(),
                    "UTF8".as_ref(),
                    "--pwfile".as_ref(),
                    pwfile.as_os_str(),
                ],
            )
            .await;
            let _ = std::fs::remove_file(&pwfile);
            out.context("initdb failed")?;
            std::fs::write(&secrets, &password)?;
            restrict(&secrets)?;
            std::fs::write(&port_file, free_port()?.to_string())?;
        }
        let password = std::fs::read_to_string(&secrets).context("reading the embedded cluster's password")?;
        let mut port: u16 =
            std::fs::read_to_string(&port_file)?.trim().parse().context("reading the embedded cluster's port")?;
        let me = Self { bin_dir, cluster_dir, run_as, port, password: password.trim().to_owned() };
        if !me.running().await {
            if TcpListener::bind(("127.0.0.1", port)).is_err() {
                port = free_port()?;
                std::fs::write(&port_file, port.to_string())?;
            }
            let me = Self { port, ..me };
            me.pg_ctl_start().await?;
            me.ensure_database().await?;
            return Ok(me);
        }
        me.ensure_database().await?;
        Ok(me)
    }

    async fn running(&self) -> bool {
        run(
            &self.run_as,
            &self.bin_dir.join("pg_ctl"),
            &["status".as_ref(), "-D".as_ref(), self.cluster_dir.as_os_str()],
        )
        .await
        .is_ok()
    }

    async fn pg_ctl_start(&self) -> anyhow::Result<()> {
        let log = self.cluster_dir.join("server.log");
        let options = format!("-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''", self.port);
        tracing::info!(port = self.port, "starting the embedded PostgreSQL");
        run(
            &self.run_as,
            &self.bin_dir.join("pg_ctl"),
            &[
                "start".as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "-D".as_ref(),
                self.cluster_dir.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
            ],
        )
        .await
        .with_context(|| format!("starting PostgreSQL (see {})", log.display()))
    }

    async fn ensure_database(&self) -> anyhow::Result<()> {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&self.url_of("postgres"))
            .await
            .context("connecting to the embedded PostgreSQL")?;
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(DATABASE)
            .fetch_one(&mut conn)
            .await?;
        if !exists {
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {DATABASE}"))).execute(&mut conn).await?;
        }
        Ok(())
    }

    fn url_of(&self, db: &str) -> String {
        format!("postgres://postgres:{}@127.0.0.1:{}/{db}", self.password, self.port)
    }

    /// The connection URL of Tandem's database. Contains the password:
    /// never log it.
    pub fn url(&self) -> String {
        self.url_of(DATABASE)
    }

    /// The port the cluster listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the cluster (fast shutdown: open sessions are ended).
    pub async fn stop(&self) -> anyhow::Result<()> {
        tracing::info!("stopping the embedded PostgreSQL");
        run(
            &self.run_as,
            &self.bin_dir.join("pg_ctl"),
            &[
                "stop".as_ref(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-w".as_ref(),
                "-D".as_ref(),
                self.cluster_dir.as_os_str(),
            ],
        )
        .await
    }
}

#[cfg(unix)]
fn restrict(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

#[cfg(unix)]
fn restrict_dir(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    Ok(())
}

async fn chown(user: &str, path: &Path) -> anyhow::Result<()> {
    let status = Command::new("chown").arg("-R").arg(user).arg(path).status().await?;
    if !status.success() {
        bail!("chown {user} {} failed", path.display());
    }
    Ok(())
}

/// Runs a PostgreSQL tool, as `run_as` when set; fails with its output.
async fn run(run_as: &Option<String>, program: &Path, args: &[&std::ffi::OsStr]) -> anyhow::Result<()> {
    let mut cmd = match run_as {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.arg("-u").arg(user).arg("--").arg(program);
            c
        }
        None => Command::new(program),
    };
    cmd.args(args).kill_on_drop(true);
    // Tools run in the data directory's parent so that runuser's user can
    // always read the working directory.
    cmd.current_dir("/");
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .context("PostgreSQL tool timed out")?
        .with_context(|| format!("running {}", program.display()))?;
    if !out.status.success() {
        bail!(
            "{} exited with {}: {}{}",
            program.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
