//! A GraphQL-over-HTTP client for tests: POSTs JSON, asks for
//! `application/graphql-response+json`, and hands back the status and the
//! body, or just `data` when the request must succeed.

use serde_json::{Value, json};

#[derive(Clone, Debug)]
pub struct GraphqlClient {
    http: reqwest::Client,
    url: String,
}

impl GraphqlClient {
    /// A client of the GraphQL endpoint at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self { http: reqwest::Client::new(), url: url.into() }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// POSTs a GraphQL request; returns the status and the JSON body (null
    /// when the body is not JSON).
    pub async fn post(&self, token: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/graphql-response+json")
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.expect("send the GraphQL request");
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// A request expected to succeed: returns `data`, failing on any error.
    pub async fn ok(&self, token: &str, query: &str, variables: Value) -> Value {
        let (status, body) = self.post(Some(token), query, variables).await;
        assert!(body.get("errors").is_none() && status == 200, "{status}: {body:#}");
        body["data"].clone()
    }

    /// The first error's `extensions.code`.
    pub async fn error_code(&self, token: Option<&str>, query: &str, variables: Value) -> String {
        let (_, body) = self.post(token, query, variables).await;
        body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {body:#}"))
            .to_owned()
    }
}
