//! Property tests: random command sequences over a small fixed set of ids,
//! played through the in-memory world. After every accepted command every
//! invariant of the design is checked over the whole world; after every
//! refused one, nothing may have changed.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use tandem_domain::event::{DomainEvent, EVENT_TYPES, StreamType};
use tandem_domain::pair::{
    self, Coaching, FormPair, GiveFeedback, GoalStatus, HoldSession, Pair, PairCommand, PairEvent, PairFormed,
    PairStatus, SessionStatus, SetGoal,
};
use tandem_domain::person::{Person, PersonChanges, PersonCommand, PersonEvent, RegisterPerson, UpdatePerson};
use tandem_domain::program::{EnrolParticipant, LaunchProgram, ProgramChanges, ProgramCommand, ProgramEvent};
use tandem_domain::values::{
    Activity, DissolveReason, FormedBy, GroupFormat, LeaveReason, LongText, MatchScore, Ratings, ShortText, Visibility,
};
use tandem_domain::{DomainError, GoalId, PairId, PersonId, ProgramId, SessionId};
use uuid::Uuid;

use crate::support::world::{Command, World};
use crate::support::{
    at, circles, day, email, ext, facts, feedback_id, fold, form, formed, gap, goal_id, launch, level, lt, minutes,
    pair_ctx, pair_id, percent, person_id, person_registered, person_updated, program_id, program_with, rating,
    register, session_id, st,
};

const PEOPLE: usize = 8;
const PROGRAMS: usize = 2;
const PAIRS: usize = 6;
const SESSIONS: usize = 4;
const GOALS: usize = 4;
const FEEDBACK: usize = 4;

fn person(i: usize) -> PersonId {
    person_id(i as u128)
}

fn program(i: usize) -> ProgramId {
    program_id(i as u128)
}

// ------------------------------------------------------------ operations ---

/// Someone acting in a pair: mostly one of its members, sometimes anybody;
/// for goal commands, often the goal's owner.
#[derive(Clone, Copy, Debug)]
enum Who {
    Member(usize),
    Anyone(usize),
    Owner,
}

/// A pair a command targets: mostly a current one, sometimes any formed
/// one (maybe dissolved), sometimes any id.
#[derive(Clone, Copy, Debug)]
enum Target {
    Current(usize),
    /// A current pair with an open goal (for goal commands).
    WithOpenGoal(usize),
    Existing(usize),
    Any(usize),
}

/// A session or goal of the targeted pair: mostly one it knows (in any
/// state), sometimes any id.
#[derive(Clone, Copy, Debug)]
enum Ref {
    Known(usize),
    /// A scheduled session, an open goal.
    Open(usize),
    Any(usize),
}

/// A would-be member: mostly an enrolled participant of the program who is
/// not paired yet, sometimes any participant, sometimes anybody.
#[derive(Clone, Copy, Debug)]
enum Pick {
    Unpaired(usize),
    Enrolled(usize),
    Anyone(usize),
}

/// A command with its ids left as small indices, resolved against the world
/// when it is played (so "a member of pair 3" means whoever that is then).
#[derive(Clone, Debug)]
enum Op {
    Register {
        p: usize,
        ext: Option<usize>,
        level: i64,
        manager: Option<usize>,
        hired: i64,
    },
    UpdateOrg {
        p: usize,
        manager: Option<Option<usize>>,
        level: Option<i64>,
        department: bool,
        on: i64,
    },
    UpdateProfile {
        p: usize,
        name: usize,
        location: Option<Option<usize>>,
    },
    Leave {
        p: usize,
        on: i64,
    },
    Rejoin {
        p: usize,
        on: i64,
    },
    Erase {
        p: usize,
    },
    Launch {
        g: usize,
        circles: bool,
        gap: i64,
        start: i64,
    },
    UpdateProgram {
        g: usize,
        gap: Option<i64>,
        ends: Option<Option<i64>>,
    },
    Enrol {
        g: usize,
        p: usize,
        on: i64,
    },
    Withdraw {
        g: usize,
        p: usize,
        on: i64,
    },
    Close {
        g: usize,
        on: i64,
    },
    /// `size: None` takes as many picks as the program's format wants;
    /// `fresh` picks a pair id not used yet, when there is one.
    Form {
        fresh: bool,
        x: usize,
        g: usize,
        picks: Vec<Pick>,
        size: Option<usize>,
        on: i64,
        score: Option<u8>,
    },
    Schedule {
        x: Target,
        s: Ref,
        by: Who,
    },
    Hold {
        x: Target,
        s: Ref,
        by: Who,
        coaching: Option<(Who, Who)>,
        on: i64,
    },
    Cancel {
        x: Target,
        s: Ref,
        by: Who,
    },
    Feedback {
        x: Target,
        f: usize,
        from: Who,
        to: Who,
        session: Option<Ref>,
        rating: Option<i64>,
        text: bool,
    },
    SetGoal {
        x: Target,
        goal: Ref,
        owner: Who,
        partner: Option<Who>,
        set: i64,
        due: Option<i64>,
    },
    Progress {
        x: Target,
        goal: Ref,
        by: Who,
        percent: Option<i64>,
        note: bool,
    },
    Complete {
        x: Target,
        goal: Ref,
        by: Who,
    },
    Abandon {
        x: Target,
        goal: Ref,
        by: Who,
    },
    Pause {
        x: Target,
        on: i64,
        until: Option<i64>,
    },
    Resume {
        x: Target,
        on: i64,
    },
    Dissolve {
        x: Target,
        on: i64,
    },
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![5 => (0..4usize).prop_map(Who::Member), 1 => (0..PEOPLE).prop_map(Who::Anyone)]
}

fn goal_target() -> impl Strategy<Value = Target> {
    prop_oneof![4 => (0..PAIRS).prop_map(Target::WithOpenGoal), 1 => target()]
}

fn goal_actor() -> impl Strategy<Value = Who> {
    prop_oneof![3 => Just(Who::Owner), 2 => who()]
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        6 => (0..PAIRS).prop_map(Target::Current),
        1 => (0..PAIRS).prop_map(Target::Existing),
        1 => (0..PAIRS).prop_map(Target::Any),
    ]
}

