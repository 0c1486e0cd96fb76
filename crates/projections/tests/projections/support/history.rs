//! Generates a realistic history through the real command path: people in
//! a management tree with dated org changes (back-dated and future ones),
//! programs of pairs and of circles, enrolments, pairs formed under the
//! rules (the command service refuses what breaks them, and the generator
//! just tries someone else), sessions scheduled, held and cancelled,
//! feedback, goals with progress, pauses, dissolutions, withdrawals and
//! re-enrolments, leavers, a rejoin, an erasure and a closed program.

use futures::StreamExt;
use tandem_commands::{Command, CommandService};
use tandem_domain::pair::{Coaching, FormPair, GiveFeedback, HoldSession, PairCommand, SetGoal};
use tandem_domain::person::{PersonChanges, PersonCommand, RegisterPerson, UpdatePerson};
use tandem_domain::program::{EnrolParticipant, LaunchProgram, ProgramChanges, ProgramCommand};
use tandem_domain::values::{
    Activity, CadenceDays, DissolveReason, FormedBy, GroupFormat, LeaveReason, LevelGap, MatchScore, Minutes, Percent,
    Purpose, Rating, Ratings, Visibility,
};
use tandem_domain::{FeedbackId, GoalId, PairId, PersonId, ProgramId, SessionId};

use super::{Rng, at, day, email, exec, ext, level, lt, plus, st};

/// How big a history to generate.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    pub people: usize,
    /// Programs (pairs with gap 2, pairs with gap 3, circles, in turn; the
    /// last circles program closes at the end).
    pub programs: usize,
    /// Chance that a person enrols in a given program.
    pub enrol: f64,
    /// Most sessions per pair.
    pub max_sessions: u64,
    /// Pairs worked on concurrently.
    pub concurrency: usize,
}

/// What was generated.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub people: Vec<PersonId>,
    pub programs: Vec<ProgramId>,
    pub pairs: Vec<PairId>,
    /// Events committed.
    pub events: usize,
}

#[derive(Clone, Debug)]
struct Person {
    id: PersonId,
    level: i64,
}

const DEPARTMENTS: [&str; 4] = ["Engineering", "Sales", "Operations", "People"];

