//! Reading a User document a client sent (POST, PUT, or the result of a
//! PATCH) into the values Tandem keeps, leniently where real clients differ
//! from the RFC and strictly where a value would be wrong:
//! - booleans may be JSON booleans or the strings `"True"`/`"false"` (any
//!   case), as Microsoft Entra ID sends them;
//! - `manager` may be an object `{ "value": id }` or a bare string;
//! - attribute names match without regard to case, and extension attributes
//!   may sit under their URN object or as full URN keys at the top level;
//! - attributes Tandem does not keep are ignored (RFC 7644 3.3);
//! - a value of the wrong type for an attribute Tandem keeps is refused with
//!   `invalidValue` naming the attribute.

use chrono::NaiveDate;
use serde_json::{Map, Value};

use crate::discovery::{ENTERPRISE_SCHEMA, TANDEM_SCHEMA};
use crate::error::{HrisError, Result};
use crate::resource::{find_key, get_ci, split_urn};

/// What the client says about the manager.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ManagerInput {
    /// Not mentioned, or explicitly cleared: no manager.
    #[default]
    None,
    /// A person id, or a userName to look up.
    Ref(String),
}

/// The values of a User document that Tandem keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInput {
    pub user_name: String,
    /// The client's own id of the user (`externalId`), case-exact.
    pub external_id: Option<String>,
    /// `displayName`, else composed from `name`.
    pub display_name: Option<String>,
    pub title: Option<String>,
    /// `None` when absent (a new user is active).
    pub active: Option<bool>,
    pub email: Option<String>,
    pub department: Option<String>,
    pub manager: ManagerInput,
    pub level: Option<i64>,
    pub location: Option<String>,
    pub hire_date: Option<NaiveDate>,
    /// The value of the configured termination-date attribute.
    pub termination_date: Option<NaiveDate>,
}

/// Moves top-level keys that are full URN paths (`urn:…:User:department`)
/// into their extension object, so that every reader finds one shape.
pub fn normalize(doc: &mut Map<String, Value>) {
    let keys: Vec<String> = doc.keys().filter(|k| split_urn(k).0.is_some()).cloned().collect();
    for key in keys {
        let (Some(urn), attr) = split_urn(&key) else { continue };
        let attr = attr.to_owned();
        if let Some(v) = doc.remove(&key) {
            let target = find_key(doc, urn).cloned().unwrap_or_else(|| urn.to_owned());
            let slot = doc.entry(target).or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(o) = slot {
                o.insert(attr, v);
            }
        }
    }
}

fn string(obj: &Map<String, Value>, name: &str, attribute: &str) -> Result<Option<String>> {
    match get_ci(obj, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(_) => Err(HrisError::invalid(attribute, "must be a string")),
    }
}

/// A boolean, or a string spelling one in any case.
///
/// # Errors
/// [`HrisError::InvalidValue`] for anything else.
pub fn boolean(v: &Value, attribute: &str) -> Result<Option<bool>> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Ok(Some(true)),
        Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Ok(Some(false)),
        _ => Err(HrisError::invalid(attribute, "must be a boolean")),
    }
}

/// A date from `YYYY-MM-DD` or an RFC 3339 date-time (its UTC date).
///
/// # Errors
/// [`HrisError::InvalidValue`] for anything else.
pub fn date(v: &Value, attribute: &str) -> Result<Option<NaiveDate>> {
    let s = match v {
        Value::Null => return Ok(None),
        Value::String(s) if s.trim().is_empty() => return Ok(None),
        Value::String(s) => s.trim(),
        _ => return Err(HrisError::invalid(attribute, "must be a date (YYYY-MM-DD) or dateTime")),
    };
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(Some(d));
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| Some(t.naive_utc().date()))
        .map_err(|_| HrisError::invalid(attribute, "must be a date (YYYY-MM-DD) or dateTime"))
}

