//! PATCH (RFC 7644 3.5.2) applied to a User document.
//!
//! The operations run in order on the current document; the result is then
//! read like a PUT body (see [`crate::input`]) and turned into commands, so
//! PATCH and PUT share every rule. What real clients send, beyond the RFC:
//! - `op` in any case (`"Replace"`, as Microsoft Entra ID sends it);
//! - no `path`, with a `value` whose keys are attribute paths
//!   (`"name.givenName"`, `"urn:…:enterprise:2.0:User:department"`) or an
//!   extension URN holding an object (Okta's `{"op":"replace","value":{"active":false}}`);
//! - a value-path filter that matches nothing on `add`/`replace`
//!   (`emails[type eq "work"].value` on a user without one) adds the element
//!   the filter describes, when the filter is a conjunction of `eq`s;
//!   otherwise it is `noTarget`;
//! - `remove` of `manager` with a `value` (Entra) removes the manager;
//! - attributes Tandem does not keep are ignored, as on POST and PUT.

use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, PatchPath, ValFilter};
use serde_json::{Map, Value};

use crate::error::{HrisError, Result};
use crate::filter::val_filter;
use crate::resource::{container_mut, find_key, get_ci, known_urn, locate};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Add,
    Replace,
    Remove,
}

/// Applies the `Operations` of a PatchOp body to `doc`.
///
/// # Errors
/// `invalidSyntax` for a malformed body or operation, `invalidPath` for an
/// unparseable path, `noTarget` for a path-less `remove` or a filter that
/// matches nothing it could add, `mutability` for read-only attributes.
pub fn apply(doc: &mut Map<String, Value>, body: &Value) -> Result<()> {
    let body = body.as_object().ok_or_else(|| HrisError::InvalidSyntax("the body must be a PatchOp object".into()))?;
    let ops = get_ci(body, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| HrisError::InvalidSyntax("Operations must be a list".into()))?;
    if ops.is_empty() {
        return Err(HrisError::InvalidSyntax("Operations must not be empty".into()));
    }
    for op in ops {
        let op = op.as_object().ok_or_else(|| HrisError::InvalidSyntax("each operation must be an object".into()))?;
        let kind = match get_ci(op, "op").and_then(Value::as_str).map(str::to_ascii_lowercase).as_deref() {
            Some("add") => Op::Add,
            Some("replace") => Op::Replace,
            Some("remove") => Op::Remove,
            _ => return Err(HrisError::InvalidSyntax("op must be add, replace or remove".into())),
        };
        let value = get_ci(op, "value").cloned();
        match get_ci(op, "path") {
            None | Some(Value::Null) => pathless(doc, kind, value)?,
            Some(Value::String(p)) if p.trim().is_empty() => pathless(doc, kind, value)?,
            Some(Value::String(p)) => at_path(doc, kind, p.trim(), value)?,
            Some(_) => return Err(HrisError::InvalidPath("path must be a string".into())),
        }
    }
    Ok(())
}

fn pathless(doc: &mut Map<String, Value>, kind: Op, value: Option<Value>) -> Result<()> {
    if kind == Op::Remove {
        return Err(HrisError::NoTarget("remove needs a path".into()));
    }
    let Some(Value::Object(map)) = value else {
        return Err(HrisError::InvalidSyntax("an operation without path needs an object value".into()));
    };
    for (key, v) in map {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        at_path(doc, kind, &key, Some(v))?;
    }
    Ok(())
}

fn read_only(name: &str) -> bool {
    ["id", "meta", "schemas"].iter().any(|n| n.eq_ignore_ascii_case(name))
}

fn is_multi(name: &str) -> bool {
    name.eq_ignore_ascii_case("emails")
}

