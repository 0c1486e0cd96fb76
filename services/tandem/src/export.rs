//! `tandem export`: the analysts' exports from the command line.
//!
//! - `tandem export events` streams the event log (after a cursor, up to an
//!   instant, some types) into one file, with a progress line on stderr.
//!   `--after` the last cursor of an earlier NDJSON or CSV file appends the
//!   rest to it; a Parquet file cannot be appended to, so the rest goes into
//!   the new file given by `--out` (read them together with a glob). With
//!   `--split-by-type`, each event type goes into its own file in the
//!   directory `--out`, its payload as typed columns.
//! - `tandem export facts` writes the fact tables into a directory.
//! - `tandem export retention` writes the survival observations of a
//!   retention study and Tandem's curves and log-rank test for every
//!   interval transform, in the form `analysis/check_survival.py` reads.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tandem_export::facts::{TABLES, write_table};
use tandem_export::{EventExport, EventQuery, Format, Pseudonymizer, TableOptions};
use tandem_projections::stats::retention::observations;
use tandem_projections::stats::{CiTransform, RetentionQuery, Study, kaplan_meier, log_rank};
use tandem_store::{Cursor, EventStore};

use crate::config::DbArgs;

/// `tandem export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(subcommand)]
    pub what: ExportCommand,
}

/// What to export.
#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// The event log, one row per event in feed order, each with its cursor.
    Events(EventsArgs),
    /// The fact tables: people, participants, pairs, sessions, goals.
    Facts(FactsArgs),
    /// The observations, curves and log-rank test of a retention study (JSON).
    Retention(RetentionArgs),
}

/// Options every export shares.
#[derive(Debug, Args, Clone)]
pub struct CommonArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Replace person ids by HMAC-SHA-256(SALT, id) pseudonyms (at least 16
    /// bytes; the same salt gives the same pseudonyms in every export).
    #[arg(long = "pseudonymize", env = "TANDEM_EXPORT_SALT", hide_env_values = true, value_name = "SALT")]
    pub salt: Option<SecretString>,
    /// Only events recorded at or before this instant (RFC 3339): the
    /// export is then the same, byte for byte, whenever it is run.
    #[arg(long, value_name = "TIME", value_parser = parse_instant)]
    pub until: Option<DateTime<Utc>>,
}

/// `tandem export events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// ndjson, csv or parquet.
    #[arg(long, default_value = "ndjson")]
    pub format: String,
    /// The file to write (`-` for standard output, not for Parquet).
    #[arg(long)]
    pub out: PathBuf,
    /// Start after this cursor (the last `cursor` of an earlier export);
    /// NDJSON and CSV are then appended to `--out`.
    #[arg(long, value_name = "CURSOR")]
    pub after: Option<String>,
    /// Only these event types (repeatable or comma-separated).
    #[arg(long = "types", value_name = "TYPE")]
    pub types: Vec<String>,
    /// Parquet: the most rows in one row group.
    #[arg(long, default_value_t = 100_000)]
    pub row_group_rows: usize,
    /// One table per event type, its payload as typed columns (ratings,
    /// dates, lists, …) instead of one JSON column: `--out` is then a new
    /// or empty directory that gets `<EventType>.<format>` files.
    #[arg(long)]
    pub split_by_type: bool,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// `tandem export facts`.
#[derive(Debug, Args)]
pub struct FactsArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// ndjson, csv or parquet.
    #[arg(long, default_value = "parquet")]
    pub format: String,
    /// The directory to write `<table>.<format>` files into.
    #[arg(long)]
    pub out: PathBuf,
}

/// `tandem export retention`.
#[derive(Debug, Args)]
pub struct RetentionArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The file to write (JSON).
    #[arg(long)]
    pub out: PathBuf,
    /// Participants of this program (default: of any program).
    #[arg(long)]
    pub program: Option<uuid::Uuid>,
    /// The last day of the study (default: the study's day).
    #[arg(long)]
    pub study_end: Option<NaiveDate>,
    /// The origin of non-participants (default: the program's launch).
    #[arg(long)]
    pub index_date: Option<NaiveDate>,
    /// Confidence level of the intervals.
    #[arg(long, default_value_t = 0.95)]
    pub confidence: f64,
}

fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).map_err(|e| format!("expected RFC 3339: {e}"))
}

/// A store that upcasts what it reads, so rows show today's schema versions.
fn store_of(pool: sqlx::PgPool) -> EventStore {
    EventStore::with_upcaster(pool, std::sync::Arc::new(tandem_commands::DomainUpcaster))
}

fn pseudonyms(salt: Option<&SecretString>) -> anyhow::Result<Pseudonymizer> {
    Ok(match salt {
        Some(s) => Pseudonymizer::with_salt(s.expose_secret().as_bytes())?,
        None => Pseudonymizer::identity(),
    })
}