fn session_ref() -> impl Strategy<Value = Ref> {
    prop_oneof![
        2 => (0..8usize).prop_map(Ref::Open),
        1 => (0..8usize).prop_map(Ref::Known),
        1 => (0..SESSIONS).prop_map(Ref::Any),
    ]
}

fn goal_ref() -> impl Strategy<Value = Ref> {
    prop_oneof![
        3 => (0..8usize).prop_map(Ref::Open),
        1 => (0..8usize).prop_map(Ref::Known),
        1 => (0..GOALS).prop_map(Ref::Any),
    ]
}

fn picks() -> impl Strategy<Value = Vec<Pick>> {
    let pick = prop_oneof![
        6 => (0..PEOPLE).prop_map(Pick::Unpaired),
        1 => (0..PEOPLE).prop_map(Pick::Enrolled),
        1 => (0..PEOPLE).prop_map(Pick::Anyone),
    ];
    prop::collection::vec(pick, 5)
}

fn days() -> impl Strategy<Value = i64> {
    0..120i64
}

fn op() -> impl Strategy<Value = Op> {
    let p = || 0..PEOPLE;
    let g = || 0..PROGRAMS;
    prop_oneof![
        // Two newcomers beyond the people registered at the start; some
        // take an external id that is already someone else's.
        2 => (0..PEOPLE + 2, prop::option::weighted(0.3, 0..PEOPLE), 1..=5i64, prop::option::of(p()), -30..30i64)
            .prop_map(|(p, ext, level, manager, hired)| Op::Register { p, ext, level, manager, hired }),
        6 => (
            p(),
            prop::option::weighted(0.7, prop::option::weighted(0.85, p())),
            prop::option::weighted(0.4, 1..=5i64),
            any::<bool>(),
            -30..120i64,
        )
            .prop_map(|(p, manager, level, department, on)| Op::UpdateOrg { p, manager, level, department, on }),
        2 => (p(), 0..3usize, prop::option::of(prop::option::of(0..2usize)))
            .prop_map(|(p, name, location)| Op::UpdateProfile { p, name, location }),
        1 => (p(), days()).prop_map(|(p, on)| Op::Leave { p, on }),
        // Resolved to someone who has left, when anybody has.
        2 => (p(), days()).prop_map(|(p, on)| Op::Rejoin { p, on }),
        1 => p().prop_map(|p| Op::Erase { p }),
        1 => (g(), any::<bool>(), 0..=3i64, 0..10i64)
            .prop_map(|(g, circles, gap, start)| Op::Launch { g, circles, gap, start }),
        2 => (g(), prop::option::of(0..=3i64), prop::option::of(prop::option::of(-5..150i64)))
            .prop_map(|(g, gap, ends)| Op::UpdateProgram { g, gap, ends }),
        16 => (g(), p(), 0..60i64).prop_map(|(g, p, on)| Op::Enrol { g, p, on }),
        3 => (g(), p(), days()).prop_map(|(g, p, on)| Op::Withdraw { g, p, on }),
        // Two closings in three name a program that is never launched.
        1 => (0..3 * PROGRAMS, 0..150i64).prop_map(|(g, on)| Op::Close { g, on }),
        20 => (
            (prop::bool::weighted(0.85), 0..PAIRS),
            g(),
            picks(),
            prop::option::weighted(0.15, 0..=5usize),
            days(),
            prop::option::of(0..=100u8),
        )
            .prop_map(|((fresh, x), g, picks, size, on, score)| Op::Form { fresh, x, g, picks, size, on, score }),
        7 => (target(), session_ref(), who()).prop_map(|(x, s, by)| Op::Schedule { x, s, by }),
        8 => (target(), session_ref(), who(), prop::option::of((who(), who())), days())
            .prop_map(|(x, s, by, coaching, on)| Op::Hold { x, s, by, coaching, on }),
        3 => (target(), session_ref(), who()).prop_map(|(x, s, by)| Op::Cancel { x, s, by }),
        7 => (
            target(),
            0..FEEDBACK,
            who(),
            who(),
            prop::option::of(session_ref()),
            prop::option::of(1..=5i64),
            any::<bool>(),
        )
            .prop_map(|(x, f, from, to, session, rating, text)| Op::Feedback { x, f, from, to, session, rating, text }),
        6 => (target(), goal_ref(), who(), prop::option::of(who()), days(), prop::option::of(days()))
            .prop_map(|(x, goal, owner, partner, set, due)| Op::SetGoal { x, goal, owner, partner, set, due }),
        4 => (goal_target(), goal_ref(), goal_actor(), prop::option::of(0..=100i64), any::<bool>())
            .prop_map(|(x, goal, by, percent, note)| Op::Progress { x, goal, by, percent, note }),
        3 => (goal_target(), goal_ref(), goal_actor()).prop_map(|(x, goal, by)| Op::Complete { x, goal, by }),
        2 => (goal_target(), goal_ref(), goal_actor()).prop_map(|(x, goal, by)| Op::Abandon { x, goal, by }),
        2 => (target(), days(), prop::option::of(days())).prop_map(|(x, on, until)| Op::Pause { x, on, until }),
        2 => (target(), days()).prop_map(|(x, on)| Op::Resume { x, on }),
        3 => (target(), days()).prop_map(|(x, on)| Op::Dissolve { x, on }),
    ]
}

/// Whether the service cleans up (mostly yes), and the operations: eight
/// registrations (managers among those registered before, so most succeed),
/// two launches and some enrolments, then 30 to 120 random operations.
fn scenario() -> impl Strategy<Value = (bool, Vec<Op>)> {
    (prop::bool::weighted(0.6), ops())
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let people = prop::collection::vec((1..=5i64, prop::option::weighted(0.4, any::<Index>()), -30..10i64), PEOPLE);
    let programs = (1..=3i64, 1..=3i64, any::<bool>());
    let enrolments = prop::collection::vec(prop::bool::weighted(0.6), PEOPLE * PROGRAMS);
    let rest = prop::collection::vec(op(), 30..=120);
    (people, programs, enrolments, rest).prop_map(|(people, (gap0, gap1, circles), enrolments, rest)| {
        let mut ops: Vec<Op> = people
            .into_iter()
            .enumerate()
            .map(|(p, (level, manager, hired))| Op::Register {
                p,
                ext: None,
                level,
                manager: manager.filter(|_| p > 0).map(|i| i.index(p)),
                hired,
            })
            .collect();
        ops.push(Op::Launch { g: 0, circles: false, gap: gap0, start: 0 });
        ops.push(Op::Launch { g: 1, circles, gap: gap1, start: 0 });
        for (i, enrol) in enrolments.into_iter().enumerate() {
            if enrol {
                ops.push(Op::Enrol { g: i / PEOPLE, p: i % PEOPLE, on: 0 });
            }
        }
        ops.extend(rest);
        ops
    })
}

