//! `tandem bench --size smoke`: the whole benchmark suite in seconds, so that
//! it keeps working. Its figures mean nothing at this size and nothing here
//! looks at them; the test checks that every part ran and reported its
//! figures beside their baselines, and that the suite cleaned up after itself.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::process::Stdio;

#[tokio::test]
async fn the_benchmark_suite_runs_end_to_end() {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL (scripts/test sets it)");
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["bench", "--size", "smoke"])
        .env("DATABASE_URL", &url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let out = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tandem bench failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    for part in ["append", "read-all", "export", "replay", "query", "mutation", "subscriptions", "import", "webhooks"] {
        assert!(
            stdout.lines().any(|l| l.starts_with(part)),
            "no figure of part {part} in the report:\n{stdout}\nstderr:\n{stderr}"
        );
    }
    // Every append line stands beside its raw baseline, with a ratio.
    let appends: Vec<&str> = stdout.lines().filter(|l| l.starts_with("append")).collect();
    assert_eq!(appends.len(), 3, "1, 4 and 16 clients:\n{stdout}");
    assert!(appends.iter().all(|l| l.contains("inserts/s") && l.contains('×')), "{stdout}");
    // The import stands beside COPY of the same file.
    let imports: Vec<&str> = stdout.lines().filter(|l| l.starts_with("import") && l.contains("rows/s")).collect();
    assert_eq!(imports.len(), 2, "new rows and the same rows again:\n{stdout}");
    assert!(imports.iter().all(|l| l.contains('×')), "{stdout}");

    // The bench database (named after the process) is gone.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname LIKE $1")
        .bind(format!("tandem\\_bench\\_{pid}\\_%"))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "the bench database was not dropped");
}
