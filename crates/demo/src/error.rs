//! The error of the demo generator.

use tandem_commands::CommandError;
use tandem_domain::DomainError;
use thiserror::Error;

/// Why the demo could not be generated. A command the domain refuses inside
/// the history is not an error (it is counted in `DemoReport::refused`);
/// these are the failures that stop the run.
#[derive(Debug, Error)]
pub enum DemoError {
    /// The options make no organisation (too few people, no months …).
    #[error("invalid demo options: {0}")]
    Options(String),
    /// A built-in text failed validation; a bug in the word lists.
    #[error("a built-in demo value is invalid")]
    Value(#[source] DomainError),
    /// A command the rest of the demo depends on (registering a person,
    /// launching a program) was refused, e.g. because the database already
    /// holds a demo organisation with the same external ids.
    #[error("{command} was refused; the demo expects an empty database")]
    Refused {
        command: &'static str,
        #[source]
        source: CommandError,
    },
    /// The command service failed (database, corrupt log).
    #[error("{command} failed")]
    Command {
        command: &'static str,
        #[source]
        source: CommandError,
    },
    /// A worker task panicked or was cancelled.
    #[error("a demo worker task failed")]
    Task(#[source] tokio::task::JoinError),
}

impl From<DomainError> for DemoError {
    fn from(e: DomainError) -> Self {
        Self::Value(e)
    }
}
