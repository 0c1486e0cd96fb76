//! The SCIM User document of a person, and the generic JSON helpers the
//! filter, the PATCH and the attribute selection share.
//!
//! A person's document holds exactly what the `Schemas` endpoint lists (see
//! [`crate::discovery`]). Two placeholders of the domain are shown as
//! absence: a person always has a department and a title in Tandem, so one
//! provisioned without them gets [`UNASSIGNED`], which the document omits
//! (and a PATCH `remove` restores).
//!
//! Attribute names are matched without regard to case (RFC 7643 2.1), and
//! an extension attribute may be named by its full URN path
//! (`urn:…:enterprise:2.0:User:department`) or, leniently, by its bare name.

use chrono::SecondsFormat;
use serde_json::{Map, Value, json};
use tandem_projections::queries::PersonView;

use crate::discovery::{ENTERPRISE_SCHEMA, TANDEM_SCHEMA, USER_SCHEMA};

/// The department or title of a person provisioned without one; shown in
/// SCIM as absence.
pub const UNASSIGNED: &str = "Unassigned";

/// The weak ETag of a stream version, as `meta.version` and the `ETag`
/// header carry it.
#[must_use]
pub fn etag(version: i32) -> String {
    format!("W/\"{version}\"")
}

/// The address of a user resource.
#[must_use]
pub fn user_location(base: &str, id: impl std::fmt::Display) -> String {
    format!("{base}/Users/{id}")
}

/// A person as a SCIM User: the person as the read model has them, and the
/// client's `externalId` (RFC 7643 3.1), which the SCIM server keeps beside
/// the person (see `migrations/0011_scim_external_ids.sql`).
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub person: PersonView,
    pub external_id: Option<String>,
    /// Changes of `external_id` so far (0: never set).
    pub revision: i32,
}

impl User {
    /// A user with no externalId ever set.
    #[must_use]
    pub fn of(person: PersonView) -> Self {
        Self { person, external_id: None, revision: 0 }
    }

    /// The weak ETag of the user: the person's stream version, and the
    /// externalId's revision once it has one.
    #[must_use]
    pub fn etag(&self) -> String {
        if self.revision == 0 {
            etag(self.person.version)
        } else {
            format!("W/\"{}.{}\"", self.person.version, self.revision)
        }
    }
}

impl std::ops::Deref for User {
    type Target = PersonView;
    fn deref(&self) -> &PersonView {
        &self.person
    }
}

/// The User document of `u`. `base` is the SCIM base URL (…/scim/v2).
#[must_use]
pub fn user_document(u: &User, base: &str) -> Value {
    let p = &u.person;
    let mut doc = Map::new();
    let mut schemas = vec![json!(USER_SCHEMA)];
    doc.insert("id".into(), json!(p.person_id.to_string()));
    if let Some(e) = &u.external_id {
        doc.insert("externalId".into(), json!(e));
    }
    doc.insert("userName".into(), json!(p.external_id));
    // A person provisioned without a name is named by their userName in
    // Tandem (a name is required there); SCIM shows that as no displayName.
    if let Some(n) = p.name.as_ref().filter(|n| Some(*n) != p.external_id.as_ref()) {
        doc.insert("displayName".into(), json!(n));
    }
    if p.title != UNASSIGNED {
        doc.insert("title".into(), json!(p.title));
    }
    doc.insert("active".into(), json!(p.left_on.is_none()));
    if let Some(e) = &p.email {
        doc.insert("emails".into(), json!([{ "value": e }]));
    }
    let mut enterprise = Map::new();
    if p.department != UNASSIGNED {
        enterprise.insert("department".into(), json!(p.department));
    }
    if let Some(m) = p.manager_id {
        enterprise.insert("manager".into(), json!({ "value": m.to_string(), "$ref": user_location(base, m) }));
    }
    if !enterprise.is_empty() {
        schemas.push(json!(ENTERPRISE_SCHEMA));
        doc.insert(ENTERPRISE_SCHEMA.into(), Value::Object(enterprise));
    }
    let mut tandem = Map::new();
    tandem.insert("level".into(), json!(p.level.to_string()));
    if let Some(l) = &p.location {
        tandem.insert("location".into(), json!(l));
    }
    schemas.push(json!(TANDEM_SCHEMA));
    doc.insert(TANDEM_SCHEMA.into(), Value::Object(tandem));
    doc.insert("schemas".into(), Value::Array(schemas));
    doc.insert(
        "meta".into(),
        json!({
            "resourceType": "User",
            "lastModified": p.updated_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            "version": u.etag(),
            "location": user_location(base, p.person_id),
        }),
    );
    Value::Object(doc)
}