// ------------------------------------------------------------ resolution ---

fn resolve_pair(world: &World, t: Target) -> PairId {
    let among = |ids: Vec<PairId>, k: usize| if ids.is_empty() { pair_id(k as u128) } else { ids[k % ids.len()] };
    match t {
        Target::Current(k) => among(world.pairs.iter().filter(|(_, x)| x.is_current()).map(|(id, _)| *id).collect(), k),
        Target::WithOpenGoal(k) => among(
            world
                .pairs
                .iter()
                .filter(|(_, x)| x.is_current() && x.goals.values().any(|g| g.status == GoalStatus::Open))
                .map(|(id, _)| *id)
                .collect(),
            k,
        ),
        Target::Existing(k) => among(world.pairs.keys().copied().collect(), k),
        Target::Any(k) => pair_id(k as u128),
    }
}

/// The members a formation names: `size` (or as many as the format wants) of the picks.
fn resolve_members(world: &World, g: ProgramId, picks: &[Pick], size: Option<usize>, seed: usize) -> Vec<PersonId> {
    let program = world.programs.get(&g);
    let size = size.unwrap_or_else(|| match program.and_then(|p| p.format) {
        Some(f) => usize::from(f.min_size) + seed % (usize::from(f.max_size - f.min_size) + 1),
        None => 2,
    });
    let enrolled: Vec<PersonId> = program.map(|p| p.participants.keys().copied().collect()).unwrap_or_default();
    let mut unpaired: Vec<PersonId> = enrolled.iter().copied().filter(|p| !world.in_current_pair(g, *p)).collect();
    picks
        .iter()
        .take(size)
        .map(|pick| match *pick {
            // Distinct as long as there are enough: each pick takes one out of the pool.
            Pick::Unpaired(k) if !unpaired.is_empty() => unpaired.remove(k % unpaired.len()),
            Pick::Unpaired(k) | Pick::Enrolled(k) if !enrolled.is_empty() => enrolled[k % enrolled.len()],
            Pick::Unpaired(k) | Pick::Enrolled(k) | Pick::Anyone(k) => person(k),
        })
        .collect()
}

/// The `k`-th of `ids` (those `open` first when asked), or the raw id `k`.
fn pick_ref<T: Copy>(r: Ref, known: Vec<(T, bool)>, raw: impl Fn(usize) -> T) -> T {
    let (k, candidates): (usize, Vec<T>) = match r {
        Ref::Known(k) => (k, known.iter().map(|(id, _)| *id).collect()),
        Ref::Open(k) => (k, known.iter().filter(|(_, open)| *open).map(|(id, _)| *id).collect()),
        Ref::Any(k) => (k, vec![]),
    };
    if candidates.is_empty() { raw(k) } else { candidates[k % candidates.len()] }
}

fn resolve_session(world: &World, x: PairId, r: Ref) -> SessionId {
    let known = world
        .pairs
        .get(&x)
        .map(|p| p.sessions.iter().map(|(id, s)| (*id, *s == SessionStatus::Scheduled)).collect())
        .unwrap_or_default();
    pick_ref(r, known, |k| session_id((k % SESSIONS) as u128))
}

fn resolve_goal(world: &World, x: PairId, r: Ref) -> GoalId {
    let known = world
        .pairs
        .get(&x)
        .map(|p| p.goals.iter().map(|(id, g)| (*id, g.status == GoalStatus::Open)).collect())
        .unwrap_or_default();
    pick_ref(r, known, |k| goal_id((k % GOALS) as u128))
}

/// The actor of a goal command: `Who::Owner` is the goal's owner.
fn resolve_goal_actor(world: &World, x: PairId, goal: GoalId, w: Who) -> PersonId {
    match (w, world.pairs.get(&x).and_then(|p| p.goals.get(&goal))) {
        (Who::Owner, Some(g)) => g.owner,
        _ => resolve_who(world, x, w),
    }
}

fn resolve_who(world: &World, x: PairId, w: Who) -> PersonId {
    match w {
        Who::Member(k) => match world.pairs.get(&x) {
            Some(pair) if !pair.members.is_empty() => pair.members[k % pair.members.len()],
            _ => person(k % PEOPLE),
        },
        Who::Anyone(k) => person(k),
        Who::Owner => resolve_who(world, x, Who::Member(0)),
    }
}

fn text(on: bool, s: &str) -> LongText {
    if on { lt(s) } else { LongText::default() }
}

