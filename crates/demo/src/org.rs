//! The organisation: people, their management tree and hire dates, the
//! dated org changes of the demo period (promotions, a re-org, transfers)
//! and who leaves.
//!
//! [`Person::facts_on`] answers "level, department and manager on day D"
//! the way the domain's `Person::org_on` does, so the planner forms only
//! pairs the command service will accept. Invariants kept while planning:
//! a manager's level is above each report's on every day; managers never
//! leave (only individual contributors do), so nobody's manager is gone
//! when an org change names them; a leaver has no org change.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use tandem_commands::Command;
use tandem_domain::PersonId;
use tandem_domain::person::{PersonChanges, PersonCommand, RegisterPerson, UpdatePerson};
use tandem_domain::values::{Email, ExternalId, LeaveReason, Level, ShortText};

use crate::dates::{Period, add_days, days_between};
use crate::error::DemoError;
use crate::rng::Rng;
use crate::words::{self, DEPARTMENTS, Department};

/// Where a person sits in the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Ceo,
    Vp,
    Director,
    Manager,
    Ic,
}

/// Highest level of an individual contributor.
const IC_MAX_LEVEL: u8 = 6;

/// A dated change of org facts; `None` fields are unchanged.
#[derive(Clone, Debug)]
pub(crate) struct Change {
    pub on: NaiveDate,
    pub level: Option<u8>,
    pub title: Option<String>,
    pub dept: Option<usize>,
    pub manager: Option<usize>,
}

/// Org facts on a day.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Facts {
    pub level: u8,
    /// Index into [`DEPARTMENTS`]; `None` for the executive.
    pub dept: Option<usize>,
    pub manager: Option<usize>,
}

#[derive(Clone, Debug)]
pub(crate) struct Person {
    pub id: PersonId,
    pub external_id: String,
    pub name: String,
    pub email: String,
    pub location: Option<&'static str>,
    pub hired_on: NaiveDate,
    pub role: Role,
    /// Distance from the CEO; people register layer by layer so that a
    /// manager always exists before their reports.
    pub depth: usize,
    /// Facts at hire.
    pub initial: Facts,
    pub title: String,
    /// Later changes, sorted by date.
    pub changes: Vec<Change>,
    pub left: Option<(NaiveDate, LeaveReason)>,
}

impl Person {
    /// Facts on `d`: the hire facts with every change effective by then.
    pub(crate) fn facts_on(&self, d: NaiveDate) -> Facts {
        let mut f = self.initial;
        for c in self.changes.iter().take_while(|c| c.on <= d) {
            if let Some(l) = c.level {
                f.level = l;
            }
            if let Some(dept) = c.dept {
                f.dept = Some(dept);
            }
            if let Some(m) = c.manager {
                f.manager = Some(m);
            }
        }
        f
    }

    pub(crate) fn left_on(&self) -> Option<NaiveDate> {
        self.left.map(|(d, _)| d)
    }

    /// Whether the person works here on `d` and, when `margin` > 0, for at
    /// least that many more days.
    pub(crate) fn around(&self, d: NaiveDate, margin: i64) -> bool {
        self.hired_on <= d && self.left_on().is_none_or(|l| add_days(d, margin) < l)
    }

    fn add_change(&mut self, c: Change) {
        let at = self.changes.partition_point(|x| x.on <= c.on);
        self.changes.insert(at, c);
    }
}

/// The title of a role in a department at a level.
pub(crate) fn title(role: Role, dept: Option<&Department>, level: u8) -> String {
    let Some(d) = dept else {
        return "Chief Executive Officer".to_owned();
    };
    match role {
        Role::Ceo => "Chief Executive Officer".to_owned(),
        Role::Vp => format!("VP of {}", d.name),
        Role::Director => format!("Director of {}", d.name),
        Role::Manager => match level {
            ..=5 => d.manager_role.to_owned(),
            6 => format!("Senior {}", d.manager_role),
            _ => format!("Principal {}", d.manager_role),
        },
        Role::Ic => match level {
            ..=1 => format!("Associate {}", d.ic_role),
            2 => d.ic_role.to_owned(),
            3 => format!("{} II", d.ic_role),
            4 => format!("Senior {}", d.ic_role),
            5 => format!("Staff {}", d.ic_role),
            _ => format!("Principal {}", d.ic_role),
        },
    }
}

fn department(i: Option<usize>) -> Option<&'static Department> {
    i.and_then(|i| DEPARTMENTS.get(i))
}

pub(crate) struct Org {
    pub people: Vec<Person>,
    /// How many departments (the first of [`DEPARTMENTS`]) this organisation has.
    pub departments: usize,
}

impl Org {
    pub(crate) fn facts(&self, i: usize, d: NaiveDate) -> Facts {
        self.people[i].facts_on(d)
    }

