//! The CSV full-file import against a real database, with the projections
//! running as `tandem import people` runs them.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use chrono::NaiveDate;
use sqlx::PgPool;
use tandem_commands::CommandService;
use tandem_hris::import::{ImportEvent, ImportOptions, ImportSummary, Importer, RowError};
use tandem_hris::sync::{SyncCode, SyncKind, Syncer};
use tandem_projections::{Projections, ProjectionsHandle, queries};
use tandem_store::Actor;
use tandem_testkit::db::event_count;

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

struct Setup {
    importer: Importer,
    projections: ProjectionsHandle,
}

async fn setup(pool: &PgPool) -> Setup {
    let projections = Projections::new(pool.clone()).spawn().unwrap();
    // The read models' tables exist once each has a position.
    let names = tandem_projections::read_models().len();
    tandem_testkit::wait::eventually(std::time::Duration::from_secs(30), "the read models to start", || {
        let n = projections.waiter().positions().len();
        async move { (n == names).then_some(()) }
    })
    .await;
    let commands =
        CommandService::from_pool(pool.clone()).with_secret(tandem_testkit::test_secret()).with_group_commit(4, 128);
    let actor = Actor { subject: "csv-import".into(), role: "integrator".into() };
    let importer = Importer::new(pool.clone(), Syncer::new(commands, actor), projections.waiter());
    Setup { importer, projections }
}

/// A file under the test's temporary directory, removed when dropped.
struct TempCsv(PathBuf);

