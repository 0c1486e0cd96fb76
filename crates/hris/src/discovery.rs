//! The discovery documents of RFC 7644 4: `ServiceProviderConfig`,
//! `ResourceTypes` and `Schemas`.
//!
//! The `Schemas` documents list exactly the attributes Tandem keeps, with
//! the mutability they really have, because SCIM clients (and conformance
//! testers) write what a schema lists and compare what they read back. An
//! attribute of RFC 7643's User schema that the person stream has no field
//! for (`name.givenName`, `phoneNumbers`, `employeeNumber`, `costCenter` …)
//! is absent from them; a client that sends one has it ignored, as RFC 7644
//! 3.3 allows for attributes the provider does not define.
//!
//! Two inputs of Tandem's extension are read but not listed, because no
//! SCIM client reads them back and a listed attribute must be readable:
//! `hireDate` (the start of the person's org history, fixed once they
//! exist) and the configured termination-date attribute. GraphQL shows both
//! (`hiredOn`, `leftOn`).

use serde_json::{Value, json};

/// The core User schema.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The Enterprise User extension (RFC 7643 4.3).
pub const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// Tandem's own extension: the org facts SCIM has no attribute for.
pub const TANDEM_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:tandem:2.0:User";
/// List responses.
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// PATCH requests.
pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// `POST /.search` requests.
pub const SEARCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";

/// Largest page of a list (`count` is clamped to it), and the default.
pub const MAX_RESULTS: usize = 1000;
/// The page size when the client sends no `count`.
pub const DEFAULT_COUNT: usize = 100;

/// One attribute definition (RFC 7643 7).
struct Attr {
    name: &'static str,
    kind: &'static str,
    multi: bool,
    required: bool,
    mutability: &'static str,
    uniqueness: &'static str,
    description: &'static str,
    sub: Vec<Value>,
    canonical: Option<Vec<Value>>,
    reference_types: Option<&'static [&'static str]>,
}

impl Attr {
    fn new(name: &'static str, kind: &'static str, description: &'static str) -> Self {
        Self {
            name,
            kind,
            multi: false,
            required: false,
            mutability: "readWrite",
            uniqueness: "none",
            description,
            sub: Vec::new(),
            canonical: None,
            reference_types: None,
        }
    }
    fn required(mut self) -> Self {
        self.required = true;
        self
    }
    fn multi(mut self) -> Self {
        self.multi = true;
        self
    }
    fn mutability(mut self, m: &'static str) -> Self {
        self.mutability = m;
        self
    }
    fn unique(mut self) -> Self {
        self.uniqueness = "server";
        self
    }
    fn sub(mut self, sub: Vec<Value>) -> Self {
        self.sub = sub;
        self
    }
    fn canonical(mut self, values: Vec<Value>) -> Self {
        self.canonical = Some(values);
        self
    }
    fn references(mut self, types: &'static [&'static str]) -> Self {
        self.reference_types = Some(types);
        self
    }
    fn build(self) -> Value {
        let mut v = json!({
            "name": self.name,
            "type": self.kind,
            "multiValued": self.multi,
            "description": self.description,
            "required": self.required,
            "caseExact": false,
            "mutability": self.mutability,
            "returned": "default",
            "uniqueness": self.uniqueness,
        });
        if !self.sub.is_empty() {
            v["subAttributes"] = Value::Array(self.sub);
        }
        if let Some(c) = self.canonical {
            v["canonicalValues"] = Value::Array(c);
        }
        if let Some(r) = self.reference_types {
            v["referenceTypes"] = json!(r);
        }
        v
    }
}

fn meta(resource_type: &str, location: String) -> Value {
    json!({ "resourceType": resource_type, "location": location })
}

