#![expect(clippy::unwrap_used, reason = "temporary measurement")]
use std::time::Instant;

use sqlx::postgres::PgPoolOptions;
use tandem_commands::CommandService;
use tandem_demo::{DemoOptions, generate};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let people: usize = args.get(1).map_or(300, |s| s.parse().unwrap());
    let months: u32 = args.get(2).map_or(6, |s| s.parse().unwrap());
    let seed: u64 = args.get(3).map_or(7, |s| s.parse().unwrap());
    let admin = PgPoolOptions::new().connect("postgres://postgres@127.0.0.1:5432/postgres").await.unwrap();
    let db = format!("demo_measure_{}", std::process::id());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}"))).execute(&admin).await.unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(10)
        .connect(&format!("postgres://postgres@127.0.0.1:5432/{db}"))
        .await
        .unwrap();
    tandem_store::MIGRATOR.run(&pool).await.unwrap();
    let svc = CommandService::from_pool(pool.clone());
    let concurrency: usize = args.get(4).map_or(4, |s| s.parse().unwrap());
    let opts = DemoOptions { people, months, seed, concurrency, ..DemoOptions::default() };
    let started = Instant::now();
    let mut last = String::new();
    let report = generate(&svc, &opts, |p| {
        if p.phase != last {
            eprintln!("{:?} {p}", started.elapsed());
            last = p.phase.to_owned();
        }
    })
    .await
    .unwrap();
    println!("{report}");
    println!("took {:.2}s", started.elapsed().as_secs_f64());
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT event_type, count(*) FROM events GROUP BY 1 ORDER BY 2 DESC")
        .fetch_all(&pool)
        .await
        .unwrap();
    for (t, n) in rows {
        println!("{t:24} {n}");
    }
    pool.close().await;
    if std::env::var("KEEP").is_ok() {
        println!("kept {db}");
        return;
    }
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {db}"))).execute(&admin).await.unwrap();
}