    pub(crate) fn level(&self, i: usize, d: NaiveDate) -> u8 {
        self.facts(i, d).level
    }

    /// The management chain of `i` on `d`, nearest manager first.
    pub(crate) fn chain(&self, i: usize, d: NaiveDate) -> Vec<usize> {
        let mut chain = Vec::new();
        let mut current = i;
        while let Some(m) = self.facts(current, d).manager {
            if m == i || chain.contains(&m) || chain.len() > 64 {
                break;
            }
            chain.push(m);
            current = m;
        }
        chain
    }

    /// Whether either of `a` and `b` is in the other's management chain on `d`.
    pub(crate) fn related(&self, a: usize, b: usize, d: NaiveDate) -> bool {
        self.chain(a, d).contains(&b) || self.chain(b, d).contains(&a)
    }

    /// Builds the organisation and its dated history.
    pub(crate) fn build(rng: &mut Rng, n: usize, period: &Period, months: u32) -> Self {
        let mut b = Builder { people: Vec::with_capacity(n), emails: BTreeSet::new() };
        b.tree(rng, n, period, months);
        let mut org = Org { people: b.people, departments: (n / 30).clamp(3, DEPARTMENTS.len()) };
        org.leavers(rng, period, months);
        let reorg_day = add_days(period.launch, period.days() / 2 + rng.range(-7, 7));
        org.reorg(rng, reorg_day);
        org.transfers(rng, period);
        org.promotions(rng, period, months);
        org
    }

    /// Some individual contributors leave during the period.
    fn leavers(&mut self, rng: &mut Rng, period: &Period, months: u32) {
        let n = self.people.len();
        let wanted = ((n as f64 * f64::from(months) * 0.008).round() as usize).max(1);
        let mut candidates: Vec<usize> = (0..n)
            .filter(|&i| self.people[i].role == Role::Ic && days_between(self.people[i].hired_on, period.today) > 60)
            .collect();
        rng.shuffle(&mut candidates);
        let mut chosen = 0;
        for i in candidates {
            if chosen == wanted {
                break;
            }
            let p = &mut self.people[i];
            let lo = add_days(period.launch, 14).max(add_days(p.hired_on, 30));
            let hi = add_days(period.today, -2);
            if lo > hi {
                continue;
            }
            let on = add_days(lo, rng.range(0, days_between(lo, hi)));
            let reason =
                [LeaveReason::Voluntary, LeaveReason::Involuntary, LeaveReason::Other][rng.weighted(&[7, 2, 1])];
            p.left = Some((on, reason));
            chosen += 1;
        }
    }

    /// A re-org: half of the biggest team of the department with the most
    /// managers moves to the most senior other manager there.
    fn reorg(&mut self, rng: &mut Rng, on: NaiveDate) {
        let managers_in = |org: &Org, dept: usize| -> Vec<usize> {
            (0..org.people.len())
                .filter(|&i| org.people[i].role == Role::Manager && org.people[i].initial.dept == Some(dept))
                .collect()
        };
        let Some(dept) = (0..self.departments).max_by_key(|&d| (managers_in(self, d).len(), usize::MAX - d)) else {
            return;
        };
        let managers = managers_in(self, dept);
        if managers.len() < 2 {
            return;
        }
        let reports_of = |org: &Org, m: usize| -> Vec<usize> {
            (0..org.people.len())
                .filter(|&i| {
                    let p = &org.people[i];
                    p.role == Role::Ic && p.left.is_none() && p.hired_on < on && p.facts_on(on).manager == Some(m)
                })
                .collect()
        };
        let Some(&from) = managers.iter().max_by_key(|&&m| (reports_of(self, m).len(), usize::MAX - m)) else {
            return;
        };
        let Some(&to) = managers.iter().filter(|&&m| m != from).max_by_key(|&&m| (self.level(m, on), usize::MAX - m))
        else {
            return;
        };
        let to_level = self.level(to, on);
        let mut movers: Vec<usize> =
            reports_of(self, from).into_iter().filter(|&i| self.level(i, on) < to_level).collect();
        if movers.len() < 2 {
            return;
        }
        rng.shuffle(&mut movers);
        movers.truncate(movers.len().div_ceil(2));
        for i in movers {
            self.people[i].add_change(Change { on, level: None, title: None, dept: None, manager: Some(to) });
        }
    }

