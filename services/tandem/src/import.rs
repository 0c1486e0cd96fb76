//! `tandem import people`: the CSV full-file import of people (see
//! `tandem_hris::import` for how a file is read, compared and applied, and
//! `docs/INTEGRATORS.md` for the columns).
//!
//! What changes is printed on standard output, one line per person (with
//! `--dry-run`, what would change, before and after), then each refused row
//! with its line and column, then the summary. A progress bar is drawn on
//! stderr when it is a terminal. The exit status is non-zero when any row
//! was refused, so that a scheduled feed notices.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, bail};
use chrono::{NaiveDate, Utc};
use clap::{Args, Subcommand};
use secrecy::SecretString;
use tandem_commands::CommandService;
use tandem_hris::import::{ImportEvent, ImportOptions, Importer};
use tandem_hris::sync::{Planned, SyncKind, Syncer};
use tandem_projections::Projections;
use tandem_store::Actor;

use crate::config::DbArgs;

/// `tandem import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    pub what: ImportCommand,
}

/// What to import.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// People from a CSV file keyed by external id: new rows are registered,
    /// changed rows updated on the effective date, unchanged rows left alone.
    People(PeopleArgs),
}

/// `tandem import people`.
#[derive(Debug, Args)]
pub struct PeopleArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The CSV file (UTF-8, header row first; see docs/INTEGRATORS.md).
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
    /// Print what would change and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The day the changes take effect, YYYY-MM-DD (default today).
    #[arg(long, value_name = "DATE")]
    pub effective: Option<NaiveDate>,
    /// The file lists everyone: people in the organisation whose external
    /// id is not in it are recorded as having left on the effective date.
    #[arg(long)]
    pub leavers_absent: bool,
    /// With --leavers-absent, the most people one run may record as left,
    /// as a percentage of the people in the organisation; more absent than
    /// that (a truncated file, say) marks nobody.
    #[arg(long, value_name = "PERCENT", default_value = "10%", value_parser = parse_percent)]
    pub max_leavers: f64,
    /// Rows whose commands run at once (the command service commits them
    /// together).
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Do not print a line per changed person (refused rows and the
    /// summary are still printed).
    #[arg(long)]
    pub quiet: bool,
    /// The server secret, as `tandem serve` is given it, so that a re-run
    /// is recognised by its idempotency keys wherever it runs.
    #[arg(long, env = "TANDEM_SERVER_SECRET", hide_env_values = true)]
    pub server_secret: Option<SecretString>,
    /// A file holding the server secret.
    #[arg(long, env = "TANDEM_SERVER_SECRET_FILE", conflicts_with = "server_secret")]
    pub server_secret_file: Option<PathBuf>,
}

/// A percentage such as `10%` or `10` (or `0.5%`), as a fraction.
fn parse_percent(s: &str) -> Result<f64, String> {
    let n: f64 = s.trim().trim_end_matches('%').trim().parse().map_err(|_| format!("{s:?} is not a percentage"))?;
    if !(0.0..=100.0).contains(&n) {
        return Err("the percentage must be 0 to 100".into());
    }
    Ok(n / 100.0)
}

fn describe(line: Option<u64>, external_id: &str, p: &Planned) -> String {
    let at = line.map_or_else(|| "absent".to_owned(), |l| format!("line {l}"));
    let changes: Vec<String> = p
        .changes
        .iter()
        .map(|c| {
            let v = |v: &Option<String>| v.as_deref().map_or_else(|| "(empty)".to_owned(), |s| format!("{s:?}"));
            format!("{}: {} -> {}", c.field, v(&c.before), v(&c.after))
        })
        .collect();
    let kind = match p.kind {
        SyncKind::Created => "new",
        SyncKind::Updated => "changed",
        SyncKind::Left => "left",
        SyncKind::Rejoined => "rejoined",
        SyncKind::Unchanged => "unchanged",
    };
    if changes.is_empty() {
        format!("{at}: {kind} {external_id}")
    } else {
        format!("{at}: {kind} {external_id} ({})", changes.join("; "))
    }
}

/// Runs `tandem import`.
pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    let ImportCommand::People(args) = args.what;
    let secret = crate::server_secret_of(args.server_secret.as_ref(), args.server_secret_file.as_ref(), &args.db)?;
    let mut opts = ImportOptions::new(args.effective.unwrap_or_else(|| Utc::now().date_naive()));
    opts.dry_run = args.dry_run;
    opts.leavers_absent = args.leavers_absent;
    opts.max_leavers = args.max_leavers;
    opts.concurrency = args.concurrency.max(1);
    let file = args.file.clone();
    let quiet = args.quiet;
    crate::with_database(&args.db, |pool| async move {
        tandem_store::MIGRATOR.run(&pool).await.context("applying migrations")?;
        // The read models must be current to compare with them; this process
        // runs the projections unless a server already does (then its
        // runners stand by).
        let projections = Projections::new(pool.clone()).spawn().context("starting the projections")?;
        crate::wait_for_read_models(&projections).await;
        let commands = CommandService::from_pool(pool.clone()).with_secret(secret).with_group_commit(4, 128);
        let actor = Actor { subject: "csv-import".to_owned(), role: "integrator".to_owned() };
        let importer = Importer::new(pool.clone(), Syncer::new(commands, actor), projections.waiter());
        let started = Instant::now();
        let bar = crate::progress::stderr_bar(0, IMPORT_TEMPLATE);
        let mut out = std::io::stdout().lock();
        let result = importer
            .run(&file, &opts, |event| match event {
                ImportEvent::Progress { done, total } => {
                    bar.set_length(total);
                    bar.set_position(done);
                }
                ImportEvent::Row { line, external_id, planned } if !quiet => {
                    let _ = writeln!(out, "{}", describe(Some(line), external_id, planned));
                }
                ImportEvent::Absent { external_id, planned } if !quiet => {
                    let _ = writeln!(out, "{}", describe(None, external_id, planned));
                }
                _ => {}
            })
            .await;
        bar.finish_and_clear();
        projections.shutdown().await;
        let summary = result?;
        for e in &summary.errors {
            writeln!(out, "{e}")?;
        }
        if let Some(why) = &summary.leavers_refused {
            writeln!(out, "leavers: {why}")?;
        }
        let rows =
            summary.created + summary.updated + summary.left + summary.rejoined + summary.unchanged + summary.failed;
        let secs = started.elapsed().as_secs_f64();
        writeln!(
            out,
            "{}{summary} in {secs:.1}s ({:.0} rows/s)",
            if opts.dry_run { "dry run, nothing written: " } else { "" },
            rows as f64 / secs.max(1e-9)
        )?;
        if summary.failed > 0 || summary.leavers_refused.is_some() {
            bail!("{} rows were refused", summary.failed);
        }
        Ok(())
    })
    .await
}

/// The bar of `tandem import people`.
const IMPORT_TEMPLATE: &str = "import [{wide_bar}] {human_pos}/{human_len} rows  {per_sec}  ETA {eta}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_parse() {
        assert_eq!(parse_percent("10%"), Ok(0.1));
        assert_eq!(parse_percent("100"), Ok(1.0));
        assert!(parse_percent("101%").is_err());
        assert!(parse_percent("ten").is_err());
        assert!(indicatif::ProgressStyle::with_template(IMPORT_TEMPLATE).is_ok());
    }
}
