//! Logs and traces: a `tracing` subscriber writing text or JSON lines to
//! stderr and, when an OTLP endpoint is configured, exporting spans over
//! OTLP/HTTP (protobuf) through a batch span processor.
//!
//! [`init`] installs it once per process and returns a [`TelemetryGuard`]
//! that flushes and shuts the exporter down when dropped (or on
//! [`TelemetryGuard::shutdown`]). [`init_basic`] is the logs-only variant
//! for one-shot subcommands.
//!
//! The two outputs are filtered separately. Logs follow `RUST_LOG`
//! (default `info,sqlx=warn`: one line per statement would drown the log).
//! Traces follow the same filter, plus `sqlx::query=debug` unless the filter
//! names `sqlx::query` itself: sqlx reports each statement as a debug event
//! (its summary, rows and elapsed time), which becomes an event of the span
//! it ran in, so a trace shows its SQL calls. The exporter's own crates
//! (`opentelemetry*`, `reqwest`, `hyper*`, `h2`) are never traced, so that
//! exporting cannot feed itself; their warnings still reach the log.
//!
//! Secrets: nothing here logs the environment; the OTLP endpoint is logged
//! without any user information it may carry.

use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The default log filter.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn";

/// The default `service.name` of exported spans.
pub const DEFAULT_SERVICE_NAME: &str = "tandem";

/// The path OTLP/HTTP receivers take traces on, appended to the endpoint as
/// the OpenTelemetry specification says for `OTEL_EXPORTER_OTLP_ENDPOINT`.
const TRACES_PATH: &str = "/v1/traces";

/// How long an export request may take before it is abandoned.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Targets never traced: the exporter's own stack.
const UNTRACED: &[&str] = &[
    "opentelemetry",
    "opentelemetry_sdk",
    "opentelemetry_otlp",
    "opentelemetry_http",
    "reqwest",
    "hyper",
    "hyper_util",
    "h2",
];

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Where logs and traces go (read from flags and environment by the
/// caller: `RUST_LOG`, `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelemetryOptions {
    /// How log lines are written.
    pub log_format: LogFormat,
    /// What to log, in `RUST_LOG` syntax (e.g. `info,tandem=debug`); also
    /// what to trace.
    pub filter: String,
    /// Base URL of an OTLP/HTTP receiver (e.g. `http://collector:4318`);
    /// traces go to `<endpoint>/v1/traces` unless it already ends so. No
    /// endpoint, no traces.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` of exported spans.
    pub service_name: String,
}

impl Default for TelemetryOptions {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Text,
            filter: DEFAULT_FILTER.to_owned(),
            otlp_endpoint: None,
            service_name: DEFAULT_SERVICE_NAME.to_owned(),
        }
    }
}

/// Keeps the trace exporter alive; flushes and shuts it down when dropped.
///
/// Flushing blocks the calling thread until the batch processor's thread
/// has sent what it holds (at most the export timeout). That thread does
/// not need the tokio runtime, so blocking a runtime thread cannot
/// deadlock it; on a current-thread runtime whose own task is the receiver
/// (tests), call it from `spawn_blocking`.
#[derive(Debug)]
#[must_use = "dropping the guard shuts the trace exporter down"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Whether spans are exported.
    #[must_use]
    pub fn exports_traces(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports every finished span now.
    pub fn flush(&self) -> anyhow::Result<()> {
        if let Some(provider) = &self.provider {
            provider.force_flush().context("flushing spans to the OTLP endpoint")?;
        }
        Ok(())
    }

    /// Flushes and shuts the exporter down; spans ended later are dropped.
    /// A failure (the receiver is unreachable) is reported on stderr: at
    /// this point it can only be reported.
    pub fn shutdown(mut self) {
        self.shutdown_provider();
    }

    fn shutdown_provider(&mut self) {
        if let Some(provider) = self.provider.take() {
            // Shutdown flushes the batch first. The subscriber may be what
            // failed to export, hence stderr rather than a log line.
            if let Err(e) = provider.shutdown() {
                eprintln!("warning: shutting the OTLP trace exporter down: {e}");
            }
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        self.shutdown_provider();
    }
}

/// The filter of exported spans: the log filter, plus sqlx's statement
/// events, minus the exporter's own stack.
fn trace_filter(filter: &str) -> String {
    let mut directives = filter.trim().trim_end_matches(',').to_owned();
    if !directives.contains("sqlx::query") {
        if !directives.is_empty() {
            directives.push(',');
        }
        directives.push_str("sqlx::query=debug");
    }
    for target in UNTRACED {
        directives.push_str(&format!(",{target}=off"));
    }
    directives
}

/// The endpoint traces are posted to.
fn traces_url(endpoint: &str) -> String {
    let base = endpoint.trim().trim_end_matches('/');
    if base.ends_with(TRACES_PATH) { base.to_owned() } else { format!("{base}{TRACES_PATH}") }
}

/// `endpoint` without user information (`user:password@`), for logs.
fn redacted(endpoint: &str) -> String {
    match endpoint.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
            let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
            if path.is_empty() { format!("{scheme}://{host}") } else { format!("{scheme}://{host}/{path}") }
        }
        None => "(unparsable endpoint)".to_owned(),
    }
}