fn user_attributes() -> Vec<Value> {
    vec![
        Attr::new(
            "userName",
            "string",
            "The person's HRIS external id in Tandem: unique without regard to case, and fixed once the person \
             exists (Tandem has no command that renames an external id).",
        )
        .required()
        .mutability("immutable")
        .unique()
        .build(),
        Attr::new(
            "displayName",
            "string",
            "The person's name. When absent, Tandem composes it from name.formatted, then name.givenName and \
             name.familyName; without any, the person is named by their userName and displayName reads as absent. \
             The parts of `name` are not kept separately.",
        )
        .build(),
        Attr::new("title", "string", "Job title, dated in Tandem's org history from the day it changes.").build(),
        Attr::new(
            "active",
            "boolean",
            "false records that the person left (today, or on the configured termination-date attribute's date); \
             true again records that they rejoined. Every person has a value, so a PATCH cannot remove it (400 \
             mutability); left out of a POST it is true, left out of a PUT it keeps its value.",
        )
        .build(),
        Attr::new(
            "emails",
            "complex",
            "Tandem keeps one address: the primary one, else the one of type work, else the first.",
        )
        .multi()
        .required()
        .sub(vec![Attr::new("value", "string", "The e-mail address.").required().build()])
        .build(),
    ]
}

fn enterprise_attributes() -> Vec<Value> {
    vec![
        Attr::new("department", "string", "Department, dated in Tandem's org history.").build(),
        Attr::new("manager", "complex", "The person's manager, dated in Tandem's org history.")
            .sub(vec![
                Attr::new("value", "string", "The manager's id (or, on input, their userName).").build(),
                Attr::new("$ref", "reference", "The manager's User resource.").references(&["User"]).build(),
                Attr::new("displayName", "string", "The manager's name.").mutability("readOnly").build(),
            ])
            .build(),
    ]
}

fn tandem_attributes() -> Vec<Value> {
    vec![
        Attr::new(
            "level",
            "string",
            "Seniority level, \"1\" to \"30\" (\"1\" when never given; numbers are accepted too); peers are \
             paired within a program's level gap. Every person has one, so it cannot be removed.",
        )
        .required()
        // Canonical values are strings in RFC 7643 7; clients read them as
        // the levels one may send.
        .canonical((1..=30).map(|l: u8| json!(l.to_string())).collect())
        .build(),
        Attr::new("location", "string", "Where the person works.").build(),
    ]
}

/// Every schema, in `/Schemas` order.
#[must_use]
pub fn schemas(base: &str) -> Vec<Value> {
    let schema = |id: &str, name: &str, description: &str, attributes: Vec<Value>| {
        json!({
            "schemas": [SCHEMA_SCHEMA],
            "id": id,
            "name": name,
            "description": description,
            "attributes": attributes,
            "meta": meta("Schema", format!("{base}/Schemas/{id}")),
        })
    };
    vec![
        schema(USER_SCHEMA, "User", "A person of the organisation.", user_attributes()),
        schema(ENTERPRISE_SCHEMA, "EnterpriseUser", "Enterprise User (RFC 7643 4.3).", enterprise_attributes()),
        schema(
            TANDEM_SCHEMA,
            "TandemUser",
            "Org facts Tandem keeps that SCIM has no attribute for.",
            tandem_attributes(),
        ),
    ]
}

/// The `User` resource type.
#[must_use]
pub fn resource_types(base: &str) -> Vec<Value> {
    vec![json!({
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "People of the organisation",
        "schema": USER_SCHEMA,
        "schemaExtensions": [
            { "schema": ENTERPRISE_SCHEMA, "required": false },
            // Every person has a level; a client that sends no extension
            // keeps the current one (or 1 for a new person).
            { "schema": TANDEM_SCHEMA, "required": true },
        ],
        "meta": meta("ResourceType", format!("{base}/ResourceTypes/User")),
    })]
}

/// What this server supports (RFC 7643 5).
#[must_use]
pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": [SPC_SCHEMA],
        "documentationUri": "https://example.invalid/tandem/docs/INTEGRATORS.md",
        "patch": { "supported": true },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
        "filter": { "supported": true, "maxResults": MAX_RESULTS },
        "changePassword": { "supported": false },
        "sort": { "supported": true },
        "etag": { "supported": true },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "A JWT bearer token with the integrator (or admin) role, e.g. from `tandem token --role integrator --ttl 365d`.",
            "primary": true,
        }],
        "meta": meta("ServiceProviderConfig", format!("{base}/ServiceProviderConfig")),
    })
}