impl Drop for TempCsv {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl std::ops::Deref for TempCsv {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

fn file(contents: &[u8]) -> TempCsv {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("import-{}.csv", uuid::Uuid::now_v7()));
    std::fs::write(&path, contents).unwrap();
    TempCsv(path)
}

async fn import(s: &Setup, path: &std::path::Path, opts: &ImportOptions) -> ImportSummary {
    s.importer.run(path, opts, |_| {}).await.unwrap()
}

const HEADER: &str = "external_id,name,email,title,department,level,manager_external_id,location,hired_on\n";

fn error_at(summary: &ImportSummary, line: u64) -> &RowError {
    summary.errors.iter().find(|e| e.line == line).unwrap_or_else(|| panic!("no error on line {line}: {summary:?}"))
}

#[sqlx::test(migrations = "../../migrations")]
async fn bad_rows_are_reported_by_line_and_column_and_the_good_rows_import(pool: PgPool) {
    let s = setup(&pool).await;
    let mut csv = String::from(HEADER);
    csv.push_str("E1,Ada Lovelace,ada@example.com,CTO,Engineering,9,,London,2020-01-01\n"); // 2
    csv.push_str("E2,Bob Byte,bob@example.com,Engineer,Engineering,3,E1,,2021-02-01\n"); // 3
    csv.push_str("E3,Cy Cycle,cy@example.com,Engineer,Engineering,3,E4,,2021-02-01\n"); // 4
    csv.push_str("E4,Di Cycle,di@example.com,Engineer,Engineering,3,E3,,2021-02-01\n"); // 5
    csv.push_str("E5,Bad Mail,not-an-email,Engineer,Engineering,3,E1,,2021-02-01\n"); // 6
    csv.push_str("E6,No Manager,n@example.com,Engineer,Engineering,3,ZZZ,,2021-02-01\n"); // 7
    csv.push_str("E7,Dup One,d1@example.com,Engineer,Engineering,3,,,2021-02-01\n"); // 8
    csv.push_str("e7,Dup Two,d2@example.com,Engineer,Engineering,3,,,2021-02-01\n"); // 9
    csv.push_str("E8,Under Bad,u@example.com,Engineer,Engineering,3,E5,,2021-02-01\n"); // 10
    csv.push_str("E9,Nul\0Byte,nul@example.com,Engineer,Engineering,3,E2,,2021-02-01\n"); // 11
    csv.push_str("E10,Short Row\n"); // 12
    csv.push_str("E11,\"Quoted, Name\",q@example.com,Engineer,Engineering,31,E2,,2021-02-01\n"); // 13
    // Its manager comes later in the file.
    csv.push_str("E12,Early Report,er@example.com,Engineer,Engineering,2,E13,,2021-02-01\n"); // 14
    csv.push_str("E13,Late Manager,lm@example.com,Lead,Engineering,5,E1,,2021-02-01\n"); // 15
    let path = file(csv.as_bytes());
    let summary = import(&s, &path, &ImportOptions::new(day("2026-12-01"))).await;

    let expect = [
        (4, "manager_external_id", SyncCode::ManagementCycle),
        (5, "manager_external_id", SyncCode::ManagementCycle),
        (6, "email", SyncCode::InvalidValue),
        (7, "manager_external_id", SyncCode::UnknownManager),
        (8, "external_id", SyncCode::DuplicateExternalId),
        (9, "external_id", SyncCode::DuplicateExternalId),
        (10, "manager_external_id", SyncCode::ManagerFailed),
        (11, "name", SyncCode::InvalidValue),
        (13, "level", SyncCode::InvalidValue),
    ];
    for (line, column, code) in expect {
        let e = error_at(&summary, line);
        assert_eq!((e.column, e.code), (Some(column), code), "line {line}: {e}");
    }
    let short = error_at(&summary, 12);
    assert_eq!((short.column, short.code), (None, SyncCode::InvalidValue));
    assert!(error_at(&summary, 4).message.contains("line 4, line 5"), "{}", error_at(&summary, 4));
    assert!(error_at(&summary, 10).message.contains("line 6"), "{}", error_at(&summary, 10));
    // No message quotes a value of the file.
    for e in &summary.errors {
        for value in ["not-an-email", "ZZZ", "Nul", "Dup", "Bad Mail"] {
            assert!(!e.message.contains(value), "{e}");
        }
    }
    assert_eq!((summary.created, summary.failed), (4, 10), "{summary:?}");
    assert_eq!(event_count(&pool).await, 4);

    // The report placed under a manager listed after it.
    let on = day("2026-12-01");
    let early = queries::person_by_external_id(&pool, "E12", on).await.unwrap().unwrap();
    let late = queries::person_by_external_id(&pool, "E13", on).await.unwrap().unwrap();
    let ada = queries::person_by_external_id(&pool, "E1", on).await.unwrap().unwrap();
    assert_eq!(early.manager_id, Some(late.person_id));
    assert_eq!(late.manager_id, Some(ada.person_id));
    assert_eq!(ada.location.as_deref(), Some("London"));

    // The same file again changes nothing.
    let again = import(&s, &path, &ImportOptions::new(on)).await;
    assert_eq!((again.created, again.unchanged, again.events), (0, 4, 0), "{again:?}");
    assert_eq!(event_count(&pool).await, 4);
    s.projections.shutdown().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn changes_take_effect_on_the_date_and_a_dry_run_writes_nothing(pool: PgPool) {
    let s = setup(&pool).await;
    let first = format!(
        "{HEADER}M1,Mia Manager,mia@example.com,Lead,Sales,6,,,2020-01-01\n\
         M2,Max Manager,max@example.com,Lead,Sales,6,,,2020-01-01\n\
         P1,Pat Person,pat@example.com,Rep,Sales,2,M1,Paris,2021-01-01\n"
    );
    let summary = import(&s, &file(first.as_bytes()), &ImportOptions::new(day("2026-01-01"))).await;
    assert_eq!(summary.created, 3, "{summary:?}");

    // A move to another manager, a promotion and no location.
    let second = format!(
        "{HEADER}M1,Mia Manager,mia@example.com,Lead,Sales,6,,,2020-01-01\n\
         M2,Max Manager,max@example.com,Lead,Sales,6,,,2020-01-01\n\
         P1,Pat Person,pat@example.com,Senior Rep,Sales,3,M2,,\n"
    );
    let path = file(second.as_bytes());
    let mut dry = ImportOptions::new(day("2026-06-01"));
    dry.dry_run = true;
    let mut lines = Vec::new();
    let planned = s
        .importer
        .run(&path, &dry, |e| {
            if let ImportEvent::Row { line, planned, .. } = e {
                lines.push((line, planned.kind, planned.changes.iter().map(|c| c.field).collect::<Vec<_>>()));
            }
        })
        .await
        .unwrap();
    assert_eq!((planned.updated, planned.unchanged, planned.events), (1, 2, 0), "{planned:?}");
    assert_eq!(lines, vec![(4, SyncKind::Updated, vec!["title", "level", "manager_external_id", "location"])]);
    assert_eq!(event_count(&pool).await, 3);

    let done = import(&s, &path, &ImportOptions::new(day("2026-06-01"))).await;
    assert_eq!((done.updated, done.unchanged, done.events), (1, 2, 1), "{done:?}");
    let m1 = queries::person_by_external_id(&pool, "M1", day("2026-01-01")).await.unwrap().unwrap();
    let m2 = queries::person_by_external_id(&pool, "M2", day("2026-01-01")).await.unwrap().unwrap();
    // The dated org history: before the effective date, the old facts.
    let before = queries::person_by_external_id(&pool, "P1", day("2026-05-31")).await.unwrap().unwrap();
    let after = queries::person_by_external_id(&pool, "P1", day("2026-06-01")).await.unwrap().unwrap();
    assert_eq!((before.manager_id, before.level, before.title.as_str()), (Some(m1.person_id), 2, "Rep"));
    assert_eq!((after.manager_id, after.level, after.title.as_str()), (Some(m2.person_id), 3, "Senior Rep"));
    assert_eq!(after.location, None);
    s.projections.shutdown().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn people_absent_from_a_full_file_leave_within_the_allowed_share(pool: PgPool) {
    let s = setup(&pool).await;
    let mut all = String::from(HEADER);
    for i in 0..20 {
        all.push_str(&format!("A{i},Person {i},p{i}@example.com,Rep,Sales,2,,,2020-01-01\n"));
    }
    import(&s, &file(all.as_bytes()), &ImportOptions::new(day("2026-01-01"))).await;

    // Three of twenty are gone: 15 % > 10 %, so nobody is marked.
    let mut most = String::from(HEADER);
    for i in 3..20 {
        most.push_str(&format!("A{i},Person {i},p{i}@example.com,Rep,Sales,2,,,2020-01-01\n"));
    }
    let path = file(most.as_bytes());
    let mut opts = ImportOptions::new(day("2026-03-01"));
    opts.leavers_absent = true;
    let refused = import(&s, &path, &opts).await;
    assert!(refused.leavers_refused.is_some(), "{refused:?}");
    assert_eq!((refused.left, refused.events), (0, 0));

    opts.max_leavers = 0.20;
    let done = import(&s, &path, &opts).await;
    assert_eq!((done.left, done.unchanged, done.events), (3, 17, 3), "{done:?}");
    let gone = queries::person_by_external_id(&pool, "A0", day("2026-03-01")).await.unwrap().unwrap();
    assert_eq!(gone.left_on, Some(day("2026-03-01")));

    // Back in the file without a left_on column: the rows manage nothing
    // about leaving. With it and empty: they rejoin.
    let back = "external_id,left_on\nA0,\nA1,2026-02-15\n";
    let rejoined = import(&s, &file(back.as_bytes()), &ImportOptions::new(day("2026-04-01"))).await;
    assert_eq!((rejoined.rejoined, rejoined.unchanged), (1, 1), "{rejoined:?}");
    let a0 = queries::person_by_external_id(&pool, "A0", day("2026-04-01")).await.unwrap().unwrap();
    assert_eq!(a0.left_on, None);
    s.projections.shutdown().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_bad_header_imports_nothing(pool: PgPool) {
    let s = setup(&pool).await;
    for header in ["name,email\n", "external_id,nmae\n", "external_id,name,name\n"] {
        let path = file(format!("{header}E1,Ada\n").as_bytes());
        let err = s.importer.run(&path, &ImportOptions::new(day("2026-01-01")), |_| {}).await.unwrap_err();
        assert!(err.to_string().contains("header"), "{err}");
    }
    assert_eq!(event_count(&pool).await, 0);
    s.projections.shutdown().await;
}

/// 100,000 rows in a ten-wide management tree (five levels of managers,
/// each row after its manager or before it), then the same file again.
#[sqlx::test(migrations = "../../migrations")]
async fn a_hundred_thousand_rows_import_and_the_same_file_again_appends_nothing(pool: PgPool) {
    const ROWS: usize = 100_000;
    let s = setup(&pool).await;
    let path =
        TempCsv(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("import-100k-{}.csv", uuid::Uuid::now_v7())));
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&*path).unwrap());
        w.write_all(HEADER.as_bytes()).unwrap();
        // Reverse order: every report comes before its manager.
        for i in (0..ROWS).rev() {
            let manager = if i == 0 { String::new() } else { format!("X{}", (i - 1) / 10) };
            let level = 30 - (i.max(1).ilog10()) * 5;
            writeln!(w, "X{i},Person {i},person{i}@example.com,Engineer,Dept {},{level},{manager},,2020-01-01", i % 50)
                .unwrap();
        }
        w.flush().unwrap();
    }
    let opts = ImportOptions::new(day("2026-01-01"));
    let started = Instant::now();
    let first = import(&s, &path, &opts).await;
    let took = started.elapsed();
    eprintln!("100,000 rows imported in {:.1}s ({:.0} rows/s)", took.as_secs_f64(), ROWS as f64 / took.as_secs_f64());
    assert!(first.errors.is_empty(), "{:?}", &first.errors[..first.errors.len().min(5)]);
    assert_eq!((first.created, first.events), (ROWS as u64, ROWS as u64));
    assert_eq!(event_count(&pool).await, ROWS as i64);

    let started = Instant::now();
    let second = import(&s, &path, &opts).await;
    eprintln!("the same file again in {:.1}s", started.elapsed().as_secs_f64());
    assert_eq!((second.unchanged, second.events, second.failed), (ROWS as u64, 0, 0));
    assert_eq!(event_count(&pool).await, ROWS as i64);

    let leaf = queries::person_by_external_id(&pool, "X99999", day("2026-01-01")).await.unwrap().unwrap();
    let boss = queries::person_by_external_id(&pool, "X9999", day("2026-01-01")).await.unwrap().unwrap();
    assert_eq!(leaf.manager_id, Some(boss.person_id));
    s.projections.shutdown().await;
}
