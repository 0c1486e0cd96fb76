//! Value types, each validated once by a parse constructor. Commands carry
//! these types, so a command that exists is already well formed; what is left
//! for `decide` are the rules that depend on state.
//!
//! Stored events deserialize through the same validation (`try_from`), so a
//! corrupted payload is a decoding error rather than a silently wrong value.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// Longest short text (names, titles, departments, focus lines), in characters.
pub const SHORT_TEXT_MAX: usize = 200;
/// Longest free text (feedback, notes), in characters.
pub const LONG_TEXT_MAX: usize = 4000;

fn has_control(s: &str, allow_newlines: bool) -> bool {
    s.chars().any(|c| c.is_control() && !(allow_newlines && (c == '\n' || c == '\t' || c == '\r')))
}

/// A trimmed, non-empty, single-line text of at most [`SHORT_TEXT_MAX`] characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ShortText(String);

impl ShortText {
    /// Validates `input` for the named field.
    pub fn parse(field: &'static str, input: &str) -> Result<Self, DomainError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(DomainError::invalid(field, "must not be empty"));
        }
        if s.chars().count() > SHORT_TEXT_MAX {
            return Err(DomainError::invalid(field, format!("must be at most {SHORT_TEXT_MAX} characters")));
        }
        if has_control(s, false) {
            return Err(DomainError::invalid(field, "must not contain control characters"));
        }
        Ok(Self(s.to_owned()))
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ShortText {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse("text", &s)
    }
}

impl From<ShortText> for String {
    fn from(t: ShortText) -> Self {
        t.0
    }
}

impl fmt::Display for ShortText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A trimmed free text of at most [`LONG_TEXT_MAX`] characters; may be empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LongText(String);

