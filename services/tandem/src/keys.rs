//! The master key: where it comes from, installing the process's vault,
//! checking it against the database at start, and `tandem keys rotate`.
//!
//! With DATABASE_URL a master key must be configured: a key generated on
//! one machine would leave every other process of the database unable to
//! read personal data, so start-up refuses instead. The embedded default
//! (no DATABASE_URL) generates one once into its data directory.

use std::path::Path;

use anyhow::{Context as _, bail};
use secrecy::ExposeSecret;
use sqlx::PgPool;
use tandem_store::{MasterKey, Vault};

use crate::config::{DbArgs, MasterKeyArgs, RotateArgs};

/// The file of the embedded setup's master key, under its data directory.
const EMBEDDED_KEY_FILE: &str = "master.key";

fn read_key_file(path: &Path) -> anyhow::Result<MasterKey> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the master key {}", path.display()))?;
    MasterKey::parse(&text).with_context(|| format!("the master key in {}", path.display()))
}

/// Writes a fresh key to `path`, readable by its owner only.
fn write_new_key(path: &Path) -> anyhow::Result<MasterKey> {
    let key = MasterKey::generate()?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| format!("creating {}", path.display()))?;
    std::io::Write::write_all(&mut file, format!("{}\n", key.to_base64()).as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(key)
}

/// The configured master key, or (without DATABASE_URL) the embedded
/// setup's, generated on first use.
pub(crate) fn master_key(db: &DbArgs) -> anyhow::Result<MasterKey> {
    let keys: &MasterKeyArgs = &db.keys;
    if let Some(key) = &keys.master_key {
        return MasterKey::parse(key.expose_secret()).context("TANDEM_MASTER_KEY");
    }
    if let Some(path) = &keys.master_key_file {
        return read_key_file(path);
    }
    // Without one, the key of this machine's data directory: made on first
    // use, like the server secret. With a database of its own choosing, the
    // operator is told to configure it; a process of another machine with
    // another key is stopped at start by the check of the stored keys.
    let path = db.data_dir.join(EMBEDDED_KEY_FILE);
    let generated = !path.exists();
    let key = if generated { write_new_key(&path)? } else { read_key_file(&path)? };
    if db.database_url.is_some() {
        tracing::warn!(
            path = %path.display(),
            master_key_id = key.id(),
            generated,
            "no master key configured: using this machine's key file; set TANDEM_MASTER_KEY or \
             TANDEM_MASTER_KEY_FILE to the same key on every process of this database, and back it up: \
             personal data is unreadable without it (see docs/PRIVACY.md)"
        );
    } else if generated {
        tracing::warn!(
            path = %path.display(),
            master_key_id = key.id(),
            "generated the master key of the embedded setup: back it up, personal data is unreadable without it"
        );
    }
    Ok(key)
}

/// The vault of `db`'s configuration (the master key and any previous one).
pub(crate) fn vault(db: &DbArgs) -> anyhow::Result<Vault> {
    let mut vault = Vault::new(master_key(db)?);
    if let Some(path) = &db.keys.previous_master_key_file {
        vault = vault.with_previous(vec![read_key_file(path)?]);
    }
    Ok(vault)
}

/// For commands that read or write no personal data (migrations,
/// revocations, exports, which drop every personal field): the configured
/// vault, or else a blind one, so that they need no master key.
pub(crate) fn vault_if_configured(db: &DbArgs) -> anyhow::Result<Vault> {
    if db.keys.master_key.is_some() || db.keys.master_key_file.is_some() || db.database_url.is_none() {
        return vault(db);
    }
    Ok(Vault::blind()?)
}

/// Installs `vault` as the process's and checks that it opens the data
/// keys the database already holds.
pub(crate) async fn install(pool: &PgPool, vault: Vault) -> anyhow::Result<()> {
    let master_id = vault.master().id().to_owned();
    check(pool, &vault).await?;
    if Vault::install(vault).is_err() {
        // One process, one configuration: a second install would be the
        // same key (the binary installs once per command).
        tracing::debug!("the vault was already installed");
    }
    tracing::info!(master_key_id = %master_id, "master key ready");
    Ok(())
}

async fn check(pool: &PgPool, vault: &Vault) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await.context("connecting to the database")?;
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('public.person_keys') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await
        .context("looking for the key table")?;
    if exists {
        let live = vault.check(&mut conn).await.context("the master key does not fit this database")?;
        tracing::debug!(live, "data keys checked");
    }
    Ok(())
}

/// `tandem keys rotate`.
pub(crate) async fn rotate(args: RotateArgs) -> anyhow::Result<()> {
    let old = vault(&args.db)?;
    let new = if args.new_key_file.exists() {
        read_key_file(&args.new_key_file)?
    } else {
        let key = write_new_key(&args.new_key_file)?;
        eprintln!("wrote a new master key to {} (readable by its owner only)", args.new_key_file.display());
        key
    };
    if new.id() == old.master().id() {
        bail!("the new master key is the current one");
    }
    let old = old.with_previous(Vec::new());
    let new_id = new.id().to_owned();
    let mut db = args.db.clone();
    // Connect with the current key installed: the check at start verifies
    // that it opens the stored keys before anything is rewrapped.
    db.keys.previous_master_key_file = None;
    crate::with_database_vault(&db, old.clone(), |pool| async move {
        tandem_store::MIGRATOR.run(&pool).await.context("applying migrations")?;
        let mut conn = pool.acquire().await?;
        let done = old.rotate(&mut conn, &new).await.context("rewrapping the data keys")?;
        println!(
            "rewrapped {done} data keys from master key {} to {new_id}; configure the new key everywhere now",
            old.master().id()
        );
        Ok(())
    })
    .await
}
