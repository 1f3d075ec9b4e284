//! Logs and traces: the log lines on stderr and, with `--otlp-endpoint`, the spans of every
//! request, command, commit and projection exported over OTLP/HTTP (protobuf).
//!
//! The two have their own filters: `RUST_LOG` quiets the log without losing the traces,
//! and the HTTP client that exports spans never traces itself.

use std::time::Duration;

use anyhow::{Context, bail};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// What the log lines look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The spans exported: the console's own, at info and above; none of the crates that
/// carry the export (a span of its HTTP request would be exported in turn).
const TRACE_FILTER: &str =
    "info,h2=off,hyper=off,hyper_util=off,reqwest=off,tower=off,opentelemetry=off,opentelemetry_sdk=off,async_nats=off";

/// Default log filter when `RUST_LOG` is unset.
const LOG_FILTER: &str = "info,async_nats=warn,tower_http=info";

/// The installed telemetry; [`Telemetry::shutdown`] sends the spans still buffered.
#[must_use = "dropping it keeps exporting; call shutdown on exit to send the spans still buffered"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Sends every span ended so far and waits for the receiver's answer.
    pub fn flush(&self) -> anyhow::Result<()> {
        if let Some(p) = &self.provider {
            p.force_flush().context("the OTLP endpoint did not take the spans")?;
        }
        Ok(())
    }

    /// Sends what is buffered and stops exporting.
    pub fn shutdown(self) {
        if let Some(p) = self.provider
            && let Err(e) = p.shutdown()
        {
            tracing::warn!(error = %e, "the last spans could not be sent to the OTLP endpoint");
        }
    }
}

/// The OTLP/HTTP traces URL for `endpoint`: as `OTEL_EXPORTER_OTLP_ENDPOINT` is read, a
/// base URL (`http://collector:4318`) gets `/v1/traces`; a URL that names a path is used
/// as it is.
pub fn traces_url(endpoint: &str) -> anyhow::Result<String> {
    let url = url::Url::parse(endpoint.trim()).with_context(|| {
        format!("--otlp-endpoint {endpoint:?} is not a URL; give the collector's OTLP/HTTP address, e.g. http://localhost:4318")
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        bail!(
            "--otlp-endpoint {endpoint:?}: traces are sent over OTLP/HTTP; give an http:// or https:// address with a host, e.g. http://localhost:4318"
        );
    }
    if url.path().trim_end_matches('/').is_empty() {
        Ok(url.join("v1/traces")?.to_string())
    } else {
        Ok(url.to_string())
    }
}

/// Installs the process's subscriber: the log at `RUST_LOG` (or the default) in `format`,
/// and with `otlp_endpoint` the trace exporter. Once per process: a later call installs
/// nothing (and fails if it asks for traces).
pub fn init(format: LogFormat, otlp_endpoint: Option<&str>) -> anyhow::Result<Telemetry> {
    let log_filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(LOG_FILTER));
    let log = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer().boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer().json().boxed(),
    }
    .with_filter(log_filter);
    let provider = otlp_endpoint.map(provider).transpose()?;
    let traces = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("jsconsole"))
            .with_filter(tracing_subscriber::EnvFilter::new(TRACE_FILTER))
    });
    let installed = tracing_subscriber::registry().with(log).with(traces).try_init();
    match (installed, otlp_endpoint) {
        (Ok(()), Some(endpoint)) => {
            tracing::info!(endpoint = %traces_url(endpoint)?, "exporting traces over OTLP/HTTP");
        }
        // Whoever installed the subscriber first (a test harness) keeps the log.
        (Err(_), None) => {}
        (Err(e), Some(_)) => bail!("cannot export traces: a tracing subscriber is already installed ({e})"),
        (Ok(()), None) => {}
    }
    Ok(Telemetry { provider })
}

/// A tracer provider batching spans to `endpoint` (on its own thread, so a slow or absent
/// collector costs the console nothing but the spans it drops once its queue is full).
fn provider(endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    let url = traces_url(endpoint)?;
    crate::install_crypto();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url.clone())
        .with_timeout(Duration::from_secs(10))
        .build()
        .with_context(|| format!("cannot export traces to {url}"))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("jsconsole")
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_url_gets_the_traces_path_and_a_full_one_is_kept() {
        assert_eq!(
            traces_url("http://localhost:4318").unwrap(),
            "http://localhost:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://localhost:4318/").unwrap(),
            "http://localhost:4318/v1/traces"
        );
        assert_eq!(
            traces_url("https://otel.example.com/custom/traces").unwrap(),
            "https://otel.example.com/custom/traces"
        );
        for bad in ["localhost:4318", "grpc://localhost:4317", "not a url", "file:///tmp/x"] {
            let e = traces_url(bad).unwrap_err().to_string();
            assert!(
                e.contains("--otlp-endpoint") && e.contains("http://localhost:4318"),
                "{bad}: {e}"
            );
        }
    }
}
