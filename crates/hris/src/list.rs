//! Queries (RFC 7644 3.4.2): the parameters of `GET /Users` and of
//! `POST /Users/.search`, sorting, paging, and the `attributes` /
//! `excludedAttributes` selection applied to every returned document.

use std::cmp::Ordering;

use scim_v2::filter::AttrPath;
use serde_json::{Map, Value, json};

use crate::discovery::{DEFAULT_COUNT, LIST_SCHEMA, MAX_RESULTS};
use crate::error::{HrisError, Result};
use crate::filter::values_at;
use crate::resource::{find_key, known_urn, split_urn};

/// The parameters of a query, from the query string or a SearchRequest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    pub filter: Option<String>,
    pub sort_by: Option<String>,
    pub descending: bool,
    /// 1-based.
    pub start_index: usize,
    pub count: usize,
    pub attributes: Vec<String>,
    pub excluded: Vec<String>,
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned).collect()
}

fn number(name: &str, v: &str) -> Result<i64> {
    v.trim().parse::<i64>().map_err(|_| HrisError::invalid(name, "must be a whole number"))
}

impl Query {
    /// From `?filter=…&startIndex=…` pairs (names without regard to case).
    ///
    /// # Errors
    /// `invalidValue` for a non-numeric `startIndex`/`count` or a bad `sortOrder`.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self> {
        let mut q = Self { start_index: 1, count: DEFAULT_COUNT, ..Self::default() };
        for (k, v) in pairs {
            match k.to_ascii_lowercase().as_str() {
                "filter" => q.filter = Some(v.clone()),
                "sortby" => q.sort_by = Some(v.clone()),
                "sortorder" => q.descending = descending(v)?,
                "startindex" => q.start_index = usize::try_from(number("startIndex", v)?.max(1)).unwrap_or(1),
                "count" => q.count = usize::try_from(number("count", v)?.max(0)).unwrap_or(0).min(MAX_RESULTS),
                "attributes" => q.attributes = split_list(v),
                "excludedattributes" => q.excluded = split_list(v),
                _ => {}
            }
        }
        Ok(q)
    }

    /// From a SearchRequest body (RFC 7644 3.4.3).
    ///
    /// # Errors
    /// `invalidSyntax` for a body that is not an object; `invalidValue` for
    /// members of the wrong type.
    pub fn from_search(body: &Value) -> Result<Self> {
        let o = body.as_object().ok_or_else(|| HrisError::InvalidSyntax("a SearchRequest must be an object".into()))?;
        let mut pairs = Vec::new();
        for (k, v) in o {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","),
                Value::Null => continue,
                _ => return Err(HrisError::invalid(k.as_str(), "has the wrong type")),
            };
            pairs.push((k.clone(), text));
        }
        Self::from_pairs(&pairs)
    }
}

fn descending(v: &str) -> Result<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "ascending" | "" => Ok(false),
        "descending" => Ok(true),
        _ => Err(HrisError::invalid("sortOrder", "must be ascending or descending")),
    }
}

/// The attribute path of `sortBy` or of an `attributes` entry.
fn attr_path(path: &str) -> AttrPath {
    let (urn, rest) = split_urn(path);
    let (name, sub) = rest.split_once('.').map_or((rest, None), |(n, s)| (n, Some(s.to_owned())));
    AttrPath { uri: urn.map(str::to_owned), name: name.to_owned(), sub_attr: sub }
}

#[derive(PartialEq, PartialOrd)]
enum Key {
    Num(f64),
    Text(String),
}

fn sort_key(doc: &Map<String, Value>, path: &AttrPath) -> Option<Key> {
    values_at(doc, path).into_iter().find_map(|v| match v {
        // Numbers held as strings (Tandem's level) sort as numbers.
        Value::String(s) => Some(s.trim().parse::<f64>().map_or_else(|_| Key::Text(s.to_lowercase()), Key::Num)),
        Value::Number(n) => n.as_f64().map(Key::Num),
        Value::Bool(b) => Some(Key::Text(b.to_string())),
        _ => None,
    })
}

