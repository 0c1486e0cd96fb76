//! SCIM filters (RFC 7644 3.4.2.2) evaluated over User documents.
//!
//! The grammar (every operator, `and`/`or`/`not`, grouping, value paths
//! such as `emails[type eq "work"]`) is parsed by the `scim_v2` crate, which
//! also bounds the nesting depth; this module gives the expressions their
//! meaning on a document:
//! - attribute names match without regard to case, under their URN or bare;
//! - a multi-valued attribute matches when any of its values does;
//! - strings compare without regard to case (every attribute Tandem serves
//!   is `caseExact: false`), except `id`, `externalId` (RFC 7643 3.1) and
//!   `meta.version`;
//! - `gt`/`ge`/`lt`/`le` order strings (ISO dates order correctly as text)
//!   and numbers, and are refused on booleans and complex attributes;
//! - an attribute that is absent (or undefined) matches nothing but `ne`
//!   and `not (…)`, as absent values are "not equal".
//!
//! Booleans also compare with the strings `"true"`/`"false"` in any case,
//! since some clients quote them.

use std::cmp::Ordering;

use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, Filter, ValFilter};
use serde_json::{Map, Value};

use crate::error::{HrisError, Result};
use crate::resource::{container, get_ci, locate};

/// Parses a filter expression.
///
/// # Errors
/// [`HrisError::InvalidFilter`] with the parser's reason.
pub fn parse(text: &str) -> Result<Filter> {
    text.parse::<Filter>().map_err(|e| HrisError::InvalidFilter(format!("{text:?}: {e}")))
}

/// Whether `doc` matches `filter`.
///
/// # Errors
/// [`HrisError::InvalidFilter`] for an ordering comparison on a boolean or a
/// complex attribute.
pub fn matches(filter: &Filter, doc: &Map<String, Value>) -> Result<bool> {
    Ok(match filter {
        Filter::Attr(e) => attr_exp(e, &values_at(doc, e.path()))?,
        Filter::ValuePath(vp) => {
            let elements = values_at(doc, &vp.attr);
            let mut any = false;
            for el in elements {
                if let Some(obj) = el.as_object()
                    && val_filter(&vp.filter, obj)?
                {
                    any = true;
                    break;
                }
            }
            any
        }
        Filter::Not(inner) => !matches(inner, doc)?,
        Filter::And(a, b) => matches(a, doc)? && matches(b, doc)?,
        Filter::Or(a, b) => matches(a, doc)? || matches(b, doc)?,
    })
}

/// Whether one element of a multi-valued attribute matches the filter
/// inside `[…]` (whose paths name sub-attributes).
///
/// # Errors
/// As [`matches`].
pub fn val_filter(filter: &ValFilter, element: &Map<String, Value>) -> Result<bool> {
    Ok(match filter {
        ValFilter::Attr(e) => {
            let p = e.path();
            let v: Vec<&Value> = get_ci(element, &p.name)
                .map(|v| match (&p.sub_attr, v) {
                    (Some(s), Value::Object(o)) => get_ci(o, s).map_or_else(Vec::new, |x| vec![x]),
                    (Some(_), _) => vec![],
                    (None, v) => vec![v],
                })
                .unwrap_or_default();
            attr_exp(e, &flatten(v))?
        }
        ValFilter::Not(inner) => !val_filter(inner, element)?,
        ValFilter::And(a, b) => val_filter(a, element)? && val_filter(b, element)?,
        ValFilter::Or(a, b) => val_filter(a, element)? || val_filter(b, element)?,
    })
}

trait PathOf {
    fn path(&self) -> &AttrPath;
}

impl PathOf for AttrExp {
    fn path(&self) -> &AttrPath {
        match self {
            AttrExp::Present(p) | AttrExp::Comparison(p, _, _) => p,
        }
    }
}

