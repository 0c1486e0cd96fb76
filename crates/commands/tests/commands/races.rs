//! Commands that race on real transactions.

use std::sync::Arc;

use sqlx::PgPool;
use tandem_commands::CommandError;
use tandem_domain::DomainError;
use tandem_domain::values::GroupFormat;

use crate::support::Org;

/// Two formations sharing a member, fired at once, many times: exactly one
/// wins each time and the other is refused with ALREADY_PAIRED.
#[sqlx::test(migrations = "../../migrations")]
async fn racing_formations_share_a_member_exactly_one_wins(pool: PgPool) {
    let org = Arc::new(Org::new(pool));
    let program = org.launch(2, GroupFormat::PAIRS).await;
    for round in 0..25 {
        let a = org.register(&format!("A {round}"), 3, None).await;
        let b = org.register(&format!("B {round}"), 3, None).await;
        let c = org.register(&format!("C {round}"), 3, None).await;
        for p in [a, b, c] {
            org.enrol(program, p).await;
        }
        let before = org.event_count().await;
        let (o1, o2) = (org.clone(), org.clone());
        let (r1, r2) = tokio::join!(
            tokio::spawn(async move { o1.form(program, &[a, b]).await }),
            tokio::spawn(async move { o2.form(program, &[a, c]).await }),
        );
        let results = [r1.unwrap(), r2.unwrap()];
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "round {round}: {results:?}");
        let loser = results.iter().find_map(|r| r.as_ref().err()).unwrap();
        assert!(
            matches!(loser, CommandError::Domain(DomainError::AlreadyPaired(p)) if *p == a),
            "round {round}: {loser:?}"
        );
        assert_eq!(org.event_count().await, before + 1, "exactly one PairFormed appended");
    }
}

/// The same formation fired from many tasks at once: one pair only.
#[sqlx::test(migrations = "../../migrations")]
async fn many_racers_for_one_person_one_pair(pool: PgPool) {
    let org = Arc::new(Org::new(pool));
    let program = org.launch(2, GroupFormat::PAIRS).await;
    let hub = org.register("Hub", 3, None).await;
    org.enrol(program, hub).await;
    let mut others = Vec::new();
    for i in 0..8 {
        let p = org.register(&format!("Other {i}"), 3, None).await;
        org.enrol(program, p).await;
        others.push(p);
    }
    let tasks: Vec<_> = others
        .iter()
        .map(|p| {
            let (org, p) = (org.clone(), *p);
            tokio::spawn(async move { org.form(program, &[hub, p]).await })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(CommandError::Domain(DomainError::AlreadyPaired(p))) => assert_eq!(p, hub),
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(wins, 1);
    let pairs: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'PairFormed'")
        .fetch_one(&org.pool)
        .await
        .unwrap();
    assert_eq!(pairs, 1);
}

/// A withdrawal racing a formation: either the pair forms and the
/// withdrawal is refused, or the withdrawal wins and the formation is
/// refused — never a pair with a withdrawn member.
#[sqlx::test(migrations = "../../migrations")]
async fn withdrawal_racing_formation_never_leaves_a_withdrawn_member_paired(pool: PgPool) {
    use tandem_commands::Command;
    use tandem_domain::program::ProgramCommand;
    use tandem_domain::values::LongText;
    let org = Arc::new(Org::new(pool));
    let program = org.launch(2, GroupFormat::PAIRS).await;
    for round in 0..15 {
        let a = org.register(&format!("A {round}"), 3, None).await;
        let b = org.register(&format!("B {round}"), 3, None).await;
        org.enrol(program, a).await;
        org.enrol(program, b).await;
        let (o1, o2) = (org.clone(), org.clone());
        let (formed, withdrew) = tokio::join!(
            tokio::spawn(async move { o1.form(program, &[a, b]).await }),
            tokio::spawn(async move {
                o2.run(Command::Program(ProgramCommand::Withdraw {
                    program_id: program,
                    person_id: a,
                    withdrew_on: crate::support::day(2024, 3, 1),
                    reason: LongText::default(),
                }))
                .await
            }),
        );
        let (formed, withdrew) = (formed.unwrap(), withdrew.unwrap());
        assert!(formed.is_ok() != withdrew.is_ok(), "round {round}: {formed:?} / {withdrew:?}");
        if let Err(e) = withdrew {
            assert!(matches!(e, CommandError::Domain(DomainError::InActivePair(_))), "{e:?}");
        }
        if let Err(e) = formed {
            assert!(matches!(e, CommandError::Domain(DomainError::NotEnrolled(_))), "{e:?}");
        }
    }
}

/// Concurrent sessions in one pair all land (the pair's lock serialises
/// them; optimistic concurrency never loses one).
#[sqlx::test(migrations = "../../migrations")]
async fn concurrent_sessions_in_one_pair_all_land(pool: PgPool) {
    let org = Arc::new(Org::new(pool));
    let program = org.launch(2, GroupFormat::PAIRS).await;
    let a = org.register("Ann", 3, None).await;
    let b = org.register("Bob", 3, None).await;
    org.enrol(program, a).await;
    org.enrol(program, b).await;
    let pair = org.form(program, &[a, b]).await.unwrap();
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let org = org.clone();
            let by = if i % 2 == 0 { a } else { b };
            tokio::spawn(async move { org.run(Org::hold_cmd(pair, by)).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let held: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE stream_id = $1 AND event_type = 'SessionHeld'")
            .bind(pair.as_uuid())
            .fetch_one(&org.pool)
            .await
            .unwrap();
    assert_eq!(held, 12);
}