/// Runs `tandem export`.
pub async fn run(args: ExportArgs) -> anyhow::Result<()> {
    match args.what {
        ExportCommand::Events(a) => {
            let db = a.common.db.clone();
            crate::with_database_vault(&db, crate::keys::vault_if_configured(&db)?, |pool| events(pool, a)).await
        }
        ExportCommand::Facts(a) => {
            let db = a.common.db.clone();
            crate::with_database_vault(&db, crate::keys::vault_if_configured(&db)?, |pool| facts(pool, a)).await
        }
        ExportCommand::Retention(a) => {
            let db = a.common.db.clone();
            crate::with_database_vault(&db, crate::keys::vault_if_configured(&db)?, |pool| retention(pool, a)).await
        }
    }
}

/// Whether an existing CSV file already has content (so its header).
fn has_content(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() > 0)
}

/// Makes sure an appended-to text file ends with a newline, so the first
/// appended row starts on its own line.
fn ends_with_newline(file: &mut File) -> anyhow::Result<bool> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(true);
    }
    file.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    file.seek(SeekFrom::End(0))?;
    Ok(last[0] == b'\n')
}

/// A progress line on stderr, at most four times a second.
fn progress_line(quiet: bool, end: Cursor) -> impl FnMut(tandem_export::Progress) {
    let started = Instant::now();
    let mut last_print = Instant::now() - Duration::from_secs(1);
    move |p| {
        if !quiet && last_print.elapsed() >= Duration::from_millis(250) {
            last_print = Instant::now();
            let rate = p.read as f64 / started.elapsed().as_secs_f64().max(1e-9);
            let pct = if end.position == 0 { 100.0 } else { 100.0 * p.at.position as f64 / end.position as f64 };
            eprint!(
                "\rexport {:>5.1}%  {} events read, {} rows written  {:.0} events/s   ",
                pct.min(100.0),
                p.read,
                p.rows,
                rate
            );
            let _ = std::io::stderr().flush();
        }
    }
}

