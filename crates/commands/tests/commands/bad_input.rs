//! Bad input gets a typed error and appends nothing.

use sqlx::PgPool;
use tandem_commands::{Command, CommandError};
use tandem_domain::pair::PairCommand;
use tandem_domain::values::{DissolveReason, GroupFormat, LongText, Rating, ShortText, Visibility};
use tandem_domain::{DomainError, PairId, PersonId, ProgramId};
use tandem_testkit::fixtures;

use crate::support::{Org, day};

async fn refused(org: &Org, c: Command) -> DomainError {
    let before = org.event_count().await;
    let r = org.run(c).await;
    assert_eq!(org.event_count().await, before, "nothing appended");
    match r {
        Err(CommandError::Domain(e)) => e,
        other => panic!("expected a domain error, got {other:?}"),
    }
}

fn feedback(pair: PairId, from: PersonId, to: PersonId) -> Command {
    fixtures::feedback_cmd(pair, from, to, Visibility::Recipient, "Listens well")
}

#[sqlx::test(migrations = "../../migrations")]
async fn bad_input_is_refused_and_appends_nothing(pool: PgPool) {
    let org = Org::new(pool);
    let program = org.launch(1, GroupFormat::PAIRS).await;
    let a = org.register("Ann", 3, None).await;
    let b = org.register("Bob", 3, None).await;
    org.enrol(program, a).await;
    org.enrol(program, b).await;

    // Values are refused before a command can exist.
    assert!(matches!(ShortText::parse("name", "   "), Err(DomainError::InvalidInput { field: "name", .. })));
    assert!(matches!(Rating::parse("empathy", 6), Err(DomainError::InvalidInput { field: "empathy", .. })));
    assert!(matches!(Rating::parse("empathy", 0), Err(DomainError::InvalidInput { .. })));

    // Unknown ids.
    let ghost = PersonId::new();
    assert_eq!(refused(&org, Org::form_cmd(program, &[a, ghost])).await, DomainError::PersonNotFound(ghost));
    let no_program = ProgramId::new();
    assert_eq!(refused(&org, Org::form_cmd(no_program, &[a, b])).await, DomainError::ProgramNotFound(no_program));
    let no_pair = PairId::new();
    assert_eq!(refused(&org, Org::hold_cmd(no_pair, a)).await, DomainError::PairNotFound(no_pair));

    let pair = org.form(program, &[a, b]).await.unwrap();
    // A person reviewing themself.
    assert_eq!(refused(&org, feedback(pair, a, a)).await, DomainError::SelfFeedback);
    // An outsider acting in the pair.
    let c = org.register("Cid", 3, None).await;
    assert_eq!(refused(&org, feedback(pair, c, a)).await, DomainError::NotAMember(c));
    // Feedback between members works.
    org.run(feedback(pair, a, b)).await.unwrap();

    // A session in a dissolved pair.
    org.run(Command::Pair(PairCommand::Dissolve {
        pair_id: pair,
        reason: DissolveReason::Mismatch,
        note: LongText::default(),
        dissolved_on: day(2024, 3, 1),
    }))
    .await
    .unwrap();
    assert_eq!(refused(&org, Org::hold_cmd(pair, a)).await, DomainError::PairDissolved(pair));
    assert_eq!(refused(&org, feedback(pair, b, a)).await, DomainError::PairDissolved(pair));

    // After dissolution both may pair again.
    org.form(program, &[a, b]).await.unwrap();
}

#[sqlx::test(migrations = "../../migrations")]
async fn level_gap_and_enrolment_are_enforced(pool: PgPool) {
    let org = Org::new(pool);
    let program = org.launch(1, GroupFormat::PAIRS).await;
    let junior = org.register("Junior", 2, None).await;
    let senior = org.register("Senior", 5, None).await;
    let peer = org.register("Peer", 3, None).await;
    org.enrol(program, junior).await;
    org.enrol(program, senior).await;
    assert_eq!(
        refused(&org, Org::form_cmd(program, &[junior, senior])).await,
        DomainError::LevelGapTooLarge { gap: 3, max_gap: 1 }
    );
    assert_eq!(refused(&org, Org::form_cmd(program, &[junior, peer])).await, DomainError::NotEnrolled(peer));
    org.enrol(program, peer).await;
    org.form(program, &[junior, peer]).await.unwrap();
}
