//! Telemetry. This module owns what an operator sees without reading code:
//!
//! - [`logs`]: the service log (text or JSON, secret-safe) and the audit
//!   trail's own output; `json` writes the JSON lines;
//! - [`traces`] and [`propagation`]: spans exported over OTLP, continuing the
//!   caller's W3C trace;
//! - [`metrics`], [`process`], [`exposition`] and [`admin`]: Prometheus
//!   metrics and the admin HTTP listener that serves them;
//! - [`throttle`]: warnings that requests can trigger, logged at most once
//!   per interval with a count of those left out.
//!
//! The spans themselves are made where the work is: the server span in
//! `middleware::trace`, the Cognito client span in `cognito`.

pub mod admin;
pub mod exposition;
mod json;
pub mod logs;
pub mod metrics;
mod process;
pub mod propagation;
pub mod throttle;
pub mod traces;

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::{
    filter::{filter_fn, FilterExt as _, Targets},
    layer::SubscriberExt as _,
    util::SubscriberInitExt as _,
    Layer as _,
};

use crate::config::{AuditLog, LogConfig, TelemetryConfig};

/// Whether spans go to an OpenTelemetry exporter (set once, at start-up).
static TRACES_ON: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported: the span code adds the OpenTelemetry fields
/// (kind, status, semantic-convention attributes) only then.
pub fn traces_on() -> bool {
    TRACES_ON.load(Ordering::Relaxed)
}

/// What `init` started; [`Telemetry::shutdown`] flushes it.
#[must_use = "shut telemetry down to flush the spans still queued"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

/// Installs the global subscriber: the service log, the audit trail unless it
/// is off, and the OpenTelemetry layer when traces are exported. Must run
/// inside the Tokio runtime (the OTLP exporter spawns its connection).
pub fn init(
    log: &LogConfig,
    audit: AuditLog,
    telemetry: Option<&TelemetryConfig>,
) -> Result<Telemetry, String> {
    let traces = match telemetry {
        Some(config) => traces::build(config)?,
        None => None,
    };
    let provider = traces.as_ref().map(|t| t.provider.clone());
    // Only our own spans, and no events: the exporter's own HTTP/2 traffic
    // must not be traced (a loop), and log events are not span events.
    let otel = traces.map(|t| {
        tracing_opentelemetry::layer()
            .with_tracer(t.tracer)
            .with_location(false)
            .with_threads(false)
            .with_tracked_inactivity(false)
            .with_target(false)
            // Decided per callsite first (see logs::audit_layer), then per use.
            .with_filter(
                Targets::new()
                    .with_target("cognito_verify", tracing::Level::TRACE)
                    .and(filter_fn(|meta| {
                        meta.is_span() && meta.target().starts_with("cognito_verify")
                    })),
            )
    });
    // One list of layers, each with its own filter, and nothing for what is
    // off: an absent layer added as `None` reads as "interested in
    // everything" and turns every callsite of the process (h2's, the SDK's
    // trace events) into a check per use: ~500 per RPC in a profile.
    let mut layers: Vec<
        Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>,
    > = vec![logs::service_layer(log)?];
    layers.extend(logs::audit_layer(log, audit));
    layers.extend(otel.map(|layer| layer.boxed()));
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .map_err(|e| format!("cannot install the log subscriber: {e}"))?;
    TRACES_ON.store(provider.is_some(), Ordering::Relaxed);
    if let (Some(config), true) = (telemetry, provider.is_some()) {
        tracing::info!(
            endpoint = traces::endpoint(config).map(traces::without_userinfo),
            sampler = ?config.otel_traces_sampler,
            "exporting traces over OTLP"
        );
    }
    Ok(Telemetry { provider })
}

impl Telemetry {
    /// Flushes the spans still queued, within `limit`.
    pub async fn shutdown(self, limit: Duration) {
        if let Some(provider) = self.provider {
            traces::shutdown(provider, limit).await;
        }
    }
}
