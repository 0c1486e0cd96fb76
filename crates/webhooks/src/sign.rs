//! Signing by the Standard Webhooks specification (v1): the
//! `webhook-signature` header holds one `v1,<base64 HMAC-SHA-256>` of
//! `id.timestamp.body` per secret that signs, separated by spaces; during
//! the 24 hours after a rotation both the new and the previous secret sign.
//! The HMAC itself is the `standardwebhooks` crate's.

use standardwebhooks::Webhook;

use crate::error::WebhookError;
use crate::secret::SigningSecret;

/// The `webhook-signature` header value for `body` sent as message `id` at
/// `timestamp` (Unix seconds), signed with every secret of `secrets`.
pub fn signature_header(
    secrets: &[SigningSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, WebhookError> {
    let mut out = Vec::with_capacity(secrets.len());
    for s in secrets {
        let hook = Webhook::from_bytes(s.bytes().to_vec()).map_err(|e| WebhookError::Signing(e.to_string()))?;
        out.push(hook.sign(id, timestamp, body).map_err(|e| WebhookError::Signing(e.to_string()))?);
    }
    Ok(out.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_secret_adds_a_v1_signature_that_verifies_alone() {
        let (a, b) = (SigningSecret::generate().expect("random"), SigningSecret::generate().expect("random"));
        let body = br#"{"type":"PairFormed"}"#;
        let ts = chrono::Utc::now().timestamp();
        let header = signature_header(&[a.clone(), b.clone()], "msg_1", ts, body).expect("signs");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.starts_with("v1,")));
        for secret in [a, b] {
            let mut headers = standardwebhooks_headers(ts, &header);
            headers.insert("webhook-id", "msg_1".parse().expect("header"));
            Webhook::new(&secret.reveal()).expect("secret").verify(body, &headers).expect("verifies");
        }
    }

    fn standardwebhooks_headers(ts: i64, sig: &str) -> reqwest::header::HeaderMap {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("webhook-timestamp", ts.to_string().parse().expect("header"));
        h.insert("webhook-signature", sig.parse().expect("header"));
        h
    }
}