fn tracer_provider(endpoint: &str, service_name: &str) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(traces_url(endpoint))
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .context("building the OTLP/HTTP span exporter")?;
    let resource = Resource::builder()
        .with_service_name(service_name.to_owned())
        .with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
}

/// Installs the process's tracing subscriber: logs to stderr and, with an
/// endpoint, spans to OTLP/HTTP. Fails when the filter does not parse, the
/// exporter cannot be built, or a global subscriber is already installed.
pub fn init(opts: TelemetryOptions) -> anyhow::Result<TelemetryGuard> {
    let log_filter =
        EnvFilter::try_new(&opts.filter).with_context(|| format!("invalid log filter {:?}", opts.filter))?;
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match opts.log_format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().with_current_span(true).with_span_list(false).boxed(),
    }
    .with_filter(log_filter);

    let endpoint = opts.otlp_endpoint.as_deref().map(str::trim).filter(|e| !e.is_empty());
    let provider = endpoint.map(|e| tracer_provider(e, &opts.service_name)).transpose()?;
    let otel = match &provider {
        Some(provider) => {
            let filter = EnvFilter::try_new(trace_filter(&opts.filter)).context("building the trace filter")?;
            let tracer = provider.tracer("tandem");
            Some(tracing_opentelemetry::layer().with_tracer(tracer).with_filter(filter))
        }
        None => None,
    };

    if let Some(provider) = &provider {
        // Before the subscriber, so that the SDK's "provider set" notice
        // does not reach the log. The propagator lets the transport read a
        // caller's `traceparent`.
        opentelemetry::global::set_tracer_provider(provider.clone());
        opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    }
    tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init()
        .context("installing the tracing subscriber (is one installed already?)")?;
    match endpoint {
        Some(e) => tracing::info!(
            endpoint = %redacted(&traces_url(e)),
            service_name = %opts.service_name,
            "exporting traces over OTLP/HTTP"
        ),
        None => tracing::debug!("no OTLP endpoint: traces are not exported"),
    }
    Ok(TelemetryGuard { provider })
}

/// Logs only, as text, filtered by `RUST_LOG` (else [`DEFAULT_FILTER`]),
/// for one-shot subcommands. Never fails: an invalid `RUST_LOG` falls back
/// to the default (with a warning), and an already installed subscriber is
/// kept.
pub fn init_basic() -> TelemetryGuard {
    let from_env = std::env::var("RUST_LOG").ok().filter(|f| !f.trim().is_empty());
    let filter = match from_env.as_deref().map(EnvFilter::try_new) {
        Some(Ok(filter)) => filter,
        Some(Err(e)) => {
            eprintln!("warning: ignoring RUST_LOG ({e}); using {DEFAULT_FILTER:?}");
            EnvFilter::new(DEFAULT_FILTER)
        }
        None => EnvFilter::new(DEFAULT_FILTER),
    };
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_filter(filter);
    // Err only when a subscriber is installed already, which then stays.
    let _ = tracing_subscriber::registry().with(fmt).try_init();
    TelemetryGuard { provider: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_url_appends_the_signal_path_once() {
        assert_eq!(traces_url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/v1/traces"), "http://c:4318/v1/traces");
    }

    #[test]
    fn trace_filter_adds_sql_statements_and_silences_the_exporter() {
        let f = trace_filter("info,sqlx=warn");
        assert!(f.starts_with("info,sqlx=warn,sqlx::query=debug,"), "{f}");
        assert!(f.contains("opentelemetry_otlp=off") && f.contains("reqwest=off"), "{f}");
        assert!(trace_filter("info,sqlx::query=off").starts_with("info,sqlx::query=off,opentelemetry="));
        EnvFilter::try_new(trace_filter(DEFAULT_FILTER)).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn endpoints_are_logged_without_credentials() {
        assert_eq!(redacted("https://user:secret@collector:4318/v1/traces"), "https://collector:4318/v1/traces");
        assert_eq!(redacted("http://collector:4318"), "http://collector:4318");
    }
}
