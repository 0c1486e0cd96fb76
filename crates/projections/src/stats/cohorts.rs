//! The metrics of the field per program and per cohort, with small-cell
//! suppression.
//!
//! The grain is a participant: a person with an enrolment in the program.
//! Their cohort is the month (`YYYY-MM`) of their first enrolment. For a set
//! of participants (a cohort, or the whole program):
//!
//! - `people`: how many; `matched`: those who were ever in a pair of the
//!   program; `match_rate = matched / people`.
//! - `median_days_to_match`: from the enrolment to the formation of their
//!   first pair (over the matched).
//! - `median_days_to_first_session`: from the formation of their first pair
//!   to the first session held in it (over those whose first pair held one).
//! - `median_session_gap_days`: the gaps between consecutive sessions held
//!   in a participant's pairs of the program, in days (fractional), pooled
//!   over the participants.
//! - `active_pair_rate`: of the matched, the share in a pair not dissolved
//!   by the study day that held a session in the 30 days ending on it.
//! - `early_closures`: the matched whose first pair was dissolved less than
//!   90 days after it was formed; `early_closure_rate` over the matched;
//!   `early_closure_reasons`: those closures by reason.
//! - `goals_set`, `goals_completed` (goals the participants own in the
//!   program's pairs), `goal_completion_rate = completed / set`.
//!
//! Medians are the mean of the two middle values for an even count (as
//! SQL's `percentile_cont(0.5)`). A rate with a zero denominator is `None`.
//!
//! **Suppression.** A set of fewer than [`K`] people is published with no
//! figures (`suppressed: true`). Suppressing only the small cohorts is not
//! enough: the program's total minus the published cohorts would give the
//! suppressed ones back. So while the suppressed cohorts of a program add
//! up to fewer than `K` people (and any is suppressed), the smallest
//! published cohort is suppressed too (complementary suppression): what
//! can be subtracted is then always a group of at least `K` people.

use std::collections::{BTreeMap, HashSet};

use chrono::{Datelike, NaiveDate};
use uuid::Uuid;

use crate::stats::program::ACTIVE_WINDOW_DAYS;
use crate::stats::study::{PairFacts, Study};

/// The smallest group of people whose figures are published.
pub const K: usize = 5;

/// A pair dissolved sooner than this after its formation closed early.
pub const EARLY_CLOSURE_DAYS: i64 = 90;

/// The figures of one set of participants.
#[derive(Clone, Debug, PartialEq)]
pub struct Figures {
    pub people: u64,
    pub matched: u64,
    pub match_rate: Option<f64>,
    pub median_days_to_match: Option<f64>,
    pub median_days_to_first_session: Option<f64>,
    pub median_session_gap_days: Option<f64>,
    pub active_pair_rate: Option<f64>,
    pub early_closures: u64,
    pub early_closure_rate: Option<f64>,
    /// `(reason, count)`, by reason name.
    pub early_closure_reasons: Vec<(String, u64)>,
    pub goals_set: u64,
    pub goals_completed: u64,
    pub goal_completion_rate: Option<f64>,
}

/// One published cell: its figures, or none when suppressed.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// The cohort (`YYYY-MM`), or `None` for the whole program.
    pub cohort: Option<String>,
    pub suppressed: bool,
    pub figures: Option<Figures>,
}

/// A program's metrics: the whole program and each cohort, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgramMetrics {
    pub program_id: Uuid,
    pub total: Cell,
    pub cohorts: Vec<Cell>,
}

/// What one participant contributes.
#[derive(Default)]
struct Person {
    matched: bool,
    days_to_match: Option<f64>,
    days_to_first_session: Option<f64>,
    gaps: Vec<f64>,
    active: bool,
    early_reason: Option<String>,
    goals_set: u64,
    goals_completed: u64,
}

fn days(from: NaiveDate, to: NaiveDate) -> f64 {
    // Day counts are far below 2^52: the conversion is exact.
    (to - from).num_days() as f64
}

fn participant(study: &Study, pairs: &[&PairFacts], person: Uuid, enrolled_on: NaiveDate) -> Person {
    let today = study.as_of_day();
    let mine: Vec<&&PairFacts> = pairs.iter().filter(|p| p.members.contains(&person)).collect();
    let mut out = Person::default();
    let first = mine.iter().min_by_key(|p| (p.formed_on, p.pair_id));
    if let Some(first) = first {
        out.matched = true;
        out.days_to_match = Some(days(enrolled_on, first.formed_on));
        out.days_to_first_session = first.first_session().map(|s| days(first.formed_on, s.date_naive()));
        if let Some(d) = first.dissolved_on
            && (d - first.formed_on).num_days() < EARLY_CLOSURE_DAYS
        {
            out.early_reason = Some(first.dissolve_reason.clone().unwrap_or_else(|| "OTHER".into()));
        }
    }
    let mut held: Vec<_> = mine.iter().flat_map(|p| p.sessions_held.iter().copied()).collect();
    held.sort();
    out.gaps = held.windows(2).map(|w| (w[1] - w[0]).num_seconds() as f64 / 86_400.0).collect();
    let window_start = today - chrono::Days::new(u64::from(ACTIVE_WINDOW_DAYS.unsigned_abs()) - 1);
    out.active = mine.iter().any(|p| {
        p.dissolved_on.is_none_or(|d| d > today)
            && p.sessions_held.iter().any(|s| (window_start..=today).contains(&s.date_naive()))
    });
    for g in study.goals.values() {
        if g.owner == person && pairs.iter().any(|p| p.pair_id == g.pair_id) {
            out.goals_set += 1;
            out.goals_completed += u64::from(g.status == "COMPLETED");
        }
    }
    out
}

