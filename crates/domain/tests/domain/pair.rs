//! The pair stream: formation (the cross-stream rules) and everything that
//! happens inside a pair or circle.

use std::collections::BTreeSet;

use tandem_domain::pair::{
    Coaching, FeedbackGiven, FormPair, GiveFeedback, GoalAbandoned, GoalCompleted, GoalProgressRecorded, GoalSet,
    GoalStatus, HoldSession, PairCommand, PairContext, PairDissolved, PairEvent, PairPaused, PairResumed, PairStatus,
    PersonFacts, SessionCancelled, SessionHeld, SessionScheduled, SessionStatus, SetGoal, dissolve_for_cleanup,
};
use tandem_domain::program::{Program, ProgramClosed, ProgramEvent};
use tandem_domain::values::{
    ACTIVITIES_VERSION, Activity, DissolveReason, FormedBy, GroupFormat, GroupKind, LongText, MatchScore, Ratings,
    Visibility,
};
use tandem_domain::{DomainError, ErrorKind, PairId, PersonId, ProgramId};

use crate::support::{
    at, circles, day, facts, feedback_id, fold, form, formed, given, goal_id, lt, minutes, pair_ctx, pair_id, percent,
    person_id, program_id, program_with, rating, session_id, st,
};

// -------------------------------------------------------------- fixture ---
//
// a(3)  b(4)  c(5)  f(1)  e(7)       s(5)
//                                     └─ m(4)
//                                         └─ d(3)
// Levels in brackets. P: pairs, max gap 2. Q: circles of 3..=4, max gap 2.
// Everybody is enrolled in both.

fn a() -> PersonId {
    person_id(1)
}
fn b() -> PersonId {
    person_id(2)
}
fn c() -> PersonId {
    person_id(3)
}
fn d() -> PersonId {
    person_id(4)
}
fn m() -> PersonId {
    person_id(5)
}
fn s() -> PersonId {
    person_id(6)
}
fn e() -> PersonId {
    person_id(7)
}
fn f() -> PersonId {
    person_id(8)
}
fn everybody() -> [PersonId; 8] {
    [a(), b(), c(), d(), m(), s(), e(), f()]
}

fn p() -> ProgramId {
    program_id(1)
}
fn q() -> ProgramId {
    program_id(2)
}
fn x() -> PairId {
    pair_id(1)
}

fn people() -> Vec<(PersonId, PersonFacts)> {
    vec![
        (a(), facts(3, vec![])),
        (b(), facts(4, vec![])),
        (c(), facts(5, vec![])),
        (d(), facts(3, vec![m(), s()])),
        (m(), facts(4, vec![s()])),
        (s(), facts(5, vec![])),
        (e(), facts(7, vec![])),
        (f(), facts(1, vec![])),
    ]
}

fn program_p() -> Program {
    program_with(p(), GroupFormat::PAIRS, 2, &everybody())
}

fn program_q() -> Program {
    program_with(q(), circles(3, 4), 2, &everybody())
}

fn ctx_p() -> PairContext {
    pair_ctx(program_p(), people())
}

fn ctx_q() -> PairContext {
    pair_ctx(program_q(), people())
}

/// `ctx_p` with one person's facts changed.
fn ctx_p_with(who: PersonId, change: impl FnOnce(&mut PersonFacts)) -> PairContext {
    let mut ctx = ctx_p();
    change(ctx.people.get_mut(&who).expect("a fixture person"));
    ctx
}

fn closed_p() -> PairContext {
    let closed = ProgramEvent::ProgramClosed(ProgramClosed { program_id: p(), closed_on: day(50), reason: lt("") });
    pair_ctx(tandem_domain::program::evolve(program_p(), &closed), people())
}

fn form_ab() -> FormPair {
    form(x(), p(), &[a(), b()], day(10))
}

/// Pair `x` of a and b in P, formed on day 10.
fn formed_ab() -> PairEvent {
    formed(&form_ab(), GroupFormat::PAIRS)
}

/// Circle `x` of a, b and c in Q, formed on day 10.
fn formed_abc() -> PairEvent {
    formed(&form(x(), q(), &[a(), b(), c()], day(10)), circles(3, 4))
}

fn paused() -> PairEvent {
    PairEvent::PairPaused(PairPaused { pair_id: x(), reason: lt("holidays"), paused_on: day(20), until: None })
}

fn dissolved() -> PairEvent {
    PairEvent::PairDissolved(PairDissolved {
        pair_id: x(),
        reason: DissolveReason::Completed,
        note: LongText::default(),
        dissolved_on: day(30),
    })
}

fn schedule(sid: u128, by: PersonId) -> PairCommand {
    PairCommand::ScheduleSession {
        pair_id: x(),
        session_id: session_id(sid),
        by,
        scheduled_for: at(15),
        focus: Some(st("Giving feedback")),
    }
}

