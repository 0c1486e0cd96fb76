//! The exports against a real PostgreSQL holding a small demo organisation
//! generated through the command path: every format holds one row per
//! event in feed order with its cursor; nothing personal leaves; pseudonyms
//! are stable per salt; `until` gives the same bytes after more events
//! are appended; `after` resumes exactly; Parquet row groups keep their
//! limit; bad input is refused with the field named.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::Value;
use sqlx::PgPool;
use tandem_commands::{Command, CommandMeta, CommandService};
use tandem_domain::PersonId;
use tandem_domain::person::{PersonCommand, RegisterPerson};
use tandem_domain::values::{Email, ExternalId, Level, ShortText};
use tandem_export::facts::{TABLES, write_table};
use tandem_export::{EventExport, EventQuery, ExportError, Format, Pseudonymizer, SplitExport, TableOptions};
use tandem_projections::stats::Study;
use tandem_store::{Actor, Cursor, EventStore};

const SALT: &[u8] = b"a salt of at least sixteen bytes";

async fn demo(pool: &PgPool) -> CommandService {
    let svc = CommandService::from_pool(pool.clone());
    let opts = tandem_demo::DemoOptions {
        seed: 11,
        people: 60,
        months: 2,
        concurrency: 4,
        today: NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(),
    };
    tandem_demo::generate(&svc, &opts, |_| {}).await.unwrap();
    svc
}

async fn export(store: &EventStore, query: EventQuery, format: Format, options: TableOptions) -> Vec<u8> {
    let e = EventExport::start(store.clone(), query, format, options, Vec::new()).await.unwrap();
    e.run(|_| {}).await.unwrap().0
}

fn pseudonymous() -> EventQuery {
    EventQuery::all(Pseudonymizer::with_salt(SALT).unwrap())
}

/// Every free-text or identifying string stored in the log (names, e-mails,
/// external ids, titles, locations, descriptions, notes, reasons in words,
/// interests, skills), and every person id.
async fn personal_values(pool: &PgPool, store: &EventStore) -> (BTreeSet<String>, BTreeSet<String>) {
    const KEYS: &[&str] = &[
        "name",
        "fullName",
        "email",
        "externalId",
        "title",
        "location",
        "description",
        "wantsToWorkOn",
        "interests",
        "skills",
        "focus",
        "notes",
        "note",
        "strengths",
        "improvements",
    ];
    fn walk(v: &Value, key: Option<&str>, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => m.iter().for_each(|(k, v)| walk(v, Some(k), out)),
            Value::Array(a) => a.iter().for_each(|v| walk(v, key, out)),
            Value::String(s) if key.is_some_and(|k| KEYS.contains(&k) || k == "reason") => {
                let is_code = s.chars().all(|c| c.is_ascii_uppercase() || c == '_');
                if s.len() >= 6 && !is_code {
                    out.insert(s.clone());
                }
            }
            _ => {}
        }
    }
    // Read through the store: the log holds personal fields sealed, and
    // the export must not hold their clear values either.
    let mut texts = BTreeSet::new();
    let mut after = Cursor::START;
    loop {
        let page = store.read_all(after, 1_000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.cursor();
        page.iter().for_each(|e| walk(&e.data, None, &mut texts));
    }
    let ids: Vec<(uuid::Uuid,)> = sqlx::query_as("SELECT DISTINCT stream_id FROM events WHERE stream_type = 'person'")
        .fetch_all(pool)
        .await
        .unwrap();
    (texts, ids.into_iter().map(|(u,)| u.to_string()).collect())
}

fn assert_nothing_personal(bytes: &[u8], texts: &BTreeSet<String>, ids: &BTreeSet<String>, what: &str) {
    let s = String::from_utf8_lossy(bytes);
    for t in texts {
        assert!(!s.contains(t.as_str()), "{what} contains the stored text {t:?}");
    }
    for id in ids {
        assert!(!s.contains(id.as_str()), "{what} contains the person id {id}");
    }
}

