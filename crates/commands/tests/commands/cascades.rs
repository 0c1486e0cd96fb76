//! Closing a program and a member leaving end the pairs they concern, in the
//! same transaction, so nothing more can happen in them.

use sqlx::PgPool;
use tandem_commands::{Command, CommandError};
use tandem_domain::person::PersonCommand;
use tandem_domain::program::ProgramCommand;
use tandem_domain::values::{GroupFormat, LeaveReason, LongText};
use tandem_domain::{DomainError, PairId};

use crate::support::{Org, day};

async fn pair_status_events(org: &Org, pair: PairId) -> Vec<String> {
    sqlx::query_scalar("SELECT event_type FROM events WHERE stream_id = $1 ORDER BY stream_version")
        .bind(pair.as_uuid())
        .fetch_all(&org.pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../../migrations")]
async fn closing_a_program_dissolves_its_pairs(pool: PgPool) {
    let org = Org::new(pool);
    let program = org.launch(2, GroupFormat::PAIRS).await;
    let people = [
        org.register("A", 3, None).await,
        org.register("B", 3, None).await,
        org.register("C", 3, None).await,
        org.register("D", 3, None).await,
    ];
    for p in people {
        org.enrol(program, p).await;
    }
    let p1 = org.form(program, &people[0..2]).await.unwrap();
    let p2 = org.form(program, &people[2..4]).await.unwrap();
    let closed = org
        .run(Command::Program(ProgramCommand::Close {
            program_id: program,
            closed_on: day(2024, 12, 31),
            reason: LongText::default(),
        }))
        .await
        .unwrap();
    assert_eq!(closed.events.len(), 3, "ProgramClosed and two PairDissolved in one commit");
    assert!(closed.events.iter().all(|e| e.transaction_id == closed.events[0].transaction_id));
    for p in [p1, p2] {
        assert_eq!(pair_status_events(&org, p).await, ["PairFormed", "PairDissolved"]);
        let r = org.run(Org::hold_cmd(p, people[0])).await;
        assert!(matches!(r, Err(CommandError::Domain(DomainError::PairDissolved(_)))), "{r:?}");
    }
    let r = org.form(program, &people[0..2]).await;
    assert!(matches!(r, Err(CommandError::Domain(DomainError::ProgramClosed(_)))), "{r:?}");
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_leaver_ends_their_pairs_and_cannot_act(pool: PgPool) {
    let org = Org::new(pool);
    let program = org.launch(2, GroupFormat::PAIRS).await;
    let a = org.register("A", 3, None).await;
    let b = org.register("B", 3, None).await;
    let c = org.register("C", 3, None).await;
    for p in [a, b, c] {
        org.enrol(program, p).await;
    }
    let pair = org.form(program, &[a, b]).await.unwrap();
    org.run(Command::Person(PersonCommand::RecordLeft {
        person_id: a,
        left_on: day(2024, 4, 1),
        reason: LeaveReason::Voluntary,
    }))
    .await
    .unwrap();
    assert_eq!(pair_status_events(&org, pair).await, ["PairFormed", "PairDissolved"]);
    let r = org.form(program, &[a, c]).await;
    assert!(matches!(r, Err(CommandError::Domain(DomainError::PersonHasLeft(p))) if p == a), "{r:?}");
    // The one left behind is free to pair again.
    org.form(program, &[b, c]).await.unwrap();
}