fn scheduled(sid: u128, by: PersonId) -> PairEvent {
    PairEvent::SessionScheduled(SessionScheduled {
        pair_id: x(),
        session_id: session_id(sid),
        scheduled_by: by,
        scheduled_for: at(15),
        focus: Some(st("Giving feedback")),
    })
}

fn hold_session(sid: u128, by: PersonId) -> HoldSession {
    HoldSession {
        session_id: session_id(sid),
        by,
        held_at: at(15),
        minutes: minutes(45),
        focus: st("Giving feedback"),
        activities: vec![Activity::RolePlay],
        coaching: vec![Coaching { coach: a(), coachee: b() }],
        notes: lt("Went well"),
    }
}

fn hold(sid: u128, by: PersonId) -> PairCommand {
    PairCommand::HoldSession { pair_id: x(), session: hold_session(sid, by) }
}

fn held(sid: u128, by: PersonId) -> PairEvent {
    let h = hold_session(sid, by);
    PairEvent::SessionHeld(SessionHeld {
        pair_id: x(),
        session_id: h.session_id,
        recorded_by: by,
        held_at: h.held_at,
        minutes: h.minutes,
        focus: Some(h.focus),
        activities: h.activities,
        activities_version: ACTIVITIES_VERSION,
        coaching: h.coaching,
        notes: h.notes,
    })
}

fn cancel(sid: u128, by: PersonId) -> PairCommand {
    PairCommand::CancelSession { pair_id: x(), session_id: session_id(sid), by, reason: lt("ill") }
}

fn cancelled(sid: u128, by: PersonId) -> PairEvent {
    PairEvent::SessionCancelled(SessionCancelled {
        pair_id: x(),
        session_id: session_id(sid),
        cancelled_by: by,
        reason: lt("ill"),
    })
}

fn feedback(from: PersonId, to: PersonId, sid: Option<u128>) -> GiveFeedback {
    GiveFeedback {
        feedback_id: feedback_id(1),
        from,
        to,
        session_id: sid.map(session_id),
        ratings: Ratings { empathy: Some(rating(4)), curiosity: Some(rating(5)), ..Ratings::default() },
        strengths: lt("Asked good questions"),
        improvements: LongText::default(),
        visibility: Visibility::Recipient,
        given_at: at(16),
    }
}

fn give(fb: GiveFeedback) -> PairCommand {
    PairCommand::GiveFeedback { pair_id: x(), feedback: fb }
}

fn given_event(fb: GiveFeedback) -> PairEvent {
    PairEvent::FeedbackGiven(FeedbackGiven {
        pair_id: x(),
        feedback_id: fb.feedback_id,
        from: fb.from,
        to: fb.to,
        session_id: fb.session_id,
        ratings: fb.ratings,
        strengths: fb.strengths,
        improvements: fb.improvements,
        visibility: fb.visibility,
        given_at: fb.given_at,
    })
}

fn goal(gid: u128, owner: PersonId, partner: Option<PersonId>) -> SetGoal {
    SetGoal {
        goal_id: goal_id(gid),
        owner,
        title: st("Listen more"),
        description: LongText::default(),
        due_on: Some(day(60)),
        accountability_partner: partner,
        set_on: day(12),
    }
}

fn set_goal(g: SetGoal) -> PairCommand {
    PairCommand::SetGoal { pair_id: x(), goal: g }
}

fn goal_set(g: SetGoal) -> PairEvent {
    PairEvent::GoalSet(GoalSet {
        pair_id: x(),
        goal_id: g.goal_id,
        owner: g.owner,
        title: Some(g.title),
        description: g.description,
        due_on: g.due_on,
        accountability_partner: g.accountability_partner,
        set_on: g.set_on,
    })
}

fn progress(gid: u128, by: PersonId) -> PairCommand {
    PairCommand::RecordGoalProgress {
        pair_id: x(),
        goal_id: goal_id(gid),
        by,
        percent: Some(percent(50)),
        note: LongText::default(),
        recorded_on: day(20),
    }
}

fn complete(gid: u128, by: PersonId) -> PairCommand {
    PairCommand::CompleteGoal { pair_id: x(), goal_id: goal_id(gid), by, note: lt("done"), completed_on: day(40) }
}

fn completed(gid: u128, by: PersonId) -> PairEvent {
    PairEvent::GoalCompleted(GoalCompleted {
        pair_id: x(),
        goal_id: goal_id(gid),
        by,
        note: lt("done"),
        completed_on: day(40),
    })
}

fn abandon(gid: u128, by: PersonId) -> PairCommand {
    PairCommand::AbandonGoal { pair_id: x(), goal_id: goal_id(gid), by, reason: lt("moved on"), abandoned_on: day(40) }
}

fn pause() -> PairCommand {
    PairCommand::Pause { pair_id: x(), reason: lt("holidays"), paused_on: day(20), until: None }
}

