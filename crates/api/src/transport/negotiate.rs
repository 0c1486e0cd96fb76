//! Content negotiation for GraphQL over HTTP: which response media type an
//! `Accept` header asks for, and whether a request `Content-Type` is one the
//! endpoint reads.
//!
//! The GraphQL-over-HTTP spec defines two response media types:
//! `application/graphql-response+json` (preferred: its status codes tell
//! request errors apart) and `application/json` (legacy: always 200 for
//! GraphQL errors). Intermediaries and old clients send `*/*` or nothing, and
//! expect the legacy type then, so a wildcard or a missing header selects
//! `application/json`; the new type is chosen when named explicitly and not
//! out-ranked by q-value.

use axum::http::HeaderValue;

/// A response media type of the GraphQL-over-HTTP spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MediaType {
    /// `application/graphql-response+json`.
    GraphQlResponse,
    /// `application/json`.
    Json,
}

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

impl MediaType {
    /// The `Content-Type` of a response of this type (always UTF-8).
    pub(crate) fn content_type(self) -> HeaderValue {
        match self {
            Self::GraphQlResponse => HeaderValue::from_static("application/graphql-response+json; charset=utf-8"),
            Self::Json => HeaderValue::from_static("application/json; charset=utf-8"),
        }
    }

    fn essence(self) -> &'static str {
        match self {
            Self::GraphQlResponse => GRAPHQL_RESPONSE,
            Self::Json => JSON,
        }
    }
}

/// How closely a media range matched a type: a more specific range decides
/// the type's q-value (RFC 9110 §12.5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Specificity {
    Any,
    Subtype,
    Exact,
}

/// The q-value and specificity of the best-matching range for `media`.
fn quality(ranges: &[(String, f32)], media: MediaType) -> Option<(f32, Specificity)> {
    let mut best: Option<(f32, Specificity)> = None;
    for (range, q) in ranges {
        let specificity = if range == media.essence() {
            Specificity::Exact
        } else if range == "application/*" {
            Specificity::Subtype
        } else if range == "*/*" {
            Specificity::Any
        } else {
            continue;
        };
        best = match best {
            Some((best_q, best_s)) if best_s > specificity || (best_s == specificity && best_q >= *q) => {
                Some((best_q, best_s))
            }
            _ => Some((*q, specificity)),
        };
    }
    best
}

/// Parses one `Accept` header's media ranges into (lower-case essence,
/// q-value). A range with a malformed q-value is dropped.
fn media_ranges(accept: &str, ranges: &mut Vec<(String, f32)>) {
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        if essence.is_empty() {
            continue;
        }
        let mut q = Some(1.0_f32);
        for param in parts {
            let Some((name, value)) = param.split_once('=') else {
                continue;
            };
            if name.trim().eq_ignore_ascii_case("q") {
                q = value.trim().parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q));
            }
        }
        if let Some(q) = q {
            ranges.push((essence, q));
        }
    }
}

/// The response media type for the `Accept` headers of a request, or `None`
/// when none of them admits either type (406).
pub(crate) fn negotiate<'a>(accept: impl Iterator<Item = &'a HeaderValue>) -> Option<MediaType> {
    let mut ranges = Vec::new();
    for value in accept {
        // A header that is not visible ASCII names no media type we serve.
        if let Ok(value) = value.to_str() {
            media_ranges(value, &mut ranges);
        }
    }
    if ranges.is_empty() {
        // No Accept header, or an empty one: the legacy type, which every
        // client from before the spec understands (RFC 9110: no Accept means
        // anything is acceptable).
        return Some(MediaType::Json);
    }
    let new = quality(&ranges, MediaType::GraphQlResponse).filter(|(q, _)| *q > 0.0);
    let legacy = quality(&ranges, MediaType::Json).filter(|(q, _)| *q > 0.0);
    match (new, legacy) {
        (None, None) => None,
        (Some(_), None) => Some(MediaType::GraphQlResponse),
        (None, Some(_)) => Some(MediaType::Json),
        (Some((new_q, new_s)), Some((legacy_q, legacy_s))) => {
            if new_q > legacy_q {
                Some(MediaType::GraphQlResponse)
            } else if legacy_q > new_q {
                Some(MediaType::Json)
            } else if new_s == Specificity::Exact && new_s >= legacy_s {
                // Named explicitly at an equal rank: the spec's preferred type.
                Some(MediaType::GraphQlResponse)
            } else {
                Some(MediaType::Json)
            }
        }
    }
}

/// Why a POST body's `Content-Type` is refused (415).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ContentTypeError {
    /// No `Content-Type` header.
    Missing,
    /// A media type other than `application/json`.
    Unsupported(String),
    /// `application/json` in a charset other than UTF-8.
    Charset(String),
}

