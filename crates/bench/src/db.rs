//! The benchmark's own database: created empty on the server the run is
//! pointed at, migrated, and dropped at the end.

use std::time::Duration;

use anyhow::Context as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions as _, Connection as _, PgConnection, PgPool};

/// A database created for one run.
pub struct BenchDb {
    pub name: String,
    /// Options for connections to the bench database.
    pub options: PgConnectOptions,
    /// A pool big enough for every concurrent client of the suite.
    pub pool: PgPool,
    admin: PgConnectOptions,
}

impl BenchDb {
    /// Creates `tandem_bench_<pid>_<time>` next to the database of `url` and
    /// applies Tandem's migrations to it.
    pub async fn create(url: &str) -> anyhow::Result<Self> {
        let admin: PgConnectOptions = url.parse().context("parsing the database URL")?;
        let name = format!("tandem_bench_{}_{}", std::process::id(), chrono::Utc::now().format("%Y%m%d%H%M%S"));
        let mut conn = PgConnection::connect_with(&admin).await.context("connecting to PostgreSQL")?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .with_context(|| format!("creating database {name}"))?;
        conn.close().await?;
        let options = admin.clone().database(&name).application_name("tandem bench");
        let pool = PgPoolOptions::new()
            .max_connections(64)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await?;
        tandem_store::MIGRATOR.run(&pool).await.context("migrating the bench database")?;
        Ok(Self { name, options, pool, admin })
    }

    /// The connection URL of the bench database (for a server process).
    #[must_use]
    pub fn url(&self) -> String {
        self.options.to_url_lossy().to_string()
    }

    /// Options for connections to the database the run was pointed at:
    /// another database of the same cluster.
    #[must_use]
    pub fn admin_options(&self) -> &PgConnectOptions {
        &self.admin
    }

    /// A fresh pool of at most `n` connections.
    pub async fn pool_of(&self, n: u32) -> anyhow::Result<PgPool> {
        Ok(PgPoolOptions::new()
            .max_connections(n)
            .min_connections(n)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(self.options.clone())
            .await?)
    }

    /// Drops the database (after closing the pool).
    pub async fn drop_database(self) -> anyhow::Result<()> {
        self.pool.close().await;
        let mut conn = PgConnection::connect_with(&self.admin).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(())
    }
}
