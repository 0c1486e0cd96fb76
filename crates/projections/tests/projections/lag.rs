//! Lag: events and seconds behind the head of the log.

use std::time::Duration;

use crate::support::history::{hold_session, pairs_world};
use crate::support::{caught_up, eventually, fast, last_event};
use sqlx::PgPool;
use tandem_commands::CommandService;
use tandem_projections::{Projections, lag};

#[sqlx::test(migrations = "../../migrations")]
async fn lag_counts_what_is_not_applied_yet(pool: PgPool) {
    let svc = CommandService::from_pool(pool.clone());
    let (_, pairs) = pairs_world(&svc, 1).await;
    let head = last_event(&pool).await;

    // Events become readable (and count) once the cluster's transaction
    // horizon passes them, which other tests' transactions can delay.
    let before = eventually(Duration::from_secs(20), "the events to be readable", || async {
        Some(lag(&pool, &[]).await.expect("lag")).filter(|l| l.iter().all(|l| l.head == head))
    })
    .await;
    assert_eq!(before.len(), tandem_projections::read_models().len());
    for l in &before {
        assert_eq!(l.checkpoint, None, "{} never ran", l.name);
        assert_eq!(l.head, head);
        assert_eq!(l.events_behind, 6, "{}: launched, registered 2, enrolled 2, formed", l.name);
        assert!(l.seconds_behind >= 0.0);
    }

    let runner = Projections::new(pool.clone()).options(fast()).spawn().expect("spawn");
    caught_up(&pool, &[]).await;
    for l in lag(&pool, &[]).await.expect("lag") {
        assert_eq!((l.events_behind, l.seconds_behind), (0, 0.0), "{}", l.name);
        assert_eq!(l.checkpoint, Some(head));
    }
    runner.shutdown().await;

    let (pair, a, b) = pairs[0];
    let written = hold_session(&svc, pair, a, b, 0).await;
    let head = last_event(&pool).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let after = eventually(Duration::from_secs(20), "the new events to be readable", || async {
        Some(lag(&pool, &["pairs"]).await.expect("lag")).filter(|l| l.iter().all(|l| l.head == head))
    })
    .await;
    for l in after {
        assert_eq!(l.events_behind, i64::try_from(written).expect("small"));
        assert!(l.seconds_behind > 0.0);
        assert!(!l.caught_up());
    }
}