fn resume() -> PairCommand {
    PairCommand::Resume { pair_id: x(), resumed_on: day(25) }
}

fn dissolve(on: i64) -> PairCommand {
    PairCommand::Dissolve {
        pair_id: x(),
        reason: DissolveReason::Completed,
        note: LongText::default(),
        dissolved_on: day(on),
    }
}

/// One command of every kind but formation, each valid in pair `x` of a and b
/// with session 1 scheduled and goal 1 (a's, b accountable) open.
fn every_inner_command() -> Vec<PairCommand> {
    vec![
        schedule(2, a()),
        hold(1, a()),
        cancel(1, a()),
        give(feedback(a(), b(), None)),
        set_goal(goal(2, a(), None)),
        progress(1, a()),
        complete(1, a()),
        abandon(1, a()),
        pause(),
        resume(),
        dissolve(30),
    ]
}

// ------------------------------------------------------------ formation ---

#[test]
fn form_a_pair() {
    let c = FormPair {
        formed_by: FormedBy::Suggestion,
        match_score: Some(MatchScore::parse("matchScore", 0.8).unwrap()),
        ..form_ab()
    };
    let state = given::<PairEvent>([])
        .when(PairCommand::Form(c.clone()), &ctx_p())
        .then_events([formed(&c, GroupFormat::PAIRS)]);
    assert_eq!(state.status, Some(PairStatus::Active));
    assert_eq!(state.members, vec![a(), b()]);
    assert_eq!((state.program_id, state.formed_on), (Some(p()), Some(day(10))));
    assert!(state.is_current());
}

#[test]
fn form_a_circle() {
    for members in [vec![a(), b(), c()], vec![a(), b(), c(), d()]] {
        let cmd = form(x(), q(), &members, day(10));
        let events = given::<PairEvent>([]).when(PairCommand::Form(cmd.clone()), &ctx_q()).events();
        assert_eq!(events, vec![formed(&cmd, circles(3, 4))]);
        let [PairEvent::PairFormed(e)] = events.as_slice() else { panic!("one formation") };
        assert_eq!(e.kind, GroupKind::Circles);
    }
}

#[test]
fn form_refused_when_the_pair_exists() {
    given([formed_ab()])
        .when(PairCommand::Form(form(x(), p(), &[c(), b()], day(11))), &ctx_p())
        .then_error(DomainError::AlreadyExists { entity: "pair" });
    given([formed_ab(), dissolved()])
        .when(PairCommand::Form(form_ab()), &ctx_p())
        .then_error(DomainError::AlreadyExists { entity: "pair" });
}

#[test]
fn form_refused_in_an_unknown_or_closed_program() {
    given::<PairEvent>([])
        .when(PairCommand::Form(form_ab()), &pair_ctx(Program::default(), people()))
        .then_error(DomainError::ProgramNotFound(p()));
    given::<PairEvent>([]).when(PairCommand::Form(form_ab()), &closed_p()).then_error(DomainError::ProgramClosed(p()));
}

#[test]
fn form_refuses_a_duplicate_member() {
    let e = given::<PairEvent>([])
        .when(PairCommand::Form(form(x(), p(), &[a(), a()], day(10))), &ctx_p())
        .then_error(DomainError::DuplicateMember(a()));
    assert_eq!(e.code(), "DUPLICATE_MEMBER");
    given::<PairEvent>([])
        .when(PairCommand::Form(form(x(), q(), &[a(), b(), a()], day(10))), &ctx_q())
        .then_error(DomainError::DuplicateMember(a()));
}

#[test]
fn form_refuses_the_wrong_group_size() {
    let pairs = |got| DomainError::WrongGroupSize { format: "pair", min: 2, max: 2, got };
    for members in [vec![], vec![a()], vec![a(), b(), c()]] {
        let got = members.len();
        given::<PairEvent>([])
            .when(PairCommand::Form(form(x(), p(), &members, day(10))), &ctx_p())
            .then_error(pairs(got));
    }
    let circle = |got| DomainError::WrongGroupSize { format: "circle", min: 3, max: 4, got };
    for members in [vec![a(), b()], vec![a(), b(), c(), f(), e()]] {
        let got = members.len();
        let err = given::<PairEvent>([])
            .when(PairCommand::Form(form(x(), q(), &members, day(10))), &ctx_q())
            .then_error(circle(got));
        assert_eq!(err.code(), "WRONG_GROUP_SIZE");
    }
}

