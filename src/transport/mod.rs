//! How connections reach the gRPC router. This module owns the listening
//! socket and the life of every connection:
//!
//! - [`accept`]: the accept loop and the bound on open connections (beyond
//!   `--max-connections` a new connection is closed at once, so a client
//!   opening connections in a loop cannot grow memory without bound);
//! - [`connection`]: one connection: the TLS handshake and the HTTP/2 preface
//!   within `--handshake-timeout-secs`, HTTP/2 keepalive PINGs, a GOAWAY
//!   after `--max-connection-age-secs` (so L4 load balancing reaches new
//!   replicas) or `--idle-timeout-secs` without an RPC, then a grace period,
//!   and the GOAWAY of a graceful shutdown;
//! - [`peer`]: who is on the other end (address, caller identity from the
//!   client certificate), put into every request's extensions;
//! - [`descriptors`]: one open-file budget for every listener's connections
//!   and what the process needs besides them, so that a flood on one port
//!   cannot take the descriptors another port needs.
//!
//! tonic's own server loop is not used: it cannot send a GOAWAY for idleness,
//! bound connections or time out a handshake, and its age grace closes
//! connections without a GOAWAY first. The router (tonic's `Routes`) and
//! everything above it are unchanged.

mod accept;
mod connection;
pub mod descriptors;
pub mod peer;
mod preface;

use std::{sync::Arc, time::Duration};

use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tonic::service::Routes;

pub use descriptors::{fit_open_file_limit, ListenerCaps};
pub use peer::Peer;

use crate::{config::ConnectionConfig, tls::Reloader};

/// Which listener a [`Server`] serves: its refusals are counted apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The gRPC port: its connections are the connection metrics.
    Grpc,
    /// The plaintext health port: only its refusals are counted
    /// (`listener="health"`), so probes do not blur the gRPC figures.
    Health,
}

/// Connection bounds and lifetimes.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Open connections at most.
    pub max_connections: u32,
    /// Open connections from one address at most; 0 = no such bound.
    pub max_connections_per_ip: u32,
    /// Which listener this is.
    pub listener: Listener,
    /// Time for the TLS handshake and the HTTP/2 preface.
    pub handshake_timeout: Duration,
    /// Age after which a connection gets a GOAWAY (±10 % jitter).
    pub max_age: Option<Duration>,
    /// Time for RPCs in flight after a GOAWAY for age or idleness.
    pub grace: Duration,
    /// Time without an RPC after which a connection gets a GOAWAY.
    pub idle_timeout: Option<Duration>,
    /// HTTP/2 PING interval on a quiet connection.
    pub keepalive_interval: Option<Duration>,
    /// Time for a PING's answer.
    pub keepalive_timeout: Duration,
}

impl Settings {
    /// The settings of the gRPC port.
    pub fn from_config(config: &ConnectionConfig) -> Self {
        Self {
            max_connections: config.max_connections,
            max_connections_per_ip: config.max_connections_per_ip,
            listener: Listener::Grpc,
            handshake_timeout: config.handshake_timeout(),
            max_age: config.max_age(),
            grace: config.age_grace(),
            idle_timeout: config.idle_timeout(),
            keepalive_interval: config.keepalive_interval(),
            keepalive_timeout: config.keepalive_timeout(),
        }
    }

    /// The settings of the plaintext health listener: few connections
    /// (kubelet opens one per probe) held briefly, so that nothing can sit
    /// on its slots for long.
    pub fn health(config: &ConnectionConfig) -> Self {
        Self {
            max_connections: HEALTH_MAX_CONNECTIONS,
            max_connections_per_ip: 0,
            listener: Listener::Health,
            max_age: Some(Duration::from_secs(60)),
            grace: Duration::from_secs(5),
            idle_timeout: Some(Duration::from_secs(10)),
            ..Self::from_config(config)
        }
    }

