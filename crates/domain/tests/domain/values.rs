//! Value parsing: every value type refuses what it must, naming the field.

use tandem_domain::values::{
    CadenceDays, Email, ExternalId, GroupFormat, GroupKind, LONG_TEXT_MAX, Level, LevelGap, LongText, MAX_CIRCLE_SIZE,
    MatchScore, Minutes, Percent, Rating, Ratings, SHORT_TEXT_MAX, ShortText, Visibility,
};
use tandem_domain::{DomainError, ErrorKind};

use crate::support::rating;

#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(result: Result<T, DomainError>, field: &str) {
    match result {
        Ok(v) => panic!("expected invalid {field}, got {v:?}"),
        Err(e) => {
            assert!(matches!(e, DomainError::InvalidInput { .. }), "{e:?}");
            assert_eq!(e.field(), Some(field));
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert_eq!(e.code(), "INVALID_INPUT");
        }
    }
}

#[test]
fn short_text_is_trimmed_and_bounded() {
    assert_eq!(ShortText::parse("name", "  Ada  ").unwrap().as_str(), "Ada");
    assert_invalid(ShortText::parse("name", ""), "name");
    assert_invalid(ShortText::parse("name", " \t "), "name");
    let longest = "é".repeat(SHORT_TEXT_MAX);
    assert_eq!(ShortText::parse("name", &longest).unwrap().as_str(), longest);
    assert_invalid(ShortText::parse("title", &"x".repeat(SHORT_TEXT_MAX + 1)), "title");
    assert_invalid(ShortText::parse("name", "Ada\nLovelace"), "name");
    assert_invalid(ShortText::parse("name", "Ada\u{7}"), "name");
    assert_invalid(ShortText::parse("focus", "a\tb"), "focus");
}

#[test]
fn long_text_may_be_empty_and_span_lines() {
    assert!(LongText::parse("notes", "   ").unwrap().is_empty());
    assert_eq!(LongText::parse("notes", "one\ntwo\tthree\r\n").unwrap().as_str(), "one\ntwo\tthree");
    assert!(LongText::parse("notes", &"x".repeat(LONG_TEXT_MAX)).is_ok());
    assert_invalid(LongText::parse("notes", &"x".repeat(LONG_TEXT_MAX + 1)), "notes");
    assert_invalid(LongText::parse("notes", "nul\u{0}byte"), "notes");
    assert_invalid(LongText::parse("notes", "escape \u{1b}[31m"), "notes");
}

#[test]
fn email_lower_cases_the_domain_only() {
    assert_eq!(Email::parse("email", " Ada.L@Example.COM ").unwrap().as_str(), "Ada.L@example.com");
    for bad in [
        "",
        "ada",
        "@example.com",
        "ada@",
        "ada@example",
        "ada@.example.com",
        "ada@example.com.",
        "ada@example..com",
        "ada@b@example.com",
        "ada lovelace@example.com",
        "ada@exa mple.com",
    ] {
        assert_invalid(Email::parse("email", bad), "email");
    }
    let long_local = format!("{}@example.com", "a".repeat(65));
    assert_invalid(Email::parse("email", &long_local), "email");
    let too_long = format!("a@{}.com", "b".repeat(251));
    assert_invalid(Email::parse("email", &too_long), "email");
}

#[test]
fn external_id_has_no_spaces() {
    assert_eq!(ExternalId::parse("externalId", " HR-42 ").unwrap().as_str(), "HR-42");
    assert_invalid(ExternalId::parse("externalId", ""), "externalId");
    assert_invalid(ExternalId::parse("externalId", "HR 42"), "externalId");
    assert_invalid(ExternalId::parse("externalId", &"x".repeat(129)), "externalId");
    assert!(ExternalId::parse("externalId", &"x".repeat(128)).is_ok());
}

