//! The plan: every command of the demo, decided up front from the seed.
//!
//! Planning is pure and sequential, so a seed always gives the same plan
//! (only the UUIDs differ). It simulates the two programs day by day with
//! the rules of the domain in mind — enrolment before formation, no
//! authority relation and a bounded level gap on the formation date, one
//! current pair per person and program, nothing in a pair after it ends or
//! after a member leaves — so that the command service accepts what it is
//! sent. Each pair or circle becomes a *track*: its commands in date order.
//!
//! The result is cut into weekly [`Window`]s for [`crate::exec`].

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use tandem_commands::Command;
use tandem_domain::pair::{self, Coaching, FormPair, HoldSession, PairCommand};
use tandem_domain::program::{EnrolParticipant, LaunchProgram, ProgramCommand};
use tandem_domain::values::{
    Activity, CadenceDays, DissolveReason, FormedBy, GroupFormat, LevelGap, LongText, MatchScore, Minutes, Percent,
    Purpose, Rating, Ratings, ShortText, Visibility,
};
use tandem_domain::{FeedbackId, GoalId, PairId, PersonId, ProgramId, SessionId};

use crate::DemoOptions;
use crate::dates::{Period, add_days, days_between};
use crate::error::DemoError;
use crate::org::{Org, Role};
use crate::rng::Rng;
use crate::words::{self, DEPARTMENTS};

/// What happens in one week, in the order it is sent.
#[derive(Debug, Default)]
pub(crate) struct Window {
    /// Dated org changes; independent of each other.
    pub org: Vec<Command>,
    /// Enrolments, one date-ordered list per program.
    pub enrolments: Vec<Vec<Command>>,
    /// The week's commands of each track, in date order.
    pub tracks: Vec<(usize, Vec<Command>)>,
    /// Withdrawals and leaves, in date order, after the tracks: a leave
    /// dissolves the leaver's pairs, whose own commands all come earlier.
    pub exits: Vec<Command>,
}

impl Window {
    pub(crate) fn len(&self) -> usize {
        self.org.len()
            + self.enrolments.iter().map(Vec::len).sum::<usize>()
            + self.tracks.iter().map(|(_, c)| c.len()).sum::<usize>()
            + self.exits.len()
    }
}

/// The whole demo.
#[derive(Debug)]
pub(crate) struct Schedule {
    /// Registrations, layer by layer from the CEO down: a layer may run
    /// concurrently once the one above it is in.
    pub layers: Vec<Vec<Command>>,
    pub launches: Vec<Command>,
    pub windows: Vec<Window>,
    /// How many tracks (pairs and circles) the windows refer to.
    pub tracks: usize,
}

impl Schedule {
    /// Every command in an order that is valid when sent one at a time.
    pub(crate) fn into_commands(self) -> Vec<Command> {
        let mut out: Vec<Command> = self.layers.into_iter().flatten().collect();
        out.extend(self.launches);
        for w in self.windows {
            out.extend(w.org);
            out.extend(w.enrolments.into_iter().flatten());
            out.extend(w.tracks.into_iter().flat_map(|(_, c)| c));
            out.extend(w.exits);
        }
        out
    }
}

