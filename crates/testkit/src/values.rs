//! Validated domain values and dates from literals, for tests that build
//! commands by hand. A literal that does not validate is a bug in the test.

use chrono::{DateTime, NaiveDate, TimeZone as _, Utc};
use tandem_domain::values::{Email, ExternalId, Level, LevelGap, LongText, Minutes, Percent, Rating, ShortText};

pub fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

/// `days` after `date`.
pub fn plus(date: NaiveDate, days: u64) -> NaiveDate {
    date.checked_add_days(chrono::Days::new(days)).expect("date in range")
}

/// `hour` o'clock (UTC) of `date`.
pub fn at(date: NaiveDate, hour: u32) -> DateTime<Utc> {
    Utc.from_utc_datetime(&date.and_hms_opt(hour, 0, 0).expect("valid time"))
}

pub fn st(s: &str) -> ShortText {
    ShortText::parse("text", s).expect("valid short text")
}

pub use self::st as text;

pub fn lt(s: &str) -> LongText {
    LongText::parse("text", s).expect("valid long text")
}

pub use self::lt as long;

pub fn email(s: &str) -> Email {
    Email::parse("email", s).expect("valid email")
}

/// The address of a person called `name` at example.com.
pub fn email_of(name: &str) -> Email {
    email(&format!("{}@example.com", name.to_lowercase().replace(' ', ".")))
}

pub fn ext(s: &str) -> ExternalId {
    ExternalId::parse("externalId", s).expect("valid external id")
}

pub fn level(n: i64) -> Level {
    Level::parse("level", n).expect("valid level")
}

pub fn gap(n: i64) -> LevelGap {
    LevelGap::parse("maxLevelGap", n).expect("valid gap")
}

pub fn rating(n: i64) -> Rating {
    Rating::parse("rating", n).expect("valid rating")
}

pub fn minutes(n: i64) -> Minutes {
    Minutes::parse("minutes", n).expect("valid minutes")
}

pub fn percent(n: i64) -> Percent {
    Percent::parse("percent", n).expect("valid percent")
}