#[test]
fn form_refuses_unknown_erased_or_departed_people() {
    let ghost = person_id(99);
    given::<PairEvent>([])
        .when(PairCommand::Form(form(x(), p(), &[a(), ghost], day(10))), &ctx_p())
        .then_error(DomainError::PersonNotFound(ghost));
    given::<PairEvent>([])
        .when(PairCommand::Form(form_ab()), &ctx_p_with(b(), |f| f.exists = false))
        .then_error(DomainError::PersonNotFound(b()));
    given::<PairEvent>([])
        .when(PairCommand::Form(form_ab()), &ctx_p_with(b(), |f| f.erased = true))
        .then_error(DomainError::PersonErased(b()));
    let e = given::<PairEvent>([])
        .when(PairCommand::Form(form_ab()), &ctx_p_with(a(), |f| f.left = true))
        .then_error(DomainError::PersonHasLeft(a()));
    assert_eq!(e.code(), "PERSON_HAS_LEFT");
}

#[test]
fn form_refuses_people_not_enrolled() {
    let ctx = pair_ctx(program_with(p(), GroupFormat::PAIRS, 2, &[a()]), people());
    given::<PairEvent>([]).when(PairCommand::Form(form_ab()), &ctx).then_error(DomainError::NotEnrolled(b()));
}

#[test]
fn form_refuses_someone_already_paired() {
    let mut ctx = ctx_p();
    ctx.already_paired = BTreeSet::from([b()]);
    let e = given::<PairEvent>([]).when(PairCommand::Form(form_ab()), &ctx).then_error(DomainError::AlreadyPaired(b()));
    assert_eq!((e.code(), e.kind()), ("ALREADY_PAIRED", ErrorKind::RuleViolation));
}

#[test]
fn form_refuses_a_direct_manager_in_either_order() {
    let expected = DomainError::AuthorityRelation { manager: m(), report: d() };
    for members in [[m(), d()], [d(), m()]] {
        let e = given::<PairEvent>([])
            .when(PairCommand::Form(form(x(), p(), &members, day(10))), &ctx_p())
            .then_error(expected.clone());
        assert_eq!(e.code(), "AUTHORITY_RELATION");
    }
}

#[test]
fn form_refuses_a_skip_level_manager_in_either_order() {
    // s manages m who manages d: s has authority over d even though levels are close (5 vs 3).
    let expected = DomainError::AuthorityRelation { manager: s(), report: d() };
    for members in [[s(), d()], [d(), s()]] {
        given::<PairEvent>([])
            .when(PairCommand::Form(form(x(), p(), &members, day(10))), &ctx_p())
            .then_error(expected.clone());
    }
}

#[test]
fn form_refuses_authority_inside_a_circle() {
    given::<PairEvent>([])
        .when(PairCommand::Form(form(x(), q(), &[a(), d(), b(), s()], day(10))), &ctx_q())
        .then_error(DomainError::AuthorityRelation { manager: s(), report: d() });
}

#[test]
fn form_uses_the_chain_it_is_given_for_the_formation_date() {
    // Without the relation on the formation date (e.g. before d reported to m), they may pair.
    let ctx = ctx_p_with(d(), |f| f.chain = vec![]);
    given::<PairEvent>([]).when(PairCommand::Form(form(x(), p(), &[m(), d()], day(10))), &ctx).events();
}

#[test]
fn form_refuses_a_level_gap_too_large() {
    // a(3) and e(7): gap 4 > 2.
    let err = given::<PairEvent>([])
        .when(PairCommand::Form(form(x(), p(), &[a(), e()], day(10))), &ctx_p())
        .then_error(DomainError::LevelGapTooLarge { gap: 4, max_gap: 2 });
    assert_eq!(err.code(), "LEVEL_GAP_TOO_LARGE");
    // In a circle the gap is between the lowest and the highest: f(1) .. c(5).
    given::<PairEvent>([])
        .when(PairCommand::Form(form(x(), q(), &[a(), f(), c()], day(10))), &ctx_q())
        .then_error(DomainError::LevelGapTooLarge { gap: 4, max_gap: 2 });
}

#[test]
fn form_accepts_a_level_gap_exactly_at_the_limit() {
    // a(3) and f(1), a(3) and c(5): gap 2 == 2.
    for other in [f(), c()] {
        let cmd = form(x(), p(), &[a(), other], day(10));
        given::<PairEvent>([])
            .when(PairCommand::Form(cmd.clone()), &ctx_p())
            .then_events([formed(&cmd, GroupFormat::PAIRS)]);
    }
    // A program with gap 0 wants equal levels.
    let ctx = pair_ctx(program_with(p(), GroupFormat::PAIRS, 0, &everybody()), people());
    given::<PairEvent>([]).when(PairCommand::Form(form(x(), p(), &[a(), d()], day(10))), &ctx).events();
    given::<PairEvent>([])
        .when(PairCommand::Form(form_ab()), &ctx)
        .then_error(DomainError::LevelGapTooLarge { gap: 1, max_gap: 0 });
}

// ------------------------------------------------------------- sessions ---

#[test]
fn schedule_a_session() {
    let state = given([formed_ab()]).when(schedule(1, a()), &ctx_p()).then_events([scheduled(1, a())]);
    assert_eq!(state.sessions.get(&session_id(1)), Some(&SessionStatus::Scheduled));
}