    /// A few individual contributors move to another department.
    fn transfers(&mut self, rng: &mut Rng, period: &Period) {
        let n = self.people.len();
        let wanted = (n / 150).max(1);
        let mut done = 0;
        for _ in 0..wanted * 20 {
            if done == wanted {
                break;
            }
            let i = rng.index(n);
            let p = &self.people[i];
            if p.role != Role::Ic || p.left.is_some() || !p.changes.is_empty() || p.hired_on >= period.launch {
                continue;
            }
            let on = add_days(period.launch, rng.range(14, period.days() - 3));
            let facts = p.facts_on(on);
            let target = rng.index(self.departments);
            if Some(target) == facts.dept {
                continue;
            }
            let managers: Vec<usize> = (0..n)
                .filter(|&m| {
                    let q = &self.people[m];
                    q.role == Role::Manager && q.facts_on(on).dept == Some(target) && q.facts_on(on).level > facts.level
                })
                .collect();
            if managers.is_empty() {
                continue;
            }
            let manager = *rng.pick(&managers);
            let new_title = title(Role::Ic, department(Some(target)), facts.level);
            self.people[i].add_change(Change {
                on,
                level: None,
                title: Some(new_title),
                dept: Some(target),
                manager: Some(manager),
            });
            done += 1;
        }
    }

    /// Promotions: one level up with the matching title, never reaching the
    /// manager's level.
    fn promotions(&mut self, rng: &mut Rng, period: &Period, months: u32) {
        let n = self.people.len();
        let wanted = (n * months as usize / 100).max(1);
        let mut done = 0;
        for _ in 0..wanted * 20 {
            if done == wanted {
                break;
            }
            let i = rng.index(n);
            let on = add_days(period.launch, rng.range(7, period.days() - 1));
            let p = &self.people[i];
            if matches!(p.role, Role::Ceo | Role::Vp)
                || p.left.is_some()
                || !p.changes.is_empty()
                || days_between(p.hired_on, on) < 180
            {
                continue;
            }
            let facts = p.facts_on(on);
            let level = facts.level + 1;
            let cap = match p.role {
                Role::Ic => IC_MAX_LEVEL,
                Role::Manager => 7,
                _ => 8,
            };
            if level > cap || facts.manager.is_some_and(|m| self.level(m, on) <= level) {
                continue;
            }
            let new_title = title(p.role, department(facts.dept), level);
            self.people[i].add_change(Change {
                on,
                level: Some(level),
                title: Some(new_title),
                dept: None,
                manager: None,
            });
            done += 1;
        }
    }

    /// The registration of person `i`.
    pub(crate) fn register(&self, i: usize) -> Result<Command, DemoError> {
        let p = &self.people[i];
        Ok(Command::Person(PersonCommand::Register(RegisterPerson {
            person_id: p.id,
            external_id: ExternalId::parse("externalId", &p.external_id)?,
            name: ShortText::parse("name", &p.name)?,
            email: Email::parse("email", &p.email)?,
            department: ShortText::parse(
                "department",
                department(p.initial.dept).map_or(words::CEO_DEPARTMENT, |d| d.name),
            )?,
            title: ShortText::parse("title", &p.title)?,
            level: Level::parse("level", i64::from(p.initial.level))?,
            manager: p.initial.manager.map(|m| self.people[m].id),
            location: p.location.map(|l| ShortText::parse("location", l)).transpose()?,
            hired_on: p.hired_on,
        })))
    }

    /// Every dated org change as an update command, with its date.
    pub(crate) fn updates(&self) -> Result<Vec<(NaiveDate, Command)>, DemoError> {
        let mut out = Vec::new();
        for p in &self.people {
            for c in &p.changes {
                let changes = PersonChanges {
                    department: department(c.dept).map(|d| ShortText::parse("department", d.name)).transpose()?,
                    title: c.title.as_deref().map(|t| ShortText::parse("title", t)).transpose()?,
                    level: c.level.map(|l| Level::parse("level", i64::from(l))).transpose()?,
                    manager: c.manager.map(|m| Some(self.people[m].id)),
                    ..PersonChanges::default()
                };
                out.push((
                    c.on,
                    Command::Person(PersonCommand::Update(UpdatePerson {
                        person_id: p.id,
                        changes,
                        effective_on: c.on,
                    })),
                ));
            }
        }
        Ok(out)
    }

    /// Every leave, with its date.
    pub(crate) fn leaves(&self) -> Vec<(NaiveDate, Command)> {
        self.people
            .iter()
            .filter_map(|p| {
                p.left.map(|(on, reason)| {
                    (on, Command::Person(PersonCommand::RecordLeft { person_id: p.id, left_on: on, reason }))
                })
            })
            .collect()
    }
}

struct Builder {
    people: Vec<Person>,
    emails: BTreeSet<String>,
}