#[expect(clippy::too_many_lines, reason = "one arm per command")]
fn resolve(world: &World, op: &Op) -> Command {
    let (pc, gc, xc) = (Command::Person, Command::Program, Command::Pair);
    match op.clone() {
        Op::Register { p, ext: e, level: l, manager, hired } => pc(PersonCommand::Register(RegisterPerson {
            external_id: ext(&format!("E-{}", e.unwrap_or(p))),
            name: st(&format!("Person {p}")),
            email: email(&format!("p{p}@example.com")),
            level: level(l),
            manager: manager.map(person),
            hired_on: day(hired),
            ..register(person(p))
        })),
        Op::UpdateOrg { p, manager, level: l, department, on } => pc(PersonCommand::Update(UpdatePerson {
            person_id: person(p),
            changes: PersonChanges {
                manager: manager.map(|m| m.map(person)),
                level: l.map(level),
                department: department.then(|| st("Research")),
                ..PersonChanges::default()
            },
            effective_on: day(on),
        })),
        Op::UpdateProfile { p, name, location } => pc(PersonCommand::Update(UpdatePerson {
            person_id: person(p),
            changes: PersonChanges {
                name: Some(st(["Ada", "Bob", "Cy"][name])),
                location: location.map(|l| l.map(|i| st(["Berlin", "Paris"][i]))),
                ..PersonChanges::default()
            },
            effective_on: day(0),
        })),
        Op::Leave { p, on } => {
            pc(PersonCommand::RecordLeft { person_id: person(p), left_on: day(on), reason: LeaveReason::Voluntary })
        }
        Op::Rejoin { p, on } => {
            let gone: Vec<PersonId> = world.persons.values().filter(|x| x.has_left()).filter_map(|x| x.id).collect();
            let who = if gone.is_empty() { person(p) } else { gone[p % gone.len()] };
            pc(PersonCommand::Rejoin { person_id: who, rejoined_on: day(on) })
        }
        Op::Erase { p } => pc(PersonCommand::Erase { person_id: person(p) }),
        Op::Launch { g, circles: c, gap: max_gap, start } => gc(ProgramCommand::Launch(LaunchProgram {
            format: if c { circles(3, 4) } else { GroupFormat::PAIRS },
            max_level_gap: gap(max_gap),
            starts_on: day(start),
            ..launch(program(g))
        })),
        Op::UpdateProgram { g, gap: max_gap, ends } => gc(ProgramCommand::Update {
            program_id: program(g),
            changes: ProgramChanges {
                max_level_gap: max_gap.map(gap),
                ends_on: ends.map(|e| e.map(day)),
                ..ProgramChanges::default()
            },
        }),
        Op::Enrol { g, p, on } => gc(ProgramCommand::Enrol(EnrolParticipant {
            program_id: program(g),
            person_id: person(p),
            enrolled_on: day(on),
            interests: vec![st("Rust"), st("rust")],
            skills: vec![],
            wants_to_work_on: LongText::default(),
        })),
        Op::Withdraw { g, p, on } => gc(ProgramCommand::Withdraw {
            program_id: program(g),
            person_id: person(p),
            withdrew_on: day(on),
            reason: LongText::default(),
        }),
        Op::Close { g, on } => gc(ProgramCommand::Close { program_id: program(g), closed_on: day(on), reason: lt("") }),
        Op::Form { fresh, x, g, picks, size, on, score } => xc(PairCommand::Form(FormPair {
            pair_id: {
                let unused: Vec<PairId> =
                    (0..PAIRS).map(|i| pair_id(i as u128)).filter(|id| !world.pairs.contains_key(id)).collect();
                if fresh && !unused.is_empty() { unused[x % unused.len()] } else { pair_id(x as u128) }
            },
            program_id: program(g),
            members: resolve_members(world, program(g), &picks, size, x),
            formed_by: if score.is_some() { FormedBy::Suggestion } else { FormedBy::Admin },
            match_score: score.map(|s| MatchScore::parse("matchScore", f64::from(s) / 100.0).unwrap()),
            formed_on: day(on),
        })),
        Op::Schedule { x, s, by } => {
            let x = resolve_pair(world, x);
            xc(PairCommand::ScheduleSession {
                pair_id: x,
                session_id: resolve_session(world, x, s),
                by: resolve_who(world, x, by),
                scheduled_for: at(30),
                focus: None,
            })
        }
        Op::Hold { x, s, by, coaching, on } => {
            let x = resolve_pair(world, x);
            xc(PairCommand::HoldSession {
                pair_id: x,
                session: HoldSession {
                    session_id: resolve_session(world, x, s),
                    by: resolve_who(world, x, by),
                    held_at: at(on),
                    minutes: minutes(45),
                    focus: st("Focus"),
                    activities: vec![Activity::Other, Activity::RolePlay],
                    coaching: coaching
                        .map(|(c, e)| Coaching { coach: resolve_who(world, x, c), coachee: resolve_who(world, x, e) })
                        .into_iter()
                        .collect(),
                    notes: LongText::default(),
                },
            })
        }
        Op::Cancel { x, s, by } => {
            let x = resolve_pair(world, x);
            xc(PairCommand::CancelSession {
                pair_id: x,
                session_id: resolve_session(world, x, s),
                by: resolve_who(world, x, by),
                reason: LongText::default(),
            })
        }
        Op::Feedback { x, f, from, to, session, rating: r, text: t } => {
            let x = resolve_pair(world, x);
            xc(PairCommand::GiveFeedback {
                pair_id: x,
                feedback: GiveFeedback {
                    feedback_id: feedback_id(f as u128),
                    from: resolve_who(world, x, from),
                    to: resolve_who(world, x, to),
                    session_id: session.map(|s| resolve_session(world, x, s)),
                    ratings: Ratings { empathy: r.map(rating), ..Ratings::default() },
                    strengths: text(t, "Listens well"),
                    improvements: LongText::default(),
                    visibility: Visibility::Recipient,
                    given_at: at(40),
                },
            })
        }
        Op::SetGoal { x, goal, owner, partner, set, due } => {
            let x = resolve_pair(world, x);
            xc(PairCommand::SetGoal {
                pair_id: x,
                goal: SetGoal {
                    goal_id: resolve_goal(world, x, goal),
                    owner: resolve_who(world, x, owner),
                    title: st("Goal"),
                    description: LongText::default(),
                    due_on: due.map(day),
                    accountability_partner: partner.map(|w| resolve_who(world, x, w)),
                    set_on: day(set),
                },
            })
        }
        Op::Progress { x, goal, by, percent: pct, note } => {
            let x = resolve_pair(world, x);
            let goal_id = resolve_goal(world, x, goal);
            xc(PairCommand::RecordGoalProgress {
                pair_id: x,
                goal_id,
                by: resolve_goal_actor(world, x, goal_id, by),
                percent: pct.map(percent),
                note: text(note, "Progress"),
                recorded_on: day(50),
            })
        }
        Op::Complete { x, goal, by } => {
            let x = resolve_pair(world, x);
            let goal_id = resolve_goal(world, x, goal);
            xc(PairCommand::CompleteGoal {
                pair_id: x,
                goal_id,
                by: resolve_goal_actor(world, x, goal_id, by),
                note: LongText::default(),
                completed_on: day(60),
            })
        }
        Op::Abandon { x, goal, by } => {
            let x = resolve_pair(world, x);
            let goal_id = resolve_goal(world, x, goal);
            xc(PairCommand::AbandonGoal {
                pair_id: x,
                goal_id,
                by: resolve_goal_actor(world, x, goal_id, by),
                reason: LongText::default(),
                abandoned_on: day(60),
            })
        }
        Op::Pause { x, on, until } => xc(PairCommand::Pause {
            pair_id: resolve_pair(world, x),
            reason: LongText::default(),
            paused_on: day(on),
            until: until.map(day),
        }),
        Op::Resume { x, on } => xc(PairCommand::Resume { pair_id: resolve_pair(world, x), resumed_on: day(on) }),
        Op::Dissolve { x, on } => xc(PairCommand::Dissolve {
            pair_id: resolve_pair(world, x),
            reason: DissolveReason::Other,
            note: LongText::default(),
            dissolved_on: day(on),
        }),
    }
}