fn email(doc: &Map<String, Value>) -> Result<Option<String>> {
    let emails = match get_ci(doc, "emails") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(HrisError::invalid("emails", "must be a list of {\"value\": address}")),
    };
    let mut first = None;
    let mut work = None;
    for e in emails {
        let Value::Object(o) = e else {
            return Err(HrisError::invalid("emails", "each address must be an object {\"value\": address}"));
        };
        let Some(value) = string(o, "value", "emails.value")? else { continue };
        let primary = get_ci(o, "primary").map(|p| boolean(p, "emails.primary")).transpose()?.flatten();
        if primary == Some(true) {
            return Ok(Some(value));
        }
        let is_work = string(o, "type", "emails.type")?.is_some_and(|t| t.eq_ignore_ascii_case("work"));
        if is_work && work.is_none() {
            work = Some(value.clone());
        }
        first.get_or_insert(value);
    }
    Ok(work.or(first))
}

fn display_name(doc: &Map<String, Value>) -> Result<Option<String>> {
    if let Some(d) = string(doc, "displayName", "displayName")? {
        return Ok(Some(d));
    }
    let Some(name) = get_ci(doc, "name") else { return Ok(None) };
    let Value::Object(n) = name else {
        return if name.is_null() { Ok(None) } else { Err(HrisError::invalid("name", "must be an object")) };
    };
    if let Some(f) = string(n, "formatted", "name.formatted")? {
        return Ok(Some(f));
    }
    let parts: Vec<String> = [string(n, "givenName", "name.givenName")?, string(n, "familyName", "name.familyName")?]
        .into_iter()
        .flatten()
        .collect();
    Ok((!parts.is_empty()).then(|| parts.join(" ")))
}

fn manager(ext: Option<&Map<String, Value>>) -> Result<ManagerInput> {
    let Some(v) = ext.and_then(|e| get_ci(e, "manager")) else { return Ok(ManagerInput::None) };
    let id = match v {
        Value::Null => None,
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Object(o) => string(o, "value", "manager.value")?,
        // Entra sends `[{"value": id}]` in some flows.
        Value::Array(a) if a.len() <= 1 => match a.first() {
            None => None,
            Some(Value::Object(o)) => string(o, "value", "manager.value")?,
            Some(Value::String(s)) => Some(s.trim().to_owned()),
            Some(_) => return Err(HrisError::invalid("manager", "must be {\"value\": id} or an id")),
        },
        _ => return Err(HrisError::invalid("manager", "must be {\"value\": id} or an id")),
    };
    Ok(id.filter(|s| !s.is_empty()).map_or(ManagerInput::None, ManagerInput::Ref))
}

fn level(ext: Option<&Map<String, Value>>) -> Result<Option<i64>> {
    match ext.and_then(|e| get_ci(e, "level")) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            n.as_i64().map(Some).ok_or_else(|| HrisError::invalid("level", "must be a whole number"))
        }
        Some(Value::String(s)) => {
            s.trim().parse().map(Some).map_err(|_| HrisError::invalid("level", "must be a whole number"))
        }
        Some(_) => Err(HrisError::invalid("level", "must be a whole number")),
    }
}

