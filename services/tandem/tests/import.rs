//! `tandem import people` as an operator runs it: the binary against a
//! database, a dry run that writes nothing, the import, refused rows with
//! their line and column and a failing exit status, and a re-run that
//! appends nothing.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::path::PathBuf;

use sqlx::PgPool;

async fn import(pool: &PgPool, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["import", "people"])
        .args(args)
        .env("DATABASE_URL", tandem_testkit::db::database_url(pool))
        .env("TANDEM_SERVER_SECRET", "import tests' server secret, 32 bytes or more")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn events(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(pool).await.unwrap()
}

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/people.csv")
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_example_file_imports_once_and_a_dry_run_shows_the_plan(pool: PgPool) {
    let file = example();
    let file = file.to_str().unwrap();
    let (ok, out, err) = import(&pool, &["--file", file, "--dry-run", "--effective", "2026-12-01"]).await;
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("line 2: new E-1001"), "{out}");
    assert!(out.contains("dry run, nothing written: created 5"), "{out}");
    assert_eq!(events(&pool).await, 0);

    let (ok, out, err) = import(&pool, &["--file", file, "--effective", "2026-12-01"]).await;
    assert!(ok, "{out}\n{err}");
    // Five registrations, and the leaver's leave.
    assert!(out.contains("created 5, updated 0, left 0, rejoined 0, unchanged 0, failed 0 (6 events)"), "{out}");
    assert_eq!(events(&pool).await, 6);

    let (ok, out, err) = import(&pool, &["--file", file, "--effective", "2026-12-01"]).await;
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("unchanged 5, failed 0 (0 events)"), "{out}");
    assert_eq!(events(&pool).await, 6);
}

#[sqlx::test(migrations = "../../migrations")]
async fn refused_rows_are_listed_and_the_exit_status_says_so(pool: PgPool) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("import-cli-{}.csv", uuid::Uuid::now_v7()));
    std::fs::write(
        &path,
        "external_id,name,email,title,department,level\n\
         A1,Ann,ann@example.com,Rep,Sales,2\n\
         A2,Bob,not-an-email,Rep,Sales,2\n",
    )
    .unwrap();
    let (ok, out, err) = import(&pool, &["--file", path.to_str().unwrap()]).await;
    std::fs::remove_file(&path).unwrap();
    assert!(!ok, "{out}");
    assert!(out.contains("line 3, column email: INVALID_VALUE"), "{out}");
    assert!(out.contains("created 1,"), "{out}");
    assert!(err.contains("1 rows were refused"), "{err}");
    assert_eq!(events(&pool).await, 1);

    let (ok, _, err) = import(&pool, &["--file", "/nonexistent/people.csv"]).await;
    assert!(!ok && err.contains("/nonexistent/people.csv"), "{err}");
}