// ------------------------------------------------------------ invariants ---

/// What the checks remember between commands, and what the run saw.
#[derive(Debug, Default)]
struct Ledger {
    /// Length of a pair's stream when it was dissolved.
    dissolved_at: BTreeMap<PairId, usize>,
    /// Length of a program's stream and of each of its pairs' streams when it closed.
    closed_at: BTreeMap<ProgramId, (usize, BTreeMap<PairId, usize>)>,
    /// Length of a person's stream when they were erased.
    erased_at: BTreeMap<PersonId, usize>,
}

/// Accepted event types and refusal codes, over one or more scenarios.
#[derive(Debug, Default)]
struct Tally {
    accepted: BTreeMap<String, usize>,
    /// Keyed `stream:CODE`.
    refused: BTreeMap<String, usize>,
}

fn stream_len(world: &World, id: Uuid) -> usize {
    world.log.iter().filter(|e| e.stream_id() == id).count()
}

/// People who act in a pair event and must be present members.
fn present_actors(e: &PairEvent) -> Vec<PersonId> {
    match e {
        PairEvent::SessionScheduled(e) => vec![e.scheduled_by],
        PairEvent::SessionHeld(e) => vec![e.recorded_by],
        PairEvent::SessionCancelled(e) => vec![e.cancelled_by],
        PairEvent::FeedbackGiven(e) => vec![e.from, e.to],
        PairEvent::GoalSet(e) => std::iter::once(e.owner).chain(e.accountability_partner).collect(),
        PairEvent::GoalProgressRecorded(e) => vec![e.by],
        PairEvent::GoalCompleted(e) => vec![e.by],
        PairEvent::GoalAbandoned(e) => vec![e.by],
        PairEvent::PairFormed(_)
        | PairEvent::PairPaused(_)
        | PairEvent::PairResumed(_)
        | PairEvent::PairDissolved(_) => {
            vec![]
        }
    }
}

/// Everybody a pair event names, who must all be members.
fn named_people(e: &PairEvent) -> Vec<PersonId> {
    let mut people = present_actors(e);
    if let PairEvent::SessionHeld(h) = e {
        people.extend(h.coaching.iter().flat_map(|c| [c.coach, c.coachee]));
    }
    people
}

/// The rules of formation, checked against the world just before it.
fn check_formation(cur: &World, f: &PairFormed) {
    assert!(cur.pairs.get(&f.pair_id).is_none_or(|x| x.id.is_none()), "pair formed twice");
    let program = cur.programs.get(&f.program_id).expect("formed in a launched program");
    assert!(program.is_launched() && !program.is_closed(), "formed in a closed program");
    let format = program.format.expect("a launched program has a format");
    assert_eq!(f.kind, format.kind);
    let distinct: BTreeSet<_> = f.members.iter().collect();
    assert_eq!(distinct.len(), f.members.len(), "members are distinct");
    assert!((usize::from(format.min_size)..=usize::from(format.max_size)).contains(&f.members.len()), "group size");
    let mut levels = Vec::new();
    for m in &f.members {
        assert!(program.is_enrolled(*m), "{m} was enrolled at formation");
        let p = cur.person(*m).expect("members are registered");
        assert!(!p.erased && !p.has_left(), "{m} is present");
        assert!(!cur.in_current_pair(f.program_id, *m), "{m} was not already paired in the program");
        levels.push(p.org_on(f.formed_on).expect("org facts").level.get());
        // Walk up the management chain on the formation date, independently of `management_chain`.
        let mut seen = BTreeSet::from([*m]);
        let mut at = *m;
        while let Some(up) = cur.manager_on(at, f.formed_on) {
            if !seen.insert(up) {
                break;
            }
            assert!(!f.members.contains(&up), "{up} has authority over {m} on {}", f.formed_on);
            at = up;
        }
    }
    let gap = levels.iter().max().unwrap() - levels.iter().min().unwrap();
    assert!(gap <= program.max_level_gap.expect("a gap").get(), "level gap {gap} too large");
}