/// Plans the demo for `opts`.
pub(crate) fn plan(opts: &DemoOptions) -> Result<Schedule, DemoError> {
    let period = Period::new(opts.today, opts.months)?;
    let mut root = Rng::new(opts.seed);
    let org = Org::build(&mut root.fork(), opts.people, &period, opts.months);
    let n = org.people.len();
    let mut planner = Planner { org: &org, period, tracks: Vec::new(), exits: Vec::new() };
    let mut buddies = ProgramSim::new(Kind::Buddies, n);
    let mut circles = ProgramSim::new(Kind::Circles, n);
    planner.buddies(&mut root.fork(), &mut buddies)?;
    planner.circles(&mut root.fork(), &mut circles)?;
    let Planner { tracks, mut exits, .. } = planner;

    let depth = org.people.iter().map(|p| p.depth).max().unwrap_or(0);
    let mut layers: Vec<Vec<Command>> = vec![Vec::new(); depth + 1];
    for (i, p) in org.people.iter().enumerate() {
        layers[p.depth].push(org.register(i)?);
    }
    let launches = vec![buddies.launch(&period)?, circles.launch(&period)?];

    let mut windows: Vec<Window> = (0..period.windows()).map(|_| Window::default()).collect();
    let last = windows.len() - 1;
    let w = |d: NaiveDate| period.window_of(d).min(last);
    for (d, c) in org.updates()? {
        windows[w(d)].org.push(c);
    }
    for (pi, prog) in [&mut buddies, &mut circles].into_iter().enumerate() {
        // Stable: same-day enrolments keep planning order.
        prog.enrolments.sort_by_key(|(d, _)| *d);
        for (d, c) in prog.enrolments.drain(..) {
            let win = &mut windows[w(d)];
            if win.enrolments.len() <= pi {
                win.enrolments.resize_with(pi + 1, Vec::new);
            }
            win.enrolments[pi].push(c);
        }
    }
    exits.extend(org.leaves().into_iter().map(|(d, c)| (d, 1, c)));
    exits.sort_by_key(|(d, prio, _)| (*d, *prio));
    for (d, _, c) in exits {
        windows[w(d)].exits.push(c);
    }
    let track_count = tracks.len();
    for (t, steps) in tracks.into_iter().enumerate() {
        for (d, _, c) in steps {
            let win = &mut windows[w(d)];
            match win.tracks.last_mut() {
                Some((k, cmds)) if *k == t => cmds.push(c),
                _ => win.tracks.push((t, vec![c])),
            }
        }
    }
    Ok(Schedule { layers, launches, windows, tracks: track_count })
}

// Order of same-day commands inside a track.
const PRIO_FORM: u8 = 0;
const PRIO_RESUME: u8 = 1;
const PRIO_SCHEDULE: u8 = 2;
const PRIO_CANCEL: u8 = 3;
const PRIO_HOLD: u8 = 4;
const PRIO_FEEDBACK: u8 = 5;
const PRIO_GOAL: u8 = 6;
const PRIO_PROGRESS: u8 = 7;
const PRIO_GOAL_CLOSE: u8 = 8;
const PRIO_PAUSE: u8 = 9;
const PRIO_DISSOLVE: u8 = 10;

fn short(s: &str) -> Result<ShortText, DemoError> {
    Ok(ShortText::parse("text", s)?)
}

fn long(s: &str) -> Result<LongText, DemoError> {
    Ok(LongText::parse("text", s)?)
}

fn shorts(items: &[&str]) -> Result<Vec<ShortText>, DemoError> {
    items.iter().map(|s| short(s)).collect()
}

/// `d` at `minute` minutes past midnight, UTC.
fn at(d: NaiveDate, minute: i64) -> DateTime<Utc> {
    let midnight = d.and_time(NaiveTime::MIN).and_utc();
    midnight.checked_add_signed(TimeDelta::minutes(minute)).unwrap_or(midnight)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Onboarding buddies: a new joiner and an experienced colleague.
    Buddies,
    /// Skill circles of three to five.
    Circles,
}

/// One program as the planner tracks it.
struct ProgramSim {
    id: ProgramId,
    kind: Kind,
    cadence: i64,
    gap: u8,
    enrolled: Vec<Option<NaiveDate>>,
    interests: Vec<Vec<&'static str>>,
    /// Earliest day a person may join a new pair: the start of the window
    /// after their last pair ended (`NaiveDate::MAX` while it runs).
    free_from: Vec<NaiveDate>,
    /// The day their last pair ended (`MAX` while it runs, `MIN` if never).
    ended_on: Vec<NaiveDate>,
    withdrawn: Vec<bool>,
    enrolments: Vec<(NaiveDate, Command)>,
}

impl ProgramSim {
    fn new(kind: Kind, n: usize) -> Self {
        let (cadence, gap) = match kind {
            Kind::Buddies => (14, 2),
            Kind::Circles => (21, 3),
        };
        Self {
            id: ProgramId::new(),
            kind,
            cadence,
            gap,
            enrolled: vec![None; n],
            interests: vec![Vec::new(); n],
            free_from: vec![NaiveDate::MIN; n],
            ended_on: vec![NaiveDate::MIN; n],
            withdrawn: vec![false; n],
            enrolments: Vec::new(),
        }
    }