impl ContentTypeError {
    pub(crate) fn message(&self) -> String {
        match self {
            Self::Missing => "the Content-Type header is missing: send the GraphQL request as \
                              `application/json`"
                .to_owned(),
            Self::Unsupported(media) => {
                format!("unsupported Content-Type `{media}`: send the GraphQL request as `application/json`")
            }
            Self::Charset(charset) => {
                format!("unsupported charset `{charset}`: the request body must be UTF-8")
            }
        }
    }
}

/// Checks that a POST body is `application/json` in UTF-8 (the charset may
/// be omitted: JSON is UTF-8 by definition).
pub(crate) fn check_content_type(value: Option<&HeaderValue>) -> Result<(), ContentTypeError> {
    let Some(value) = value else {
        return Err(ContentTypeError::Missing);
    };
    let value = value.to_str().map_err(|_| ContentTypeError::Unsupported("<not ASCII>".to_owned()))?;
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case(JSON) {
        return Err(ContentTypeError::Unsupported(essence.to_owned()));
    }
    for param in parts {
        let Some((name, charset)) = param.split_once('=') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("charset") {
            let charset = charset.trim().trim_matches('"');
            if !charset.eq_ignore_ascii_case("utf-8") && !charset.eq_ignore_ascii_case("utf8") {
                return Err(ContentTypeError::Charset(charset.to_owned()));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use super::*;

    fn pick(accept: &[&str]) -> Option<MediaType> {
        let values: Vec<HeaderValue> = accept.iter().map(|v| HeaderValue::from_str(v).unwrap()).collect();
        negotiate(values.iter())
    }

    #[test]
    fn missing_accept_selects_legacy_json() {
        assert_eq!(pick(&[]), Some(MediaType::Json));
    }

    #[test]
    fn wildcards_select_legacy_json() {
        assert_eq!(pick(&["*/*"]), Some(MediaType::Json));
        assert_eq!(pick(&["application/*"]), Some(MediaType::Json));
        assert_eq!(pick(&["text/html, */*;q=0.8"]), Some(MediaType::Json));
    }

    #[test]
    fn explicit_types_are_honoured() {
        assert_eq!(pick(&["application/graphql-response+json"]), Some(MediaType::GraphQlResponse));
        assert_eq!(pick(&["application/json"]), Some(MediaType::Json));
        assert_eq!(pick(&["Application/GraphQL-Response+JSON; charset=utf-8"]), Some(MediaType::GraphQlResponse));
    }

    #[test]
    fn q_values_rank_types() {
        assert_eq!(
            pick(&["application/graphql-response+json, application/json;q=0.9"]),
            Some(MediaType::GraphQlResponse)
        );
        assert_eq!(pick(&["application/graphql-response+json;q=0.5, application/json"]), Some(MediaType::Json));
        assert_eq!(
            pick(&["application/json, application/graphql-response+json"]),
            Some(MediaType::GraphQlResponse),
            "equal rank: the preferred type"
        );
        assert_eq!(pick(&["application/graphql-response+json, */*"]), Some(MediaType::GraphQlResponse));
        assert_eq!(
            pick(&["application/json", "application/graphql-response+json;q=0.2"]),
            Some(MediaType::Json),
            "several headers are one list"
        );
    }

    #[test]
    fn zero_q_and_other_types_are_not_acceptable() {
        assert_eq!(pick(&["text/html"]), None);
        assert_eq!(pick(&["application/json;q=0"]), None);
        assert_eq!(pick(&["*/*;q=0"]), None);
        assert_eq!(
            pick(&["*/*, application/json;q=0"]),
            Some(MediaType::GraphQlResponse),
            "the specific zero wins over the wildcard for json only"
        );
        assert_eq!(pick(&[""]), Some(MediaType::Json), "an empty header is no header");
        assert_eq!(pick(&["text/html, application/json;q=2"]), None, "a malformed q drops the range");
    }

    #[test]
    fn content_type_must_be_json_in_utf8() {
        let check = |v: &str| check_content_type(Some(&HeaderValue::from_str(v).unwrap()));
        assert_eq!(check("application/json"), Ok(()));
        assert_eq!(check("application/json; charset=utf-8"), Ok(()));
        assert_eq!(check("Application/JSON;charset=\"UTF-8\""), Ok(()));
        assert_eq!(check("application/json; charset=latin1"), Err(ContentTypeError::Charset("latin1".to_owned())));
        assert_eq!(check("text/plain;charset=UTF-8"), Err(ContentTypeError::Unsupported("text/plain".to_owned())));
        assert_eq!(check_content_type(None), Err(ContentTypeError::Missing));
    }
}