/// Checks one appended event against the world just before it.
fn check_event(cur: &World, e: &DomainEvent, batch: &[DomainEvent]) {
    match e {
        DomainEvent::Person(ev) => {
            let id = PersonId::from_uuid(e.stream_id());
            assert!(cur.person(id).is_none_or(|p| !p.erased), "an event for erased {id}: {ev:?}");
            if let PersonEvent::PersonRegistered(r) = ev {
                assert!(
                    cur.persons.values().all(|p| p.external_id.as_ref() != r.external_id.as_ref()),
                    "external id taken"
                );
            }
        }
        DomainEvent::Program(ev) => {
            let id = ProgramId::from_uuid(e.stream_id());
            assert!(cur.programs.get(&id).is_none_or(|g| !g.is_closed()), "an event in closed {id}: {ev:?}");
            if let ProgramEvent::ParticipantEnrolled(en) = ev {
                let p = cur.person(en.person_id).expect("enrolled people exist");
                assert!(!p.erased && !p.has_left(), "enrolled an absent person");
            }
            if let ProgramEvent::ParticipantWithdrew(w) = ev {
                assert!(!cur.in_current_pair(w.program_id, w.person_id), "withdrew while paired");
            }
        }
        DomainEvent::Unrecognised(u) => panic!("decide never produces an unrecognised event: {u:?}"),
        DomainEvent::Webhook(ev) => panic!("the scenarios play no webhook command: {ev:?}"),
        DomainEvent::Pair(PairEvent::PairFormed(f)) => check_formation(cur, f),
        DomainEvent::Pair(ev) => {
            let id = PairId::from_uuid(e.stream_id());
            let pair = cur.pairs.get(&id).filter(|x| x.id.is_some()).expect("events only in formed pairs");
            assert_ne!(pair.status, Some(PairStatus::Dissolved), "an event after dissolution: {ev:?}");
            let program = &cur.programs[&pair.program_id.expect("a program")];
            if program.is_closed() {
                let closing_now = batch.iter().any(|b| {
                    matches!(b, DomainEvent::Program(ProgramEvent::ProgramClosed(c)) if Some(c.program_id) == pair.program_id)
                });
                assert!(
                    closing_now
                        && matches!(ev, PairEvent::PairDissolved(d) if d.reason == DissolveReason::ProgramClosed),
                    "only the clean-up may touch a pair of a closed program: {ev:?}"
                );
            }
            for who in named_people(ev) {
                assert!(pair.is_member(who), "{who} is not a member: {ev:?}");
            }
            for who in present_actors(ev) {
                let p = cur.person(who).expect("actors exist");
                assert!(!p.erased && !p.has_left(), "{who} acts while absent: {ev:?}");
            }
            match ev {
                PairEvent::SessionScheduled(s) => {
                    assert_eq!(pair.status, Some(PairStatus::Active));
                    assert!(!pair.sessions.contains_key(&s.session_id));
                }
                PairEvent::SessionHeld(h) => {
                    assert_eq!(pair.status, Some(PairStatus::Active));
                    let before = pair.sessions.get(&h.session_id);
                    assert!(matches!(before, None | Some(SessionStatus::Scheduled)), "held twice or after cancel");
                    assert!(h.coaching.iter().all(|c| c.coach != c.coachee));
                }
                PairEvent::SessionCancelled(c) => {
                    assert_eq!(pair.sessions.get(&c.session_id), Some(&SessionStatus::Scheduled));
                }
                PairEvent::FeedbackGiven(f) => {
                    assert_ne!(f.from, f.to, "feedback to oneself");
                    if let Some(s) = f.session_id {
                        assert_eq!(pair.sessions.get(&s), Some(&SessionStatus::Held));
                    }
                }
                PairEvent::GoalSet(g) => {
                    assert!(!pair.goals.contains_key(&g.goal_id));
                    assert_ne!(g.accountability_partner, Some(g.owner));
                }
                PairEvent::GoalProgressRecorded(p) => {
                    let goal = pair.goals[&p.goal_id];
                    assert_eq!(goal.status, GoalStatus::Open);
                    assert!(p.by == goal.owner || Some(p.by) == goal.accountability_partner);
                }
                PairEvent::GoalCompleted(g) => {
                    assert_eq!(pair.goals[&g.goal_id].status, GoalStatus::Open);
                    assert_eq!(pair.goals[&g.goal_id].owner, g.by);
                }
                PairEvent::GoalAbandoned(g) => {
                    assert_eq!(pair.goals[&g.goal_id].status, GoalStatus::Open);
                    assert_eq!(pair.goals[&g.goal_id].owner, g.by);
                }
                PairEvent::PairPaused(_) => assert_eq!(pair.status, Some(PairStatus::Active)),
                PairEvent::PairResumed(_) => assert_eq!(pair.status, Some(PairStatus::Paused)),
                PairEvent::PairDissolved(d) => assert!(Some(d.dissolved_on) >= pair.formed_on),
                PairEvent::PairFormed(_) => unreachable!("checked above"),
            }
        }
    }
}

/// Every invariant of the design, over the whole world.
fn check_world(world: &World, ledger: &Ledger) {
    let mut paired: BTreeSet<(ProgramId, PersonId)> = BTreeSet::new();
    for (id, pair) in &world.pairs {
        assert_eq!(pair.id, Some(*id), "only formed pairs have streams");
        let program = &world.programs[&pair.program_id.expect("a program")];
        let format = program.format.expect("a format");
        let distinct: BTreeSet<_> = pair.members.iter().collect();
        assert_eq!(distinct.len(), pair.members.len());
        assert!((usize::from(format.min_size)..=usize::from(format.max_size)).contains(&pair.members.len()));
        if pair.is_current() {
            assert!(!(world.cleanup && program.is_closed()), "a current pair in a closed program");
            for m in &pair.members {
                assert!(paired.insert((program.id.expect("id"), *m)), "{m} is in two current pairs of one program");
                assert!(program.is_enrolled(*m), "{m} of a current pair is still enrolled");
                let left = world.person(*m).expect("registered").has_left();
                assert!(!(world.cleanup && left), "{m} left but is still paired");
            }
        }
    }
    for (id, len) in &ledger.dissolved_at {
        assert_eq!(stream_len(world, id.as_uuid()), *len, "pair {id} changed after dissolution");
    }
    for (id, (len, pairs)) in &ledger.closed_at {
        assert_eq!(stream_len(world, id.as_uuid()), *len, "program {id} changed after closing");
        for (x, pair) in &world.pairs {
            if pair.program_id == Some(*id) {
                assert_eq!(pairs.get(x), Some(&stream_len(world, x.as_uuid())), "pair {x} changed after closing");
            }
        }
    }
    for (id, len) in &ledger.erased_at {
        assert_eq!(stream_len(world, id.as_uuid()), *len, "person {id} changed after erasure");
    }
    let mut held = BTreeSet::new();
    let mut closed_goals = BTreeSet::new();
    let mut external_ids = BTreeSet::new();
    for e in &world.log {
        match e {
            DomainEvent::Pair(PairEvent::SessionHeld(h)) => {
                assert!(held.insert((h.pair_id, h.session_id)), "session held twice");
            }
            DomainEvent::Pair(PairEvent::GoalCompleted(g)) => {
                assert!(closed_goals.insert((g.pair_id, g.goal_id)), "goal closed twice");
            }
            DomainEvent::Pair(PairEvent::GoalAbandoned(g)) => {
                assert!(closed_goals.insert((g.pair_id, g.goal_id)), "goal closed twice");
            }
            DomainEvent::Pair(PairEvent::FeedbackGiven(f)) => assert_ne!(f.from, f.to),
            DomainEvent::Person(PersonEvent::PersonRegistered(r)) => {
                assert!(external_ids.insert(r.external_id.clone()), "external id registered twice");
            }
            _ => {}
        }
    }
}