/// Reads `doc` (normalized with [`normalize`] first). `termination_path` is
/// the configured attribute holding the termination date.
///
/// # Errors
/// [`HrisError::InvalidValue`] for a missing `userName` or a value of the
/// wrong type.
pub fn read(doc: &Map<String, Value>, termination_path: &str) -> Result<UserInput> {
    let user_name =
        string(doc, "userName", "userName")?.ok_or_else(|| HrisError::invalid("userName", "is required"))?;
    let enterprise = get_ci(doc, ENTERPRISE_SCHEMA).and_then(Value::as_object);
    let tandem = get_ci(doc, TANDEM_SCHEMA).and_then(Value::as_object);
    let active = get_ci(doc, "active").map(|v| boolean(v, "active")).transpose()?.flatten();
    let (urn, attr) = split_urn(termination_path);
    let holder = match urn {
        Some(u) => get_ci(doc, u).and_then(Value::as_object),
        None => Some(doc),
    };
    let termination_date =
        holder.and_then(|h| get_ci(h, attr)).map(|v| date(v, termination_path)).transpose()?.flatten();
    let external_id = string(doc, "externalId", "externalId")?;
    if let Some(e) = &external_id {
        tandem_domain::values::ShortText::parse("externalId", e)
            .map_err(|_| HrisError::invalid("externalId", "must be one line of at most 200 characters"))?;
    }
    Ok(UserInput {
        user_name,
        external_id,
        display_name: display_name(doc)?,
        title: string(doc, "title", "title")?,
        active,
        email: email(doc)?,
        department: enterprise.map(|e| string(e, "department", "department")).transpose()?.flatten(),
        manager: manager(enterprise)?,
        level: level(tandem)?,
        location: tandem.map(|t| string(t, "location", "location")).transpose()?.flatten(),
        hire_date: tandem.and_then(|t| get_ci(t, "hireDate")).map(|v| date(v, "hireDate")).transpose()?.flatten(),
        termination_date,
    })
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use serde_json::json;

    const TERMINATION: &str = "urn:ietf:params:scim:schemas:extension:tandem:2.0:User:terminationDate";

    fn read_json(v: Value) -> Result<UserInput> {
        let mut doc = v.as_object().cloned().unwrap_or_default();
        normalize(&mut doc);
        read(&doc, TERMINATION)
    }

    #[test]
    fn entra_shapes() {
        let u = read_json(json!({
            "UserName": "ada@contoso.com",
            "active": "False",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"type": "home", "value": "ada@home.example"}, {"type": "work", "value": "ada@contoso.com"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Research",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager": "0190aaaa-0000-7000-8000-000000000001",
            "urn:ietf:params:scim:schemas:extension:tandem:2.0:User:terminationDate": "2026-03-31",
            "phoneNumbers": [{"value": "+1"}],
        }))
        .unwrap();
        assert_eq!(u.user_name, "ada@contoso.com");
        assert_eq!(u.active, Some(false));
        assert_eq!(u.display_name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(u.email.as_deref(), Some("ada@contoso.com"), "the work address wins over the first");
        assert_eq!(u.department.as_deref(), Some("Research"));
        assert_eq!(u.manager, ManagerInput::Ref("0190aaaa-0000-7000-8000-000000000001".into()));
        assert_eq!(u.termination_date, NaiveDate::from_ymd_opt(2026, 3, 31));
    }

    #[test]
    fn okta_shapes() {
        let u = read_json(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "bob@example.com",
            "displayName": "Bob",
            "active": true,
            "emails": [{"primary": "true", "value": "bob@example.com", "type": "home"}, {"type": "work", "value": "b@w.example"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "alice@example.com"}},
            "urn:ietf:params:scim:schemas:extension:tandem:2.0:User": {"level": "3", "hireDate": "2024-01-15T00:00:00Z"},
        }))
        .unwrap();
        assert_eq!(u.email.as_deref(), Some("bob@example.com"), "primary wins");
        assert_eq!(u.manager, ManagerInput::Ref("alice@example.com".into()));
        assert_eq!(u.level, Some(3));
        assert_eq!(u.hire_date, NaiveDate::from_ymd_opt(2024, 1, 15));
    }

    #[test]
    fn refusals_name_the_attribute() {
        let e = read_json(json!({"displayName": "x"})).unwrap_err();
        assert!(e.to_string().starts_with("userName"), "{e}");
        let e = read_json(json!({"userName": "x", "active": "maybe"})).unwrap_err();
        assert!(e.to_string().starts_with("active"), "{e}");
        let e = read_json(json!({"userName": "x", "emails": "a@b.c"})).unwrap_err();
        assert!(e.to_string().starts_with("emails"), "{e}");
        let e = read_json(json!({"userName": "x", "title": 3})).unwrap_err();
        assert!(e.to_string().starts_with("title"), "{e}");
    }

    #[test]
    fn manager_forms() {
        let m = |v: Value| {
            read_json(
                json!({"userName": "x", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": v}}),
            )
            .unwrap()
            .manager
        };
        assert_eq!(m(json!("abc")), ManagerInput::Ref("abc".into()));
        assert_eq!(m(json!({"value": "abc"})), ManagerInput::Ref("abc".into()));
        assert_eq!(m(json!([{"value": "abc"}])), ManagerInput::Ref("abc".into()));
        assert_eq!(m(json!({"value": ""})), ManagerInput::None);
        assert_eq!(m(Value::Null), ManagerInput::None);
    }
}