/// The extension URNs a bare attribute name may live under, in the order
/// they are searched.
pub const EXTENSIONS: [&str; 2] = [ENTERPRISE_SCHEMA, TANDEM_SCHEMA];

/// The key of `obj` equal to `name` without regard to case.
#[must_use]
pub fn find_key<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a String> {
    obj.keys().find(|k| k.eq_ignore_ascii_case(name))
}

/// `obj[name]`, matching the key without regard to case.
#[must_use]
pub fn get_ci<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    find_key(obj, name).and_then(|k| obj.get(k))
}

/// Where an attribute lives: its container (`None`: the core document, or
/// an extension URN) and its canonical spelling when known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    pub container: Option<&'static str>,
    pub name: String,
}

/// Splits a full URN attribute path (`urn:…:User:department`) into the
/// schema and the attribute; a bare name stays as it is.
#[must_use]
pub fn split_urn(path: &str) -> (Option<&'static str>, &str) {
    for urn in [USER_SCHEMA, ENTERPRISE_SCHEMA, TANDEM_SCHEMA] {
        if path.len() > urn.len()
            && path[..urn.len()].eq_ignore_ascii_case(urn)
            && path.as_bytes().get(urn.len()) == Some(&b':')
        {
            let rest = &path[urn.len() + 1..];
            return (if urn == USER_SCHEMA { None } else { Some(urn) }, rest);
        }
    }
    (None, path)
}

/// The canonical URN for `uri` when it is one of ours.
#[must_use]
pub fn known_urn(uri: &str) -> Option<&'static str> {
    [USER_SCHEMA, ENTERPRISE_SCHEMA, TANDEM_SCHEMA].into_iter().find(|u| u.eq_ignore_ascii_case(uri))
}

/// Locates attribute `name` (optionally under `uri`) in `doc`: under the
/// URN when given; else in the core document when present there or known
/// to be core; else in the first extension holding it or defining it.
#[must_use]
pub fn locate(doc: &Map<String, Value>, uri: Option<&str>, name: &str) -> Option<Located> {
    if let Some(uri) = uri {
        let urn = known_urn(uri)?;
        return Some(Located { container: (urn != USER_SCHEMA).then_some(urn), name: name.to_owned() });
    }
    if find_key(doc, name).is_some() || is_core(name) {
        return Some(Located { container: None, name: name.to_owned() });
    }
    for urn in EXTENSIONS {
        let holds = doc.get(urn).and_then(Value::as_object).is_some_and(|o| find_key(o, name).is_some());
        if holds || defined_in(urn, name) {
            return Some(Located { container: Some(urn), name: name.to_owned() });
        }
    }
    None
}

const CORE: &[&str] =
    &["id", "externalId", "userName", "displayName", "name", "title", "active", "emails", "meta", "schemas"];

fn is_core(name: &str) -> bool {
    CORE.iter().any(|c| c.eq_ignore_ascii_case(name))
}

fn defined_in(urn: &str, name: &str) -> bool {
    let names: &[&str] = if urn == ENTERPRISE_SCHEMA {
        &["department", "manager", "employeeNumber", "division", "organization", "costCenter"]
    } else {
        &["level", "location", "hireDate", "terminationDate"]
    };
    names.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// The object holding `located` in `doc`, if it exists.
#[must_use]
pub fn container<'a>(doc: &'a Map<String, Value>, located: &Located) -> Option<&'a Map<String, Value>> {
    match located.container {
        None => Some(doc),
        Some(urn) => get_ci(doc, urn).and_then(Value::as_object),
    }
}

/// The object holding `located` in `doc`, created when missing.
pub fn container_mut<'a>(doc: &'a mut Map<String, Value>, located: &Located) -> &'a mut Map<String, Value> {
    match located.container {
        None => doc,
        Some(urn) => {
            let key = find_key(doc, urn).cloned().unwrap_or_else(|| urn.to_owned());
            let slot = doc.entry(key).or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            match slot {
                Value::Object(o) => o,
                // Made an object just above.
                _ => unreachable!("slot was just made an object"),
            }
        }
    }
}