pub async fn generate(svc: &CommandService, seed: u64, scale: Scale) -> History {
    let mut rng = Rng::new(seed);
    let mut h = History::default();
    let count = |c: Option<tandem_commands::Committed>| c.map_or(0, |c| c.events.len());

    // People: four department heads, everyone else under someone more senior.
    let mut people: Vec<Person> = Vec::new();
    for i in 0..scale.people {
        let id = PersonId::new();
        let (manager, lvl, dept) = if i < DEPARTMENTS.len() {
            (None, 12, i)
        } else {
            let seniors: Vec<&Person> = people.iter().filter(|p| p.level >= 2).collect();
            let m = seniors[usize::try_from(rng.below(seniors.len() as u64)).expect("index")];
            let lo = (m.level - 3).max(1);
            let lvl = lo + i64::try_from(rng.below(u64::try_from(m.level - lo).expect("positive"))).expect("small");
            (Some(m.id), lvl, usize::try_from(rng.below(4)).expect("small"))
        };
        let hired_on = plus(day(2015, 1, 1), rng.below(2500));
        let cmd = Command::Person(PersonCommand::Register(RegisterPerson {
            person_id: id,
            external_id: ext(&format!("E{seed}-{i:05}")),
            name: st(&format!("Person {i:04} {}", ["Ng", "Okafor", "Silva", "Berg", "Kim"][i % 5])),
            email: email(&format!("p{i}.s{seed}@example.com")),
            department: st(DEPARTMENTS[dept]),
            title: st(&format!("Title L{lvl}")),
            level: level(lvl),
            manager,
            location: rng.chance(0.7).then(|| st(["Berlin", "Lagos", "Lisbon"][i % 3])),
            hired_on,
        }));
        h.events += count(exec(svc, cmd).await);
        people.push(Person { id, level: lvl });
        h.people.push(id);
    }

    // Dated org changes: promotions, moves to a department head (some
    // back-dated behind earlier changes, some in the future), a profile edit.
    let heads: Vec<PersonId> = people.iter().take(DEPARTMENTS.len()).map(|p| p.id).collect();
    for p in people.iter_mut().skip(DEPARTMENTS.len()) {
        if !rng.chance(0.25) {
            continue;
        }
        let effective_on = if rng.chance(0.2) { day(2030, 1, 1) } else { plus(day(2022, 1, 1), rng.below(700)) };
        let mut changes = PersonChanges::default();
        if rng.chance(0.5) && p.level < 11 {
            p.level += 1;
            changes.level = Some(level(p.level));
            changes.title = Some(st(&format!("Title L{}", p.level)));
        } else {
            changes.manager = Some(Some(*rng.pick(&heads)));
            let department: &&str = rng.pick(&DEPARTMENTS);
            changes.department = Some(st(department));
        }
        if rng.chance(0.2) {
            changes.location = Some(None);
        }
        let cmd = Command::Person(PersonCommand::Update(UpdatePerson { person_id: p.id, changes, effective_on }));
        h.events += count(exec(svc, cmd).await);
    }

    // Programs.
    let formats = [
        (GroupFormat::PAIRS, 2, Purpose::SkillBuilding),
        (GroupFormat::PAIRS, 3, Purpose::GoalSetting),
        (GroupFormat::circles(3, 4).expect("circles"), 4, Purpose::Onboarding),
    ];
    for (i, (format, gap, purpose)) in formats.iter().cycle().take(scale.programs.max(3)).enumerate() {
        let id = ProgramId::new();
        let starts_on = plus(day(2023, 1, 1), 30 * (i % 3) as u64);
        let cmd = Command::Program(ProgramCommand::Launch(LaunchProgram {
            program_id: id,
            name: st(&format!("Program {i}")),
            description: lt("Peers coaching peers."),
            purpose: *purpose,
            format: *format,
            max_level_gap: LevelGap::parse("gap", *gap).expect("gap"),
            cadence_days: CadenceDays::parse("cadence", 14).expect("cadence"),
            starts_on,
            ends_on: Some(day(2024, 12, 31)),
        }));
        h.events += count(exec(svc, cmd).await);
        h.programs.push(id);
    }
    let update = Command::Program(ProgramCommand::Update {
        program_id: h.programs[0],
        changes: ProgramChanges { cadence_days: Some(CadenceDays::parse("c", 10).expect("c")), ..Default::default() },
    });
    h.events += count(exec(svc, update).await);

    // Enrolments, then pairs formed among the enrolled.
    let mut pair_plans: Vec<(PairId, ProgramId, Vec<PersonId>, chrono::NaiveDate, u64)> = Vec::new();
    for (pi, program) in h.programs.clone().into_iter().enumerate() {
        let starts_on = plus(day(2023, 1, 1), 30 * (pi % 3) as u64);
        let mut enrolled: Vec<(Person, chrono::NaiveDate)> = Vec::new();
        for p in people.iter().skip(DEPARTMENTS.len()) {
            if !rng.chance(scale.enrol) {
                continue;
            }
            let enrolled_on = plus(starts_on, rng.below(60));
            let cmd = Command::Program(ProgramCommand::Enrol(EnrolParticipant {
                program_id: program,
                person_id: p.id,
                enrolled_on,
                interests: vec![st("listening"), st("feedback")],
                skills: vec![st(["rust", "sales", "ops"][usize::try_from(rng.below(3)).expect("small")])],
                wants_to_work_on: lt("Giving clearer feedback."),
            }));
            if let Some(c) = exec(svc, cmd).await {
                h.events += c.events.len();
                enrolled.push((p.clone(), enrolled_on));
            }
        }
        rng.shuffle(&mut enrolled);
        let (gap, size) = match pi % 3 {
            0 => (2, 2),
            1 => (3, 2),
            _ => (4, 3),
        };
        while enrolled.len() >= size {
            let (a, a_on) = enrolled.remove(0);
            let mut group = vec![(a.clone(), a_on)];
            let mut i = 0;
            while group.len() < size && i < enrolled.len() {
                let (c, _) = &enrolled[i];
                let lo = group.iter().map(|(g, _)| g.level).min().unwrap_or(c.level).min(c.level);
                let hi = group.iter().map(|(g, _)| g.level).max().unwrap_or(c.level).max(c.level);
                if hi - lo <= gap {
                    group.push(enrolled.remove(i));
                } else {
                    i += 1;
                }
            }
            if group.len() < size {
                continue;
            }
            let formed_on = plus(group.iter().map(|(_, d)| *d).max().expect("members"), rng.below(30));
            let pair_id = PairId::new();
            let members: Vec<PersonId> = group.iter().map(|(p, _)| p.id).collect();
            let suggested = rng.chance(0.5);
            let cmd = Command::Pair(PairCommand::Form(FormPair {
                pair_id,
                program_id: program,
                members: members.clone(),
                formed_by: if suggested { FormedBy::Suggestion } else { FormedBy::Admin },
                match_score: suggested
                    .then(|| MatchScore::parse("s", 0.5 + rng.below(50) as f64 / 100.0).expect("score")),
                formed_on,
            }));
            match exec(svc, cmd).await {
                Some(c) => {
                    h.events += c.events.len();
                    h.pairs.push(pair_id);
                    pair_plans.push((pair_id, program, members, formed_on, rng.next_u64()));
                }
                // Refused (e.g. one manages another): put the others back.
                None => enrolled.extend(group.into_iter().skip(1)),
            }
        }
    }

    // What happens inside the pairs, several pairs at a time.
    let tasks = pair_plans.into_iter().map(|(pair_id, program, members, formed_on, seed)| {
        let svc = svc.clone();
        async move { pair_life(&svc, pair_id, program, &members, formed_on, seed, scale.max_sessions).await }
    });
    let counts: Vec<usize> = futures::stream::iter(tasks).buffer_unordered(scale.concurrency.max(1)).collect().await;
    h.events += counts.into_iter().sum::<usize>();

    // Leavers (their pairs dissolve), one rejoins; one person is erased.
    let candidates: Vec<PersonId> = people.iter().skip(DEPARTMENTS.len()).map(|p| p.id).collect();
    let mut leavers = Vec::new();
    for _ in 0..(scale.people / 30).max(2) {
        let id = *rng.pick(&candidates);
        let cmd = Command::Person(PersonCommand::RecordLeft {
            person_id: id,
            left_on: plus(day(2024, 1, 1), rng.below(120)),
            reason: if rng.chance(0.5) { LeaveReason::Voluntary } else { LeaveReason::Involuntary },
        });
        if let Some(c) = exec(svc, cmd).await {
            h.events += c.events.len();
            leavers.push(id);
        }
    }
    if let Some(id) = leavers.first() {
        let cmd = Command::Person(PersonCommand::Rejoin { person_id: *id, rejoined_on: day(2024, 9, 1) });
        h.events += count(exec(svc, cmd).await);
    }
    let erased = *rng.pick(&candidates);
    h.events += count(exec(svc, Command::Person(PersonCommand::Erase { person_id: erased })).await);

    // The last circles program closes; its pairs dissolve.
    let last_circles = (h.programs.len() - 1) / 3 * 3 + 2;
    let last_circles = if last_circles < h.programs.len() { last_circles } else { last_circles - 3 };
    let close = Command::Program(ProgramCommand::Close {
        program_id: h.programs[last_circles],
        closed_on: day(2024, 6, 30),
        reason: lt("Cohort finished."),
    });
    h.events += count(exec(svc, close).await);
    h
}