#[test]
fn bounded_numbers_refuse_out_of_range() {
    assert_eq!(Level::parse("level", 1).unwrap().get(), 1);
    assert_eq!(Level::parse("level", 30).unwrap().get(), 30);
    assert_invalid(Level::parse("level", 0), "level");
    assert_invalid(Level::parse("level", 31), "level");
    assert_invalid(Level::parse("level", -1), "level");

    assert!(Rating::parse("empathy", 1).is_ok() && Rating::parse("empathy", 5).is_ok());
    assert_invalid(Rating::parse("empathy", 0), "empathy");
    assert_invalid(Rating::parse("empathy", 6), "empathy");

    assert!(Minutes::parse("minutes", 1).is_ok() && Minutes::parse("minutes", 600).is_ok());
    assert_invalid(Minutes::parse("minutes", 0), "minutes");
    assert_invalid(Minutes::parse("minutes", 601), "minutes");
    assert_invalid(Minutes::parse("minutes", i64::MAX), "minutes");

    assert!(Percent::parse("percent", 0).is_ok() && Percent::parse("percent", 100).is_ok());
    assert_invalid(Percent::parse("percent", -1), "percent");
    assert_invalid(Percent::parse("percent", 101), "percent");

    assert!(LevelGap::parse("maxLevelGap", 0).is_ok() && LevelGap::parse("maxLevelGap", 30).is_ok());
    assert_invalid(LevelGap::parse("maxLevelGap", -1), "maxLevelGap");
    assert_invalid(LevelGap::parse("maxLevelGap", 31), "maxLevelGap");

    assert!(CadenceDays::parse("cadenceDays", 365).is_ok());
    assert_invalid(CadenceDays::parse("cadenceDays", 0), "cadenceDays");
    assert_invalid(CadenceDays::parse("cadenceDays", 366), "cadenceDays");

    // The serde path names the value's own field.
    assert_invalid(Level::try_from(99), "level");
    assert_invalid(Rating::try_from(9), "rating");
}

#[test]
fn circle_format_bounds() {
    let f = GroupFormat::circles(3, MAX_CIRCLE_SIZE.into()).unwrap();
    assert_eq!((f.kind, f.min_size, f.max_size), (GroupKind::Circles, 3, MAX_CIRCLE_SIZE));
    assert_eq!(f.noun(), "circle");
    assert_eq!(GroupFormat::circles(4, 4).unwrap().max_size, 4);
    assert_invalid(GroupFormat::circles(2, 4), "format.minSize");
    assert_invalid(GroupFormat::circles(13, 13), "format.minSize");
    assert_invalid(GroupFormat::circles(-3, 4), "format.minSize");
    assert_invalid(GroupFormat::circles(5, 4), "format.maxSize");
    assert_invalid(GroupFormat::circles(3, 13), "format.maxSize");
    assert_eq!((GroupFormat::PAIRS.min_size, GroupFormat::PAIRS.max_size), (2, 2));
    assert_eq!(GroupFormat::PAIRS.noun(), "pair");
}

#[test]
fn match_score_is_a_finite_fraction() {
    assert!(MatchScore::parse("matchScore", 0.0).is_ok());
    assert!((MatchScore::parse("matchScore", 1.0).unwrap().get() - 1.0).abs() < f64::EPSILON);
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.01, 1.01] {
        assert_invalid(MatchScore::parse("matchScore", bad), "matchScore");
    }
}

#[test]
fn ratings_and_visibility() {
    assert!(Ratings::default().is_empty());
    assert!(!Ratings { patience: Some(rating(3)), ..Ratings::default() }.is_empty());
    assert!(!Visibility::Private.shared_with_recipient() && !Visibility::Private.shared_with_coordinators());
    assert!(Visibility::Recipient.shared_with_recipient() && !Visibility::Recipient.shared_with_coordinators());
    assert!(!Visibility::Coordinators.shared_with_recipient() && Visibility::Coordinators.shared_with_coordinators());
    let both = Visibility::RecipientAndCoordinators;
    assert!(both.shared_with_recipient() && both.shared_with_coordinators());
}