    fn http2(&self) -> hyper::server::conn::http2::Builder<TokioExecutor> {
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .keep_alive_interval(self.keepalive_interval)
            .keep_alive_timeout(self.keepalive_timeout)
            // Bounds on what one connection can hold: a peer that opens
            // streams and stops reading pins at most 100 x 64 KiB of
            // responses (hyper's defaults: 200 x 400 KiB).
            .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
            .max_send_buf_size(MAX_SEND_BUFFER_PER_STREAM)
            // And of requests: data the peer sends that no one has read yet
            // sits in h2's buffers, outside the request budget, up to these
            // windows (hyper's defaults: 1 MiB per stream and 1 MiB per
            // connection). The middleware reads every request at once, so
            // the windows bound only what piles up between two polls, and
            // what arrives for a stream being refused.
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            // The header list of one request, as HPACK counts it. Set here
            // rather than left to hyper's default (the same 16 KiB today):
            // it is the most a stream waiting for its message holds in
            // headers, counted against the request budget, and an access
            // token passed as metadata (1-2 KiB, more with many groups)
            // must fit with room to spare. gRPC's own default is 8 KiB
            // (16 KiB hard).
            .max_header_list_size(MAX_HEADER_LIST_BYTES);
        builder
    }
}

/// Concurrent streams (RPCs) on one connection.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 100;
/// Response bytes buffered per stream for a peer that does not read.
pub const MAX_SEND_BUFFER_PER_STREAM: usize = 64 * 1024;
/// Bytes a peer may send on one stream before the server has read them:
/// the default `--max-message-bytes` (a typical request, ~2 KiB, is far
/// under it). A larger message needs a window update (one round trip) per
/// 64 KiB, which only a caller that raised `--max-message-bytes` pays.
pub const STREAM_WINDOW: u32 = 64 * 1024;
/// Bytes a peer may send on one connection before the server has read
/// them: 100 streams of typical requests (~2 KiB) in one round trip; a
/// quarter of hyper's default, so that 2,048 connections whose data is not
/// yet read hold at most 512 MiB even in theory, while what is read is
/// bounded by the request budget.
pub const CONNECTION_WINDOW: u32 = 256 * 1024;
/// The largest request header list accepted (HTTP/2
/// `SETTINGS_MAX_HEADER_LIST_SIZE`).
pub const MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;
/// Connections of the plaintext health listener: kubelet opens one per
/// probe and closes it, so a few suffice; the bound keeps the listener
/// from taking descriptors the gRPC port needs.
pub const HEALTH_MAX_CONNECTIONS: u32 = 64;

/// What every connection task shares.
struct Shared {
    routes: Routes,
    tls: Option<Reloader>,
    settings: Settings,
    http2: hyper::server::conn::http2::Builder<TokioExecutor>,
    /// Cancelled at shutdown: every connection sends a GOAWAY and finishes
    /// its RPCs in flight.
    drain: CancellationToken,
    /// Cancelled when the drain time is over: connections close at once.
    abort: CancellationToken,
}

/// A running listener: connections are accepted and served until
/// [`Server::shutdown`]; dropped without it, it closes everything at once.
pub struct Server {
    stop_accepting: CancellationToken,
    accept: Option<JoinHandle<()>>,
    tracker: TaskTracker,
    shared: Arc<Shared>,
}

impl Server {
    /// Serves `routes` on `listener`, with TLS when `tls` is set.
    pub fn start(
        listener: TcpListener,
        tls: Option<Reloader>,
        routes: Routes,
        settings: Settings,
    ) -> Self {
        let shared = Arc::new(Shared {
            routes,
            tls,
            http2: settings.http2(),
            settings,
            drain: CancellationToken::new(),
            abort: CancellationToken::new(),
        });
        let stop_accepting = CancellationToken::new();
        let tracker = TaskTracker::new();
        let accept = tokio::spawn(accept::run(
            listener,
            Arc::clone(&shared),
            tracker.clone(),
            stop_accepting.clone(),
        ));
        Self {
            stop_accepting,
            accept: Some(accept),
            tracker,
            shared,
        }
    }

    /// Closes the listener, sends every connection a GOAWAY and waits up to
    /// `drain_timeout` for their RPCs in flight; then closes what is left.
    /// Returns whether everything finished in time.
    pub async fn shutdown(mut self, drain_timeout: Duration) -> bool {
        self.stop_accepting.cancel();
        if let Some(accept) = self.accept.take() {
            let _ = accept.await;
        }
        self.shared.drain.cancel();
        self.tracker.close();
        if tokio::time::timeout(drain_timeout, self.tracker.wait())
            .await
            .is_ok()
        {
            return true;
        }
        self.shared.abort.cancel();
        self.tracker.wait().await;
        false
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_accepting.cancel();
        self.shared.abort.cancel();
    }
}