/// Updates the ledger after an accepted command.
fn remember(world: &World, events: &[DomainEvent], ledger: &mut Ledger) {
    for e in events {
        match e {
            DomainEvent::Pair(PairEvent::PairDissolved(d)) => {
                ledger.dissolved_at.insert(d.pair_id, stream_len(world, d.pair_id.as_uuid()));
            }
            DomainEvent::Program(ProgramEvent::ProgramClosed(c)) => {
                let pairs = world
                    .pairs
                    .iter()
                    .filter(|(_, x)| x.program_id == Some(c.program_id))
                    .map(|(id, _)| (*id, stream_len(world, id.as_uuid())))
                    .collect();
                ledger.closed_at.insert(c.program_id, (stream_len(world, c.program_id.as_uuid()), pairs));
            }
            DomainEvent::Person(PersonEvent::PersonErased(p)) => {
                ledger.erased_at.insert(p.person_id, stream_len(world, p.person_id.as_uuid()));
            }
            _ => {}
        }
    }
}

/// Plays a scenario, checking everything along the way.
fn play(cleanup: bool, ops: &[Op], tally: &mut Tally) {
    let mut world = World::new(cleanup);
    let mut ledger = Ledger::default();
    for op in ops {
        let command = resolve(&world, op);
        let before = world.clone();
        match world.execute(command.clone()) {
            Err(refusal) => {
                let stream = match command {
                    Command::Person(_) => "person",
                    Command::Program(_) => "program",
                    Command::Pair(_) => "pair",
                };
                *tally.refused.entry(format!("{stream}:{}", refusal.code())).or_default() += 1;
                assert_eq!(world, before, "a refused command changed the world: {command:?}");
            }
            Ok(events) => {
                let mut cur = before;
                for e in &events {
                    check_event(&cur, e, &events);
                    let encoded = e.encode();
                    let decoded = DomainEvent::decode(&encoded.event_type, encoded.schema_version, encoded.data)
                        .expect("every appended event decodes");
                    assert_eq!(&decoded, e);
                    cur.apply(e.clone());
                }
                assert_eq!(cur, world);
                for e in &events {
                    *tally.accepted.entry(e.event_type().to_owned()).or_default() += 1;
                }
                remember(&world, &events, &mut ledger);
                check_world(&world, &ledger);
            }
        }
    }
    assert_eq!(world.replayed(), world, "replaying the log rebuilds the world");
}

proptest! {
    #![proptest_config(Config { cases: 64, failure_persistence: None, ..Config::default() })]

    #[test]
    fn every_invariant_holds_after_every_command((cleanup, ops) in scenario()) {
        play(cleanup, &ops, &mut Tally::default());
    }
}

/// The generator is only worth something if it reaches the rules: over a
/// fixed set of scenarios, every event type is appended and the main
/// refusals all occur.
#[test]
fn the_scenarios_reach_every_event_and_the_main_refusals() {
    let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let mut tally = Tally::default();
    for _ in 0..48 {
        let (cleanup, ops) = scenario().new_tree(&mut runner).expect("a scenario").current();
        play(cleanup, &ops, &mut tally);
    }
    // Webhook endpoints are a stream of their own, with their own tests
    // (`webhook.rs`); the scenarios play the coaching streams.
    let missing: Vec<_> = EVENT_TYPES
        .iter()
        .filter(|(_, s, _)| *s != StreamType::Webhook)
        .map(|(t, _, _)| *t)
        .filter(|t| !tally.accepted.contains_key(*t))
        .collect();
    assert!(missing.is_empty(), "never appended: {missing:?}\naccepted: {:?}", tally.accepted);
    let expected_refusals = [
        "person:ALREADY_EXISTS",
        "person:EXTERNAL_ID_TAKEN",
        "person:SELF_MANAGEMENT",
        "person:MANAGEMENT_CYCLE",
        "person:PERSON_HAS_LEFT",
        "person:PERSON_HAS_NOT_LEFT",
        "person:PERSON_ERASED",
        "person:INVALID_INPUT",
        "program:ALREADY_ENROLLED",
        "program:NOT_ENROLLED",
        "program:IN_ACTIVE_PAIR",
        "program:PERSON_ERASED",
        "program:PERSON_HAS_LEFT",
        "program:PROGRAM_CLOSED",
        "program:PROGRAM_NOT_FOUND",
        "pair:ALREADY_EXISTS",
        "pair:DUPLICATE_MEMBER",
        "pair:WRONG_GROUP_SIZE",
        "pair:NOT_ENROLLED",
        "pair:AUTHORITY_RELATION",
        "pair:LEVEL_GAP_TOO_LARGE",
        "pair:ALREADY_PAIRED",
        "pair:PAIR_NOT_FOUND",
        "pair:PAIR_DISSOLVED",
        "pair:PAIR_PAUSED",
        "pair:PAIR_NOT_PAUSED",
        "pair:PROGRAM_CLOSED",
        "pair:PERSON_HAS_LEFT",
        "pair:NOT_A_MEMBER",
        "pair:SELF_FEEDBACK",
        "pair:SESSION_NOT_FOUND",
        "pair:SESSION_ALREADY_HELD",
        "pair:SESSION_NOT_HELD",
        "pair:GOAL_NOT_FOUND",
        "pair:GOAL_CLOSED",
        "pair:NOT_GOAL_OWNER",
        "pair:NOT_GOAL_PARTICIPANT",
        "pair:INVALID_INPUT",
    ];
    let missing: Vec<_> = expected_refusals.iter().filter(|c| !tally.refused.contains_key(**c)).collect();
    assert!(missing.is_empty(), "never refused with: {missing:?}\nrefused: {:?}", tally.refused);
}

// ------------------------------------------------- smaller properties ---

/// A naive model of `org_on` for one field: the last change (by date, then
/// recording order) on or before the date wins.
fn naive_level_on(initial: i64, changes: &[(i64, Option<i64>)], on: i64) -> i64 {
    let mut best: Option<(i64, usize, i64)> = None;
    for (i, (eff, lvl)) in changes.iter().enumerate() {
        if let Some(l) = lvl
            && *eff <= on
            && best.is_none_or(|(d, j, _)| (*eff, i) > (d, j))
        {
            best = Some((*eff, i, *l));
        }
    }
    best.map_or(initial, |(_, _, l)| l)
}

fn level_on(initial: i64, changes: &[(i64, Option<i64>)], on: i64) -> i64 {
    let ada = person_id(1);
    let mut events = vec![person_registered(ada, initial, None)];
    events.extend(changes.iter().map(|(eff, lvl)| {
        // Every change touches the org (the title), some the level too.
        let changes = PersonChanges { level: lvl.map(level), title: Some(st("T")), ..PersonChanges::default() };
        person_updated(ada, day(*eff), changes)
    }));
    let person: Person = fold(events);
    i64::from(person.org_on(day(on)).expect("registered").level.get())
}