/// One pair's life: sessions, feedback, a goal, maybe a pause, maybe a
/// dissolution followed by a withdrawal and a re-enrolment.
async fn pair_life(
    svc: &CommandService,
    pair_id: PairId,
    program: ProgramId,
    members: &[PersonId],
    formed_on: chrono::NaiveDate,
    seed: u64,
    max_sessions: u64,
) -> usize {
    let mut rng = Rng::new(seed);
    let mut events = 0;
    let (a, b) = (members[0], members[1]);
    let sessions = 1 + rng.below(max_sessions);
    for k in 0..sessions {
        let date = plus(formed_on, 3 + 12 * k + rng.below(5));
        let session_id = SessionId::new();
        if rng.chance(0.3) {
            let cmd = Command::Pair(PairCommand::ScheduleSession {
                pair_id,
                session_id,
                by: a,
                scheduled_for: at(date, 10),
                focus: Some(st("Planned focus")),
            });
            events += exec(svc, cmd).await.map_or(0, |c| c.events.len());
            if rng.chance(0.25) {
                let cmd = Command::Pair(PairCommand::CancelSession { pair_id, session_id, by: b, reason: lt("Sick") });
                events += exec(svc, cmd).await.map_or(0, |c| c.events.len());
                continue;
            }
        }
        let mut activities: Vec<Activity> = Activity::ALL.iter().copied().filter(|_| rng.chance(0.3)).collect();
        if activities.is_empty() {
            activities.push(Activity::Other);
        }
        let mut coaching = vec![Coaching { coach: a, coachee: b }];
        if rng.chance(0.5) {
            coaching.push(Coaching { coach: b, coachee: a });
        }
        let cmd = Command::Pair(PairCommand::HoldSession {
            pair_id,
            session: HoldSession {
                session_id,
                by: if k % 2 == 0 { a } else { b },
                held_at: at(date, 9 + u32::try_from(rng.below(8)).expect("small")),
                minutes: Minutes::parse("m", 30 + i64::try_from(rng.below(60)).expect("small")).expect("minutes"),
                focus: st(&format!("Session {k}")),
                activities,
                coaching,
                notes: lt("Went well."),
            },
        });
        let held = exec(svc, cmd).await;
        events += held.as_ref().map_or(0, |c| c.events.len());
        if held.is_some() && rng.chance(0.7) {
            let r = |rng: &mut Rng| {
                rng.chance(0.8)
                    .then(|| Rating::parse("r", 1 + i64::try_from(rng.below(5)).expect("small")).expect("rating"))
            };
            let ratings = Ratings {
                empathy: r(&mut rng),
                active_listening: r(&mut rng),
                curiosity: r(&mut rng),
                patience: r(&mut rng),
                growth_mindset: r(&mut rng),
            };
            let visibility = *rng.pick(&[
                Visibility::Private,
                Visibility::Recipient,
                Visibility::Coordinators,
                Visibility::RecipientAndCoordinators,
            ]);
            let (from, to) = if rng.chance(0.5) { (a, b) } else { (b, a) };
            let cmd = Command::Pair(PairCommand::GiveFeedback {
                pair_id,
                feedback: GiveFeedback {
                    feedback_id: FeedbackId::new(),
                    from,
                    to,
                    session_id: Some(session_id),
                    ratings,
                    strengths: lt("Asks good questions."),
                    improvements: lt("Let silences be."),
                    visibility,
                    given_at: at(date, 18),
                },
            });
            events += exec(svc, cmd).await.map_or(0, |c| c.events.len());
        }
    }
    if rng.chance(0.8) {
        let goal_id = GoalId::new();
        let set_on = plus(formed_on, 2);
        let cmd = Command::Pair(PairCommand::SetGoal {
            pair_id,
            goal: SetGoal {
                goal_id,
                owner: a,
                title: st("Run a retro"),
                description: lt("Facilitate the team retro."),
                due_on: Some(plus(set_on, 60)),
                accountability_partner: Some(b),
                set_on,
            },
        });
        events += exec(svc, cmd).await.map_or(0, |c| c.events.len());
        for step in 1..=rng.below(4) {
            let cmd = Command::Pair(PairCommand::RecordGoalProgress {
                pair_id,
                goal_id,
                by: if step % 2 == 0 { b } else { a },
                percent: rng
                    .chance(0.8)
                    .then(|| Percent::parse("p", i64::try_from(step * 25).expect("small")).expect("percent")),
                note: lt("Progress."),
                recorded_on: plus(set_on, 10 * step),
            });
            events += exec(svc, cmd).await.map_or(0, |c| c.events.len());
        }
        let outcome = rng.below(10);
        if outcome < 5 {
            let cmd = Command::Pair(PairCommand::CompleteGoal {
                pair_id,
                goal_id,
                by: a,
                note: lt("Done."),
                completed_on: plus(set_on, 45 + rng.below(30)),
            });
            events += exec(svc, cmd).await.map_or(0, |c| c.events.len());
        } else if outcome < 7 {
            let cmd = Command::Pair(PairCommand::AbandonGoal {
                pair_id,
                goal_id,
                by: a,
                reason: lt("Changed teams."),
                abandoned_on: plus(set_on, 30),
            });
            events += exec(svc, cmd).await.map_or(0, |c| c.events.len());
        }
    }
    if rng.chance(0.15) {
        let paused_on = plus(formed_on, 100);
        let cmd = Command::Pair(PairCommand::Pause {
            pair_id,
            reason: lt("Holidays"),
            paused_on,
            until: Some(plus(paused_on, 14)),
        });
        events += exec(svc, cmd).await.map_or(0, |c| c.events.len());
        if rng.chance(0.6) {
            let cmd = Command::Pair(PairCommand::Resume { pair_id, resumed_on: plus(paused_on, 14) });
            events += exec(svc, cmd).await.map_or(0, |c| c.events.len());
        }
    }
    if rng.chance(0.25) {
        let dissolved_on = plus(formed_on, 120);
        let reason = if rng.chance(0.5) { DissolveReason::Mismatch } else { DissolveReason::Completed };
        let cmd = Command::Pair(PairCommand::Dissolve { pair_id, reason, note: lt("Ended."), dissolved_on });
        if let Some(c) = exec(svc, cmd).await {
            events += c.events.len();
            if rng.chance(0.5) {
                let cmd = Command::Program(ProgramCommand::Withdraw {
                    program_id: program,
                    person_id: b,
                    withdrew_on: plus(dissolved_on, 1),
                    reason: lt("Busy."),
                });
                if let Some(c) = exec(svc, cmd).await {
                    events += c.events.len();
                    if rng.chance(0.5) {
                        let cmd = Command::Program(ProgramCommand::Enrol(EnrolParticipant {
                            program_id: program,
                            person_id: b,
                            enrolled_on: plus(dissolved_on, 40),
                            interests: vec![],
                            skills: vec![],
                            wants_to_work_on: lt("Second round."),
                        }));
                        events += exec(svc, cmd).await.map_or(0, |c| c.events.len());
                    }
                }
            }
        }
    }
    events
}

