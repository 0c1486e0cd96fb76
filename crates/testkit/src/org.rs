//! A small organisation built through the API, as a client would: the
//! mutations it uses and a program with four people enrolled and two pairs.

use serde_json::json;

use crate::server::TestServer;

/// What [`org`] built.
pub struct Org {
    pub program: String,
    pub people: Vec<String>,
    pub pairs: Vec<String>,
}

pub const REGISTER: &str =
    "mutation($i: RegisterPersonInput!) { registerPerson(input: $i) { position person { id name } } }";
pub const LAUNCH: &str =
    "mutation($i: LaunchProgramInput!) { launchProgram(input: $i) { position program { id name } } }";
pub const ENROL: &str =
    "mutation($i: EnrolParticipantInput!) { enrolParticipant(input: $i) { position program { id participantCount } } }";
pub const FORM: &str = "mutation($i: FormPairInput!) { formPair(input: $i) { position pair { id status memberIds } } }";
pub const HOLD: &str =
    "mutation($i: HoldSessionInput!) { holdSession(input: $i) { position session { id status activities } } }";
pub const FEEDBACK: &str =
    "mutation($i: GiveFeedbackInput!) { giveFeedback(input: $i) { position feedback { id visibility strengths } } }";

/// The string at `path` of a response's `data`.
fn id_at(data: &serde_json::Value, path: &[&str]) -> String {
    let value = path.iter().fold(data, |v, k| &v[*k]);
    value.as_str().unwrap_or_else(|| panic!("no id at {path:?} in {data:#}")).to_owned()
}

/// Registers `name` as the admin; returns the person's id.
pub async fn register(s: &TestServer, name: &str, level: i32, manager: Option<&str>) -> String {
    let d = s
        .ok(
            &s.admin(),
            REGISTER,
            json!({"i": {"externalId": format!("E-{}", name.replace(' ', "-")), "name": name,
                "email": format!("{}@example.com", name.to_lowercase().replace(' ', ".")),
                "department": "Engineering", "title": "Engineer", "level": level, "managerId": manager,
                "hiredOn": "2020-01-01"}}),
        )
        .await;
    id_at(&d, &["registerPerson", "person", "id"])
}

/// A pairs program, Ada, Bob, Cy and Di enrolled, pairs Ada–Bob and Cy–Di.
pub async fn org(s: &TestServer) -> Org {
    let admin = s.admin();
    let d = s
        .ok(
            &admin,
            LAUNCH,
            json!({"i": {"name": "Onboarding buddies", "purpose": "ONBOARDING", "kind": "PAIRS", "maxLevelGap": 2,
                "cadenceDays": 14, "startsOn": "2024-01-01"}}),
        )
        .await;
    let program = id_at(&d, &["launchProgram", "program", "id"]);
    let mut people = Vec::new();
    for name in ["Ada Lovelace", "Bob Moses", "Cy Young", "Di Prince"] {
        let id = register(s, name, 3, None).await;
        s.ok(&admin, ENROL, json!({"i": {"programId": program, "personId": id, "enrolledOn": "2024-01-02"}})).await;
        people.push(id);
    }
    let mut pairs = Vec::new();
    for members in [[&people[0], &people[1]], [&people[2], &people[3]]] {
        let d = s
            .ok(&admin, FORM, json!({"i": {"programId": program, "memberIds": members, "formedOn": "2024-01-10"}}))
            .await;
        pairs.push(id_at(&d, &["formPair", "pair", "id"]));
    }
    Org { program, people, pairs }
}
