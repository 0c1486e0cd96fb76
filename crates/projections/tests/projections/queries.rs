//! The API's reads: lookups by id, keyset pages with filters, batched
//! children, erasure.

use std::collections::BTreeSet;

use sqlx::PgPool;
use tandem_commands::{Command, CommandService};
use tandem_domain::pair::{GiveFeedback, PairCommand, PairStatus};
use tandem_domain::person::PersonCommand;
use tandem_domain::values::{LeaveReason, Ratings, Visibility};
use tandem_domain::{FeedbackId, PairId, PersonId};
use tandem_projections::Projections;
use tandem_projections::queries::{self, PeopleFilter};
use tandem_projections::read_models::pairs::SessionStatus;

use crate::support::history::{Scale, generate, hold_session, pairs_world};
use crate::support::{at, caught_up, day, exec, fast, lt};

#[sqlx::test(migrations = "../../migrations")]
async fn people_lists_page_through_everyone_once_with_filters(pool: PgPool) {
    let svc = CommandService::from_pool(pool.clone());
    let history =
        generate(&svc, 5, Scale { people: 30, programs: 3, enrol: 0.6, max_sessions: 2, concurrency: 4 }).await;
    let runner = Projections::new(pool.clone()).options(fast()).spawn().expect("spawn");
    caught_up(&pool, &[]).await;
    let on = day(2024, 3, 1);

    // Pages of 7 visit every (non-erased) person once, in (name, id) order.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = queries::people(&pool, &PeopleFilter::default(), on, after.as_deref(), 7).await.expect("page");
        assert!(page.items.len() <= 7);
        seen.extend(page.items.iter().map(|p| (p.sort_name.clone(), p.person_id)));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "keyset order");
    let erased: i64 =
        sqlx::query_scalar("SELECT count(*) FROM read.people WHERE erased").fetch_one(&pool).await.expect("erased");
    assert_eq!(erased, 1);
    assert_eq!(seen.len(), history.people.len() - 1, "everyone but the erased person, once");
    let all = PeopleFilter { include_erased: true, ..PeopleFilter::default() };
    let with_erased = queries::people(&pool, &all, on, None, 500).await.expect("page");
    assert_eq!(with_erased.items.len(), history.people.len());
    let blank = with_erased.items.iter().find(|p| p.erased).expect("erased person");
    assert_eq!((blank.name.as_deref(), blank.email.as_deref(), blank.location.as_deref()), (None, None, None));

    // Filters.
    let by_ids = queries::people_by_ids(&pool, &history.people[..5], on).await.expect("by ids");
    assert_eq!(by_ids.len(), 5);
    let sales = PeopleFilter { department: Some("Sales".into()), ..PeopleFilter::default() };
    for p in queries::people(&pool, &sales, on, None, 500).await.expect("sales").items {
        assert_eq!(p.department, "Sales");
    }
    let left = PeopleFilter { left: Some(true), ..PeopleFilter::default() };
    let leavers = queries::people(&pool, &left, on, None, 500).await.expect("leavers").items;
    assert!(!leavers.is_empty() && leavers.iter().all(|p| p.left_on.is_some()));
    let search = PeopleFilter { name_contains: Some("OKAFOR".into()), ..PeopleFilter::default() };
    let found = queries::people(&pool, &search, on, None, 500).await.expect("search").items;
    assert!(!found.is_empty() && found.iter().all(|p| p.name.as_deref().is_some_and(|n| n.contains("Okafor"))));
    let percent = PeopleFilter { name_contains: Some("%".into()), ..PeopleFilter::default() };
    assert!(
        queries::people(&pool, &percent, on, None, 500).await.expect("search").items.is_empty(),
        "LIKE wildcards are escaped"
    );
    let program = history.programs[0];
    let enrolled = PeopleFilter { program: Some(program), ..PeopleFilter::default() };
    let members = queries::people(&pool, &enrolled, on, None, 500).await.expect("enrolled").items;
    let current = queries::enrolments_of_program(&pool, program, true, None, 500).await.expect("enrolments").items;
    let current: BTreeSet<PersonId> = current.iter().map(|e| PersonId::from_uuid(e.person_id)).collect();
    let listed: BTreeSet<PersonId> = members.iter().map(|p| p.person_id).collect();
    assert!(listed.is_subset(&current) && !listed.is_empty());
    assert!(
        queries::people(&pool, &PeopleFilter::default(), on, Some("garbage"), 5).await.is_err(),
        "bad cursor refused"
    );

    // Programs and their pairs.
    let programs = queries::programs(&pool, None, None, 2).await.expect("programs");
    assert_eq!(programs.items.len(), 2);
    let rest = queries::programs(&pool, None, programs.next.as_deref(), 2).await.expect("programs");
    assert_eq!(rest.items.len(), 1);
    assert!(rest.next.is_none());
    let pairs = queries::pairs_of_program(&pool, program, None, None, 500).await.expect("pairs").items;
    assert!(!pairs.is_empty());
    let someone = PersonId::from_uuid(pairs[0].member_ids[0]);
    let of_people = queries::pairs_of_people(&pool, &[someone], None).await.expect("pairs of people");
    assert!(of_people[&someone].iter().any(|p| p.pair_id == pairs[0].pair_id));
    let participation = queries::participation_of_program(&pool, program).await.expect("participation");
    assert!(participation.iter().any(|p| p.paired_on.is_some() && p.sessions > 0));
    runner.shutdown().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn pair_children_load_in_batches(pool: PgPool) {
    let svc = CommandService::from_pool(pool.clone());
    let (_, pairs) = pairs_world(&svc, 3).await;
    for n in 0..6_u64 {
        let (pair, a, b) = pairs[usize::try_from(n).expect("small") % 3];
        hold_session(&svc, pair, a, b, n).await;
    }
    let (pair, a, b) = pairs[0];
    let private = Command::Pair(PairCommand::GiveFeedback {
        pair_id: pair,
        feedback: GiveFeedback {
            feedback_id: FeedbackId::new(),
            from: a,
            to: b,
            session_id: None,
            ratings: Ratings::default(),
            strengths: lt("A private note."),
            improvements: lt(""),
            visibility: Visibility::Private,
            given_at: at(day(2024, 2, 1), 9),
        },
    });
    exec(&svc, private).await.expect("feedback");
    exec(
        &svc,
        Command::Person(PersonCommand::RecordLeft {
            person_id: b,
            left_on: day(2024, 3, 1),
            reason: LeaveReason::Other,
        }),
    )
    .await
    .expect("left");
    let runner = Projections::new(pool.clone()).options(fast()).spawn().expect("spawn");
    caught_up(&pool, &[]).await;

    let ids: Vec<PairId> = pairs.iter().map(|p| p.0).collect();
    let sessions = queries::sessions_of_pairs(&pool, &ids).await.expect("sessions");
    assert_eq!(sessions.values().map(Vec::len).sum::<usize>(), 6);
    for s in sessions.values().flatten() {
        assert_eq!(s.session.status, SessionStatus::Held);
        assert_eq!(s.coaching.len(), 1, "who coached whom");
    }
    let feedback = queries::feedback_of_pairs(&pool, &ids).await.expect("feedback");
    let first = &feedback[&pair];
    let note = first.iter().find(|f| f.strengths == "A private note.").expect("private note");
    assert!(note.readable_by(Some(a.as_uuid()), false), "its author reads it");
    assert!(!note.readable_by(Some(b.as_uuid()), false), "the recipient does not");
    assert!(!note.readable_by(None, true), "nor coordinators");
    let shared = first.iter().find(|f| f.visibility == Visibility::Recipient).expect("shared feedback");
    assert!(shared.readable_by(Some(shared.to_id), false));

    // A member left: the pair dissolved, the fact rows say so.
    let pair_row = &queries::pairs_by_ids(&pool, &[pair]).await.expect("pair")[0];
    assert_eq!(pair_row.status, PairStatus::Dissolved);
    let facts = queries::participation_of_people(&pool, &[b]).await.expect("facts");
    assert_eq!(facts[&b][0].left_on, Some(day(2024, 3, 1)));
    assert!(queries::goals_of_pairs(&pool, &ids).await.expect("goals").is_empty());
    runner.shutdown().await;
}
