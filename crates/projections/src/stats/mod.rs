//! Statistics for coordinators and analysts.
//!
//! - [`program`]: per-program head counts as of a date, one SQL statement
//!   over the read models (the dashboard's `programStats`).
//! - [`study`]: the facts of a study folded from the event log up to an
//!   instant, so that every figure below is reproducible byte for byte.
//! - [`cohorts`]: the metrics of the field per program and per enrolment
//!   cohort, with small-cell and complementary suppression.
//! - [`survival`]: Kaplan–Meier curves with three interval transforms and
//!   the log-rank test (pure; checked against Python's lifelines).
//! - [`retention`]: employment survival of participants against
//!   non-participants, built from a study with [`survival`].

pub mod cohorts;
pub mod program;
pub mod retention;
pub mod study;
pub mod survival;

pub use cohorts::{Cell, Figures, K, ProgramMetrics, program_metrics};
pub use program::{ACTIVE_WINDOW_DAYS, ProgramStats, program_stats};
pub use retention::{Retention, RetentionGroup, RetentionQuery, retention};
pub use study::{Study, check_as_of};
pub use survival::{CiTransform, KaplanMeier, LogRank, Observation, SurvivalPoint, kaplan_meier, log_rank};
