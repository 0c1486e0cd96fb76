//! GraphQL enums of the domain's closed lists, with conversions from the
//! domain and read-model values. Shared by the query types and the event
//! feed, so each enum exists once in the schema.

use async_graphql::Enum;
use tandem_domain::values as v;

macro_rules! mirror_enum {
    ($(#[$doc:meta])* $name:ident from $domain:path { $($(#[$vdoc:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl From<$domain> for $name {
            fn from(v: $domain) -> Self {
                match v {
                    $(<$domain>::$variant => Self::$variant),+
                }
            }
        }

        impl From<$name> for $domain {
            fn from(v: $name) -> Self {
                match v {
                    $($name::$variant => <$domain>::$variant),+
                }
            }
        }
    };
}

mirror_enum!(
    /// What the members did in a session (a closed list, version 1).
    Activity from v::Activity {
        /// Acting out a situation, one member playing the other party.
        RolePlay,
        /// Exploring "what if …" variations of a situation.
        WhatIfScenario,
        /// An exercise in understanding the other's feelings.
        EmpathyExercise,
        /// Looking at a situation from another person's point of view.
        ShiftingPerspective,
        /// Building a story together to explore a theme.
        CollaborativeStorytelling,
        /// Anything else.
        Other,
    }
);

mirror_enum!(
    /// Who may read a piece of feedback besides its author.
    Visibility from v::Visibility {
        /// Only the author.
        Private,
        /// The author and the recipient.
        Recipient,
        /// The author and the program's coordinators.
        Coordinators,
        /// The author, the recipient and the program's coordinators.
        RecipientAndCoordinators,
    }
);

mirror_enum!(
    /// Why a program exists.
    Purpose from v::Purpose {
        /// Helping newcomers settle in.
        Onboarding,
        /// Setting and following up goals.
        GoalSetting,
        /// Building skills together.
        SkillBuilding,
        /// Anything else.
        Custom,
    }
);

mirror_enum!(
    /// Whether a program forms pairs or circles.
    GroupKind from v::GroupKind {
        /// Exactly two members.
        Pairs,
        /// Small groups of three or more.
        Circles,
    }
);

mirror_enum!(
    /// How a pair came to be.
    FormedBy from v::FormedBy {
        /// A coordinator or admin put them together.
        Admin,
        /// The members chose each other.
        SelfSelected,
        /// Accepted from a matching suggestion.
        Suggestion,
    }
);

mirror_enum!(
    /// Why a person left the organisation.
    LeaveReason from v::LeaveReason {
        /// They chose to leave.
        Voluntary,
        /// The organisation ended the employment.
        Involuntary,
        /// Anything else.
        Other,
    }
);

mirror_enum!(
    /// Why a pair ended.
    DissolveReason from v::DissolveReason {
        /// The pair reached what it set out to do.
        Completed,
        /// The members did not work well together.
        Mismatch,
        /// A member left the organisation or the program.
        MemberLeft,
        /// The program closed.
        ProgramClosed,
        /// Anything else.
        Other,
    }
);

mirror_enum!(
    /// Whether a pair is running.
    PairStatus from tandem_domain::pair::PairStatus {
        /// Meeting and working.
        Active,
        /// On a break; sessions wait until it resumes.
        Paused,
        /// Ended; nothing more happens in it.
        Dissolved,
    }
);

mirror_enum!(
    /// Where a session stands.
    SessionStatus from tandem_projections::read_models::pairs::SessionStatus {
        /// Planned, not yet held.
        Scheduled,
        /// It took place.
        Held,
        /// It will not take place.
        Cancelled,
    }
);

mirror_enum!(
    /// Where a goal stands.
    GoalStatus from tandem_projections::read_models::pairs::GoalStatus {
        /// Being worked on.
        Open,
        /// Reached.
        Completed,
        /// Given up.
        Abandoned,
    }
);

mirror_enum!(
    /// Whether a program runs.
    ProgramStatus from tandem_projections::read_models::programs::ProgramStatus {
        /// Running: people can enrol and pairs can form.
        Open,
        /// Ended.
        Closed,
    }
);