/// Plays pair commands (0 schedule, 1 pause, 2 resume, 3 set a goal) in a
/// pair of a and b, dissolving it before command `dissolve_before`; returns
/// the outcome of every command played after the dissolution.
fn after_dissolution(commands: &[usize], dissolve_before: usize) -> Vec<Result<Vec<PairEvent>, DomainError>> {
    let (a, b, g, x) = (person_id(1), person_id(2), program_id(1), pair_id(1));
    let ctx = pair_ctx(program_with(g, GroupFormat::PAIRS, 2, &[a, b]), [(a, facts(3, vec![])), (b, facts(3, vec![]))]);
    let command = |kind: usize, n: usize| match kind {
        0 => PairCommand::ScheduleSession {
            pair_id: x,
            session_id: session_id(n as u128),
            by: a,
            scheduled_for: at(1),
            focus: None,
        },
        1 => PairCommand::Pause { pair_id: x, reason: LongText::default(), paused_on: day(1), until: None },
        2 => PairCommand::Resume { pair_id: x, resumed_on: day(2) },
        _ => PairCommand::SetGoal {
            pair_id: x,
            goal: SetGoal {
                goal_id: goal_id(n as u128),
                owner: b,
                title: st("G"),
                description: LongText::default(),
                due_on: None,
                accountability_partner: Some(a),
                set_on: day(1),
            },
        },
    };
    let dissolve = PairCommand::Dissolve {
        pair_id: x,
        reason: DissolveReason::Other,
        note: LongText::default(),
        dissolved_on: day(3),
    };
    let mut state: Pair = fold([formed(&form(x, g, &[a, b], day(0)), GroupFormat::PAIRS)]);
    let mut outcomes = Vec::new();
    for (n, kind) in commands.iter().enumerate() {
        if n == dissolve_before {
            let events = pair::decide(&state, dissolve.clone(), &ctx).expect("a live pair dissolves");
            state = events.iter().fold(state, pair::evolve);
        }
        let result = pair::decide(&state, command(*kind, n), &ctx);
        if n >= dissolve_before {
            outcomes.push(result);
        } else if let Ok(events) = result {
            state = events.iter().fold(state, pair::evolve);
        }
    }
    outcomes
}

proptest! {
    #![proptest_config(Config { cases: 128, failure_persistence: None, ..Config::default() })]

    #[test]
    fn org_on_matches_a_naive_model(
        initial in 1..=9i64,
        changes in prop::collection::vec((-10..40i64, prop::option::of(1..=9i64)), 0..12),
        on in -20..50i64,
    ) {
        prop_assert_eq!(level_on(initial, &changes, on), naive_level_on(initial, &changes, on));
    }

    #[test]
    fn short_text_parsing_is_idempotent(s in "\\PC{0,210}") {
        if let Ok(t) = ShortText::parse("name", &s) {
            prop_assert_eq!(ShortText::parse("name", t.as_str()), Ok(t.clone()));
            prop_assert!(t.as_str().chars().count() <= 200 && !t.as_str().is_empty());
            let json = serde_json::to_value(&t).unwrap();
            prop_assert_eq!(serde_json::from_value::<ShortText>(json).unwrap(), t);
        }
    }

    #[test]
    fn a_dissolved_pair_accepts_nothing_more(
        commands in prop::collection::vec(0..4usize, 0..10),
        dissolve_before in 0..10usize,
    ) {
        for outcome in after_dissolution(&commands, dissolve_before) {
            prop_assert_eq!(outcome, Err(DomainError::PairDissolved(pair_id(1))));
        }
    }
}

#[test]
fn the_harness_gathers_context_like_the_service() {
    // m manages d from day 50; a formation on day 60 sees it, one on day 40 does not.
    let (d, m) = (person(1), person(2));
    let mut world = World::default();
    let setup = [
        Command::Person(PersonCommand::Register(RegisterPerson { level: level(3), ..register(m) })),
        Command::Person(PersonCommand::Register(RegisterPerson {
            external_id: ext("E-d"),
            level: level(3),
            ..register(d)
        })),
        Command::Person(PersonCommand::Update(UpdatePerson {
            person_id: d,
            changes: PersonChanges { manager: Some(Some(m)), ..PersonChanges::default() },
            effective_on: day(50),
        })),
        Command::Program(ProgramCommand::Launch(launch(program(0)))),
    ];
    for c in setup {
        world.execute(c).expect("setup is accepted");
    }
    for p in [d, m] {
        let enrol = EnrolParticipant {
            program_id: program(0),
            person_id: p,
            enrolled_on: day(1),
            interests: vec![],
            skills: vec![],
            wants_to_work_on: LongText::default(),
        };
        world.execute(Command::Program(ProgramCommand::Enrol(enrol))).expect("enrolled");
    }
    let form_on =
        |x: usize, on: i64| Command::Pair(PairCommand::Form(form(pair_id(x as u128), program(0), &[m, d], day(on))));
    assert_eq!(world.clone().execute(form_on(1, 60)), Err(DomainError::AuthorityRelation { manager: m, report: d }));
    world.execute(form_on(1, 40)).expect("no authority on day 40");
    // Both are now paired: a second formation is refused, and neither can withdraw.
    assert_eq!(world.clone().execute(form_on(2, 40)), Err(DomainError::AlreadyPaired(m)));
    let withdraw = Command::Program(ProgramCommand::Withdraw {
        program_id: program(0),
        person_id: d,
        withdrew_on: day(70),
        reason: LongText::default(),
    });
    assert_eq!(world.clone().execute(withdraw.clone()), Err(DomainError::InActivePair(d)));
    // When d leaves, the service dissolves the pair; then d may withdraw.
    let left = world
        .execute(Command::Person(PersonCommand::RecordLeft {
            person_id: d,
            left_on: day(65),
            reason: LeaveReason::Other,
        }))
        .expect("left");
    assert_eq!(left.len(), 2, "the departure and the clean-up dissolution: {left:?}");
    assert!(!world.pairs[&pair_id(1)].is_current());
    world.execute(withdraw).expect("withdrawn once unpaired");
}
