//! Traces exported over OTLP/gRPC: the OpenTelemetry SDK's tracer provider
//! (batch export on its own thread), its sampler and resource, built from the
//! standard `OTEL_*` variables, which `config` reads like every other
//! setting. No endpoint (or `OTEL_SDK_DISABLED=true`) means no exporter and
//! no per-request cost beyond reading `traceparent`.

use std::time::Duration;

use opentelemetry::{trace::TracerProvider as _, InstrumentationScope, KeyValue};
use opentelemetry_otlp::{WithExportConfig as _, WithTonicConfig as _};
use opentelemetry_sdk::{
    trace::{Sampler, SdkTracer, SdkTracerProvider},
    Resource,
};

use crate::config::{TelemetryConfig, TracesExporter, TracesSampler};

/// `service.name` when neither `OTEL_SERVICE_NAME` nor
/// `OTEL_RESOURCE_ATTRIBUTES` names the service.
pub const DEFAULT_SERVICE_NAME: &str = "cognito-verify";

/// Time for one export attempt (and its retries); kept under the shutdown
/// flush's own bound so that a flush on SIGTERM can finish.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(3);

/// The tracer and the provider to flush at shutdown.
pub struct Traces {
    /// Creates the spans.
    pub tracer: SdkTracer,
    /// Owns the batch processor.
    pub provider: SdkTracerProvider,
}

/// The OTLP endpoint in force, if export is on.
pub fn endpoint(config: &TelemetryConfig) -> Option<&str> {
    if config.otel_sdk_disabled || config.otel_traces_exporter == TracesExporter::None {
        return None;
    }
    config
        .otlp_traces_endpoint
        .as_deref()
        .or(config.otlp_endpoint.as_deref())
        .filter(|e| !e.trim().is_empty())
}

/// Builds the exporter and provider; `None` when export is off. Must run
/// inside the Tokio runtime: the tonic exporter spawns its connection there.
pub fn build(config: &TelemetryConfig) -> Result<Option<Traces>, String> {
    let Some(endpoint) = endpoint(config) else {
        return Ok(None);
    };
    let timeout = config
        .otlp_traces_timeout_ms
        .or(config.otlp_timeout_ms)
        .map_or(EXPORT_TIMEOUT, Duration::from_millis);
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(timeout);
    if endpoint.starts_with("https://") {
        exporter = exporter.with_tls_config(
            opentelemetry_otlp::tonic_types::transport::ClientTlsConfig::new().with_native_roots(),
        );
    }
    let exporter = exporter
        .build()
        .map_err(|e| format!("OTLP exporter for {}: {e}", without_userinfo(endpoint)))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(sampler(config)?)
        .with_resource(resource(config))
        .build();
    let tracer = provider.tracer_with_scope(
        InstrumentationScope::builder("cognito-verify")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build(),
    );
    Ok(Some(Traces { tracer, provider }))
}

/// The sampler `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` name.
fn sampler(config: &TelemetryConfig) -> Result<Sampler, String> {
    let ratio = || match config.otel_traces_sampler_arg {
        None => Ok(1.0),
        Some(r) if (0.0..=1.0).contains(&r) => Ok(r),
        Some(r) => Err(format!(
            "OTEL_TRACES_SAMPLER_ARG must be a ratio from 0 to 1, not {r}"
        )),
    };
    Ok(match config.otel_traces_sampler {
        TracesSampler::AlwaysOn => Sampler::AlwaysOn,
        TracesSampler::AlwaysOff => Sampler::AlwaysOff,
        TracesSampler::TraceIdRatio => Sampler::TraceIdRatioBased(ratio()?),
        TracesSampler::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        TracesSampler::ParentBasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        TracesSampler::ParentBasedTraceIdRatio => {
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio()?)))
        }
    })
}

/// `service.name` (from `OTEL_SERVICE_NAME`, which wins over a
/// `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, as the specification says),
/// `service.version`, and the attributes of `OTEL_RESOURCE_ATTRIBUTES`.
fn resource(config: &TelemetryConfig) -> Resource {
    let mut attributes = config
        .otel_resource_attributes
        .as_deref()
        .map(parse_resource_attributes)
        .unwrap_or_default();
    let from_attributes = attributes
        .iter()
        .position(|(k, _)| k == "service.name")
        .map(|i| attributes.remove(i).1);
    let name = config
        .otel_service_name
        .clone()
        .or(from_attributes)
        .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_owned());
    Resource::builder_empty()
        .with_service_name(name)
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .with_attributes(attributes.into_iter().map(|(k, v)| KeyValue::new(k, v)))
        .build()
}

/// `key1=value1,key2=value2`, values percent-decoded (W3C Baggage octets);
/// malformed members are skipped, as the specification allows.
pub fn parse_resource_attributes(value: &str) -> Vec<(String, String)> {
    value
        .split(',')
        .filter_map(|member| {
            let (k, v) = member.split_once('=')?;
            let (k, v) = (k.trim(), v.trim());
            (!k.is_empty()).then(|| (k.to_owned(), percent_decode(v)))
        })
        .collect()
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `endpoint` without a `user:password@` part, for logs and errors.
pub fn without_userinfo(endpoint: &str) -> String {
    match endpoint.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
                None => endpoint.to_owned(),
            }
        }
        None => endpoint.to_owned(),
    }
}

/// Flushes the spans still queued and stops the exporter, within `limit`.
/// The SDK's shutdown blocks its thread, so it runs on the blocking pool
/// while the runtime keeps serving the exporter's connection.
pub async fn shutdown(provider: SdkTracerProvider, limit: Duration) {
    let flush = tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(limit));
    match tokio::time::timeout(limit + Duration::from_secs(1), flush).await {
        Ok(Ok(Ok(()))) => tracing::info!("trace exporter shut down"),
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "flushing traces failed"),
        Ok(Err(e)) => tracing::warn!(error = %e, "flushing traces failed"),
        Err(_) => tracing::warn!("flushing traces timed out"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_attributes_are_parsed_and_decoded() {
        assert_eq!(
            parse_resource_attributes("k8s.pod.name=web-1, team=a%2Cb ,bad,=x,e=%zz"),
            vec![
                ("k8s.pod.name".to_owned(), "web-1".to_owned()),
                ("team".to_owned(), "a,b".to_owned()),
                ("e".to_owned(), "%zz".to_owned()),
            ]
        );
        assert_eq!(percent_decode("%41%"), "A%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(
            without_userinfo("https://u:secret@collector:4317/x"),
            "https://collector:4317/x"
        );
        assert_eq!(
            without_userinfo("http://collector:4317"),
            "http://collector:4317"
        );
    }
}