impl Builder {
    fn add(
        &mut self,
        rng: &mut Rng,
        role: Role,
        dept: Option<usize>,
        level: u8,
        manager: Option<usize>,
        hired_on: NaiveDate,
    ) -> usize {
        let first = *rng.pick(words::FIRST_NAMES);
        let last = *rng.pick(words::LAST_NAMES);
        let base = format!("{}.{}", words::email_part(first), words::email_part(last));
        let mut local = base.clone();
        let mut k = 2;
        while self.emails.contains(&local) {
            local = format!("{base}{k}");
            k += 1;
        }
        self.emails.insert(local.clone());
        let weights: Vec<u32> = words::LOCATIONS.iter().map(|(_, w)| *w).collect();
        let location = if rng.chance(0.04) { None } else { Some(words::LOCATIONS[rng.weighted(&weights)].0) };
        let index = self.people.len();
        let depth = manager.map_or(0, |m| self.people[m].depth + 1);
        self.people.push(Person {
            id: PersonId::new(),
            external_id: format!("E-{:06}", index + 1),
            name: format!("{first} {last}"),
            email: format!("{local}@{}", words::EMAIL_DOMAIN),
            location,
            hired_on,
            role,
            depth,
            initial: Facts { level, dept, manager },
            title: title(role, department(dept), level),
            changes: Vec::new(),
            left: None,
        });
        index
    }

    /// The CEO, one VP per department, directors in big departments,
    /// first-line managers and their teams.
    fn tree(&mut self, rng: &mut Rng, n: usize, period: &Period, months: u32) {
        let years_before = |rng: &mut Rng, lo: f64, hi: f64| {
            let days = rng.range((lo * 365.0) as i64, (hi * 365.0) as i64);
            add_days(period.launch, -days)
        };
        let ceo_hired = years_before(rng, 7.0, 10.0);
        let ceo = self.add(rng, Role::Ceo, None, 10, None, ceo_hired);
        let k = (n / 30).clamp(3, DEPARTMENTS.len());
        let weights: Vec<u32> = DEPARTMENTS[..k].iter().map(|d| d.weight).collect();
        let sizes = apportion(n.saturating_sub(1), &weights, 3);
        let new_hire_share = (0.02 * f64::from(months)).min(0.35);
        for (dept, &size) in sizes.iter().enumerate() {
            let d = Some(dept);
            let hired = years_before(rng, 2.0, 8.0);
            let vp = self.add(rng, Role::Vp, d, 9, Some(ceo), hired);
            let directors_n = if size >= 25 { size / 30 + 1 } else { 0 };
            let rest = size - 1 - directors_n;
            let managers_n = (rest / 8).max(1);
            let ics_n = rest - managers_n;
            let mut directors = Vec::with_capacity(directors_n);
            for _ in 0..directors_n {
                let hired = years_before(rng, 1.5, 7.0);
                directors.push(self.add(rng, Role::Director, d, 8, Some(vp), hired));
            }
            let mut managers = Vec::with_capacity(managers_n);
            for m in 0..managers_n {
                let level = [5, 6, 7][rng.weighted(&[4, 4, 2])];
                let boss = if directors.is_empty() { vp } else { directors[m % directors.len()] };
                let hired = years_before(rng, 1.0, 6.0);
                managers.push(self.add(rng, Role::Manager, d, level, Some(boss), hired));
            }
            for k in 0..ics_n {
                let manager = managers[k % managers.len()];
                let top = (self.people[manager].initial.level - 1).min(IC_MAX_LEVEL);
                let level_weights: Vec<u32> = [2, 4, 5, 4, 2, 1][..usize::from(top)].to_vec();
                let level = u8::try_from(rng.weighted(&level_weights) + 1).unwrap_or(1);
                let hired = if rng.chance(new_hire_share) {
                    add_days(period.launch, rng.range(0, period.days() - 5))
                } else {
                    // Skewed towards recent hires: the company has been growing.
                    let u = rng.unit();
                    add_days(period.launch, -1 - (u * u * 8.0 * 365.0) as i64)
                };
                self.add(rng, Role::Ic, d, level, Some(manager), hired);
            }
        }
    }
}

/// Splits `total` into parts of at least `min` in proportion to `weights`
/// (largest remainder).
fn apportion(total: usize, weights: &[u32], min: usize) -> Vec<usize> {
    let k = weights.len();
    let spare = total.saturating_sub(min * k);
    let sum: u64 = weights.iter().map(|w| u64::from(*w)).sum::<u64>().max(1);
    let mut parts: Vec<usize> = Vec::with_capacity(k);
    let mut rems: Vec<(u64, usize)> = Vec::with_capacity(k);
    for (i, w) in weights.iter().enumerate() {
        let exact = spare as u64 * u64::from(*w);
        parts.push(min + (exact / sum) as usize);
        rems.push((exact % sum, i));
    }
    let given: usize = parts.iter().sum();
    rems.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in rems.into_iter().take(total.saturating_sub(given)) {
        parts[i] += 1;
    }
    parts
}