/// A small world for concurrency tests: `pairs` pairs of two peers (same
/// level, no managers) in one program of pairs. Returns the program and the
/// pairs with their members.
pub async fn pairs_world(svc: &CommandService, pairs: usize) -> (ProgramId, Vec<(PairId, PersonId, PersonId)>) {
    let program = ProgramId::new();
    let launch = Command::Program(ProgramCommand::Launch(LaunchProgram {
        program_id: program,
        name: st("Race program"),
        description: lt(""),
        purpose: Purpose::Custom,
        format: GroupFormat::PAIRS,
        max_level_gap: LevelGap::parse("gap", 1).expect("gap"),
        cadence_days: CadenceDays::parse("cadence", 7).expect("cadence"),
        starts_on: day(2024, 1, 1),
        ends_on: None,
    }));
    exec(svc, launch).await.expect("launch");
    let mut out = Vec::new();
    for i in 0..pairs {
        let mut members = Vec::new();
        for j in 0..2 {
            let id = PersonId::new();
            let register = Command::Person(PersonCommand::Register(RegisterPerson {
                person_id: id,
                external_id: ext(&format!("R-{i}-{j}-{}", id.as_uuid().simple())),
                name: st(&format!("Racer {i} {j}")),
                email: email(&format!("racer{i}.{j}.{}@example.com", id.as_uuid().simple())),
                department: st("Engineering"),
                title: st("Engineer"),
                level: level(5),
                manager: None,
                location: None,
                hired_on: day(2020, 1, 1),
            }));
            exec(svc, register).await.expect("register");
            let enrol = Command::Program(ProgramCommand::Enrol(EnrolParticipant {
                program_id: program,
                person_id: id,
                enrolled_on: day(2024, 1, 2),
                interests: vec![],
                skills: vec![],
                wants_to_work_on: lt(""),
            }));
            exec(svc, enrol).await.expect("enrol");
            members.push(id);
        }
        let pair_id = PairId::new();
        let form = Command::Pair(PairCommand::Form(FormPair {
            pair_id,
            program_id: program,
            members: members.clone(),
            formed_by: FormedBy::SelfSelected,
            match_score: None,
            formed_on: day(2024, 1, 3),
        }));
        exec(svc, form).await.expect("form");
        out.push((pair_id, members[0], members[1]));
    }
    (program, out)
}