#[test]
fn schedule_refusals() {
    given([formed_ab(), scheduled(1, a())])
        .when(schedule(1, b()), &ctx_p())
        .then_error(DomainError::AlreadyExists { entity: "session" });
    let err = given([formed_ab()]).when(schedule(1, c()), &ctx_p()).then_error(DomainError::NotAMember(c()));
    assert_eq!(err.code(), "NOT_A_MEMBER");
    let err = given([formed_ab(), paused()]).when(schedule(1, a()), &ctx_p()).then_error(DomainError::PairPaused(x()));
    assert_eq!(err.code(), "PAIR_PAUSED");
    let err = given::<PairEvent>([]).when(schedule(1, a()), &ctx_p()).then_error(DomainError::PairNotFound(x()));
    assert_eq!((err.code(), err.kind()), ("PAIR_NOT_FOUND", ErrorKind::NotFound));
    given([formed_ab()])
        .when(schedule(1, a()), &ctx_p_with(a(), |f| f.left = true))
        .then_error(DomainError::PersonHasLeft(a()));
    given([formed_ab()])
        .when(schedule(1, a()), &ctx_p_with(a(), |f| f.erased = true))
        .then_error(DomainError::PersonErased(a()));
}

#[test]
fn hold_a_scheduled_or_unplanned_session() {
    let state = given([formed_ab(), scheduled(1, a())]).when(hold(1, b()), &ctx_p()).then_events([held(1, b())]);
    assert_eq!(state.sessions.get(&session_id(1)), Some(&SessionStatus::Held));
    given([formed_ab()]).when(hold(7, a()), &ctx_p()).then_events([held(7, a())]);
}

#[test]
fn hold_normalises_activities_and_coaching() {
    let session = HoldSession {
        activities: vec![Activity::Other, Activity::RolePlay, Activity::Other],
        coaching: vec![
            Coaching { coach: a(), coachee: b() },
            Coaching { coach: b(), coachee: a() },
            Coaching { coach: a(), coachee: b() },
        ],
        ..hold_session(1, a())
    };
    let events = given([formed_ab()]).when(PairCommand::HoldSession { pair_id: x(), session }, &ctx_p()).events();
    let [PairEvent::SessionHeld(h)] = events.as_slice() else { panic!("one session held: {events:?}") };
    assert_eq!(h.activities, vec![Activity::RolePlay, Activity::Other]);
    assert_eq!(h.activities_version, ACTIVITIES_VERSION);
    assert_eq!(h.coaching, vec![Coaching { coach: a(), coachee: b() }, Coaching { coach: b(), coachee: a() }]);
}

#[test]
fn hold_refusals() {
    let err = given([formed_ab(), held(1, a())])
        .when(hold(1, b()), &ctx_p())
        .then_error(DomainError::SessionAlreadyHeld(session_id(1)));
    assert_eq!(err.code(), "SESSION_ALREADY_HELD");
    given([formed_ab(), scheduled(1, a()), cancelled(1, a())])
        .when(hold(1, a()), &ctx_p())
        .then_error(DomainError::SessionCancelled(session_id(1)));
    given([formed_ab(), scheduled(1, a()), paused()])
        .when(hold(1, a()), &ctx_p())
        .then_error(DomainError::PairPaused(x()));
    given([formed_ab()]).when(hold(1, c()), &ctx_p()).then_error(DomainError::NotAMember(c()));
    let self_coaching = HoldSession { coaching: vec![Coaching { coach: a(), coachee: a() }], ..hold_session(1, a()) };
    given([formed_ab()])
        .when(PairCommand::HoldSession { pair_id: x(), session: self_coaching }, &ctx_p())
        .then_invalid("coaching");
    let outsider = HoldSession { coaching: vec![Coaching { coach: a(), coachee: c() }], ..hold_session(1, a()) };
    given([formed_ab()])
        .when(PairCommand::HoldSession { pair_id: x(), session: outsider }, &ctx_p())
        .then_error(DomainError::NotAMember(c()));
}

#[test]
fn cancel_a_session() {
    let state = given([formed_ab(), scheduled(1, a())]).when(cancel(1, b()), &ctx_p()).then_events([cancelled(1, b())]);
    assert_eq!(state.sessions.get(&session_id(1)), Some(&SessionStatus::Cancelled));
}

