//! The demo generator against a real PostgreSQL: a small organisation is
//! generated through the command path, the report matches the event log,
//! and the log obeys the rules the generator plans for.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use sqlx::PgPool;
use tandem_commands::CommandService;
use tandem_demo::{DemoError, DemoOptions, DemoProgress, generate, history_for_bench};
use tandem_testkit::values::day;
use uuid::Uuid;

fn small() -> DemoOptions {
    DemoOptions { seed: 42, people: 60, months: 2, concurrency: 4, today: day(2025, 3, 1) }
}

fn uuid(v: &Value) -> Uuid {
    v.as_str().unwrap().parse().unwrap()
}

fn date(v: &Value) -> NaiveDate {
    v.as_str().unwrap().parse().unwrap()
}

/// Every event of the log in insertion order.
async fn log(pool: &PgPool) -> Vec<(String, Uuid, Value)> {
    sqlx::query_as("SELECT event_type, stream_id, data FROM events ORDER BY position").fetch_all(pool).await.unwrap()
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_small_organisation_is_generated_under_the_rules(pool: PgPool) {
    let svc = CommandService::from_pool(pool.clone());
    let opts = small();
    let mut ticks: Vec<DemoProgress> = Vec::new();
    let report = generate(&svc, &opts, |p| ticks.push(p)).await.unwrap();

    assert_eq!(report.people, 60, "{report:?}");
    assert_eq!(report.programs, 2, "{report:?}");
    for (kind, n) in [
        ("pairs", report.pairs),
        ("circles", report.circles),
        ("sessions", report.sessions),
        ("feedback", report.feedback),
        ("goals", report.goals),
        ("leavers", report.leavers),
    ] {
        assert!(n > 0, "no {kind}: {report:?}");
    }
    assert!(report.refused <= 2 + report.events / 100, "too many refusals: {report:?}");

    // The report counts what the log holds.
    let by_type: BTreeMap<String, i64> = sqlx::query_as("SELECT event_type, count(*) FROM events GROUP BY event_type")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let count = |t: &str| usize::try_from(by_type.get(t).copied().unwrap_or(0)).unwrap();
    assert_eq!(count("PersonRegistered"), report.people);
    assert_eq!(count("ProgramLaunched"), report.programs);
    assert_eq!(count("PairFormed"), report.pairs + report.circles);
    assert_eq!(count("SessionHeld"), report.sessions);
    assert_eq!(count("FeedbackGiven"), report.feedback);
    assert_eq!(count("GoalSet"), report.goals);
    assert_eq!(count("PersonLeft"), report.leavers);
    assert_eq!(by_type.values().sum::<i64>(), i64::try_from(report.events).unwrap());
    let circles: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'PairFormed' AND data->>'kind' = 'CIRCLES'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(usize::try_from(circles).unwrap(), report.circles);
    // The rest of the history is there too.
    for t in [
        "PersonUpdated",
        "ParticipantEnrolled",
        "SessionScheduled",
        "GoalProgressRecorded",
        "GoalCompleted",
        "PairDissolved",
    ] {
        assert!(count(t) > 0, "no {t}: {by_type:?}");
    }

    // Replay the log: nobody is in two current pairs of one program, dates
    // never precede hire, enrolment or formation, and nothing is dated on
    // or after `today`.
    let today = opts.today;
    let mut hired: BTreeMap<Uuid, NaiveDate> = BTreeMap::new();
    let mut enrolled: BTreeMap<(Uuid, Uuid), NaiveDate> = BTreeMap::new();
    let mut pairs: BTreeMap<Uuid, (Uuid, Vec<Uuid>, NaiveDate)> = BTreeMap::new();
    let mut current: BTreeMap<(Uuid, Uuid), Uuid> = BTreeMap::new();
    for (event_type, stream, data) in log(&pool).await {
        match event_type.as_str() {
            "PersonRegistered" => {
                hired.insert(stream, date(&data["hiredOn"]));
            }
            "ParticipantEnrolled" => {
                let person = uuid(&data["personId"]);
                let on = date(&data["enrolledOn"]);
                assert!(on >= hired[&person] && on < today, "{data}");
                enrolled.insert((stream, person), on);
            }
            "PairFormed" => {
                let program = uuid(&data["programId"]);
                let members: Vec<Uuid> = data["members"].as_array().unwrap().iter().map(uuid).collect();
                let on = date(&data["formedOn"]);
                assert!(on < today, "{data}");
                for m in &members {
                    assert!(on >= enrolled[&(program, *m)], "formed before enrolment: {data}");
                    let before = current.insert((program, *m), stream);
                    assert!(before.is_none(), "{m} in two current pairs of {program}");
                }
                pairs.insert(stream, (program, members, on));
            }
            "PairDissolved" => {
                let (program, members, formed) = &pairs[&stream];
                assert!(date(&data["dissolvedOn"]) >= *formed, "{data}");
                for m in members {
                    assert_eq!(current.remove(&(*program, *m)), Some(stream));
                }
            }
            "SessionHeld" | "FeedbackGiven" => {
                let key = if event_type == "SessionHeld" { "heldAt" } else { "givenAt" };
                let at: DateTime<Utc> = data[key].as_str().unwrap().parse().unwrap();
                let day = at.date_naive();
                assert!(day >= pairs[&stream].2 && day < today, "{data}");
            }
            _ => {}
        }
    }
    // The command service's guard table agrees with the replay.
    let guards: BTreeSet<(Uuid, Uuid, Uuid)> =
        sqlx::query_as("SELECT program_id, person_id, pair_id FROM pair_memberships")
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    let replayed: BTreeSet<(Uuid, Uuid, Uuid)> = current.iter().map(|((g, p), pair)| (*g, *p, *pair)).collect();
    assert_eq!(guards, replayed);

    // Progress ends every phase complete.
    for phase in ["people", "programs", "history"] {
        let last = ticks.iter().rev().find(|p| p.phase == phase).unwrap();
        assert_eq!(last.done, last.total, "{last:?}");
    }

    // A second run on the same database stops at the first registration.
    let again = generate(&svc, &opts, |_| {}).await;
    assert!(matches!(again, Err(DemoError::Refused { command: "RegisterPerson", .. })), "{again:?}");
}

/// Replaces every UUID in `s` by its order of first appearance, so that two
/// plans compare by structure.
fn mask_uuids(s: &str) -> String {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let candidate = s.get(i..i + 36).filter(|c| Uuid::parse_str(c).is_ok() && c.as_bytes()[8] == b'-');
        if let Some(c) = candidate {
            let n = seen.len();
            let k = *seen.entry(c).or_insert(n);
            out.push_str(&format!("<{k}>"));
            i += 36;
        } else {
            let ch = s[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

#[test]
fn the_same_seed_plans_the_same_history() {
    let opts = DemoOptions { people: 120, months: 3, ..small() };
    let a = history_for_bench(&opts).unwrap();
    let b = history_for_bench(&opts).unwrap();
    assert!(a.len() > 500, "{}", a.len());
    assert_eq!(mask_uuids(&format!("{a:?}")), mask_uuids(&format!("{b:?}")));
    let other = history_for_bench(&DemoOptions { seed: 43, ..opts }).unwrap();
    assert_ne!(mask_uuids(&format!("{a:?}")), mask_uuids(&format!("{other:?}")));
}

#[test]
fn options_without_an_organisation_are_refused() {
    for opts in [
        DemoOptions { people: 3, ..small() },
        DemoOptions { months: 0, ..small() },
        DemoOptions { concurrency: 0, ..small() },
    ] {
        assert!(matches!(history_for_bench(&opts), Err(DemoError::Options(_))), "{opts:?}");
    }
}

#[test]
fn tiny_and_long_organisations_are_planned() {
    for (people, months) in [(10, 1), (10, 24), (37, 1), (300, 12)] {
        let commands = history_for_bench(&DemoOptions { people, months, ..small() }).unwrap();
        assert!(commands.len() > people, "{people} people, {months} months: {} commands", commands.len());
    }
}