fn ndjson(bytes: &[u8]) -> Vec<Value> {
    std::str::from_utf8(bytes).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[sqlx::test(migrations = "../../migrations")]
async fn every_format_holds_the_whole_log_in_feed_order_and_nothing_personal(pool: PgPool) {
    let svc = demo(&pool).await;
    let store = svc.store().clone();
    let (texts, ids) = personal_values(&pool, &store).await;
    assert!(texts.len() > 50 && !ids.is_empty(), "the demo should hold personal data to look for");
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&pool).await.unwrap();

    // NDJSON: one row per event, cursors strictly increasing = feed order.
    let nd = export(&store, pseudonymous(), Format::Ndjson, TableOptions::default()).await;
    let rows = ndjson(&nd);
    assert_eq!(rows.len() as i64, total);
    let cursors: Vec<Cursor> = rows.iter().map(|r| r["cursor"].as_str().unwrap().parse().unwrap()).collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "rows out of feed order");
    let feed: Vec<Cursor> =
        store.read_all(Cursor::START, total + 1).await.unwrap().iter().map(|e| e.cursor()).collect();
    assert_eq!(cursors, feed, "the export is the feed");
    assert_nothing_personal(&nd, &texts, &ids, "the NDJSON export");
    let registered = rows.iter().find(|r| r["event_type"] == "PersonRegistered").unwrap();
    assert_eq!(registered["data"]["person"], registered["stream_id"], "the stream id is the same pseudonym");
    assert!(registered["data"].get("name").is_none() && registered["data"].get("email").is_none());

    // CSV: a header and one record per event.
    let csv_bytes = export(&store, pseudonymous(), Format::Csv, TableOptions::default()).await;
    let mut reader = csv::Reader::from_reader(csv_bytes.as_slice());
    assert_eq!(reader.headers().unwrap().get(0), Some("cursor"));
    assert_eq!(reader.records().count() as i64, total);
    assert_nothing_personal(&csv_bytes, &texts, &ids, "the CSV export");

    // Parquet: row groups of at most the limit, every row there.
    // A limit below the log's size, so the file must hold several groups.
    let limit = usize::try_from(total / 3).unwrap().max(1);
    let options = TableOptions { row_group_rows: limit, ..TableOptions::default() };
    let pq = export(&store, pseudonymous(), Format::Parquet, options).await;
    let file = SerializedFileReader::new(bytes::Bytes::from(pq.clone())).unwrap();
    let meta = file.metadata();
    assert!(meta.num_row_groups() > 1, "expected several row groups");
    assert!(meta.row_groups().iter().all(|g| usize::try_from(g.num_rows()).unwrap() <= limit));
    assert_eq!(meta.file_metadata().num_rows(), total);
    assert_nothing_personal(&pq, &texts, &ids, "the Parquet export");

    // The facts carry no personal value either, in every format.
    let study = Study::load(&store, None).await.unwrap();
    for format in [Format::Ndjson, Format::Csv, Format::Parquet] {
        for (name, _) in TABLES {
            let ids_p = Pseudonymizer::with_salt(SALT).unwrap();
            let (bytes, n) = write_table(&study, name, &ids_p, format, TableOptions::default(), Vec::new()).unwrap();
            assert!(n > 0, "fact table {name} is empty");
            assert_nothing_personal(&bytes, &texts, &ids, &format!("facts {name} ({format:?})"));
        }
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_split_export_holds_each_event_type_in_a_typed_table(pool: PgPool) {
    let svc = demo(&pool).await;
    let store = svc.store().clone();
    let (texts, ids) = personal_values(&pool, &store).await;
    let by_type: Vec<(String, i64)> =
        sqlx::query_as("SELECT event_type, count(*) FROM events GROUP BY 1 ORDER BY 1").fetch_all(&pool).await.unwrap();
    assert!(by_type.len() > 10, "the demo should hold many event types: {by_type:?}");
    for format in [Format::Parquet, Format::Ndjson] {
        let open: tandem_export::events::OpenTable<Vec<u8>> = Box::new(|_| Ok(Vec::new()));
        let export =
            SplitExport::start(store.clone(), pseudonymous(), format, TableOptions::default(), open).await.unwrap();
        let (tables, progress) = export.run(|_| {}).await.unwrap();
        let got: Vec<(String, i64)> = tables.iter().map(|(t, _, n)| (t.clone(), i64::try_from(*n).unwrap())).collect();
        assert_eq!(got, by_type, "one table per event type, every event in it");
        assert_eq!(progress.rows, u64::try_from(by_type.iter().map(|(_, n)| n).sum::<i64>()).unwrap());
        for (event_type, bytes, rows) in &tables {
            assert_nothing_personal(bytes, &texts, &ids, &format!("the {event_type} table ({format:?})"));
            let columns = tandem_export::typed::table_columns(event_type);
            if format == Format::Parquet {
                let file = SerializedFileReader::new(bytes::Bytes::from(bytes.clone())).unwrap();
                let meta = file.metadata();
                assert_eq!(meta.file_metadata().num_rows(), i64::try_from(*rows).unwrap());
                let names: Vec<String> = meta
                    .file_metadata()
                    .schema_descr()
                    .root_schema()
                    .get_fields()
                    .iter()
                    .map(|f| f.name().to_owned())
                    .collect();
                assert_eq!(names, columns.iter().map(|c| c.name.to_owned()).collect::<Vec<_>>(), "{event_type}");
            } else {
                for row in ndjson(bytes) {
                    assert_eq!(row["event_type"], event_type.as_str());
                    let keys: Vec<&str> = row.as_object().unwrap().keys().map(String::as_str).collect();
                    assert_eq!(keys.len(), columns.len(), "{event_type}: {row}");
                }
            }
        }
        if format == Format::Ndjson {
            // The typed cells hold the very values of the one-column export.
            let one = ndjson(&export_all(&store).await);
            let held = &tables.iter().find(|(t, _, _)| t == "SessionHeld").unwrap().1;
            let typed = ndjson(held);
            let json: Vec<&Value> = one.iter().filter(|r| r["event_type"] == "SessionHeld").collect();
            assert_eq!(typed.len(), json.len());
            for (t, j) in typed.iter().zip(json) {
                assert_eq!(t["cursor"], j["cursor"]);
                assert_eq!(t["minutes"], j["data"]["minutes"]);
                assert_eq!(t["activities"], j["data"]["activities"]);
            }
        }
    }
}

async fn export_all(store: &EventStore) -> Vec<u8> {
    export(store, pseudonymous(), Format::Ndjson, TableOptions::default()).await
}

#[sqlx::test(migrations = "../../migrations")]
async fn pseudonyms_are_stable_per_salt(pool: PgPool) {
    let svc = demo(&pool).await;
    let store = svc.store().clone();
    let a = export(&store, pseudonymous(), Format::Ndjson, TableOptions::default()).await;
    let b = export(&store, pseudonymous(), Format::Ndjson, TableOptions::default()).await;
    assert_eq!(a, b, "same salt, same bytes");
    let other = EventQuery::all(Pseudonymizer::with_salt(b"another salt, also sixteen+").unwrap());
    let c = export(&store, other, Format::Ndjson, TableOptions::default()).await;
    let people = |bytes: &[u8]| -> BTreeSet<String> {
        ndjson(bytes).iter().filter(|r| r["stream_type"] == "person").map(|r| r["stream_id"].to_string()).collect()
    };
    assert!(people(&a).is_disjoint(&people(&c)), "another salt must give other pseudonyms");
}

async fn register(svc: &CommandService, n: usize) {
    for i in 0..n {
        let c = Command::Person(PersonCommand::Register(RegisterPerson {
            person_id: PersonId::new(),
            external_id: ExternalId::parse("externalId", &format!("LATE-{i}")).unwrap(),
            name: ShortText::parse("name", &format!("Late Joiner {i}")).unwrap(),
            email: Email::parse("email", &format!("late{i}@example.com")).unwrap(),
            department: ShortText::parse("department", "Finance").unwrap(),
            title: ShortText::parse("title", "Analyst").unwrap(),
            level: Level::parse("level", 3).unwrap(),
            manager: None,
            location: None,
            hired_on: NaiveDate::from_ymd_opt(2026, 5, 1).unwrap(),
        }));
        let meta = CommandMeta::new(Actor { subject: "test".into(), role: "admin".into() });
        svc.handle(c, &meta).await.unwrap();
    }
}

async fn now(pool: &PgPool) -> DateTime<Utc> {
    sqlx::query_scalar("SELECT now()").fetch_one(pool).await.unwrap()
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_export_until_an_instant_is_the_same_bytes_after_more_events(pool: PgPool) {
    let svc = demo(&pool).await;
    let store = svc.store().clone();
    let t = now(&pool).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let until = |format| {
        let store = store.clone();
        async move {
            let q = EventQuery { until: Some(t), ..pseudonymous() };
            export(&store, q, format, TableOptions { row_group_rows: 700, ..TableOptions::default() }).await
        }
    };
    let before = [until(Format::Ndjson).await, until(Format::Csv).await, until(Format::Parquet).await];
    let study_before = Study::load(&store, Some(t)).await.unwrap();
    register(&svc, 7).await;
    let after = [until(Format::Ndjson).await, until(Format::Csv).await, until(Format::Parquet).await];
    for (b, a) in before.iter().zip(&after) {
        assert!(!b.is_empty());
        assert!(b == a, "an export until {t} changed after more events were appended");
    }
    let study_after = Study::load(&store, Some(t)).await.unwrap();
    assert_eq!((study_before.events, study_before.last_cursor), (study_after.events, study_after.last_cursor));
    for (name, _) in TABLES {
        let ids = Pseudonymizer::with_salt(SALT).unwrap();
        let x = write_table(&study_before, name, &ids, Format::Parquet, TableOptions::default(), Vec::new()).unwrap();
        let y = write_table(&study_after, name, &ids, Format::Parquet, TableOptions::default(), Vec::new()).unwrap();
        assert!(x.0 == y.0, "facts {name} until {t} changed");
    }
    // Without `until`, the new events are there.
    let all = ndjson(&export(&store, pseudonymous(), Format::Ndjson, TableOptions::default()).await);
    assert_eq!(all.len(), ndjson(&before[0]).len() + 7);
}

#[sqlx::test(migrations = "../../migrations")]
async fn resuming_after_a_cursor_appends_exactly_the_rest(pool: PgPool) {
    let svc = demo(&pool).await;
    let store = svc.store().clone();
    let full = export(&store, pseudonymous(), Format::Ndjson, TableOptions::default()).await;
    let rows = ndjson(&full);
    // Stop in the middle, as an interrupted export would, and resume.
    let cut = rows.len() / 3;
    let head: String = std::str::from_utf8(&full).unwrap().lines().take(cut).map(|l| format!("{l}\n")).collect();
    let last: Cursor = rows[cut - 1]["cursor"].as_str().unwrap().parse().unwrap();
    let rest =
        export(&store, EventQuery { after: last, ..pseudonymous() }, Format::Ndjson, TableOptions::default()).await;
    let mut joined = head.into_bytes();
    joined.extend_from_slice(&rest);
    assert!(joined == full, "head + rest differs from one whole export");

    // The end of a filtered export resumes exactly too, with new events.
    let types = Some(vec!["PersonRegistered".to_owned()]);
    let q = EventQuery { types: types.clone(), ..pseudonymous() };
    let first =
        EventExport::start(store.clone(), q, Format::Ndjson, TableOptions::default(), Vec::new()).await.unwrap();
    let end = first.end();
    let (first, _) = first.run(|_| {}).await.unwrap();
    register(&svc, 3).await;
    let q = EventQuery { after: end, types, ..pseudonymous() };
    let second = export(&store, q, Format::Ndjson, TableOptions::default()).await;
    assert_eq!(ndjson(&second).len(), 3, "exactly the three people registered since");
    assert!(ndjson(&first).iter().all(|r| r["event_type"] == "PersonRegistered"));
}

#[sqlx::test(migrations = "../../migrations")]
async fn bad_input_is_refused_with_the_field_named(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let start = |q: EventQuery| {
        let store = store.clone();
        async move { EventExport::start(store, q, Format::Csv, TableOptions::default(), Vec::new()).await.err().unwrap() }
    };
    let field = |e: ExportError| match e {
        ExportError::InvalidInput { field, .. } => field,
        other => panic!("expected invalid input, got {other:?}"),
    };
    let q = EventQuery { types: Some(vec!["PairFormed,NoSuchEvent".into()]), ..pseudonymous() };
    assert_eq!(field(start(q).await), "types");
    let future = now(&pool).await + chrono::Duration::hours(1);
    assert_eq!(field(start(EventQuery { until: Some(future), ..pseudonymous() }).await), "asOf");
    assert_eq!(field(Pseudonymizer::with_salt(b"too short").err().unwrap()), "pseudonymize");
    assert_eq!(field("xlsx".parse::<Format>().err().unwrap()), "format");

    // An instant is not settled while a transaction that began before it is open.
    let mut open = pool.begin().await.unwrap();
    sqlx::query("SELECT 1").execute(&mut *open).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let t = now(&pool).await;
    assert_eq!(field(start(EventQuery { until: Some(t), ..pseudonymous() }).await), "asOf");
    open.rollback().await.unwrap();
    start_ok(&store, t).await;
}

async fn start_ok(store: &EventStore, t: DateTime<Utc>) {
    let q = EventQuery { until: Some(t), ..pseudonymous() };
    EventExport::start(store.clone(), q, Format::Csv, TableOptions::default(), Vec::new()).await.unwrap();
}
