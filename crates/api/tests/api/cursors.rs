//! Cursors of every connection: none carries a name, an e-mail or an
//! external id, and a tampered, truncated or foreign cursor is
//! `BAD_USER_INPUT` naming `after`, never an internal error.

use serde_json::{Value, json};

use crate::support::{self, HOLD, TestServer};

/// Each connection: its query (taking `$after`) and the path to its page.
fn connections(org: &support::Org) -> Vec<(&'static str, String, Vec<&'static str>)> {
    let (program, pair, person) = (&org.program, &org.pairs[0], &org.people[0]);
    let page = "edges { cursor } pageInfo { endCursor }";
    vec![
        ("people", format!("query($after: String) {{ people(first: 1, after: $after) {{ {page} }} }}"), vec!["people"]),
        (
            "programs",
            format!("query($after: String) {{ programs(first: 1, after: $after) {{ {page} }} }}"),
            vec!["programs"],
        ),
        (
            "pairs",
            format!(
                "query($after: String) {{ pairs(programId: \"{program}\", first: 1, after: $after) {{ {page} }} }}"
            ),
            vec!["pairs"],
        ),
        (
            "person pairs",
            format!(
                "query($after: String) {{ person(id: \"{person}\") {{ pairs(first: 1, after: $after) {{ {page} }} }} }}"
            ),
            vec!["person", "pairs"],
        ),
        (
            "program enrolments",
            format!(
                "query($after: String) {{ program(id: \"{program}\") {{ enrolments(first: 1, after: $after) {{ {page} }} }} }}"
            ),
            vec!["program", "enrolments"],
        ),
        (
            "program pairs",
            format!(
                "query($after: String) {{ program(id: \"{program}\") {{ pairs(first: 1, after: $after) {{ {page} }} }} }}"
            ),
            vec!["program", "pairs"],
        ),
        (
            "sessions",
            format!("query($after: String) {{ sessions(pairId: \"{pair}\", first: 1, after: $after) {{ {page} }} }}"),
            vec!["sessions"],
        ),
        (
            "goals",
            format!("query($after: String) {{ goals(pairId: \"{pair}\", first: 1, after: $after) {{ {page} }} }}"),
            vec!["goals"],
        ),
        (
            "feedback",
            format!("query($after: String) {{ feedback(pairId: \"{pair}\", first: 1, after: $after) {{ {page} }} }}"),
            vec!["feedback"],
        ),
        ("events", format!("query($after: String) {{ events(first: 1, after: $after) {{ {page} }} }}"), vec!["events"]),
    ]
}

fn at<'a>(data: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(data, |v, k| &v[*k])
}

#[sqlx::test(migrations = "../../migrations")]
async fn no_cursor_carries_personal_data_and_bad_cursors_are_bad_input(pool: sqlx::PgPool) {
    let s = TestServer::start(pool).await;
    let org = support::org(&s).await;
    let admin = s.admin();
    let ada = s.token(&[tandem_api::auth::Role::Participant], &org.people[0]);
    for n in 0..2 {
        s.ok(&ada, HOLD, json!({"i": {"pairId": org.pairs[0], "minutes": 30, "focus": format!("Focus {n}")}})).await;
        s.ok(
            &ada,
            "mutation($i: SetGoalInput!) { setGoal(input: $i) { position } }",
            json!({"i": {"pairId": org.pairs[0], "title": format!("Goal {n}")}}),
        )
        .await;
        s.ok(
            &ada,
            "mutation($i: GiveFeedbackInput!) { giveFeedback(input: $i) { position } }",
            json!({"i": {"pairId": org.pairs[0], "toId": org.people[1], "strengths": format!("Clear {n}"),
                "visibility": "RECIPIENT"}}),
        )
        .await;
    }
    // Everything personal the org holds, in every case a cursor could use.
    // (Only words that cannot occur in hex digits.)
    let personal = ["Lovelace", "Moses", "Young", "Prince", "example.com", "E-Ada", "E-Bob", "E-Cy", "E-Di"];
    for (name, query, path) in connections(&org) {
        // The author reads their feedback; the admin every other list.
        let token = if name == "feedback" { ada.as_str() } else { admin.as_str() };
        let first = s.ok(token, &query, json!({})).await;
        let page = at(&first, &path);
        let end = page["pageInfo"]["endCursor"].as_str().unwrap_or_else(|| panic!("{name}: a page: {first:#}"));
        for cursor in std::iter::once(end.to_owned())
            .chain(page["edges"].as_array().unwrap().iter().map(|e| e["cursor"].as_str().unwrap().to_owned()))
        {
            let lower = cursor.to_lowercase();
            for p in personal {
                assert!(!lower.contains(&p.to_lowercase()), "{name}: cursor {cursor:?} carries {p:?}");
            }
        }
        // The next page answers.
        let next = s.ok(token, &query, json!({ "after": end })).await;
        assert!(at(&next, &path)["edges"].is_array(), "{name}: {next:#}");

        let mut tampered = end.to_owned().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'z' { b'y' } else { b'z' };
        let bad = [
            String::from_utf8(tampered).unwrap(),
            end[..end.len() / 2].to_owned(),
            String::new(),
            "not a cursor".to_owned(),
            format!("{end}:Ada Lovelace"),
            "\u{0}".to_owned(),
        ];
        for cursor in bad {
            let (status, body) = s.post(Some(token), &query, json!({ "after": cursor })).await;
            assert_eq!(status, 200, "{name} {cursor:?}: {body:#}");
            let error = &body["errors"][0];
            assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{name} {cursor:?}: {body:#}");
            assert_eq!(error["extensions"]["field"], "after", "{name} {cursor:?}: {body:#}");
        }
    }
    // A person id from another list is no people cursor (a pair's id is
    // foreign to the people list).
    let query = &connections(&org)[0].1;
    let (_, body) = s.post(Some(&admin), query, json!({ "after": org.pairs[0] })).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body:#}");
    s.stop().await;
}