#[test]
fn cancel_refusals() {
    given([formed_ab(), scheduled(1, a()), held(1, a())])
        .when(cancel(1, a()), &ctx_p())
        .then_error(DomainError::SessionAlreadyHeld(session_id(1)));
    let err = given([formed_ab(), scheduled(1, a()), cancelled(1, a())])
        .when(cancel(1, a()), &ctx_p())
        .then_error(DomainError::SessionCancelled(session_id(1)));
    assert_eq!(err.code(), "SESSION_CANCELLED");
    let err =
        given([formed_ab()]).when(cancel(1, a()), &ctx_p()).then_error(DomainError::SessionNotFound(session_id(1)));
    assert_eq!((err.code(), err.kind()), ("SESSION_NOT_FOUND", ErrorKind::NotFound));
    given([formed_ab(), scheduled(1, a())]).when(cancel(1, c()), &ctx_p()).then_error(DomainError::NotAMember(c()));
}

// ------------------------------------------------------------- feedback ---

#[test]
fn give_feedback_on_a_held_session_or_none() {
    let fb = feedback(a(), b(), Some(1));
    let state = given([formed_ab(), held(1, a())]).when(give(fb.clone()), &ctx_p()).then_events([given_event(fb)]);
    assert!(state.feedback.contains(&feedback_id(1)));
    let text_only = GiveFeedback {
        ratings: Ratings::default(),
        strengths: LongText::default(),
        improvements: lt("Let me finish my sentences"),
        visibility: Visibility::Private,
        ..feedback(b(), a(), None)
    };
    given([formed_ab()]).when(give(text_only.clone()), &ctx_p()).then_events([given_event(text_only)]);
}

#[test]
fn feedback_refusals() {
    let err = given([formed_ab()]).when(give(feedback(a(), a(), None)), &ctx_p()).then_error(DomainError::SelfFeedback);
    assert_eq!(err.code(), "SELF_FEEDBACK");
    given([formed_ab()]).when(give(feedback(a(), c(), None)), &ctx_p()).then_error(DomainError::NotAMember(c()));
    given([formed_ab()]).when(give(feedback(c(), a(), None)), &ctx_p()).then_error(DomainError::NotAMember(c()));
    let err = given([formed_ab(), scheduled(1, a())])
        .when(give(feedback(a(), b(), Some(1))), &ctx_p())
        .then_error(DomainError::SessionNotHeld(session_id(1)));
    assert_eq!(err.code(), "SESSION_NOT_HELD");
    given([formed_ab(), scheduled(1, a()), cancelled(1, b())])
        .when(give(feedback(a(), b(), Some(1))), &ctx_p())
        .then_error(DomainError::SessionNotHeld(session_id(1)));
    given([formed_ab()])
        .when(give(feedback(a(), b(), Some(9))), &ctx_p())
        .then_error(DomainError::SessionNotFound(session_id(9)));
    let empty = GiveFeedback {
        ratings: Ratings::default(),
        strengths: LongText::default(),
        improvements: LongText::default(),
        ..feedback(a(), b(), None)
    };
    given([formed_ab()]).when(give(empty), &ctx_p()).then_invalid("ratings");
    given([formed_ab(), given_event(feedback(a(), b(), None))])
        .when(give(feedback(b(), a(), None)), &ctx_p())
        .then_error(DomainError::AlreadyExists { entity: "feedback" });
    // The recipient must still be present.
    given([formed_ab()])
        .when(give(feedback(a(), b(), None)), &ctx_p_with(b(), |f| f.erased = true))
        .then_error(DomainError::PersonErased(b()));
}

// ---------------------------------------------------------------- goals ---

#[test]
fn set_a_goal() {
    let g = goal(1, a(), Some(b()));
    let state = given([formed_ab()]).when(set_goal(g.clone()), &ctx_p()).then_events([goal_set(g)]);
    let stored = state.goals[&goal_id(1)];
    assert_eq!((stored.owner, stored.accountability_partner, stored.status), (a(), Some(b()), GoalStatus::Open));
    // Due on the day it is set, and without a due date, are fine.
    let g = SetGoal { due_on: Some(day(12)), ..goal(2, b(), None) };
    given([formed_ab()]).when(set_goal(g.clone()), &ctx_p()).then_events([goal_set(g)]);
    let g = SetGoal { due_on: None, ..goal(3, b(), None) };
    given([formed_ab()]).when(set_goal(g.clone()), &ctx_p()).then_events([goal_set(g)]);
}

#[test]
fn set_goal_refusals() {
    given([formed_ab(), goal_set(goal(1, a(), None))])
        .when(set_goal(goal(1, b(), None)), &ctx_p())
        .then_error(DomainError::AlreadyExists { entity: "goal" });
    given([formed_ab()]).when(set_goal(goal(1, a(), Some(a()))), &ctx_p()).then_invalid("accountabilityPartner");
    given([formed_ab()]).when(set_goal(goal(1, a(), Some(c()))), &ctx_p()).then_error(DomainError::NotAMember(c()));
    given([formed_ab()]).when(set_goal(goal(1, c(), None)), &ctx_p()).then_error(DomainError::NotAMember(c()));
    let early = SetGoal { due_on: Some(day(11)), ..goal(1, a(), None) };
    given([formed_ab()]).when(set_goal(early), &ctx_p()).then_invalid("dueOn");
}