    fn launch(&self, period: &Period) -> Result<Command, DemoError> {
        let (name, description, purpose, format) = match self.kind {
            Kind::Buddies => (
                "Onboarding Buddies",
                "Every new joiner is paired with an experienced colleague from another team for their first three months.",
                Purpose::Onboarding,
                GroupFormat::PAIRS,
            ),
            Kind::Circles => (
                "Skills Circles",
                "Small peer circles that practise one coaching skill at a time.",
                Purpose::SkillBuilding,
                GroupFormat::circles(3, 5)?,
            ),
        };
        Ok(Command::Program(ProgramCommand::Launch(LaunchProgram {
            program_id: self.id,
            name: short(name)?,
            description: long(description)?,
            purpose,
            format,
            max_level_gap: LevelGap::parse("maxLevelGap", i64::from(self.gap))?,
            cadence_days: CadenceDays::parse("cadenceDays", self.cadence)?,
            starts_on: period.launch,
            ends_on: None,
        })))
    }
}

/// How a track ended within the period.
struct TrackEnd {
    /// `None` while it is still running.
    on: Option<NaiveDate>,
    /// `None` when it ended because a member left (or is still running).
    reason: Option<DissolveReason>,
}

type Step = (NaiveDate, u8, Command);

struct Planner<'a> {
    org: &'a Org,
    period: Period,
    tracks: Vec<Vec<Step>>,
    /// Withdrawals (priority 0); leaves are added at the end (priority 1).
    exits: Vec<Step>,
}

