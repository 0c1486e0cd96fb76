//! The deployment files parse, and reference only endpoints and environment
//! variables the service really has.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::CommandFactory;

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

/// Every environment variable any `tandem` subcommand reads.
fn known_variables() -> BTreeSet<String> {
    fn walk(cmd: &clap::Command, out: &mut BTreeSet<String>) {
        for arg in cmd.get_arguments() {
            if let Some(env) = arg.get_env() {
                out.insert(env.to_string_lossy().into_owned());
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut out = BTreeSet::new();
    walk(&tandem::config::Cli::command(), &mut out);
    out
}

/// Collects variable names from env-like places: `env: [{name: X}]`,
/// `environment: {X: ..}`, ConfigMap/Secret `data`/`stringData` keys.
fn variables_in(value: &serde_yaml::Value, out: &mut BTreeSet<String>) {
    match value {
        serde_yaml::Value::Mapping(m) => {
            for (k, v) in m {
                let key = k.as_str().unwrap_or_default();
                match key {
                    "environment" | "data" | "stringData" => {
                        if let Some(map) = v.as_mapping() {
                            for name in map.keys().filter_map(|k| k.as_str()) {
                                out.insert(name.to_owned());
                            }
                        }
                    }
                    "env" => {
                        for item in v.as_sequence().into_iter().flatten() {
                            if let Some(name) = item.get("name").and_then(|n| n.as_str()) {
                                out.insert(name.to_owned());
                            }
                        }
                    }
                    _ => {}
                }
                variables_in(v, out);
            }
        }
        serde_yaml::Value::Sequence(s) => s.iter().for_each(|v| variables_in(v, out)),
        _ => {}
    }
}

fn paths_in(value: &serde_yaml::Value, out: &mut BTreeSet<String>) {
    match value {
        serde_yaml::Value::Mapping(m) => {
            for (k, v) in m {
                // HTTP probe paths (volume item paths are relative file names).
                if k.as_str() == Some("path")
                    && let Some(p) = v.as_str().filter(|p| p.starts_with('/'))
                {
                    out.insert(p.to_owned());
                }
                paths_in(v, out);
            }
        }
        serde_yaml::Value::Sequence(s) => s.iter().for_each(|v| paths_in(v, out)),
        _ => {}
    }
}

#[test]
fn every_yaml_file_parses_and_names_only_real_variables() {
    let mut files = Vec::new();
    yaml_files(&deploy_dir(), &mut files);
    assert!(files.len() >= 7, "expected compose, collector and Kubernetes manifests, found {files:?}");
    let known = known_variables();
    for needed in ["DATABASE_URL", "TANDEM_LISTEN", "TANDEM_JWT_SECRET", "OTEL_EXPORTER_OTLP_ENDPOINT"] {
        assert!(known.contains(needed), "the CLI does not read {needed}");
    }
    // Variables of the other containers (PostgreSQL, Jaeger) and Secret keys
    // that are files, not variables.
    let foreign = ["POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "COLLECTOR_OTLP_ENABLED", "jwks.json"];
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_yaml::Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let mut vars = BTreeSet::new();
            variables_in(&value, &mut vars);
            for v in vars {
                assert!(
                    known.contains(&v) || foreign.contains(&v.as_str()),
                    "{} sets {v}, which tandem does not read",
                    file.display()
                );
            }
            let mut paths = BTreeSet::new();
            paths_in(&value, &mut paths);
            for p in paths {
                assert!(["/healthz", "/readyz", "/metrics"].contains(&p.as_str()), "{} probes {p}", file.display());
            }
        }
    }
}

use serde::Deserialize as _;

#[tokio::test]
async fn the_probed_endpoints_exist() {
    use tower::ServiceExt as _;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_millis(200))
        .connect_lazy("postgres://nobody@127.0.0.1:1/none")
        .unwrap();
    let metrics = tandem_api::metrics::Metrics::new();
    let app = tandem_api::ops::router(tandem_api::ops::OpsState::new(pool, metrics, 1000));
    for path in ["/healthz", "/readyz", "/metrics"] {
        let res =
            app.clone().oneshot(axum::http::Request::get(path).body(axum::body::Body::empty()).unwrap()).await.unwrap();
        assert_ne!(res.status().as_u16(), 404, "{path}");
    }
    let docker = std::fs::read_to_string(deploy_dir().join("Dockerfile")).unwrap();
    assert!(docker.contains("FROM") && docker.matches("FROM ").count() >= 2, "multi-stage Dockerfile");
    assert!(docker.contains("--bin tandem"));
}
