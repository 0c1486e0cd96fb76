//! Idempotency keys through the command path.

use std::sync::Arc;

use sqlx::PgPool;
use tandem_commands::{CommandError, CommandMeta, CommandService, Committed};
use tandem_domain::values::GroupFormat;
use tandem_store::{Actor, ServerSecret};

use crate::support::{Org, admin};

/// The same key fired twice at once, many times: one set of events, and both
/// callers see the same first result.
#[sqlx::test(migrations = "../../migrations")]
async fn same_key_at_once_appends_one_set(pool: PgPool) {
    let org = Arc::new(Org::new(pool));
    let program = org.launch(2, GroupFormat::PAIRS).await;
    for round in 0..20 {
        let a = org.register(&format!("A {round}"), 3, None).await;
        let b = org.register(&format!("B {round}"), 3, None).await;
        org.enrol(program, a).await;
        org.enrol(program, b).await;
        let before = org.event_count().await;
        let command = Org::form_cmd(program, &[a, b]);
        let meta = admin().with_idempotency_key(format!("form-{round}"));
        let (o1, o2, c1, c2, m1, m2) = (org.clone(), org.clone(), command.clone(), command, meta.clone(), meta);
        let (r1, r2) = tokio::join!(
            tokio::spawn(async move { o1.svc.handle(c1, &m1).await }),
            tokio::spawn(async move { o2.svc.handle(c2, &m2).await }),
        );
        let (r1, r2) = (r1.unwrap().unwrap(), r2.unwrap().unwrap());
        assert_eq!(org.event_count().await, before + 1, "round {round}");
        assert_eq!(r1.position, r2.position);
        assert_eq!(
            r1.events.iter().map(|e| e.event_id).collect::<Vec<_>>(),
            r2.events.iter().map(|e| e.event_id).collect::<Vec<_>>()
        );
        assert!(r1.replayed != r2.replayed, "exactly one of the two appended");
    }
}

/// A retry after the fact returns the first result; a different request
/// under the same key is refused and appends nothing.
#[sqlx::test(migrations = "../../migrations")]
async fn key_reused_for_another_request_is_refused(pool: PgPool) {
    let org = Org::new(pool);
    let program = org.launch(2, GroupFormat::PAIRS).await;
    let a = org.register("Ann", 3, None).await;
    let b = org.register("Bob", 3, None).await;
    let c = org.register("Cid", 3, None).await;
    for p in [a, b, c] {
        org.enrol(program, p).await;
    }
    let meta = admin().with_idempotency_key("k-1");
    let first_cmd = Org::form_cmd(program, &[a, b]);
    let first = org.svc.handle(first_cmd.clone(), &meta).await.unwrap();
    let again = org.svc.handle(first_cmd, &meta).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.events, first.events);
    let before = org.event_count().await;
    let other = org.svc.handle(Org::form_cmd(program, &[a, c]), &meta).await;
    assert!(matches!(other, Err(CommandError::IdempotencyKeyReused { .. })), "{other:?}");
    assert_eq!(org.event_count().await, before);
    let bad = org.svc.handle(Org::form_cmd(program, &[b, c]), &admin().with_idempotency_key("")).await;
    assert!(matches!(bad, Err(CommandError::InvalidIdempotencyKey)), "{bad:?}");
}

/// A refused command with a key records nothing: fixing the input and
/// retrying with the same key works.
#[sqlx::test(migrations = "../../migrations")]
async fn refused_command_does_not_burn_its_key(pool: PgPool) {
    let org = Org::new(pool);
    let program = org.launch(2, GroupFormat::PAIRS).await;
    let a = org.register("Ann", 3, None).await;
    let b = org.register("Bob", 3, None).await;
    org.enrol(program, a).await;
    let meta = admin().with_idempotency_key("k-2");
    let refused = org.svc.handle(Org::form_cmd(program, &[a, b]), &meta).await;
    assert!(refused.is_err());
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM idempotency_keys").fetch_one(&org.pool).await.unwrap();
    assert_eq!(keys, 0);
}