/// Sorts documents by `sort_by` (values absent last, whatever the order).
pub fn sort(docs: &mut [Map<String, Value>], sort_by: &str, descending: bool) {
    let path = attr_path(sort_by);
    docs.sort_by(|a, b| match (sort_key(a, &path), sort_key(b, &path)) {
        (Some(x), Some(y)) => {
            let o = x.partial_cmp(&y).unwrap_or(Ordering::Equal);
            if descending { o.reverse() } else { o }
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    });
}

/// Keeps what `attributes` names (with `id` and `schemas`, which are always
/// returned), or drops what `excluded` names.
#[must_use]
pub fn select(mut doc: Map<String, Value>, attributes: &[String], excluded: &[String]) -> Map<String, Value> {
    if !attributes.is_empty() {
        let mut out = Map::new();
        for k in ["id", "schemas"] {
            if let Some(v) = doc.get(k) {
                out.insert(k.to_owned(), v.clone());
            }
        }
        for a in attributes {
            copy_path(&doc, &mut out, a);
        }
        return out;
    }
    for e in excluded {
        remove_path(&mut doc, e);
    }
    doc
}

fn copy_path(from: &Map<String, Value>, to: &mut Map<String, Value>, path: &str) {
    if let Some(urn) = known_urn(path) {
        if let Some(v) = from.get(urn) {
            to.insert(urn.to_owned(), v.clone());
        }
        return;
    }
    let p = attr_path(path);
    let (src, dst) = match p.uri.as_deref() {
        Some(urn) => {
            let Some(Value::Object(src)) = from.get(urn) else { return };
            let dst = to.entry(urn.to_owned()).or_insert_with(|| json!({}));
            let Value::Object(dst) = dst else { return };
            (src, dst)
        }
        None => {
            // A bare name may be an extension attribute.
            if find_key(from, &p.name).is_none() {
                for urn in crate::resource::EXTENSIONS {
                    if let Some(Value::Object(ext)) = from.get(urn)
                        && find_key(ext, &p.name).is_some()
                    {
                        return copy_path(from, to, &format!("{urn}:{path}"));
                    }
                }
            }
            (from, to)
        }
    };
    let Some(key) = find_key(src, &p.name) else { return };
    let v = &src[key];
    match (&p.sub_attr, v) {
        (None, v) => {
            dst.insert(key.clone(), v.clone());
        }
        (Some(s), Value::Object(o)) => {
            if let Some(sk) = find_key(o, s) {
                let e = dst.entry(key.clone()).or_insert_with(|| json!({}));
                if let Value::Object(e) = e {
                    e.insert(sk.clone(), o[sk].clone());
                }
            }
        }
        (Some(s), Value::Array(a)) => {
            let picked: Vec<Value> = a
                .iter()
                .filter_map(|el| {
                    el.as_object().and_then(|o| find_key(o, s).map(|sk| json!({ sk.clone(): o[sk].clone() })))
                })
                .collect();
            dst.insert(key.clone(), Value::Array(picked));
        }
        _ => {}
    }
}

fn remove_path(doc: &mut Map<String, Value>, path: &str) {
    if path.eq_ignore_ascii_case("id") || path.eq_ignore_ascii_case("schemas") {
        return;
    }
    if let Some(urn) = known_urn(path) {
        doc.remove(urn);
        return;
    }
    let p = attr_path(path);
    let holder = match p.uri.as_deref() {
        Some(urn) => match doc.get_mut(urn) {
            Some(Value::Object(o)) => o,
            _ => return,
        },
        None => doc,
    };
    let Some(key) = find_key(holder, &p.name).cloned() else {
        if p.uri.is_none() {
            for urn in crate::resource::EXTENSIONS {
                if let Some(Value::Object(ext)) = doc.get(urn)
                    && find_key(ext, &p.name).is_some()
                {
                    return remove_path(doc, &format!("{urn}:{path}"));
                }
            }
        }
        return;
    };
    match (&p.sub_attr, holder.get_mut(&key)) {
        (None, _) => {
            holder.remove(&key);
        }
        (Some(s), Some(Value::Object(o))) => {
            if let Some(sk) = find_key(o, s).cloned() {
                o.remove(&sk);
            }
        }
        (Some(s), Some(Value::Array(a))) => {
            for el in a.iter_mut() {
                if let Value::Object(o) = el
                    && let Some(sk) = find_key(o, s).cloned()
                {
                    o.remove(&sk);
                }
            }
        }
        _ => {}
    }
}

/// A ListResponse of one page.
#[must_use]
pub fn list_response(total: usize, start_index: usize, page: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": page.len(),
        "Resources": page,
    })
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
    }

    #[test]
    fn parameters() {
        let q =
            Query::from_pairs(&pairs(&[("startIndex", "0"), ("count", "5000"), ("sortOrder", "descending")])).unwrap();
        assert_eq!((q.start_index, q.count, q.descending), (1, MAX_RESULTS, true));
        assert!(Query::from_pairs(&pairs(&[("count", "x")])).is_err());
        assert!(Query::from_pairs(&pairs(&[("sortOrder", "sideways")])).is_err());
        let q = Query::from_search(&json!({"filter": "userName pr", "attributes": ["userName", "emails"], "count": 2}))
            .unwrap();
        assert_eq!(q.attributes, vec!["userName", "emails"]);
        assert_eq!(q.count, 2);
    }

    #[test]
    fn selection() {
        let doc = json!({
            "id": "1", "schemas": ["s"], "userName": "u", "title": "t",
            "emails": [{"value": "a@b.c"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "d", "manager": {"value": "m"}}
        });
        let doc = doc.as_object().cloned().unwrap_or_default();
        let s = select(doc.clone(), &["userName".into(), "emails.value".into(), "department".into()], &[]);
        assert_eq!(
            Value::Object(s),
            json!({"id": "1", "schemas": ["s"], "userName": "u", "emails": [{"value": "a@b.c"}],
                   "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "d"}})
        );
        let s = select(
            doc,
            &[],
            &["title".into(), "id".into(), "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager".into()],
        );
        assert!(s.get("title").is_none() && s.get("id").is_some());
        assert!(s["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].get("manager").is_none());
    }

    #[test]
    fn sorting_puts_absent_last() {
        let mut docs: Vec<Map<String, Value>> = [json!({"title": "b"}), json!({}), json!({"title": "A"})]
            .into_iter()
            .filter_map(|v| v.as_object().cloned())
            .collect();
        sort(&mut docs, "title", false);
        assert_eq!(docs[0]["title"], json!("A"));
        assert!(docs[2].get("title").is_none());
        sort(&mut docs, "title", true);
        assert_eq!(docs[0]["title"], json!("b"));
        assert!(docs[2].get("title").is_none());
    }
}