impl LongText {
    /// Validates `input` for the named field.
    pub fn parse(field: &'static str, input: &str) -> Result<Self, DomainError> {
        let s = input.trim();
        if s.chars().count() > LONG_TEXT_MAX {
            return Err(DomainError::invalid(field, format!("must be at most {LONG_TEXT_MAX} characters")));
        }
        if has_control(s, true) {
            return Err(DomainError::invalid(field, "must not contain control characters"));
        }
        Ok(Self(s.to_owned()))
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the text is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<String> for LongText {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse("text", &s)
    }
}

impl From<LongText> for String {
    fn from(t: LongText) -> Self {
        t.0
    }
}

/// An e-mail address: one `@`, a non-empty local part, a dotted domain, no
/// spaces, at most 254 characters. Stored lower-cased in the domain part only,
/// since local parts may be case-sensitive.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Validates an address for the named field.
    pub fn parse(field: &'static str, input: &str) -> Result<Self, DomainError> {
        let s = input.trim();
        if s.is_empty() || s.len() > 254 {
            return Err(DomainError::invalid(field, "must be an e-mail address of 1 to 254 characters"));
        }
        let Some((local, domain)) = s.split_once('@') else {
            return Err(DomainError::invalid(field, "must contain '@'"));
        };
        let bad_domain = domain.is_empty()
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..");
        if local.is_empty() || local.len() > 64 || bad_domain {
            return Err(DomainError::invalid(field, "is not a valid e-mail address"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(DomainError::invalid(field, "must not contain spaces"));
        }
        Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    /// The address.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse("email", &s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> Self {
        e.0
    }
}

/// The id a person has in the HRIS; unique across people.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ExternalId(String);

impl ExternalId {
    /// Validates an external id: 1 to 128 visible characters, no spaces.
    pub fn parse(field: &'static str, input: &str) -> Result<Self, DomainError> {
        let s = input.trim();
        if s.is_empty() || s.chars().count() > 128 {
            return Err(DomainError::invalid(field, "must be 1 to 128 characters"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(DomainError::invalid(field, "must not contain spaces or control characters"));
        }
        Ok(Self(s.to_owned()))
    }

    /// The id.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ExternalId {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse("externalId", &s)
    }
}

impl From<ExternalId> for String {
    fn from(e: ExternalId) -> Self {
        e.0
    }
}

macro_rules! bounded_int {
    ($(#[$doc:meta])* $name:ident, $repr:ty, $min:expr, $max:expr, $field:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "i64", into = "i64")]
        pub struct $name($repr);

        impl $name {
            /// Smallest accepted value.
            pub const MIN: $repr = $min;
            /// Largest accepted value.
            pub const MAX: $repr = $max;

            /// Validates a value for the named field.
            pub fn parse(field: &'static str, value: i64) -> Result<Self, DomainError> {
                if value < i64::from(Self::MIN) || value > i64::from(Self::MAX) {
                    return Err(DomainError::invalid(
                        field,
                        format!("must be between {} and {}", Self::MIN, Self::MAX),
                    ));
                }
                <$repr>::try_from(value)
                    .map(Self)
                    .map_err(|_| DomainError::invalid(field, "out of range"))
            }

            /// The value.
            #[must_use]
            pub const fn get(self) -> $repr {
                self.0
            }
        }

        impl TryFrom<i64> for $name {
            type Error = DomainError;
            fn try_from(v: i64) -> Result<Self, Self::Error> {
                Self::parse($field, v)
            }
        }

        impl From<$name> for i64 {
            fn from(v: $name) -> Self {
                i64::from(v.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

bounded_int!(
    /// A career level on the organisation's ladder (1 = most junior).
    Level, u8, 1, 30, "level"
);
bounded_int!(
    /// A rating of one coach trait, 1 (rarely) to 5 (consistently).
    Rating, u8, 1, 5, "rating"
);
bounded_int!(
    /// The length of a held session in minutes.
    Minutes, u16, 1, 600, "minutes"
);
bounded_int!(
    /// Progress towards a goal in percent.
    Percent, u8, 0, 100, "percent"
);
bounded_int!(
    /// The largest level difference a program accepts inside one pair or circle.
    LevelGap, u8, 0, 30, "maxLevelGap"
);
bounded_int!(
    /// Expected days between sessions.
    CadenceDays, u16, 1, 365, "cadenceDays"
);

/// Ratings of the five traits of a good peer coach; each is optional.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ratings {
    /// Understands and shares the other's feelings.
    #[serde(default)]
    pub empathy: Option<Rating>,
    /// Listens to understand, reflects back, does not interrupt.
    #[serde(default)]
    pub active_listening: Option<Rating>,
    /// Asks open questions instead of giving answers.
    #[serde(default)]
    pub curiosity: Option<Rating>,
    /// Gives the other room and time.
    #[serde(default)]
    pub patience: Option<Rating>,
    /// Treats setbacks as things to learn from.
    #[serde(default)]
    pub growth_mindset: Option<Rating>,
}

impl Ratings {
    /// Whether no trait was rated.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.empathy.is_none()
            && self.active_listening.is_none()
            && self.curiosity.is_none()
            && self.patience.is_none()
            && self.growth_mindset.is_none()
    }
}

/// What the members did in a session. A closed list: version
/// [`ACTIVITIES_VERSION`]; adding a value is a new version of the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Activity {
    RolePlay,
    WhatIfScenario,
    EmpathyExercise,
    ShiftingPerspective,
    CollaborativeStorytelling,
    Other,
}

/// The version of the closed [`Activity`] list.
pub const ACTIVITIES_VERSION: u16 = 1;

impl Activity {
    /// Every activity, in list order.
    pub const ALL: [Activity; 6] = [
        Activity::RolePlay,
        Activity::WhatIfScenario,
        Activity::EmpathyExercise,
        Activity::ShiftingPerspective,
        Activity::CollaborativeStorytelling,
        Activity::Other,
    ];
}

/// Who may read a piece of feedback besides its author.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Visibility {
    /// Only the author (a private note, e.g. a draft to discuss later).
    Private,
    /// The author and the recipient.
    Recipient,
    /// The author and the program's coordinators, not the recipient.
    Coordinators,
    /// The author, the recipient and the program's coordinators.
    RecipientAndCoordinators,
}

impl Visibility {
    /// Whether the recipient may read it.
    #[must_use]
    pub fn shared_with_recipient(self) -> bool {
        matches!(self, Self::Recipient | Self::RecipientAndCoordinators)
    }

    /// Whether coordinators may read it.
    #[must_use]
    pub fn shared_with_coordinators(self) -> bool {
        matches!(self, Self::Coordinators | Self::RecipientAndCoordinators)
    }
}

/// Why a program exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Purpose {
    Onboarding,
    GoalSetting,
    SkillBuilding,
    Custom,
}

/// Whether a program forms pairs or circles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GroupKind {
    Pairs,
    Circles,
}

/// The group shape of a program: pairs (always two) or circles of
/// `min_size..=max_size` members.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "StoredGroupFormat")]
pub struct GroupFormat {
    pub kind: GroupKind,
    pub min_size: u8,
    pub max_size: u8,
}

/// The stored shape of a [`GroupFormat`], validated on the way in like a new one.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredGroupFormat {
    kind: GroupKind,
    min_size: i64,
    max_size: i64,
}

impl TryFrom<StoredGroupFormat> for GroupFormat {
    type Error = DomainError;
    fn try_from(f: StoredGroupFormat) -> Result<Self, Self::Error> {
        match f.kind {
            GroupKind::Pairs if (f.min_size, f.max_size) == (2, 2) => Ok(Self::PAIRS),
            GroupKind::Pairs => Err(DomainError::invalid("format", "pairs have exactly two members")),
            GroupKind::Circles => Self::circles(f.min_size, f.max_size),
        }
    }
}

/// The largest circle Tandem accepts; beyond it a circle is a meeting.
pub const MAX_CIRCLE_SIZE: u8 = 12;

impl GroupFormat {
    /// Pairs: exactly two members.
    pub const PAIRS: GroupFormat = GroupFormat { kind: GroupKind::Pairs, min_size: 2, max_size: 2 };

    /// Circles of `min..=max` members (3 ≤ min ≤ max ≤ [`MAX_CIRCLE_SIZE`]).
    pub fn circles(min: i64, max: i64) -> Result<Self, DomainError> {
        let limit = i64::from(MAX_CIRCLE_SIZE);
        if !(3..=limit).contains(&min) {
            return Err(DomainError::invalid("format.minSize", format!("must be between 3 and {limit}")));
        }
        if !(min..=limit).contains(&max) {
            return Err(DomainError::invalid("format.maxSize", format!("must be between minSize and {limit}")));
        }
        Ok(Self {
            kind: GroupKind::Circles,
            min_size: u8::try_from(min).map_err(|_| DomainError::invalid("format.minSize", "out of range"))?,
            max_size: u8::try_from(max).map_err(|_| DomainError::invalid("format.maxSize", "out of range"))?,
        })
    }

    /// A human name of the group kind, for messages.
    #[must_use]
    pub fn noun(&self) -> &'static str {
        match self.kind {
            GroupKind::Pairs => "pair",
            GroupKind::Circles => "circle",
        }
    }
}

/// How a pair came to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FormedBy {
    /// A coordinator or admin put them together.
    Admin,
    /// The members chose each other.
    SelfSelected,
    /// Accepted from a matching suggestion.
    Suggestion,
}

/// A matching score in `0.0..=1.0`, when the pair came from a suggestion.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct MatchScore(f64);

impl MatchScore {
    /// Validates a score.
    pub fn parse(field: &'static str, v: f64) -> Result<Self, DomainError> {
        if v.is_finite() && (0.0..=1.0).contains(&v) {
            Ok(Self(v))
        } else {
            Err(DomainError::invalid(field, "must be between 0 and 1"))
        }
    }

    /// The score.
    #[must_use]
    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for MatchScore {
    type Error = DomainError;
    fn try_from(v: f64) -> Result<Self, Self::Error> {
        Self::parse("matchScore", v)
    }
}

impl From<MatchScore> for f64 {
    fn from(s: MatchScore) -> Self {
        s.0
    }
}

/// Why a person left the organisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LeaveReason {
    Voluntary,
    Involuntary,
    Other,
}

/// Why a pair ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DissolveReason {
    /// The pair reached what it set out to do.
    Completed,
    /// The members did not work well together.
    Mismatch,
    /// A member left the organisation or the program.
    MemberLeft,
    /// The program closed.
    ProgramClosed,
    /// Anything else; see the note.
    Other,
}