/// The values an attribute path selects in `doc` (array values flattened).
#[must_use]
pub fn values_at<'a>(doc: &'a Map<String, Value>, path: &AttrPath) -> Vec<&'a Value> {
    let Some(located) = locate(doc, path.uri.as_deref(), &path.name) else {
        return vec![];
    };
    let Some(holder) = container(doc, &located) else {
        return vec![];
    };
    let Some(v) = get_ci(holder, &located.name) else {
        return vec![];
    };
    let top = flatten(vec![v]);
    match &path.sub_attr {
        None => top,
        Some(sub) => flatten(top.into_iter().filter_map(|e| e.as_object().and_then(|o| get_ci(o, sub))).collect()),
    }
}

fn flatten(values: Vec<&Value>) -> Vec<&Value> {
    values
        .into_iter()
        .flat_map(|v| match v {
            Value::Array(a) => a.iter().collect::<Vec<_>>(),
            other => vec![other],
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn case_exact(path: &AttrPath) -> bool {
    let n = &path.name;
    n.eq_ignore_ascii_case("id")
        || n.eq_ignore_ascii_case("externalId")
        || (n.eq_ignore_ascii_case("meta") && path.sub_attr.as_deref() == Some("version"))
}

fn attr_exp(e: &AttrExp, values: &[&Value]) -> Result<bool> {
    match e {
        AttrExp::Present(_) => Ok(values.iter().any(|v| match v {
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => !o.is_empty(),
            _ => true,
        })),
        AttrExp::Comparison(path, op, want) => {
            if matches!(want, CompValue::Null) {
                // `eq null` is "not present"; `ne null` is "present".
                let present = !values.is_empty();
                return Ok(if *op == CompareOp::Ne { present } else { !present });
            }
            if *op == CompareOp::Ne {
                let eq = AttrExp::Comparison(path.clone(), CompareOp::Eq, want.clone());
                return Ok(!attr_exp(&eq, values)?);
            }
            let exact = case_exact(path);
            for v in values {
                if compare(v, op, want, exact, path)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
    }
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn compare(v: &Value, op: &CompareOp, want: &CompValue, exact: bool, path: &AttrPath) -> Result<bool> {
    let ordering_op = matches!(op, CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le);
    match want {
        CompValue::True | CompValue::False => {
            if ordering_op {
                return Err(HrisError::InvalidFilter(format!("{path} {op} cannot order booleans")));
            }
            let w = matches!(want, CompValue::True);
            Ok(*op == CompareOp::Eq && as_bool(v) == Some(w))
        }
        CompValue::Number(n) => {
            // Tandem's level is a string attribute holding a number.
            let have = v.as_f64().or_else(|| v.as_str().and_then(|s| s.trim().parse::<f64>().ok()));
            let (Some(have), Some(w)) = (have, n.as_f64()) else {
                return Ok(false);
            };
            Ok(match op {
                CompareOp::Eq => (have - w).abs() < f64::EPSILON,
                CompareOp::Gt => have > w,
                CompareOp::Ge => have >= w,
                CompareOp::Lt => have < w,
                CompareOp::Le => have <= w,
                // co/sw/ew are string operators: a number never matches.
                _ => false,
            })
        }
        CompValue::Str(w) => {
            if let Some(b) = as_bool(v)
                && !v.is_string()
            {
                if ordering_op {
                    return Err(HrisError::InvalidFilter(format!("{path} {op} cannot order booleans")));
                }
                return Ok(*op == CompareOp::Eq
                    && w.parse::<bool>().ok().or_else(|| as_bool(&Value::String(w.clone()))) == Some(b));
            }
            if v.is_object() {
                return Err(HrisError::InvalidFilter(format!(
                    "{path} is a complex attribute; compare one of its sub-attributes"
                )));
            }
            let have = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Ok(false),
            };
            let (have, w) = if exact { (have, w.clone()) } else { (have.to_lowercase(), w.to_lowercase()) };
            Ok(match op {
                CompareOp::Eq => have == w,
                CompareOp::Co => have.contains(&w),
                CompareOp::Sw => have.starts_with(&w),
                CompareOp::Ew => have.ends_with(&w),
                CompareOp::Gt => have.cmp(&w) == Ordering::Greater,
                CompareOp::Ge => have.cmp(&w) != Ordering::Less,
                CompareOp::Lt => have.cmp(&w) == Ordering::Less,
                CompareOp::Le => have.cmp(&w) != Ordering::Greater,
                CompareOp::Ne => have != w,
            })
        }
        CompValue::Null => Ok(false),
    }
}

/// The `userName eq "…"` of a filter that is exactly that, so the look-up
/// can use the index instead of evaluating the filter over everyone.
#[must_use]
pub fn user_name_eq(filter: &Filter) -> Option<&str> {
    match filter {
        Filter::Attr(AttrExp::Comparison(p, CompareOp::Eq, CompValue::Str(v)))
            if p.sub_attr.is_none()
                && p.name.eq_ignore_ascii_case("userName")
                && p.uri.as_deref().is_none_or(|u| u.eq_ignore_ascii_case(crate::discovery::USER_SCHEMA)) =>
        {
            Some(v)
        }
        _ => None,
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Map<String, Value> {
        json!({
            "id": "0190-abc",
            "userName": "Ada@Example.com",
            "displayName": "Ada Lovelace",
            "active": false,
            "emails": [{"value": "ada@example.com", "type": "work", "primary": true}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Engineering"},
            "urn:ietf:params:scim:schemas:extension:tandem:2.0:User": {"level": 4},
            "meta": {"lastModified": "2026-01-02T03:04:05.000Z"}
        })
        .as_object()
        .cloned()
        .unwrap_or_default()
    }

    fn m(f: &str) -> bool {
        matches(&parse(f).unwrap(), &doc()).unwrap()
    }

    #[test]
    fn every_operator() {
        assert!(m(r#"userName eq "ada@example.com""#));
        assert!(!m(r#"userName ne "ada@example.com""#));
        assert!(m(r#"displayName co "love""#));
        assert!(m(r#"displayName sw "ada""#));
        assert!(m(r#"displayName ew "LACE""#));
        assert!(m("displayName pr"));
        assert!(!m("title pr"));
        assert!(m(r#"meta.lastModified gt "2026-01-01T00:00:00Z""#));
        assert!(m(r#"meta.lastModified ge "2026-01-02T03:04:05.000Z""#));
        assert!(!m(r#"meta.lastModified lt "2026-01-01T00:00:00Z""#));
        assert!(m(r#"meta.lastModified le "2027-01-01T00:00:00Z""#));
        assert!(m("urn:ietf:params:scim:schemas:extension:tandem:2.0:User:level ge 4"));
        assert!(!m("level gt 4"));
        assert!(m("active eq false"));
        assert!(m(r#"active eq "False""#));
        assert!(m(r#"title ne "Lead""#), "an absent value is not equal");
    }

    #[test]
    fn logic_grouping_and_value_paths() {
        assert!(m(r#"emails[type eq "work" and value co "@example.com"]"#));
        assert!(!m(r#"emails[type eq "home"]"#));
        assert!(m(r#"emails.value eq "ADA@example.com""#));
        assert!(m(r#"not (userName eq "bob") and (active eq true or department eq "engineering")"#));
        assert!(!m(r#"not (userName sw "ada")"#));
        assert!(m(r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Engineering""#));
        assert!(m(r#"USERNAME EQ "ada@example.com""#), "names and operators without regard to case");
    }

    #[test]
    fn id_is_case_exact() {
        assert!(m(r#"id eq "0190-abc""#));
        assert!(!m(r#"id eq "0190-ABC""#));
    }

    #[test]
    fn refusals() {
        assert!(parse("userName eq").is_err());
        assert!(parse(r#"userName xx "a""#).is_err());
        assert!(parse(&"(".repeat(200)).is_err());
        assert!(matches(&parse("active gt true").unwrap(), &doc()).is_err());
        assert!(matches(&parse(r#"emails gt "a""#).unwrap(), &doc()).is_err(), "a complex attribute has no order");
    }

    #[test]
    fn user_name_fast_path() {
        assert_eq!(user_name_eq(&parse(r#"userName eq "x""#).unwrap()), Some("x"));
        assert_eq!(user_name_eq(&parse(r#"userName eq "x" and active eq true"#).unwrap()), None);
    }
}
