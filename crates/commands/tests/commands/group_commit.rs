//! Group commit: concurrent commands share a transaction without losing any
//! rule, and one command's failure reaches only that command.

use std::sync::Arc;

use sqlx::PgPool;
use tandem_commands::{Command, CommandError, CommandService};
use tandem_domain::PersonId;
use tandem_domain::person::{PersonCommand, RegisterPerson};
use tandem_domain::values::{Email, ExternalId, GroupFormat, Level};

use crate::support::{Org, admin, day, text};

fn register_cmd(id: PersonId, external_id: &str) -> Command {
    Command::Person(PersonCommand::Register(RegisterPerson {
        person_id: id,
        external_id: ExternalId::parse("externalId", external_id).unwrap(),
        name: text("Group Member"),
        email: Email::parse("email", &format!("{}@example.com", id.as_uuid().simple())).unwrap(),
        department: text("Engineering"),
        title: text("Engineer"),
        level: Level::parse("level", 3).unwrap(),
        manager: None,
        location: None,
        hired_on: day(2020, 1, 1),
    }))
}

/// Many commands on many pairs at once: every one lands, each stream's
/// versions stay gap-free, and commands really did share transactions.
#[sqlx::test(migrations = "../../migrations")]
async fn concurrent_commands_share_transactions_and_all_land(pool: PgPool) {
    let org = Arc::new(Org::new(pool.clone()));
    let program = org.launch(2, GroupFormat::PAIRS).await;
    let mut pairs = Vec::new();
    for i in 0..4 {
        let a = org.register(&format!("A {i}"), 3, None).await;
        let b = org.register(&format!("B {i}"), 3, None).await;
        org.enrol(program, a).await;
        org.enrol(program, b).await;
        pairs.push((org.form(program, &[a, b]).await.unwrap(), a));
    }
    // 4 pairs × 16 sessions, all at once: many land in the same batch as
    // others on their own pair (deferred and re-planned) and on other pairs.
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let org = org.clone();
            let (pair, by) = pairs[i % pairs.len()];
            tokio::spawn(async move { org.run(Org::hold_cmd(pair, by)).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    for (pair, _) in &pairs {
        let versions: Vec<i32> =
            sqlx::query_scalar("SELECT stream_version FROM events WHERE stream_id = $1 ORDER BY stream_version")
                .bind(pair.as_uuid())
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(versions, (1..=17).collect::<Vec<_>>(), "formation and 16 sessions, no gap");
    }
    let shared: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT transaction_id FROM events WHERE event_type = 'SessionHeld' \
         GROUP BY transaction_id HAVING count(DISTINCT stream_id) > 1) t",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(shared > 0, "no transaction held commands of more than one pair: group commit never happened");
}

/// A command that fails at the database (here: a person id that already
/// holds another external id, refused by a guard constraint) fails alone;
/// the commands it was batched with commit, and it appends nothing.
#[sqlx::test(migrations = "../../migrations")]
async fn a_failing_command_fails_alone(pool: PgPool) {
    let svc = CommandService::from_pool(pool.clone());
    let doomed = PersonId::new();
    sqlx::query("INSERT INTO person_external_ids (external_id, person_id) VALUES ('ALREADY', $1)")
        .bind(doomed.as_uuid())
        .execute(&pool)
        .await
        .unwrap();
    for _round in 0..3 {
        let mut tasks = Vec::new();
        let mut good = Vec::new();
        for i in 0..16 {
            let svc = svc.clone();
            let (id, ext) = if i == 7 {
                (doomed, format!("DOOMED-{}", PersonId::new().as_uuid().simple()))
            } else {
                let id = PersonId::new();
                good.push(id);
                (id, format!("E-{}", id.as_uuid().simple()))
            };
            tasks.push(tokio::spawn(async move { (id, svc.handle(register_cmd(id, &ext), &admin()).await) }));
        }
        for t in tasks {
            let (id, result) = t.await.unwrap();
            if id == doomed {
                let err = result.unwrap_err();
                assert!(
                    matches!(err, CommandError::Conflict { .. } | CommandError::Store(_)),
                    "the guard violation reaches its own command: {err:?}"
                );
            } else {
                let committed = result.unwrap();
                assert_eq!(committed.events.len(), 1);
            }
        }
        let doomed_events: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE stream_id = $1")
            .bind(doomed.as_uuid())
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(doomed_events, 0, "the failed command appended nothing");
        let landed: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE stream_id = ANY($1)")
            .bind(good.iter().map(PersonId::as_uuid).collect::<Vec<_>>())
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(landed, 15);
    }
}

/// With one transaction per command (`max_batch = 1`) the rules hold the
/// same way: the plain path is the batch of one.
#[sqlx::test(migrations = "../../migrations")]
async fn one_command_per_transaction_still_works(pool: PgPool) {
    let svc = CommandService::from_pool(pool.clone()).with_group_commit(4, 1);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move {
                let id = PersonId::new();
                svc.handle(register_cmd(id, &format!("E-{}", id.as_uuid().simple())), &admin()).await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let per_tx: i64 =
        sqlx::query_scalar("SELECT max(c) FROM (SELECT count(*) AS c FROM events GROUP BY transaction_id) t")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(per_tx, 1);
}

/// Two services (two processes, each with its own cache of stream states)
/// take turns on one pair and on its program: each sees what the other
/// appended, so no decision is taken on a stale state.
#[sqlx::test(migrations = "../../migrations")]
async fn cached_states_see_appends_from_other_processes(pool: PgPool) {
    let org = Org::new(pool.clone());
    let other = CommandService::from_pool(pool.clone());
    let program = org.launch(2, GroupFormat::PAIRS).await;
    let a = org.register("Ann", 3, None).await;
    let b = org.register("Bob", 3, None).await;
    org.enrol(program, a).await;
    org.enrol(program, b).await;
    let pair = org.form(program, &[a, b]).await.unwrap();
    for i in 0..10 {
        let svc = if i % 2 == 0 { &org.svc } else { &other };
        let committed = svc.handle(Org::hold_cmd(pair, a), &admin()).await.unwrap();
        assert_eq!(committed.events[0].stream_version, i + 2);
    }
    // The other service dissolves the pair; the first one, whose cached state
    // still has it live, must now be refused.
    let dissolve = Command::Pair(tandem_domain::pair::PairCommand::Dissolve {
        pair_id: pair,
        reason: tandem_domain::values::DissolveReason::Completed,
        note: tandem_domain::values::LongText::default(),
        dissolved_on: day(2024, 3, 1),
    });
    other.handle(dissolve, &admin()).await.unwrap();
    let refused = org.svc.handle(Org::hold_cmd(pair, a), &admin()).await.unwrap_err();
    assert!(matches!(refused, CommandError::Domain(_)), "{refused:?}");
}