#[test]
fn record_progress_by_owner_or_partner() {
    let history = [formed_ab(), goal_set(goal(1, a(), Some(b())))];
    for by in [a(), b()] {
        given(history.clone()).when(progress(1, by), &ctx_p()).then_events([PairEvent::GoalProgressRecorded(
            GoalProgressRecorded {
                pair_id: x(),
                goal_id: goal_id(1),
                by,
                percent: Some(percent(50)),
                note: LongText::default(),
                recorded_on: day(20),
            },
        )]);
    }
    let note_only = PairCommand::RecordGoalProgress {
        pair_id: x(),
        goal_id: goal_id(1),
        by: a(),
        percent: None,
        note: lt("Halfway"),
        recorded_on: day(20),
    };
    given(history).when(note_only, &ctx_p()).events();
}

#[test]
fn record_progress_refusals() {
    // In a circle, c is a member but neither owner nor partner.
    let circle = [formed_abc(), goal_set(goal(1, a(), Some(b())))];
    let err = given(circle).when(progress(1, c()), &ctx_q()).then_error(DomainError::NotGoalParticipant);
    assert_eq!(err.code(), "NOT_GOAL_PARTICIPANT");
    let history = [formed_ab(), goal_set(goal(1, a(), None))];
    given(history.clone()).when(progress(1, b()), &ctx_p()).then_error(DomainError::NotGoalParticipant);
    given(history.clone()).when(progress(1, c()), &ctx_p()).then_error(DomainError::NotAMember(c()));
    let err = given(history.clone()).when(progress(2, a()), &ctx_p()).then_error(DomainError::GoalNotFound(goal_id(2)));
    assert_eq!((err.code(), err.kind()), ("GOAL_NOT_FOUND", ErrorKind::NotFound));
    let empty = PairCommand::RecordGoalProgress {
        pair_id: x(),
        goal_id: goal_id(1),
        by: a(),
        percent: None,
        note: LongText::default(),
        recorded_on: day(20),
    };
    given(history.clone()).when(empty, &ctx_p()).then_invalid("note");
    given([history[0].clone(), history[1].clone(), completed(1, a())])
        .when(progress(1, a()), &ctx_p())
        .then_error(DomainError::GoalClosed(goal_id(1)));
}

#[test]
fn complete_a_goal_once() {
    let history = [formed_ab(), goal_set(goal(1, a(), Some(b())))];
    let state = given(history.clone()).when(complete(1, a()), &ctx_p()).then_events([completed(1, a())]);
    assert_eq!(state.goals[&goal_id(1)].status, GoalStatus::Completed);
    let done = [history[0].clone(), history[1].clone(), completed(1, a())];
    let err = given(done.clone()).when(complete(1, a()), &ctx_p()).then_error(DomainError::GoalClosed(goal_id(1)));
    assert_eq!(err.code(), "GOAL_CLOSED");
    given(done).when(abandon(1, a()), &ctx_p()).then_error(DomainError::GoalClosed(goal_id(1)));
}

#[test]
fn only_the_owner_completes_or_abandons() {
    let history = [formed_ab(), goal_set(goal(1, a(), Some(b())))];
    let err =
        given(history.clone()).when(complete(1, b()), &ctx_p()).then_error(DomainError::NotGoalOwner { owner: a() });
    assert_eq!(err.code(), "NOT_GOAL_OWNER");
    given(history.clone()).when(abandon(1, b()), &ctx_p()).then_error(DomainError::NotGoalOwner { owner: a() });
    given(history.clone()).when(complete(1, c()), &ctx_p()).then_error(DomainError::NotAMember(c()));
    given(history).when(complete(2, a()), &ctx_p()).then_error(DomainError::GoalNotFound(goal_id(2)));
}

#[test]
fn abandon_a_goal_once() {
    let history = [formed_ab(), goal_set(goal(1, a(), None))];
    let abandoned = PairEvent::GoalAbandoned(GoalAbandoned {
        pair_id: x(),
        goal_id: goal_id(1),
        by: a(),
        reason: lt("moved on"),
        abandoned_on: day(40),
    });
    let state = given(history.clone()).when(abandon(1, a()), &ctx_p()).then_events([abandoned.clone()]);
    assert_eq!(state.goals[&goal_id(1)].status, GoalStatus::Abandoned);
    given([history[0].clone(), history[1].clone(), abandoned])
        .when(complete(1, a()), &ctx_p())
        .then_error(DomainError::GoalClosed(goal_id(1)));
}

// --------------------------------------------- pause, resume, dissolve ---

