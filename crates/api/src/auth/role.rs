//! [`Role`]: what a caller may do, as granted by the token's `roles` claim.
//!
//! The wire form is the lowercase name (`admin`, …) in tokens, on the
//! command line (`tandem token --role`) and in event metadata.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::AuthError;

/// A role Tandem knows. The derived order (declaration order) is the order
/// [`Principal::roles`](super::Principal::roles) is sorted in; the priority
/// for event metadata is [`Role::precedence`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs the installation: everything, including erasure.
    Admin,
    /// Runs coaching programs; sees aggregates and what was shared with them.
    Coordinator,
    /// A person in a program; the token's subject is their person id.
    Participant,
    /// A machine client syncing people from an HR system.
    Integrator,
    /// Reads the pseudonymous event feed and metrics; never names or emails.
    Analyst,
}

impl Role {
    /// Every role, in declaration order.
    pub const ALL: [Self; 5] = [Self::Admin, Self::Coordinator, Self::Participant, Self::Integrator, Self::Analyst];

    /// The lowercase wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Coordinator => "coordinator",
            Self::Participant => "participant",
            Self::Integrator => "integrator",
            Self::Analyst => "analyst",
        }
    }

    /// Which role speaks for a principal holding several when one must be
    /// recorded (event metadata): lower wins. The most powerful role comes
    /// first so an audit trail never understates what an actor could do;
    /// participant comes last because any other role held beside it is the
    /// capacity the action was more likely taken in.
    #[must_use]
    pub const fn precedence(self) -> u8 {
        match self {
            Self::Admin => 0,
            Self::Coordinator => 1,
            Self::Integrator => 2,
            Self::Analyst => 3,
            Self::Participant => 4,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = AuthError;

    /// Parses the exact lowercase name: role names are identifiers, and
    /// accepting `Admin` here but not in a token would be inconsistent.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| AuthError::UnknownRole { name: s.to_owned() })
    }
}
