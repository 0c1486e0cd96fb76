//! Typed identifiers. Every entity id is a UUID (v7 when Tandem mints it, so
//! ids sort by creation time); the newtypes keep a person id from being passed
//! where a pair id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered (v7) id.
            #[must_use]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID (read from storage or from a client).
            #[must_use]
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            /// The underlying UUID.
            #[must_use]
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }
    };
}

id_type!(
    /// A person of the organisation; also the stream id of their person stream.
    PersonId
);
id_type!(
    /// A coaching program; also the stream id of its program stream.
    ProgramId
);
id_type!(
    /// A webhook endpoint; also the stream id of its webhook stream.
    WebhookEndpointId
);
id_type!(
    /// A pair or circle; also the stream id of its pair stream.
    PairId
);
id_type!(
    /// A coaching session inside a pair.
    SessionId
);
id_type!(
    /// A goal set by a member of a pair.
    GoalId
);
id_type!(
    /// One piece of feedback from one member to another.
    FeedbackId
);
