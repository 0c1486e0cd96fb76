//! The schema as a contract: the checked-in SDL and access matrix match the
//! code, every type and field is documented, and every operation has a row
//! in the access matrix.

use std::path::PathBuf;

use serde_json::Value;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Compares a generated file with its checked-in copy; with
/// `TANDEM_UPDATE_SNAPSHOTS=1` rewrites the copy instead.
fn snapshot(relative: &str, generated: &str) {
    let path = repo_root().join(relative);
    if std::env::var_os("TANDEM_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, generated).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{relative} is out of date with the code; run `TANDEM_UPDATE_SNAPSHOTS=1 cargo test -p tandem-api schema` \
         and review the diff"
    );
}

#[test]
fn schema_snapshot_matches_the_code() {
    snapshot("schema/schema.graphql", &tandem_api::schema::sdl());
}

#[test]
fn access_matrix_document_matches_the_code() {
    let doc = format!(
        "# Access matrix\n\n\
         Generated from `crates/api/src/policy.rs` by a test; do not edit by hand.\n\n\
         `all`: everything the operation returns. `own`: only what concerns the caller (see the note). \
         `—`: refused with `FORBIDDEN` (`UNAUTHENTICATED` without a token).\n\
         Field rows: a caller without access reads `null` (or, for feedback, does not get the item).\n\n{}",
        tandem_api::policy::markdown()
    );
    snapshot("docs/ACCESS.md", &doc);
}

/// Runs the introspection query against the schema.
async fn introspection() -> Value {
    let query = "{ __schema { \
        types { name kind description \
          fields(includeDeprecated: true) { name description args { name description } } \
          inputFields { name description } \
          enumValues(includeDeprecated: true) { name description } } \
        queryType { fields { name } } mutationType { fields { name } } subscriptionType { fields { name } } } }";
    let response = tandem_api::schema::stateless().execute(query).await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    response.data.into_json().unwrap()
}

fn described(v: &Value) -> bool {
    v["description"].as_str().is_some_and(|d| !d.trim().is_empty())
}

#[tokio::test]
async fn every_type_and_field_has_a_description() {
    let schema = introspection().await;
    let mut missing = Vec::new();
    for t in schema["__schema"]["types"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        // Introspection types and the spec's scalars are described by the spec.
        if name.starts_with("__") || ["String", "Int", "Float", "Boolean", "ID"].contains(&name) {
            continue;
        }
        if !described(t) {
            missing.push(name.to_owned());
        }
        for list in ["fields", "inputFields", "enumValues"] {
            for f in t[list].as_array().into_iter().flatten() {
                if !described(f) {
                    missing.push(format!("{name}.{}", f["name"].as_str().unwrap()));
                }
            }
        }
    }
    assert!(missing.is_empty(), "undocumented schema elements:\n{}", missing.join("\n"));
}

#[tokio::test]
async fn every_operation_has_a_row_in_the_access_matrix() {
    let schema = introspection().await;
    let mut operations = Vec::new();
    for root in ["queryType", "mutationType", "subscriptionType"] {
        for f in schema["__schema"][root]["fields"].as_array().into_iter().flatten() {
            operations.push(f["name"].as_str().unwrap().to_owned());
        }
    }
    let missing: Vec<_> = operations.iter().filter(|o| tandem_api::policy::rule(o).is_none()).collect();
    assert!(missing.is_empty(), "operations without an access rule: {missing:?}");
    for r in tandem_api::policy::MATRIX {
        if r.kind != tandem_api::policy::Kind::Field {
            assert!(operations.iter().any(|o| o == r.name), "matrix row {} is not an operation of the schema", r.name);
        }
    }
}