/// The median, `percentile_cont(0.5)` style; `None` for no values.
#[must_use]
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 })
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

fn figures(people: &[&Person]) -> Figures {
    let n = people.len() as u64;
    let matched: Vec<&&Person> = people.iter().filter(|p| p.matched).collect();
    let m = matched.len() as u64;
    let mut to_match: Vec<f64> = matched.iter().filter_map(|p| p.days_to_match).collect();
    let mut to_session: Vec<f64> = matched.iter().filter_map(|p| p.days_to_first_session).collect();
    let mut gaps: Vec<f64> = people.iter().flat_map(|p| p.gaps.iter().copied()).collect();
    let active = matched.iter().filter(|p| p.active).count() as u64;
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for r in matched.iter().filter_map(|p| p.early_reason.as_ref()) {
        *reasons.entry(r.clone()).or_default() += 1;
    }
    let early: u64 = reasons.values().sum();
    let goals_set = people.iter().map(|p| p.goals_set).sum();
    let goals_completed = people.iter().map(|p| p.goals_completed).sum();
    Figures {
        people: n,
        matched: m,
        match_rate: ratio(m, n),
        median_days_to_match: median(&mut to_match),
        median_days_to_first_session: median(&mut to_session),
        median_session_gap_days: median(&mut gaps),
        active_pair_rate: ratio(active, m),
        early_closures: early,
        early_closure_rate: ratio(early, m),
        early_closure_reasons: reasons.into_iter().collect(),
        goals_set,
        goals_completed,
        goal_completion_rate: ratio(goals_completed, goals_set),
    }
}

/// The cohort of an enrolment date.
#[must_use]
pub fn cohort_of(day: NaiveDate) -> String {
    format!("{:04}-{:02}", day.year(), day.month())
}

/// The metrics of `program_id` from `study`; `None` for a program the
/// study does not know.
#[must_use]
pub fn program_metrics(study: &Study, program_id: Uuid) -> Option<ProgramMetrics> {
    study.programs.get(&program_id)?;
    let pairs: Vec<&PairFacts> = study.pairs.values().filter(|p| p.program_id == program_id).collect();
    let mut by_cohort: BTreeMap<String, Vec<Person>> = BTreeMap::new();
    for e in study.enrolments.values().filter(|e| e.program_id == program_id) {
        let Some(enrolled_on) = e.enrolled_on else { continue };
        by_cohort.entry(cohort_of(enrolled_on)).or_default().push(participant(study, &pairs, e.person_id, enrolled_on));
    }
    let all: Vec<&Person> = by_cohort.values().flatten().collect();
    let total_suppressed = all.len() < K;
    let total =
        Cell { cohort: None, suppressed: total_suppressed, figures: (!total_suppressed).then(|| figures(&all)) };
    let sizes: Vec<(String, usize)> = by_cohort.iter().map(|(c, v)| (c.clone(), v.len())).collect();
    let hidden = suppressed_cohorts(&sizes);
    let cohorts = by_cohort
        .iter()
        .map(|(c, people)| {
            let suppressed = hidden.contains(c.as_str());
            let people: Vec<&Person> = people.iter().collect();
            Cell { cohort: Some(c.clone()), suppressed, figures: (!suppressed).then(|| figures(&people)) }
        })
        .collect();
    Some(ProgramMetrics { program_id, total, cohorts })
}

/// Which cohorts to suppress, given their sizes: the small ones, then,
/// while those add up to fewer than [`K`] people, the smallest of the rest
/// (see the module docs).
#[must_use]
pub fn suppressed_cohorts(sizes: &[(String, usize)]) -> HashSet<&str> {
    let mut hidden: HashSet<&str> = sizes.iter().filter(|(_, n)| *n < K).map(|(c, _)| c.as_str()).collect();
    let mut hidden_people: usize = sizes.iter().filter(|(c, _)| hidden.contains(c.as_str())).map(|(_, n)| n).sum();
    while !hidden.is_empty() && hidden_people < K {
        let next = sizes.iter().filter(|(c, _)| !hidden.contains(c.as_str())).min_by_key(|(c, n)| (*n, c.clone()));
        let Some((c, n)) = next else { break };
        hidden.insert(c.as_str());
        hidden_people += n;
    }
    hidden
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(v: &[(&str, usize)]) -> Vec<(String, usize)> {
        v.iter().map(|(c, n)| ((*c).to_owned(), *n)).collect()
    }

    #[test]
    fn a_small_cohort_cannot_be_had_by_subtraction() {
        // 2026-01 has 3 people: alone it would be the total minus the rest.
        let s = sizes(&[("2026-01", 3), ("2026-02", 20), ("2026-03", 8)]);
        let hidden = suppressed_cohorts(&s);
        assert!(hidden.contains("2026-01") && hidden.contains("2026-03") && !hidden.contains("2026-02"));
        // Two small cohorts that together reach K need nothing more.
        let s = sizes(&[("a", 3), ("b", 2), ("c", 9)]);
        assert_eq!(suppressed_cohorts(&s).len(), 2);
        // Nothing small, nothing hidden.
        assert!(suppressed_cohorts(&sizes(&[("a", 5), ("b", 6)])).is_empty());
        // One cohort alone is the total: the total's own rule applies.
        assert_eq!(suppressed_cohorts(&sizes(&[("a", 4)])).len(), 1);
    }

    #[test]
    fn medians_follow_percentile_cont() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }
}