#[test]
fn pause_and_resume() {
    let state = given([formed_ab()]).when(pause(), &ctx_p()).then_events([paused()]);
    assert_eq!(state.status, Some(PairStatus::Paused));
    assert!(state.is_current(), "a paused pair still counts against the one-pair rule");
    let until = PairCommand::Pause { pair_id: x(), reason: lt(""), paused_on: day(20), until: Some(day(20)) };
    given([formed_ab()]).when(until, &ctx_p()).events();
    let state = given([formed_ab(), paused()])
        .when(resume(), &ctx_p())
        .then_events([PairEvent::PairResumed(PairResumed { pair_id: x(), resumed_on: day(25) })]);
    assert_eq!(state.status, Some(PairStatus::Active));
}

#[test]
fn pause_and_resume_refusals() {
    given([formed_ab(), paused()]).when(pause(), &ctx_p()).then_error(DomainError::PairPaused(x()));
    let err = given([formed_ab()]).when(resume(), &ctx_p()).then_error(DomainError::PairNotPaused(x()));
    assert_eq!(err.code(), "PAIR_NOT_PAUSED");
    let back = PairCommand::Pause { pair_id: x(), reason: lt(""), paused_on: day(20), until: Some(day(19)) };
    given([formed_ab()]).when(back, &ctx_p()).then_invalid("until");
}

#[test]
fn dissolve_a_pair() {
    let state = given([formed_ab()]).when(dissolve(30), &ctx_p()).then_events([dissolved()]);
    assert_eq!(state.status, Some(PairStatus::Dissolved));
    assert!(!state.is_current());
    // On the formation day, and while paused, are fine.
    given([formed_ab()]).when(dissolve(10), &ctx_p()).events();
    given([formed_ab(), paused()]).when(dissolve(30), &ctx_p()).then_events([dissolved()]);
}

#[test]
fn dissolve_before_formation_is_refused() {
    given([formed_ab()]).when(dissolve(9), &ctx_p()).then_invalid("dissolvedOn");
}

#[test]
fn a_dissolved_pair_refuses_everything() {
    let history = [formed_ab(), scheduled(1, a()), goal_set(goal(1, a(), Some(b()))), dissolved()];
    for cmd in every_inner_command() {
        let err = given(history.clone()).when(cmd, &ctx_p()).then_error(DomainError::PairDissolved(x()));
        assert_eq!(err.code(), "PAIR_DISSOLVED");
    }
    given(history)
        .when(PairCommand::Form(form_ab()), &ctx_p())
        .then_error(DomainError::AlreadyExists { entity: "pair" });
}

#[test]
fn a_pair_of_a_closed_program_refuses_everything() {
    let history = [formed_ab(), scheduled(1, a()), goal_set(goal(1, a(), Some(b())))];
    for cmd in every_inner_command() {
        given(history.clone()).when(cmd, &closed_p()).then_error(DomainError::ProgramClosed(p()));
    }
}

#[test]
fn every_inner_command_is_accepted_in_a_live_pair() {
    // The counterpart of the two tests above: the refusals come from the state, not the commands.
    let history = [formed_ab(), scheduled(1, a()), goal_set(goal(1, a(), Some(b())))];
    for cmd in every_inner_command() {
        let history = if matches!(cmd, PairCommand::Resume { .. }) {
            vec![history[0].clone(), paused()]
        } else {
            history.to_vec()
        };
        assert_eq!(given(history).when(cmd, &ctx_p()).events().len(), 1);
    }
}

#[test]
fn unknown_pair_refuses_everything() {
    for cmd in every_inner_command() {
        given::<PairEvent>([]).when(cmd, &ctx_p()).then_error(DomainError::PairNotFound(x()));
    }
}

#[test]
fn clean_up_dissolution() {
    let state = fold([formed_ab(), paused()]);
    let ev = dissolve_for_cleanup(&state, DissolveReason::ProgramClosed, lt("closed"), day(5));
    // Never before the formation date.
    assert_eq!(
        ev,
        Some(PairEvent::PairDissolved(PairDissolved {
            pair_id: x(),
            reason: DissolveReason::ProgramClosed,
            note: lt("closed"),
            dissolved_on: day(10),
        }))
    );
    let ev = dissolve_for_cleanup(&fold([formed_ab()]), DissolveReason::MemberLeft, lt(""), day(40));
    assert!(
        matches!(ev, Some(PairEvent::PairDissolved(PairDissolved { dissolved_on, .. })) if dissolved_on == day(40))
    );
    assert_eq!(dissolve_for_cleanup(&fold([formed_ab(), dissolved()]), DissolveReason::Other, lt(""), day(40)), None);
    assert_eq!(dissolve_for_cleanup(&fold::<PairEvent>([]), DissolveReason::Other, lt(""), day(40)), None);
}

#[test]
fn command_targets_its_pair() {
    assert_eq!(PairCommand::Form(form_ab()).pair_id(), x());
    for cmd in every_inner_command() {
        assert_eq!(cmd.pair_id(), x());
    }
}