impl Planner<'_> {
    fn enrol(&mut self, p: &mut ProgramSim, rng: &mut Rng, i: usize, on: NaiveDate) -> Result<(), DemoError> {
        let person = &self.org.people[i];
        let interests = rng.sample(words::INTERESTS, 1, 4);
        let dept_skills: &[&str] = person.facts_on(on).dept.and_then(|d| DEPARTMENTS.get(d)).map_or(&[], |d| d.skills);
        let skills = rng.sample(dept_skills, 1, 3);
        let wants = *rng.pick(words::WANTS_TO_WORK_ON);
        p.enrolments.push((
            on,
            Command::Program(ProgramCommand::Enrol(EnrolParticipant {
                program_id: p.id,
                person_id: person.id,
                enrolled_on: on,
                interests: shorts(&interests)?,
                skills: shorts(&skills)?,
                wants_to_work_on: long(wants)?,
            })),
        ));
        p.enrolled[i] = Some(on);
        p.interests[i] = interests;
        Ok(())
    }

    /// Withdraws `i` on `on` when the rules allow it then; otherwise nothing.
    fn withdraw(&mut self, p: &mut ProgramSim, rng: &mut Rng, i: usize, on: NaiveDate) -> Result<(), DemoError> {
        let Some(enrolled) = p.enrolled[i] else { return Ok(()) };
        let person = &self.org.people[i];
        if p.withdrawn[i] || on < enrolled || on < p.ended_on[i] || on > self.period.last_day() || !person.around(on, 0)
        {
            return Ok(());
        }
        p.withdrawn[i] = true;
        self.exits.push((
            on,
            0,
            Command::Program(ProgramCommand::Withdraw {
                program_id: p.id,
                person_id: person.id,
                withdrew_on: on,
                reason: long(rng.word(words::WITHDRAW_REASONS))?,
            }),
        ));
        Ok(())
    }

    fn release(&self, p: &mut ProgramSim, members: &[usize], end: &TrackEnd) {
        for &m in members {
            match end.on {
                Some(d) => {
                    p.ended_on[m] = d;
                    p.free_from[m] = self.period.next_window_start(d);
                }
                None => {
                    p.ended_on[m] = NaiveDate::MAX;
                    p.free_from[m] = NaiveDate::MAX;
                }
            }
        }
    }

    fn shared_interests(p: &ProgramSim, a: usize, b: usize) -> usize {
        p.interests[a].iter().filter(|x| p.interests[b].contains(x)).count()
    }

    /// How well a buddy fits a newcomer: shared interests, same office,
    /// same department, close levels.
    fn buddy_score(&self, p: &ProgramSim, a: usize, b: usize, d: NaiveDate) -> f64 {
        let (pa, pb) = (&self.org.people[a], &self.org.people[b]);
        let (fa, fb) = (pa.facts_on(d), pb.facts_on(d));
        let mut s = 0.5 + 0.1 * Self::shared_interests(p, a, b).min(3) as f64;
        if pa.location.is_some() && pa.location == pb.location {
            s += 0.1;
        }
        if fa.dept == fb.dept {
            s += 0.08;
        }
        s -= 0.08 * f64::from(fa.level.abs_diff(fb.level));
        round2(s.clamp(0.05, 0.99))
    }

    /// How well a circle fits: shared interests and mixed departments.
    fn circle_score(&self, p: &ProgramSim, members: &[usize], d: NaiveDate) -> f64 {
        let mut total = 0.0;
        let mut pairs = 0.0;
        for (x, &a) in members.iter().enumerate() {
            for &b in &members[x + 1..] {
                let mut s = 0.45 + 0.12 * Self::shared_interests(p, a, b).min(3) as f64;
                if self.org.facts(a, d).dept != self.org.facts(b, d).dept {
                    s += 0.1;
                }
                s -= 0.04 * f64::from(self.org.level(a, d).abs_diff(self.org.level(b, d)));
                total += s;
                pairs += 1.0;
            }
        }
        round2((total / f64::max(pairs, 1.0)).clamp(0.05, 0.99))
    }

    fn formed_by(rng: &mut Rng, score: f64) -> (FormedBy, Option<f64>) {
        if rng.chance(0.65) { (FormedBy::Suggestion, Some(score)) } else { (FormedBy::Admin, None) }
    }

    /// Onboarding: new joiners enrol as they arrive and are matched with an
    /// enrolled colleague of more than a year's tenure, in date order,
    /// retrying weekly while nobody fits.
    fn buddies(&mut self, rng: &mut Rng, p: &mut ProgramSim) -> Result<(), DemoError> {
        let org = self.org;
        let period = self.period;
        let newcomer_since = add_days(period.launch, -120);
        let mut attempts: BinaryHeap<Reverse<(NaiveDate, usize, u8)>> = BinaryHeap::new();
        let mut buddies = Vec::new();
        for (i, person) in org.people.iter().enumerate() {
            if person.role == Role::Ic && person.hired_on >= newcomer_since {
                if !rng.chance(0.9) {
                    continue;
                }
                let on = add_days(person.hired_on.max(period.launch), rng.range(0, 3));
                if add_days(on, 7) > period.last_day() || !person.around(on, 14) {
                    continue;
                }
                self.enrol(p, rng, i, on)?;
                attempts.push(Reverse((add_days(on, rng.range(2, 6)), i, 0)));
            } else if days_between(person.hired_on, period.launch) > 365
                && matches!(person.role, Role::Ic | Role::Manager)
                && (2..=7).contains(&person.initial.level)
            {
                let share = if person.role == Role::Ic { 0.45 } else { 0.25 };
                if !rng.chance(share) {
                    continue;
                }
                let on = add_days(period.launch, rng.range(0, 7));
                if !person.around(on, 14) {
                    continue;
                }
                self.enrol(p, rng, i, on)?;
                buddies.push(i);
            }
        }
        while let Some(Reverse((d, i, tries))) = attempts.pop() {
            if p.withdrawn[i] || p.free_from[i] > d {
                continue;
            }
            if add_days(d, 3) > period.last_day() || !org.people[i].around(d, 14) {
                continue;
            }
            let level = org.level(i, d);
            let candidates: Vec<usize> = buddies
                .iter()
                .copied()
                .filter(|&b| {
                    p.enrolled[b].is_some_and(|e| e <= d)
                        && !p.withdrawn[b]
                        && p.free_from[b] <= d
                        && org.people[b].around(d, 14)
                        && org.level(b, d).abs_diff(level) <= p.gap
                        && !org.related(i, b, d)
                })
                .collect();
            if candidates.is_empty() {
                if tries < 5 {
                    attempts.push(Reverse((add_days(d, 7), i, tries + 1)));
                } else if rng.chance(0.5) {
                    let on = add_days(d, rng.range(1, 5));
                    self.withdraw(p, rng, i, on)?;
                }
                continue;
            }
            let mut scored: Vec<(f64, usize)> = candidates.iter().map(|&b| (self.buddy_score(p, i, b, d), b)).collect();
            scored.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
            let (score, buddy) = scored[rng.index(scored.len().min(3))];
            let (formed_by, score) = Self::formed_by(rng, score);
            let members = [i, buddy];
            let end = self.track(rng, p, &members, d, formed_by, score)?;
            self.release(p, &members, &end);
            if let (Some(e), Some(DissolveReason::Mismatch)) = (end.on, end.reason) {
                if rng.chance(0.6) {
                    let again = p.free_from[i].max(add_days(e, rng.range(3, 10)));
                    attempts.push(Reverse((again, i, 0)));
                } else {
                    let on = add_days(e, rng.range(1, 7));
                    self.withdraw(p, rng, i, on)?;
                }
            }
        }
        Ok(())
    }

    /// Skill circles: about a third of the organisation enrols; every four
    /// weeks the free participants are grouped by level into circles of
    /// three to five from mixed departments.
    fn circles(&mut self, rng: &mut Rng, p: &mut ProgramSim) -> Result<(), DemoError> {
        let org = self.org;
        let period = self.period;
        for (i, person) in org.people.iter().enumerate() {
            if matches!(person.role, Role::Ceo | Role::Vp) {
                continue;
            }
            let on = if person.hired_on < period.launch {
                let share = if person.role == Role::Ic { 0.3 } else { 0.35 };
                if !rng.chance(share) {
                    continue;
                }
                add_days(period.launch, rng.range(0, 14))
            } else {
                if !rng.chance(0.2) {
                    continue;
                }
                add_days(person.hired_on, rng.range(21, 45))
            };
            if add_days(on, 14) > period.last_day() || !person.around(on, 21) {
                continue;
            }
            self.enrol(p, rng, i, on)?;
        }
        let n = org.people.len();
        let mut unplaced = vec![0_u8; n];
        let mut d = add_days(period.launch, 14 + rng.range(0, 4));
        while add_days(d, 7) <= period.last_day() {
            let mut keyed: Vec<(u8, u64, usize)> = (0..n)
                .filter(|&i| {
                    p.enrolled[i].is_some_and(|e| e <= d)
                        && !p.withdrawn[i]
                        && p.free_from[i] <= d
                        && org.people[i].around(d, 21)
                })
                .map(|i| (org.level(i, d), rng.next_u64(), i))
                .collect();
            keyed.sort_unstable();
            let pool: Vec<usize> = keyed.into_iter().map(|(_, _, i)| i).collect();
            let mut used = vec![false; pool.len()];
            for s in 0..pool.len() {
                if used[s] {
                    continue;
                }
                let target = [3, 4, 5][rng.weighted(&[3, 5, 3])];
                let mut group = vec![pool[s]];
                let mut picked = vec![s];
                // First pass: only departments not in the circle yet.
                for pass in 0..2 {
                    for c in s + 1..pool.len() {
                        if group.len() == target {
                            break;
                        }
                        let cand = pool[c];
                        if used[c] || group.contains(&cand) {
                            continue;
                        }
                        let levels = group.iter().map(|&g| org.level(g, d)).chain([org.level(cand, d)]);
                        let (lo, hi) = levels.fold((u8::MAX, u8::MIN), |(lo, hi), l| (lo.min(l), hi.max(l)));
                        if hi - lo > p.gap {
                            continue;
                        }
                        let dept = org.facts(cand, d).dept;
                        if pass == 0 && group.iter().any(|&g| org.facts(g, d).dept == dept) {
                            continue;
                        }
                        if group.iter().any(|&g| org.related(g, cand, d)) {
                            continue;
                        }
                        group.push(cand);
                        picked.push(c);
                    }
                }
                if group.len() < 3 {
                    continue;
                }
                for &k in &picked {
                    used[k] = true;
                }
                let score = self.circle_score(p, &group, d);
                let (formed_by, score) = Self::formed_by(rng, score);
                let end = self.track(rng, p, &group, d, formed_by, score)?;
                self.release(p, &group, &end);
                if let (Some(e), Some(DissolveReason::Mismatch)) = (end.on, end.reason)
                    && rng.chance(0.4)
                {
                    let who = *rng.pick(&group);
                    let on = add_days(e, rng.range(1, 7));
                    self.withdraw(p, rng, who, on)?;
                }
            }
            for (k, &i) in pool.iter().enumerate() {
                if used[k] {
                    unplaced[i] = 0;
                    continue;
                }
                unplaced[i] = unplaced[i].saturating_add(1);
                if unplaced[i] >= 2 && rng.chance(0.4) {
                    let on = add_days(d, rng.range(1, 10));
                    self.withdraw(p, rng, i, on)?;
                }
            }
            d = add_days(d, 28);
        }
        Ok(())
    }

    /// Plans the life of one pair or circle from its formation: sessions at
    /// about the program's cadence (some scheduled first, a few cancelled),
    /// feedback after many of them, goals with progress and an outcome, a
    /// pause now and then, and its end — dissolved, ended by a member
    /// leaving (the command service dissolves it then), or still running.
    #[expect(clippy::too_many_lines, reason = "one timeline reads best top to bottom")]
    fn track(
        &mut self,
        rng: &mut Rng,
        p: &ProgramSim,
        members: &[usize],
        formed_on: NaiveDate,
        formed_by: FormedBy,
        score: Option<f64>,
    ) -> Result<TrackEnd, DemoError> {
        let org = self.org;
        let ids: Vec<PersonId> = members.iter().map(|&m| org.people[m].id).collect();
        let pair_id = PairId::new();
        let leave = members.iter().filter_map(|&m| org.people[m].left_on()).min();
        let hard_end = leave.map_or(self.period.today, |l| l.min(self.period.today));
        // Every pair and circle ends some day; only those ending before
        // `today` (and before a member leaves) get their dissolution.
        let (after, reason) = match p.kind {
            Kind::Buddies if rng.chance(0.08) => (rng.range(20, 50), DissolveReason::Mismatch),
            Kind::Buddies => (rng.range(84, 112), DissolveReason::Completed),
            Kind::Circles if rng.chance(0.06) => (rng.range(30, 60), DissolveReason::Mismatch),
            Kind::Circles => (rng.range(120, 270), DissolveReason::Completed),
        };
        let planned = Some((add_days(formed_on, after), reason));
        let dissolve = planned.filter(|(d, _)| *d < hard_end);
        // Everything but the dissolution happens before `stop`.
        let stop = dissolve.map_or(hard_end, |(d, _)| d);
        let mut steps: Vec<Step> = Vec::new();
        let pair = |c: PairCommand| Command::Pair(c);
        steps.push((
            formed_on,
            PRIO_FORM,
            pair(PairCommand::Form(FormPair {
                pair_id,
                program_id: p.id,
                members: ids.clone(),
                formed_by,
                match_score: score.map(|s| MatchScore::parse("matchScore", s)).transpose()?,
                formed_on,
            })),
        ));

        // A break: paused after the sessions of its first day, resumed
        // before the sessions of its last.
        let mut pause: Option<(NaiveDate, Option<NaiveDate>)> = None;
        if rng.chance(0.1) {
            let from = add_days(formed_on, rng.range(25, 60));
            let until = add_days(from, rng.range(14, 28));
            if add_days(from, 7) < stop {
                steps.push((
                    from,
                    PRIO_PAUSE,
                    pair(PairCommand::Pause {
                        pair_id,
                        reason: long(rng.word(words::PAUSE_REASONS))?,
                        paused_on: from,
                        until: Some(until),
                    }),
                ));
                let resumed = (until < stop).then_some(until);
                if let Some(r) = resumed {
                    steps.push((r, PRIO_RESUME, pair(PairCommand::Resume { pair_id, resumed_on: r })));
                }
                pause = Some((from, resumed));
            }
        }
        let paused = |d: NaiveDate| pause.is_some_and(|(from, r)| d > from && r.is_none_or(|r| d < r));

        let focus_list = match p.kind {
            Kind::Buddies => words::ONBOARDING_FOCUS,
            Kind::Circles => words::SKILL_FOCUS,
        };
        let mut held: Vec<NaiveDate> = Vec::new();
        let mut t = add_days(formed_on, rng.range(2, p.cadence / 2 + 2));
        while t < stop {
            if paused(t) {
                match pause.and_then(|(_, r)| r) {
                    Some(r) => {
                        t = add_days(r, rng.range(0, 3));
                        continue;
                    }
                    None => break,
                }
            }
            let session_id = SessionId::new();
            let by = *rng.pick(&ids);
            let held_at = at(t, rng.range(9 * 4, 17 * 4) * 15);
            let focus = short(rng.word(focus_list))?;
            if rng.chance(0.3) {
                let mut on = add_days(t, -rng.range(2, 7)).max(formed_on);
                if paused(on)
                    && let Some((_, Some(r))) = pause
                {
                    on = r;
                }
                steps.push((
                    on,
                    PRIO_SCHEDULE,
                    pair(PairCommand::ScheduleSession {
                        pair_id,
                        session_id,
                        by,
                        scheduled_for: held_at,
                        focus: Some(focus.clone()),
                    }),
                ));
                if rng.chance(0.12) {
                    let cancelled_on = add_days(t, -rng.range(0, 1)).max(on);
                    steps.push((
                        cancelled_on,
                        PRIO_CANCEL,
                        pair(PairCommand::CancelSession {
                            pair_id,
                            session_id,
                            by: *rng.pick(&ids),
                            reason: long(rng.word(words::CANCEL_REASONS))?,
                        }),
                    ));
                    t = add_days(t, rng.range(3, 7));
                    continue;
                }
            }
            let minutes = *rng.pick(&[20, 25, 30, 30, 40, 45, 45, 45, 50, 60, 60, 60, 75, 90]);
            let mut activities = rng.sample(&Activity::ALL[..5], 1, 3);
            if rng.chance(0.05) {
                activities.push(Activity::Other);
            }
            steps.push((
                t,
                PRIO_HOLD,
                pair(PairCommand::HoldSession {
                    pair_id,
                    session: HoldSession {
                        session_id,
                        by,
                        held_at,
                        minutes: Minutes::parse("minutes", minutes)?,
                        focus,
                        activities,
                        coaching: coaching(rng, p.kind, &ids),
                        notes: long(rng.word(words::SESSION_NOTES))?,
                    },
                }),
            ));
            held.push(t);
            let givers: Vec<(usize, usize)> = match p.kind {
                Kind::Buddies => [(0, 1), (1, 0)].into_iter().filter(|_| rng.chance(0.55)).collect(),
                Kind::Circles => {
                    let mut givers = Vec::new();
                    for from in 0..ids.len() {
                        if rng.chance(0.45) {
                            givers.push((from, (from + 1 + rng.index(ids.len() - 1)) % ids.len()));
                        }
                    }
                    givers
                }
            };
            for (from, to) in givers {
                let delay = minutes + rng.range(60, 36 * 60);
                let given_at = held_at.checked_add_signed(TimeDelta::minutes(delay)).unwrap_or(held_at);
                let on = given_at.date_naive();
                if on >= stop {
                    continue;
                }
                steps.push((
                    on,
                    PRIO_FEEDBACK,
                    pair(feedback(rng, pair_id, ids[from], ids[to], session_id, given_at)?),
                ));
            }
            let mut gap = p.cadence + rng.range(-3, 6);
            if rng.chance(0.08) {
                // A missed session.
                gap += p.cadence;
            }
            t = add_days(t, gap);
        }

        if let Some(&first) = held.first() {
            for (oi, &owner) in ids.iter().enumerate() {
                if !rng.chance(0.75) {
                    continue;
                }
                let others: Vec<PersonId> =
                    ids.iter().enumerate().filter(|(k, _)| *k != oi).map(|(_, id)| *id).collect();
                let mut start = add_days(first, rng.range(0, 2));
                for _ in 0..2 {
                    if add_days(start, 7) >= stop {
                        break;
                    }
                    let goal_id = GoalId::new();
                    let partner = *rng.pick(&others);
                    let due = add_days(start, rng.range(30, 90));
                    steps.push((
                        start,
                        PRIO_GOAL,
                        pair(PairCommand::SetGoal {
                            pair_id,
                            goal: pair::SetGoal {
                                goal_id,
                                owner,
                                title: short(rng.word(words::GOAL_TITLES))?,
                                description: long(rng.word(words::GOAL_DESCRIPTIONS))?,
                                due_on: Some(due),
                                accountability_partner: Some(partner),
                                set_on: start,
                            },
                        }),
                    ));
                    let u = rng.unit();
                    let close = if u < 0.72 {
                        Some((add_days(start, rng.range(21, days_between(start, due) + 10)), true))
                    } else if u < 0.85 {
                        Some((add_days(start, rng.range(14, 60)), false))
                    } else {
                        None
                    }
                    .filter(|(d, _)| *d < stop);
                    let until = close.map_or(stop, |(d, _)| d);
                    let mut percent = 0;
                    for &on in held.iter().filter(|&&h| h > start && h < until) {
                        if !rng.chance(0.5) {
                            continue;
                        }
                        percent = (percent + rng.range(10, 35)).min(95);
                        let by = if rng.chance(0.7) { owner } else { partner };
                        let note = *rng.pick(words::PROGRESS_NOTES);
                        let with_percent = note.is_empty() || rng.chance(0.9);
                        steps.push((
                            on,
                            PRIO_PROGRESS,
                            pair(PairCommand::RecordGoalProgress {
                                pair_id,
                                goal_id,
                                by,
                                percent: if with_percent { Some(Percent::parse("percent", percent)?) } else { None },
                                note: long(note)?,
                                recorded_on: on,
                            }),
                        ));
                    }
                    let Some((on, completed)) = close else { break };
                    let command = if completed {
                        PairCommand::CompleteGoal {
                            pair_id,
                            goal_id,
                            by: owner,
                            note: long(rng.word(words::COMPLETION_NOTES))?,
                            completed_on: on,
                        }
                    } else {
                        PairCommand::AbandonGoal {
                            pair_id,
                            goal_id,
                            by: owner,
                            reason: long(rng.word(words::ABANDON_REASONS))?,
                            abandoned_on: on,
                        }
                    };
                    steps.push((on, PRIO_GOAL_CLOSE, pair(command)));
                    if !rng.chance(0.45) {
                        break;
                    }
                    start = add_days(on, rng.range(3, 14));
                }
            }
        }

        if let Some((on, reason)) = dissolve {
            let notes =
                if reason == DissolveReason::Completed { words::COMPLETED_NOTES } else { words::MISMATCH_NOTES };
            steps.push((
                on,
                PRIO_DISSOLVE,
                pair(PairCommand::Dissolve { pair_id, reason, note: long(rng.word(notes))?, dissolved_on: on }),
            ));
        }
        // Stable: same-day steps of one priority keep planning order.
        steps.sort_by_key(|(d, prio, _)| (*d, *prio));
        self.tracks.push(steps);
        Ok(TrackEnd {
            on: dissolve.map(|(d, _)| d).or(leave.filter(|l| *l < self.period.today)),
            reason: dissolve.map(|(_, r)| r),
        })
    }
}

