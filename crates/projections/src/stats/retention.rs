//! Retention: Kaplan–Meier survival of employment for participants against
//! non-participants, and the log-rank test between the two.
//!
//! The design of the study (documented for analysts in `docs/ANALYSTS.md`):
//!
//! - The *end* of the study is `study_end` or the study day (the day of
//!   `as_of`), whichever is earlier.
//! - *Participants* are the people with an enrolment (in the program, or in
//!   any program without one) on or before the end. Their origin is their
//!   first such enrolment.
//! - *Non-participants* are everybody else in the HRIS population who was
//!   employed on the *index date* (`index_date`, by default the launch date
//!   of the program, or of the earliest program). Their origin is the index
//!   date.
//! - Anyone not employed on their origin is left out (they cannot leave
//!   what they are not in).
//! - The event is the first departure (`PersonLeft`) on or after the
//!   origin and on or before the end; everyone else is censored at the end.
//!   The duration is in days.
//!
//! Groups of fewer than [`K`](crate::stats::cohorts::K) people are
//! suppressed, and so is the log-rank test when either group is.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use uuid::Uuid;

use crate::error::{ProjectionError, Result};
use crate::stats::cohorts::K;
use crate::stats::study::Study;
use crate::stats::survival::{CiTransform, KaplanMeier, LogRank, Observation, kaplan_meier, log_rank};

/// The parameters of a retention study.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetentionQuery {
    /// One program's participants, or those of any program.
    pub program_id: Option<Uuid>,
    pub study_end: Option<NaiveDate>,
    pub index_date: Option<NaiveDate>,
    pub transform: CiTransform,
    pub confidence: f64,
}

/// One group's curve, or nothing when suppressed.
#[derive(Clone, Debug, PartialEq)]
pub struct RetentionGroup {
    /// `None` when suppressed.
    pub people: Option<usize>,
    /// `None` when suppressed.
    pub events: Option<usize>,
    pub suppressed: bool,
    pub curve: Option<KaplanMeier>,
}

/// The answer of a retention study.
#[derive(Clone, Debug, PartialEq)]
pub struct Retention {
    pub end: NaiveDate,
    /// `None` when there is no program to take it from and none was given;
    /// then there are no non-participants.
    pub index_date: Option<NaiveDate>,
    pub participants: RetentionGroup,
    pub non_participants: RetentionGroup,
    pub log_rank: Option<LogRank>,
}

/// The observations of a retention study, by person.
#[derive(Clone, Debug, PartialEq)]
pub struct Observations {
    pub end: NaiveDate,
    pub index_date: Option<NaiveDate>,
    pub participants: BTreeMap<Uuid, Observation>,
    pub non_participants: BTreeMap<Uuid, Observation>,
}

/// The observations of both groups, by person. For exports and checks;
/// [`retention`] builds on it.
pub fn observations(study: &Study, query: &RetentionQuery) -> Result<Observations> {
    if let Some(p) = query.program_id
        && !study.programs.contains_key(&p)
    {
        return Err(ProjectionError::InvalidStudy { field: "programId", reason: "no such program".into() });
    }
    let today = study.as_of_day();
    let end = query.study_end.map_or(today, |e| e.min(today));
    let index_date = query.index_date.or_else(|| match query.program_id {
        Some(p) => study.programs.get(&p).copied(),
        None => study.programs.values().min().copied(),
    });
    if let Some(i) = index_date
        && i > end
    {
        return Err(ProjectionError::InvalidStudy {
            field: "indexDate",
            reason: format!("{i} lies after the end of the study ({end})"),
        });
    }
    let mut origins: BTreeMap<Uuid, NaiveDate> = BTreeMap::new();
    for e in study.enrolments.values() {
        if query.program_id.is_some_and(|p| p != e.program_id) {
            continue;
        }
        if let Some(d) = e.enrolled_on.filter(|d| *d <= end) {
            origins.entry(e.person_id).and_modify(|o| *o = (*o).min(d)).or_insert(d);
        }
    }
    let observe = |person: Uuid, origin: NaiveDate| -> Option<Observation> {
        let facts = study.people.get(&person)?;
        if !facts.employed_on(origin) {
            return None;
        }
        let left = facts.left_after(origin).map(|(d, _)| d).filter(|d| *d <= end);
        let stop = left.unwrap_or(end);
        // Day counts are far below 2^52: the conversion is exact.
        Some(Observation { duration: (stop - origin).num_days() as f64, event: left.is_some() })
    };
    let participants: BTreeMap<Uuid, Observation> =
        origins.iter().filter_map(|(p, o)| observe(*p, *o).map(|x| (*p, x))).collect();
    let enrolled: BTreeSet<&Uuid> = origins.keys().collect();
    let non_participants: BTreeMap<Uuid, Observation> = match index_date {
        Some(i) => study
            .people
            .keys()
            .filter(|p| !enrolled.contains(p))
            .filter_map(|p| observe(*p, i).map(|x| (*p, x)))
            .collect(),
        None => BTreeMap::new(),
    };
    Ok(Observations { end, index_date, participants, non_participants })
}

fn group(observations: &[Observation], query: &RetentionQuery) -> Result<RetentionGroup> {
    let suppressed = observations.len() < K;
    Ok(RetentionGroup {
        people: (!suppressed).then_some(observations.len()),
        events: (!suppressed).then(|| observations.iter().filter(|o| o.event).count()),
        suppressed,
        curve: if suppressed { None } else { Some(kaplan_meier(observations, query.transform, query.confidence)?) },
    })
}

/// Runs a retention study over `study`.
pub fn retention(study: &Study, query: &RetentionQuery) -> Result<Retention> {
    let Observations { end, index_date, participants, non_participants } = observations(study, query)?;
    let a: Vec<Observation> = participants.into_values().collect();
    let b: Vec<Observation> = non_participants.into_values().collect();
    let participants = group(&a, query)?;
    let non_participants = group(&b, query)?;
    let log_rank = if participants.suppressed || non_participants.suppressed { None } else { log_rank(&a, &b)? };
    Ok(Retention { end, index_date, participants, non_participants, log_rank })
}