/// `tandem export events --split-by-type`: one file per event type.
async fn events_by_type(store: EventStore, query: EventQuery, format: Format, a: &EventsArgs) -> anyhow::Result<()> {
    let dir = a.out.clone();
    if dir == Path::new("-") {
        bail!("--split-by-type writes one file per event type: give --out DIRECTORY");
    }
    if dir.exists() {
        if !dir.is_dir() {
            bail!("{} is not a directory (--split-by-type writes one file per event type into it)", dir.display());
        }
        if std::fs::read_dir(&dir)?.next().is_some() {
            bail!("{} is not empty; give a new directory (a resumed export goes into its own)", dir.display());
        }
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let options = TableOptions { row_group_rows: a.row_group_rows, ..TableOptions::default() };
    let ext = format.extension();
    let open_dir = dir.clone();
    let open: tandem_export::events::OpenTable<BufWriter<File>> = Box::new(move |event_type: &str| {
        // Event type names are identifiers of the catalogue, or, for a
        // type of a newer version, what it stored: keep only safe characters.
        let name: String = event_type.chars().filter(char::is_ascii_alphanumeric).take(64).collect();
        let path = open_dir.join(format!("{name}.{ext}"));
        Ok(BufWriter::with_capacity(1 << 18, File::create(path)?))
    });
    let started = Instant::now();
    let export = tandem_export::SplitExport::start(store, query, format, options, open).await?;
    let end = export.end();
    let (tables, p) = export.run(progress_line(a.quiet, end)).await?;
    if !a.quiet {
        eprintln!();
    }
    for (event_type, out, rows) in tables {
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        eprintln!("  {event_type}: {rows} rows");
    }
    eprintln!(
        "{} rows in {:.1}s into {}; resume with --after {} (the end of this export) into a new directory",
        p.rows,
        started.elapsed().as_secs_f64(),
        dir.display(),
        end
    );
    Ok(())
}

async fn events(pool: sqlx::PgPool, a: EventsArgs) -> anyhow::Result<()> {
    let format: Format = a.format.parse()?;
    let after = match &a.after {
        Some(c) => c.parse::<Cursor>().context("--after")?,
        None => Cursor::START,
    };
    let appending = a.after.is_some() && format != Format::Parquet && a.out != Path::new("-");
    let store = store_of(pool);
    let query = EventQuery {
        after,
        until: a.common.until,
        types: (!a.types.is_empty()).then(|| a.types.clone()),
        pseudonyms: pseudonyms(a.common.salt.as_ref())?,
        page_size: 5_000,
    };
    if a.split_by_type {
        return events_by_type(store, query, format, &a).await;
    }
    let options = TableOptions {
        row_group_rows: a.row_group_rows,
        csv_header: !(appending && has_content(&a.out)),
        ..TableOptions::default()
    };
    let out: Box<dyn std::io::Write + Send> = if a.out == Path::new("-") {
        if format == Format::Parquet {
            bail!("Parquet needs a file: give --out PATH");
        }
        Box::new(std::io::stdout())
    } else if appending {
        let mut f = OpenOptions::new().read(true).append(true).create(true).open(&a.out)?;
        if !ends_with_newline(&mut f)? {
            bail!("{} does not end with a complete row; cut the partial last line before resuming", a.out.display());
        }
        Box::new(f)
    } else {
        Box::new(File::create(&a.out).with_context(|| format!("creating {}", a.out.display()))?)
    };
    let started = Instant::now();
    let export = EventExport::start(store, query, format, options, BufWriter::with_capacity(1 << 20, out)).await?;
    let end = export.end();
    let (out, p) = export.run(progress_line(a.quiet, end)).await?;
    out.into_inner().map_err(|e| e.into_error())?.flush()?;
    if !a.quiet {
        eprintln!();
    }
    eprintln!(
        "{} rows in {:.1}s; resume with --after {} (the end of this export)",
        p.rows,
        started.elapsed().as_secs_f64(),
        end
    );
    Ok(())
}

async fn facts(pool: sqlx::PgPool, a: FactsArgs) -> anyhow::Result<()> {
    let format: Format = a.format.parse()?;
    let ids = pseudonyms(a.common.salt.as_ref())?;
    let store = store_of(pool);
    let study = Study::load(&store, a.common.until).await?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    for (name, _) in TABLES {
        let path = a.out.join(format!("{name}.{}", format.extension()));
        let file = BufWriter::new(File::create(&path).with_context(|| format!("creating {}", path.display()))?);
        let (w, n) = write_table(&study, name, &ids, format, TableOptions::default(), file)?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        eprintln!("{name}: {n} rows -> {}", path.display());
    }
    eprintln!("facts as of {} ({} events)", study.as_of.to_rfc3339(), study.events);
    Ok(())
}

async fn retention(pool: sqlx::PgPool, a: RetentionArgs) -> anyhow::Result<()> {
    let ids = pseudonyms(a.common.salt.as_ref())?;
    let store = store_of(pool);
    let study = Study::load(&store, a.common.until).await?;
    let query = RetentionQuery {
        program_id: a.program,
        study_end: a.study_end,
        index_date: a.index_date,
        transform: CiTransform::LogLog,
        confidence: a.confidence,
    };
    let o = observations(&study, &query)?;
    let (end, index_date, part, non) = (o.end, o.index_date, o.participants, o.non_participants);
    let group = |m: &std::collections::BTreeMap<uuid::Uuid, tandem_projections::stats::Observation>| {
        json!({
            "people": m.keys().map(|p| ids.person(*p)).collect::<Vec<_>>(),
            "durations": m.values().map(|o| o.duration).collect::<Vec<_>>(),
            "events": m.values().map(|o| o.event).collect::<Vec<_>>(),
        })
    };
    let a_obs: Vec<_> = part.values().copied().collect();
    let b_obs: Vec<_> = non.values().copied().collect();
    let mut curves = serde_json::Map::new();
    for (label, t) in [("LOG_LOG", CiTransform::LogLog), ("LOG", CiTransform::Log), ("PLAIN", CiTransform::Plain)] {
        let curve = |o: &[tandem_projections::stats::Observation]| -> anyhow::Result<serde_json::Value> {
            let km = kaplan_meier(o, t, a.confidence)?;
            Ok(json!({
                "points": km.points.iter().map(|p| json!({
                    "time": p.time, "at_risk": p.at_risk, "events": p.events, "censored": p.censored,
                    "survival": p.survival, "lower": p.lower, "upper": p.upper,
                })).collect::<Vec<_>>(),
                "median": km.median,
            }))
        };
        curves.insert(label.into(), json!({ "a": curve(&a_obs)?, "b": curve(&b_obs)? }));
    }
    let lr = log_rank(&a_obs, &b_obs)?.map(|r| json!({ "statistic": r.statistic, "p_value": r.p_value }));
    let doc = json!([{
        "name": "retention: participants (a) against non-participants (b)",
        "as_of": study.as_of.to_rfc3339(),
        "study_end": end,
        "index_date": index_date,
        "confidence": a.confidence,
        "a": group(&part),
        "b": group(&non),
        "curves": curves,
        "log_rank": lr,
    }]);
    std::fs::write(&a.out, serde_json::to_vec_pretty(&doc)?).with_context(|| format!("writing {}", a.out.display()))?;
    eprintln!("{} participants, {} non-participants -> {}", part.len(), non.len(), a.out.display());
    Ok(())
}
