//! `serve`'s telemetry settings: the admin (metrics) listener, the audit
//! trail's output, and OpenTelemetry's standard `OTEL_*` variables.

use clap::{Args, ValueEnum};

use super::{parse_endpoint, Listen};

/// Where the audit trail goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditLog {
    /// With the service log, on stderr (but not subject to its filter).
    Stderr,
    /// On stdout, apart from the service log.
    Stdout,
    /// Nowhere.
    Off,
}

/// `OTEL_TRACES_SAMPLER` values (OpenTelemetry SDK configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TracesSampler {
    /// Every trace.
    #[value(name = "always_on")]
    AlwaysOn,
    /// No trace.
    #[value(name = "always_off")]
    AlwaysOff,
    /// A ratio of traces (`OTEL_TRACES_SAMPLER_ARG`, default 1).
    #[value(name = "traceidratio")]
    TraceIdRatio,
    /// The caller's decision, else every trace.
    #[value(name = "parentbased_always_on")]
    ParentBasedAlwaysOn,
    /// The caller's decision, else none.
    #[value(name = "parentbased_always_off")]
    ParentBasedAlwaysOff,
    /// The caller's decision, else a ratio.
    #[value(name = "parentbased_traceidratio")]
    ParentBasedTraceIdRatio,
}

/// `OTEL_TRACES_EXPORTER` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TracesExporter {
    /// OTLP over gRPC.
    Otlp,
    /// No export.
    None,
}

/// Only OTLP over gRPC is built in.
fn parse_protocol(value: &str) -> Result<String, String> {
    match value.trim() {
        "grpc" => Ok("grpc".to_owned()),
        other => Err(format!(
            "only the grpc OTLP protocol is supported (e.g. port 4317), not {other:?}"
        )),
    }
}

/// Metrics, traces and the audit trail. The trace settings are
/// OpenTelemetry's standard variables.
#[derive(Debug, Clone, Args)]
pub struct TelemetryConfig {
    /// Plaintext HTTP listener for `GET /metrics` (Prometheus), or `off`.
    #[arg(
        long,
        env = "COGNITO_VERIFY_ADMIN_LISTEN",
        default_value = "0.0.0.0:9464"
    )]
    pub admin_listen: Listen,

    /// Where the audit trail (one event per send and per verify) goes:
    /// `stderr`, `stdout` or `off`. JSON with `--log-format json`.
    #[arg(long, env = "COGNITO_VERIFY_AUDIT_LOG", value_enum, default_value_t = AuditLog::Stderr)]
    pub audit_log: AuditLog,

    /// OTLP/gRPC endpoint for traces (e.g. `http://otel-collector:4317`).
    /// Unset: no exporter.
    #[arg(long = "otlp-endpoint", env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_parser = parse_endpoint)]
    pub otlp_endpoint: Option<String>,

    /// OTLP/gRPC endpoint for traces only; wins over `--otlp-endpoint`.
    #[arg(long = "otlp-traces-endpoint", env = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", value_parser = parse_endpoint)]
    pub otlp_traces_endpoint: Option<String>,

    /// Time for one export to the collector, in milliseconds (default 3000,
    /// under the 5 s flush at shutdown).
    #[arg(long = "otlp-timeout-ms", env = "OTEL_EXPORTER_OTLP_TIMEOUT", value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub otlp_timeout_ms: Option<u64>,

    /// The same, for traces only; wins over `--otlp-timeout-ms`.
    #[arg(long = "otlp-traces-timeout-ms", env = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub otlp_traces_timeout_ms: Option<u64>,

    /// The OTLP protocol: only `grpc` is supported.
    #[arg(long = "otlp-protocol", env = "OTEL_EXPORTER_OTLP_PROTOCOL", value_parser = parse_protocol)]
    pub otlp_protocol: Option<String>,

    /// The same, for traces only.
    #[arg(long = "otlp-traces-protocol", env = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", value_parser = parse_protocol)]
    pub otlp_traces_protocol: Option<String>,

    /// `otlp` (the default) or `none` (no export).
    #[arg(long = "otel-traces-exporter", env = "OTEL_TRACES_EXPORTER", value_enum, default_value_t = TracesExporter::Otlp)]
    pub otel_traces_exporter: TracesExporter,

    /// `service.name` of the spans (default `cognito-verify`, or the
    /// `service.name` of `OTEL_RESOURCE_ATTRIBUTES`).
    #[arg(long = "otel-service-name", env = "OTEL_SERVICE_NAME")]
    pub otel_service_name: Option<String>,

    /// More resource attributes: `key=value,key=value` (values
    /// percent-encoded), e.g. `k8s.pod.name=...`.
    #[arg(long = "otel-resource-attributes", env = "OTEL_RESOURCE_ATTRIBUTES")]
    pub otel_resource_attributes: Option<String>,

    /// Which traces are recorded.
    #[arg(long = "otel-traces-sampler", env = "OTEL_TRACES_SAMPLER", value_enum, default_value_t = TracesSampler::ParentBasedAlwaysOn)]
    pub otel_traces_sampler: TracesSampler,

    /// The ratio of the `traceidratio` samplers, from 0 to 1.
    #[arg(long = "otel-traces-sampler-arg", env = "OTEL_TRACES_SAMPLER_ARG")]
    pub otel_traces_sampler_arg: Option<f64>,

    /// `true` turns trace export off whatever else is set.
    #[arg(
        long = "otel-sdk-disabled",
        env = "OTEL_SDK_DISABLED",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub otel_sdk_disabled: bool,
}
