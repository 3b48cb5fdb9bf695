//! Logging through `tracing`: the service log (text or JSON lines on
//! stderr, filtered by a `RUST_LOG`-style directive string) and the audit
//! trail (its own target and output, independent of that filter). JSON
//! lines are written by [`JsonLayer`] (`json`), text by tracing-subscriber.
//!
//! TRACE events of the HTTP and SDK crates are dropped whatever the filter
//! says. At that level the AWS SDK logs each outgoing request with `Debug`
//! ("transmitting request"), and hyper/h2 log wire frames. Today the SDK's
//! body prints as an opaque `BoxBody`, but a buffered body prints its bytes,
//! and the body carries the access token and the code: this guard keeps an
//! SDK upgrade from turning `--log-filter trace` into a leak.

use std::io::IsTerminal as _;

use tracing::Level;
use tracing_subscriber::{
    filter::{filter_fn, FilterExt, Targets},
    EnvFilter, Layer,
};

use super::json::JsonLayer;
use crate::config::{AuditLog, LogConfig, LogFormat};

/// The log target of audit events (the audit trail writes them, this module
/// routes them to their own output).
pub const AUDIT_TARGET: &str = "audit";

/// Crates whose TRACE output may contain request bytes.
pub const TRACE_DENIED: &[&str] = &[
    "aws_smithy_",
    "aws_sdk_",
    "aws_config",
    "hyper",
    "h2",
    "tonic",
    "tower",
    "rustls",
];

/// The service log: every event the filter admits except the audit trail
/// (which has its own layer), with colours only on a terminal.
pub fn service_layer<S>(config: &LogConfig) -> Result<Box<dyn Layer<S> + Send + Sync>, String>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let filter = EnvFilter::try_new(&config.log_filter)
        .map_err(|e| format!("invalid log filter {:?}: {e}", config.log_filter))?;
    let no_secret_traces = filter_fn(|meta| {
        *meta.level() != Level::TRACE || !TRACE_DENIED.iter().any(|p| meta.target().starts_with(p))
    });
    let not_audit = filter_fn(|meta| meta.target() != AUDIT_TARGET);
    let layer = match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .boxed(),
        LogFormat::Json => JsonLayer::new(std::io::stderr)
            .with_current_span(true)
            .boxed(),
    };
    Ok(layer
        .with_filter(filter.and(no_secret_traces).and(not_audit))
        .boxed())
}

/// The audit trail's own output (target [`AUDIT_TARGET`], INFO, whatever the
/// service log's filter says), or `None` when it is off. Its events carry
/// every field themselves: no span context is printed.
pub fn audit_layer<S>(
    config: &LogConfig,
    output: AuditLog,
) -> Option<Box<dyn Layer<S> + Send + Sync>>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    // `Targets` decides per callsite, once: every other callsite (the SDK's,
    // hyper's, h2's many debug spans and events) is then off for this layer
    // without a check per use. A bare `filter_fn` would make every callsite
    // of the process "sometimes" and checked on each use (a profile showed
    // ~30 % of the instructions per RPC in the subscriber).
    let only_audit = Targets::new()
        .with_target(AUDIT_TARGET, Level::INFO)
        .and(filter_fn(|meta| {
            meta.target() == AUDIT_TARGET && meta.is_event()
        }));
    let stdout = match output {
        AuditLog::Off => return None,
        AuditLog::Stderr => false,
        AuditLog::Stdout => true,
    };
    let make = |json: bool, stdout: bool| -> Box<dyn Layer<S> + Send + Sync> {
        let base = tracing_subscriber::fmt::layer().with_ansi(false);
        match (json, stdout) {
            (true, true) => JsonLayer::new(std::io::stdout).flatten_event(true).boxed(),
            (true, false) => JsonLayer::new(std::io::stderr).flatten_event(true).boxed(),
            (false, true) => base.with_writer(std::io::stdout).boxed(),
            (false, false) => base.with_writer(std::io::stderr).boxed(),
        }
    };
    let layer = make(config.log_format == LogFormat::Json, stdout);
    Some(layer.with_filter(only_audit).boxed())
}
