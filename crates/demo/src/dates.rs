//! The demo period and its weekly windows.
//!
//! History is replayed window by window (see [`crate::exec`]): everything of
//! one window is sent before anything of the next, so a command never runs
//! ahead of a command of an earlier week that it depends on (a dissolution
//! that frees a member, a leave that ends a circle).

use chrono::{Months, NaiveDate, TimeDelta};

use crate::error::DemoError;

/// Days per window.
pub(crate) const WINDOW_DAYS: i64 = 7;

/// `d` moved by `n` days, saturating at the ends of the calendar.
pub(crate) fn add_days(d: NaiveDate, n: i64) -> NaiveDate {
    d.checked_add_signed(TimeDelta::days(n)).unwrap_or(if n < 0 { NaiveDate::MIN } else { NaiveDate::MAX })
}

/// Whole days from `a` to `b`.
pub(crate) fn days_between(a: NaiveDate, b: NaiveDate) -> i64 {
    (b - a).num_days()
}

/// The demo period: from the programs' launch to the day before `today`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Period {
    pub launch: NaiveDate,
    /// Exclusive: every generated date lies before it.
    pub today: NaiveDate,
}

impl Period {
    pub(crate) fn new(today: NaiveDate, months: u32) -> Result<Self, DemoError> {
        let launch = today
            .checked_sub_months(Months::new(months))
            .ok_or_else(|| DemoError::Options(format!("{months} months before {today} is not a date")))?;
        Ok(Self { launch, today })
    }

    /// The last day anything may be dated.
    pub(crate) fn last_day(&self) -> NaiveDate {
        add_days(self.today, -1)
    }

    /// Length of the period in days.
    pub(crate) fn days(&self) -> i64 {
        days_between(self.launch, self.today)
    }

    /// The window `d` falls in (dates before the launch fall in the first).
    pub(crate) fn window_of(&self, d: NaiveDate) -> usize {
        usize::try_from(days_between(self.launch, d).max(0) / WINDOW_DAYS).unwrap_or(usize::MAX)
    }

    /// How many windows the period has.
    pub(crate) fn windows(&self) -> usize {
        self.window_of(self.last_day()) + 1
    }

    /// The first day of the window after the one `d` falls in: the earliest
    /// a person freed on `d` may join a new pair, so that the command that
    /// frees them is sure to have run first.
    pub(crate) fn next_window_start(&self, d: NaiveDate) -> NaiveDate {
        let w = i64::try_from(self.window_of(d)).unwrap_or(i64::MAX / WINDOW_DAYS - 1);
        add_days(self.launch, (w + 1) * WINDOW_DAYS)
    }
}