/// Who coached whom: in a buddy pair mostly the buddy (second member)
/// coaches the newcomer, sometimes both ways; in a circle one or two
/// members coach another.
fn coaching(rng: &mut Rng, kind: Kind, ids: &[PersonId]) -> Vec<Coaching> {
    match kind {
        Kind::Buddies => {
            let (newcomer, buddy) = (ids[0], ids[1]);
            if rng.chance(0.3) {
                vec![Coaching { coach: buddy, coachee: newcomer }, Coaching { coach: newcomer, coachee: buddy }]
            } else if rng.chance(0.8) {
                vec![Coaching { coach: buddy, coachee: newcomer }]
            } else {
                vec![Coaching { coach: newcomer, coachee: buddy }]
            }
        }
        Kind::Circles => (0..rng.range(1, 2))
            .map(|_| {
                let coach = rng.index(ids.len());
                let coachee = (coach + 1 + rng.index(ids.len() - 1)) % ids.len();
                Coaching { coach: ids[coach], coachee: ids[coachee] }
            })
            .collect(),
    }
}

/// A rating skewed to the top: most peers rate 3 to 5.
fn rating(rng: &mut Rng) -> Result<Option<Rating>, DemoError> {
    if !rng.chance(0.85) {
        return Ok(None);
    }
    let value = [1, 2, 3, 4, 5][rng.weighted(&[2, 6, 22, 40, 30])];
    Ok(Some(Rating::parse("rating", value)?))
}

