//! Demo data for Tandem: a realistic organisation and months of peer-coaching
//! history, written through the real command path so that every event obeys
//! the rules of the domain.
//!
//! [`generate`] builds, from a seed:
//!
//! * a few hundred people in departments with a management tree (a CEO,
//!   VPs, directors, managers and their teams; managers always above their
//!   reports' level), titles by department and level, offices, hire dates
//!   over the years, and dated org changes during the period (promotions, a
//!   re-org, transfers) plus a few leavers;
//! * two programs launched `months` ago — onboarding buddies (pairs, level
//!   gap 2, every 14 days) and skills circles (3 to 5, gap 3, every 21 days)
//!   — with enrolments, pairs and circles formed under the rules, sessions,
//!   feedback, goals, pauses, dissolutions and withdrawals.
//!
//! The crate is laid out as the run goes: `org` plans the
//! people, `plan` simulates the programs and turns everything
//! into dated commands cut into weekly windows, and `exec`
//! sends them concurrently, pair by pair, week by week. Planning is pure and
//! seeded (`rng`), so a seed gives the same organisation and
//! history every time; only the generated UUIDs differ.

mod dates;
mod error;
mod exec;
mod org;
mod plan;
mod rng;
mod words;

use std::fmt;

use chrono::{NaiveDate, Utc};
use tandem_commands::{Command, CommandService};

pub use error::DemoError;

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoOptions {
    /// Decides everything but the UUIDs.
    pub seed: u64,
    /// Headcount, CEO included (at least 10).
    pub people: usize,
    /// Months of history before `today`; the programs launch then.
    pub months: u32,
    /// Commands in flight at once.
    pub concurrency: usize,
    /// Every generated date lies before this day.
    pub today: NaiveDate,
}

impl DemoOptions {
    /// The defaults (300 people, 6 months, 4 at a time) with a seed and a day.
    #[must_use]
    pub fn new(seed: u64, today: NaiveDate) -> Self {
        Self { seed, people: 300, months: 6, concurrency: 4, today }
    }

    fn validate(&self) -> Result<(), DemoError> {
        if !(10..=100_000).contains(&self.people) {
            return Err(DemoError::Options(format!("people must be between 10 and 100000, got {}", self.people)));
        }
        if !(1..=120).contains(&self.months) {
            return Err(DemoError::Options(format!("months must be between 1 and 120, got {}", self.months)));
        }
        if self.concurrency == 0 {
            return Err(DemoError::Options("concurrency must be at least 1".to_owned()));
        }
        Ok(())
    }
}

impl Default for DemoOptions {
    /// Seed 7, ending today (UTC).
    fn default() -> Self {
        Self::new(7, Utc::now().date_naive())
    }
}

/// Where a run is, for a progress bar: `done` of `total` commands of `phase`
/// ("people", "programs", "history").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemoProgress {
    pub phase: &'static str,
    pub done: usize,
    pub total: usize,
}

impl fmt::Display for DemoProgress {
    /// `history  [##########----------]  1234/2468`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const WIDTH: usize = 24;
        let filled = (self.done * WIDTH).checked_div(self.total).unwrap_or(WIDTH).min(WIDTH);
        write!(
            f,
            "{:<8} [{}{}] {}/{}",
            self.phase,
            "#".repeat(filled),
            "-".repeat(WIDTH - filled),
            self.done,
            self.total
        )
    }
}

/// What a run committed, counted from the events the command service
/// returned (cascades included), so it matches the event log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DemoReport {
    /// `PersonRegistered`.
    pub people: usize,
    /// `ProgramLaunched`.
    pub programs: usize,
    /// `PairFormed` of kind pairs.
    pub pairs: usize,
    /// `PairFormed` of kind circles.
    pub circles: usize,
    /// `SessionHeld`.
    pub sessions: usize,
    /// `FeedbackGiven`.
    pub feedback: usize,
    /// `GoalSet`.
    pub goals: usize,
    /// `PersonLeft`.
    pub leavers: usize,
    /// Every event appended.
    pub events: usize,
    /// Commands the domain refused (or that kept conflicting); nothing was
    /// appended for them.
    pub refused: usize,
}

impl DemoReport {
    fn add(&mut self, o: &DemoReport) {
        self.people += o.people;
        self.programs += o.programs;
        self.pairs += o.pairs;
        self.circles += o.circles;
        self.sessions += o.sessions;
        self.feedback += o.feedback;
        self.goals += o.goals;
        self.leavers += o.leavers;
        self.events += o.events;
        self.refused += o.refused;
    }
}

impl fmt::Display for DemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} people, {} programs, {} pairs, {} circles, {} sessions, {} feedback, {} goals, {} leavers; \
             {} events, {} commands refused",
            self.people,
            self.programs,
            self.pairs,
            self.circles,
            self.sessions,
            self.feedback,
            self.goals,
            self.leavers,
            self.events,
            self.refused
        )
    }
}

/// Generates the demo organisation and its history through `svc`, calling
/// `progress` as commands complete. Expects a database without a demo
/// organisation in it (external ids `E-000001` … must be free).
#[tracing::instrument(skip_all, fields(seed = opts.seed, people = opts.people, months = opts.months))]
pub async fn generate(
    svc: &CommandService,
    opts: &DemoOptions,
    mut progress: impl FnMut(DemoProgress) + Send,
) -> Result<DemoReport, DemoError> {
    opts.validate()?;
    let schedule = plan::plan(opts)?;
    let report = exec::execute(svc, schedule, opts.concurrency, &mut progress).await?;
    tracing::info!(events = report.events, refused = report.refused, "demo generated");
    Ok(report)
}

/// The commands [`generate`] would send for `opts`, in an order that is
/// valid when they are sent one at a time (e.g. to benchmark the command
/// path on a realistic mix). Fresh UUIDs on every call.
pub fn history_for_bench(opts: &DemoOptions) -> Result<Vec<Command>, DemoError> {
    opts.validate()?;
    Ok(plan::plan(opts)?.into_commands())
}