/// Holds a session in a pair (and has one member give the other feedback
/// on it), as a steady stream of writes for the race tests.
pub async fn hold_session(svc: &CommandService, pair: PairId, a: PersonId, b: PersonId, n: u64) -> usize {
    let session_id = SessionId::new();
    let date = plus(day(2024, 1, 5), n % 300);
    let hold = Command::Pair(PairCommand::HoldSession {
        pair_id: pair,
        session: HoldSession {
            session_id,
            by: a,
            held_at: at(date, 10),
            minutes: Minutes::parse("m", 45).expect("minutes"),
            focus: st("Race"),
            activities: vec![Activity::RolePlay],
            coaching: vec![Coaching { coach: a, coachee: b }],
            notes: lt(""),
        },
    });
    let mut events = exec(svc, hold).await.expect("hold").events.len();
    if n.is_multiple_of(3) {
        let feedback = Command::Pair(PairCommand::GiveFeedback {
            pair_id: pair,
            feedback: GiveFeedback {
                feedback_id: FeedbackId::new(),
                from: b,
                to: a,
                session_id: Some(session_id),
                ratings: Ratings::default(),
                strengths: lt("Clear."),
                improvements: lt(""),
                visibility: Visibility::Recipient,
                given_at: at(date, 12),
            },
        });
        events += exec(svc, feedback).await.expect("feedback").events.len();
    }
    events
}