fn feedback(
    rng: &mut Rng,
    pair_id: PairId,
    from: PersonId,
    to: PersonId,
    session_id: SessionId,
    given_at: DateTime<Utc>,
) -> Result<PairCommand, DemoError> {
    let ratings = Ratings {
        empathy: rating(rng)?,
        active_listening: rating(rng)?,
        curiosity: rating(rng)?,
        patience: rating(rng)?,
        growth_mindset: rating(rng)?,
    };
    let mut strengths = *rng.pick(words::STRENGTHS);
    let improvements = *rng.pick(words::IMPROVEMENTS);
    if ratings.is_empty() && strengths.is_empty() && improvements.is_empty() {
        // Feedback needs a rating or some text.
        strengths = words::STRENGTHS[0];
    }
    let visibility =
        [Visibility::Recipient, Visibility::RecipientAndCoordinators, Visibility::Coordinators, Visibility::Private]
            [rng.weighted(&[45, 30, 15, 10])];
    Ok(PairCommand::GiveFeedback {
        pair_id,
        feedback: pair::GiveFeedback {
            feedback_id: FeedbackId::new(),
            from,
            to,
            session_id: Some(session_id),
            ratings,
            strengths: long(strengths)?,
            improvements: long(improvements)?,
            visibility,
            given_at,
        },
    })
}
