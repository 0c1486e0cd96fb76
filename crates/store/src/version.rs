//! [`ExpectedVersion`]: the optimistic-concurrency check of an append.
//!
//! A module of its own, importing nothing of the crate, because both the
//! values of [`crate::event`] and the errors of [`crate::error`] name it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The version a writer expects a stream to be at: the optimistic-concurrency
/// check of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// No check: append after whatever the stream holds. Still race-safe:
    /// the versions assigned never collide, a racing writer only delays it.
    Any,
    /// The stream must not exist yet (it has no events).
    NoStream,
    /// The stream's last version must be exactly this one (`Exact(0)` is the
    /// same as [`ExpectedVersion::NoStream`]).
    Exact(i32),
}

impl ExpectedVersion {
    /// The version the stream must currently be at, `None` for no check;
    /// "no stream" is version 0.
    pub(crate) fn required(self) -> Option<i32> {
        match self {
            ExpectedVersion::Any => None,
            ExpectedVersion::NoStream => Some(0),
            ExpectedVersion::Exact(version) => Some(version),
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any version"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::Exact(version) => write!(f, "version {version}"),
        }
    }
}
