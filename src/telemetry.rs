//! Logging through `tracing`: text or JSON lines on stderr, filtered by a
//! `RUST_LOG`-style directive string.
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
    filter::{filter_fn, FilterExt},
    fmt::MakeWriter,
    layer::SubscriberExt,
    util::SubscriberInitExt,
    EnvFilter, Layer,
};

use crate::config::{LogConfig, LogFormat};

/// Crates whose TRACE output may contain request bytes.
const TRACE_DENIED: &[&str] = &[
    "aws_smithy_",
    "aws_sdk_",
    "aws_config",
    "hyper",
    "h2",
    "tonic",
    "tower",
    "rustls",
];

/// Installs the global subscriber writing to stderr, with colours only when
/// stderr is a terminal.
pub fn init(config: &LogConfig) -> Result<(), String> {
    init_with(config, std::io::stderr, std::io::stderr().is_terminal())
}

/// Installs the global subscriber writing to `writer`. Fails on an invalid
/// filter or when a subscriber is already installed.
pub fn init_with<W>(config: &LogConfig, writer: W, ansi: bool) -> Result<(), String>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(&config.log_filter)
        .map_err(|e| format!("invalid log filter {:?}: {e}", config.log_filter))?;
    let no_secret_traces = filter_fn(|meta| {
        *meta.level() != Level::TRACE || !TRACE_DENIED.iter().any(|p| meta.target().starts_with(p))
    });
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi);
    let fmt = match config.log_format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(fmt.with_filter(filter.and(no_secret_traces)))
        .try_init()
        .map_err(|e| format!("cannot install the log subscriber: {e}"))
}