/// Two subjects who choose the same key, at the same time: each command
/// runs (neither replays the other's result), and the second subject's
/// retry replays its own.
#[sqlx::test(migrations = "../../migrations")]
async fn one_key_from_two_subjects_does_not_collide(pool: PgPool) {
    let org = Arc::new(Org::new(pool));
    let program = org.launch(2, GroupFormat::PAIRS).await;
    for round in 0..10 {
        let people = [
            org.register(&format!("A {round}"), 3, None).await,
            org.register(&format!("B {round}"), 3, None).await,
            org.register(&format!("C {round}"), 3, None).await,
            org.register(&format!("D {round}"), 3, None).await,
        ];
        for p in people {
            org.enrol(program, p).await;
        }
        let key = format!("shared-{round}");
        let first = CommandMeta::new(Actor { subject: "client-one".into(), role: "admin".into() })
            .with_idempotency_key(key.clone());
        let second =
            CommandMeta::new(Actor { subject: "client-two".into(), role: "admin".into() }).with_idempotency_key(key);
        let (c1, c2) = (Org::form_cmd(program, &people[..2]), Org::form_cmd(program, &people[2..]));
        let (o1, o2, m2, retried) = (org.clone(), org.clone(), second.clone(), c2.clone());
        let (r1, r2) = tokio::join!(
            tokio::spawn(async move { o1.svc.handle(c1, &first).await }),
            tokio::spawn(async move { o2.svc.handle(c2, &m2).await }),
        );
        let (r1, r2) = (r1.unwrap().unwrap(), r2.unwrap().unwrap());
        assert!(!r1.replayed && !r2.replayed, "round {round}: both ran");
        assert_ne!(r1.events[0].stream_id, r2.events[0].stream_id, "round {round}: two pairs");
        let retry = org.svc.handle(retried, &second).await.unwrap();
        assert!(retry.replayed);
        assert_eq!(retry.events, r2.events);
    }
}

/// The key reused for another input is refused with the key the caller
/// sent; the table holds neither the keys nor the requests in clear, and
/// a service given the same secret (another process) replays the record.
#[sqlx::test(migrations = "../../migrations")]
async fn records_are_digests_that_replay_under_the_same_secret(pool: PgPool) {
    let org = Org::new(pool.clone());
    let program = org.launch(2, GroupFormat::PAIRS).await;
    let a = org.register("Marker Zq7Ann", 3, None).await;
    let b = org.register("Marker Zq7Bob", 3, None).await;
    let c = org.register("Marker Zq7Cid", 3, None).await;
    for p in [a, b, c] {
        org.enrol(program, p).await;
    }
    let meta = admin().with_idempotency_key("marker-zq7-key");
    let command = Org::form_cmd(program, &[a, b]);
    let first = org.svc.handle(command.clone(), &meta).await.unwrap();
    let reused = org.svc.handle(Org::form_cmd(program, &[a, c]), &meta).await;
    match reused {
        Err(CommandError::IdempotencyKeyReused { key }) => assert_eq!(key, "marker-zq7-key"),
        other => panic!("{other:?}"),
    }
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT row_to_json(i)::text FROM idempotency_keys i").fetch_all(&pool).await.unwrap();
    assert_eq!(rows.len(), 1);
    // Ids and positions only: no key, subject, name or input.
    for needle in ["marker", "Marker", "Zq7", "admin-1"] {
        assert!(!rows[0].contains(needle), "{needle:?} in {}", rows[0]);
    }
    let other_process = CommandService::from_pool(pool.clone()).with_secret(tandem_testkit::test_secret());
    let again = other_process.handle(command.clone(), &meta).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.events, first.events);
    // Under another secret the record is not recognised: the command runs
    // as new, and is refused here by the domain (the pair exists).
    let stranger = CommandService::from_pool(pool).with_secret(ServerSecret::generate());
    let fresh = stranger.handle(command, &meta).await;
    assert!(!matches!(fresh, Ok(Committed { replayed: true, .. })), "{fresh:?}");
}