fn at_path(doc: &mut Map<String, Value>, kind: Op, path: &str, value: Option<Value>) -> Result<()> {
    // A bare extension URN names the whole extension object.
    if let Some(urn) = known_urn(path)
        && urn != crate::discovery::USER_SCHEMA
    {
        let key = find_key(doc, urn).cloned().unwrap_or_else(|| urn.to_owned());
        return match (kind, value) {
            (Op::Remove, _) => {
                doc.remove(&key);
                Ok(())
            }
            (_, Some(Value::Object(v))) => {
                for (k, x) in v {
                    if k.eq_ignore_ascii_case("schemas") {
                        continue;
                    }
                    at_path(doc, kind, &format!("{urn}:{k}"), Some(x))?;
                }
                Ok(())
            }
            _ => Err(HrisError::invalid(urn, "must be an object")),
        };
    }
    let parsed: PatchPath = path.parse().map_err(|e| HrisError::InvalidPath(format!("{path:?}: {e}")))?;
    let (attr, filter, sub) = match &parsed {
        PatchPath::Attr(a) => (a, None, a.sub_attr.clone()),
        PatchPath::Value(v) => (&v.attr, Some(&v.filter), v.sub_attr.clone().or_else(|| v.attr.sub_attr.clone())),
    };
    if let Some(uri) = &attr.uri
        && known_urn(uri).is_none()
    {
        // An extension Tandem does not know: ignored like any unknown attribute.
        return Ok(());
    }
    if read_only(&attr.name) {
        return Err(HrisError::Mutability(format!("{} is read-only", attr.name)));
    }
    let Some(located) = locate(doc, attr.uri.as_deref(), &attr.name) else {
        return Ok(());
    };
    // Every person is either in the organisation or has left: `active`
    // cannot be unassigned (RFC 7644 3.5.2.2), so its removal is refused
    // rather than ignored (RFC 7644 3.5.2: an operation the resource cannot
    // take is an error).
    if kind == Op::Remove && located.container.is_none() && attr.name.eq_ignore_ascii_case("active") {
        return Err(HrisError::Mutability(
            "active is required and cannot be removed: replace it with false to record that the person left".into(),
        ));
    }
    if kind != Op::Remove && value.is_none() {
        return Err(HrisError::InvalidSyntax(format!("{} needs a value", path)));
    }
    let holder = container_mut(doc, &located);
    let key = find_key(holder, &located.name).cloned().unwrap_or_else(|| located.name.clone());
    match filter {
        None => plain(holder, &key, sub.as_deref(), kind, value),
        Some(f) => filtered(holder, &key, f, sub.as_deref(), kind, value, path),
    }
}

fn plain(holder: &mut Map<String, Value>, key: &str, sub: Option<&str>, kind: Op, value: Option<Value>) -> Result<()> {
    let multi = is_multi(key);
    match (kind, sub) {
        (Op::Remove, None) => {
            holder.remove(key);
        }
        (Op::Remove, Some(s)) => match holder.get_mut(key) {
            Some(Value::Object(o)) => {
                if let Some(k) = find_key(o, s).cloned() {
                    o.remove(&k);
                }
            }
            Some(Value::Array(a)) => {
                for el in a.iter_mut() {
                    if let Value::Object(o) = el
                        && let Some(k) = find_key(o, s).cloned()
                    {
                        o.remove(&k);
                    }
                }
            }
            _ => {}
        },
        (_, None) => {
            let Some(v) = value else { return Ok(()) };
            if multi {
                let incoming = match v {
                    Value::Array(a) => a,
                    Value::Null => vec![],
                    other => vec![other],
                };
                let slot = holder.entry(key.to_owned()).or_insert_with(|| Value::Array(vec![]));
                match (kind, slot) {
                    (Op::Add, Value::Array(existing)) => {
                        for x in incoming {
                            if !existing.contains(&x) {
                                existing.push(x);
                            }
                        }
                    }
                    (_, slot) => *slot = Value::Array(incoming),
                }
            } else {
                match (holder.get_mut(key), v) {
                    // Complex single-valued: the given sub-attributes replace or add,
                    // the others stay (RFC 7644 3.5.2.1 and 3.5.2.3).
                    (Some(Value::Object(existing)), Value::Object(new)) => {
                        for (k, x) in new {
                            let k = find_key(existing, &k).cloned().unwrap_or(k);
                            existing.insert(k, x);
                        }
                    }
                    (_, v) => {
                        holder.insert(key.to_owned(), v);
                    }
                }
            }
        }
        (_, Some(s)) => {
            let Some(v) = value else { return Ok(()) };
            let slot = holder
                .entry(key.to_owned())
                .or_insert_with(|| if multi { Value::Array(vec![]) } else { Value::Object(Map::new()) });
            match slot {
                Value::Array(a) => {
                    if a.is_empty() {
                        a.push(Value::Object(Map::new()));
                    }
                    for el in a.iter_mut() {
                        if let Value::Object(o) = el {
                            let k = find_key(o, s).cloned().unwrap_or_else(|| s.to_owned());
                            o.insert(k, v.clone());
                        }
                    }
                }
                Value::Object(o) => {
                    let k = find_key(o, s).cloned().unwrap_or_else(|| s.to_owned());
                    o.insert(k, v);
                }
                other => {
                    let mut o = Map::new();
                    o.insert(s.to_owned(), v);
                    *other = Value::Object(o);
                }
            }
        }
    }
    Ok(())
}

