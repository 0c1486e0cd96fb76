//! The `tandem` command line: configuration from flags and environment, and
//! one function per subcommand.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use sqlx::postgres::PgPoolOptions;

/// Tandem: an open backend for peer-coaching programs.
#[derive(Debug, Parser)]
#[command(name = "tandem", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Commands,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Apply the database migrations and exit.
    Migrate {
        /// PostgreSQL connection URL.
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
    },
}

/// Runs the command line.
pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Commands::Migrate { database_url } => {
            let pool = PgPoolOptions::new()
                .max_connections(2)
                .connect(&database_url)
                .await
                .context("connecting to the database")?;
            tandem_store::MIGRATOR.run(&pool).await.context("applying migrations")?;
            tracing::info!("migrations applied");
            Ok(())
        }
    }
}