/// The `eq` conditions of a filter that is a conjunction of them: what a
/// new element must hold to match it.
fn eq_conditions(f: &ValFilter, out: &mut Map<String, Value>) -> bool {
    match f {
        ValFilter::Attr(AttrExp::Comparison(AttrPath { name, sub_attr: None, .. }, CompareOp::Eq, v)) => {
            let v = match v {
                CompValue::Str(s) => Value::String(s.clone()),
                CompValue::True => Value::Bool(true),
                CompValue::False => Value::Bool(false),
                CompValue::Number(n) => Value::Number(n.clone()),
                CompValue::Null => return false,
            };
            out.insert(name.clone(), v);
            true
        }
        ValFilter::And(a, b) => eq_conditions(a, out) && eq_conditions(b, out),
        _ => false,
    }
}

fn filtered(
    holder: &mut Map<String, Value>,
    key: &str,
    f: &ValFilter,
    sub: Option<&str>,
    kind: Op,
    value: Option<Value>,
    path: &str,
) -> Result<()> {
    let slot = holder.entry(key.to_owned()).or_insert_with(|| Value::Array(vec![]));
    // A single-valued complex attribute (manager) filtered like a list.
    if let Value::Object(o) = slot {
        *slot = Value::Array(vec![Value::Object(o.clone())]);
    }
    let Value::Array(elements) = slot else {
        return Err(HrisError::InvalidPath(format!("{path:?}: {key} is not multi-valued")));
    };
    let mut matched = Vec::new();
    for (i, el) in elements.iter().enumerate() {
        if let Value::Object(o) = el
            && val_filter(f, o).map_err(|e| HrisError::InvalidPath(format!("{path:?}: {e}")))?
        {
            matched.push(i);
        }
    }
    match kind {
        Op::Remove => {
            for i in matched.into_iter().rev() {
                match sub {
                    None => {
                        elements.remove(i);
                    }
                    Some(s) => {
                        if let Some(Value::Object(o)) = elements.get_mut(i)
                            && let Some(k) = find_key(o, s).cloned()
                        {
                            o.remove(&k);
                        }
                    }
                }
            }
        }
        Op::Add | Op::Replace => {
            let Some(v) = value else { return Ok(()) };
            if matched.is_empty() {
                let mut element = Map::new();
                if !eq_conditions(f, &mut element) {
                    return Err(HrisError::NoTarget(format!("{path:?} matches no value")));
                }
                elements.push(Value::Object(element));
                matched.push(elements.len() - 1);
            }
            for i in matched {
                let Some(Value::Object(o)) = elements.get_mut(i) else { continue };
                match (sub, &v) {
                    (Some(s), v) => {
                        let k = find_key(o, s).cloned().unwrap_or_else(|| s.to_owned());
                        o.insert(k, v.clone());
                    }
                    (None, Value::Object(new)) => {
                        if kind == Op::Replace {
                            o.clear();
                        }
                        for (k, x) in new {
                            o.insert(k.clone(), x.clone());
                        }
                    }
                    (None, _) => return Err(HrisError::invalid(key, "must be an object")),
                }
            }
        }
    }
    if !is_multi(key) {
        // Back to a single value (or none) for single-valued attributes.
        let first = elements.first().cloned();
        match first {
            Some(v) => {
                holder.insert(key.to_owned(), v);
            }
            None => {
                holder.remove(key);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use crate::discovery::ENTERPRISE_SCHEMA;
    use serde_json::json;

    fn doc() -> Map<String, Value> {
        json!({
            "userName": "ada",
            "displayName": "Ada",
            "active": true,
            "emails": [{"value": "ada@example.com", "type": "work", "primary": true}],
            ENTERPRISE_SCHEMA: {"department": "R&D", "manager": {"value": "m1"}},
        })
        .as_object()
        .cloned()
        .unwrap_or_default()
    }

    fn patched(ops: Value) -> Result<Map<String, Value>> {
        let mut d = doc();
        apply(&mut d, &json!({"schemas": [crate::discovery::PATCH_SCHEMA], "Operations": ops}))?;
        Ok(d)
    }

    #[test]
    fn entra_pascal_case_and_pathless_map() {
        let d = patched(json!([{"op": "Replace", "value": {
            "displayName": "Ada L.",
            "name.givenName": "Ada",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Research",
            "active": "False"
        }}]))
        .unwrap();
        assert_eq!(d["displayName"], json!("Ada L."));
        assert_eq!(d["name"]["givenName"], json!("Ada"));
        assert_eq!(d[ENTERPRISE_SCHEMA]["department"], json!("Research"));
        assert_eq!(d["active"], json!("False"));
    }

    #[test]
    fn okta_pathless_active() {
        let d = patched(json!([{"op": "replace", "value": {"active": false}}])).unwrap();
        assert_eq!(d["active"], json!(false));
    }

    #[test]
    fn value_paths() {
        let d = patched(json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "a@new.example"}]))
            .unwrap();
        assert_eq!(d["emails"][0]["value"], json!("a@new.example"));
        let d =
            patched(json!([{"op": "add", "path": "emails[type eq \"home\"].value", "value": "h@x.example"}])).unwrap();
        assert_eq!(d["emails"][1], json!({"type": "home", "value": "h@x.example"}));
        let d = patched(json!([{"op": "remove", "path": "emails[value eq \"ada@example.com\"]"}])).unwrap();
        assert_eq!(d["emails"], json!([]));
        let e =
            patched(json!([{"op": "replace", "path": "emails[value co \"zzz\"].value", "value": "x"}])).unwrap_err();
        assert_eq!(e.scim_type(), Some("noTarget"));
    }

    #[test]
    fn manager_forms() {
        let d = patched(json!([{"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "m2"}]))
            .unwrap();
        assert_eq!(d[ENTERPRISE_SCHEMA]["manager"], json!("m2"));
        let d = patched(json!([{"op": "Remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": [{"value": "m1"}]}]))
            .unwrap();
        assert!(d[ENTERPRISE_SCHEMA].get("manager").is_none());
        let d = patched(json!([{"op": "remove", "path": "manager[value eq \"m1\"]"}])).unwrap();
        assert!(d[ENTERPRISE_SCHEMA].get("manager").is_none());
        let d = patched(json!([{"op": "replace", "path": "manager", "value": {"value": "m3"}}])).unwrap();
        assert_eq!(d[ENTERPRISE_SCHEMA]["manager"], json!({"value": "m3"}));
    }

    #[test]
    fn refusals() {
        assert_eq!(patched(json!([{"op": "remove"}])).unwrap_err().scim_type(), Some("noTarget"));
        let active = patched(json!([{"op": "remove", "path": "active"}])).unwrap_err();
        assert_eq!(active.scim_type(), Some("mutability"));
        assert_eq!(patched(json!([{"op": "move", "path": "title"}])).unwrap_err().scim_type(), Some("invalidSyntax"));
        assert_eq!(
            patched(json!([{"op": "replace", "path": "id", "value": "x"}])).unwrap_err().scim_type(),
            Some("mutability")
        );
        assert_eq!(
            patched(json!([{"op": "replace", "path": "emails[type eq", "value": "x"}])).unwrap_err().scim_type(),
            Some("invalidPath")
        );
        assert_eq!(patched(json!([])).unwrap_err().scim_type(), Some("invalidSyntax"));
    }

    #[test]
    fn unknown_attributes_are_ignored() {
        let d = patched(json!([
            {"op": "add", "path": "phoneNumbers[type eq \"work\"].value", "value": "+1"},
            {"op": "replace", "path": "urn:example:custom:2.0:User:shoeSize", "value": 9},
        ]))
        .unwrap();
        assert_eq!(d, doc());
    }
}
