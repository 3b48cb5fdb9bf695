//! The admin listener (`--admin-listen`): plaintext HTTP with `GET /metrics`
//! for Prometheus. It is its own port, outside the gRPC middleware: never
//! rate limited, shed or behind TLS, so that monitoring sees an overloaded
//! replica too.
//!
//! Its own accept loop rather than `axum::serve`, because anyone who can
//! reach the port can open connections to it, and `axum::serve` neither
//! bounds them nor times out one that never sends a request: silent
//! connections once took every descriptor of the process, and the gRPC and
//! health ports stopped accepting. Here connections are capped (over the
//! cap, closed at once and counted), a request's headers must arrive within
//! [`HEADER_READ_TIMEOUT`] (which also closes a kept-alive connection idle
//! that long), and a connection lives at most [`MAX_CONNECTION_AGE`].

use std::{future::Future, sync::Arc, time::Duration};

use axum::{
    http::{header, HeaderMap, StatusCode},
    response::IntoResponse,
    routing::get,
    Router,
};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{
    exposition,
    metrics::metrics,
    throttle::{Throttle, WARN_INTERVAL},
};

/// Connections at once: a Prometheus server keeps one per target, and a
/// few more leave room for a second scraper and a person with curl.
pub const MAX_CONNECTIONS: u32 = 16;
/// Time for a request's headers to arrive, from the moment the connection
/// waits for them (accepted, or kept alive after an answer): a scraper
/// sends its request at once.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Age after which a connection is closed once its request in progress is
/// answered: keeps a slot from being held forever by a peer that keeps
/// asking.
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(60);
/// Time for requests in progress when the listener closes or a connection
/// reaches its age.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Request head bytes buffered per connection (hyper's smallest allowed
/// buffer; a scrape request is a few hundred bytes).
const MAX_BUFFER_BYTES: usize = 8 * 1024;
/// Pause after a failed accept, so that the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The admin routes.
pub fn router() -> Router {
    Router::new().route("/metrics", get(scrape))
}

async fn scrape(headers: HeaderMap) -> impl IntoResponse {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let openmetrics = exposition::wants_openmetrics(accept);
    let content_type = if openmetrics {
        exposition::OPENMETRICS_TEXT
    } else {
        exposition::PROMETHEUS_TEXT
    };
    match metrics().encode(openmetrics) {
        Ok(body) => (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "the metrics could not be encoded\n".to_owned(),
        ),
    }
}

/// Serves the admin routes on `listener`, at most `max_connections` at
/// once, until `shutdown`; then lets requests in progress finish (within a
/// short grace) and returns.
pub async fn serve(
    listener: TcpListener,
    max_connections: u32,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let permits = Arc::new(Semaphore::new(max_connections as usize));
    let tracker = TaskTracker::new();
    let closing = CancellationToken::new();
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_BUFFER_BYTES);
    let service = TowerToHyperService::new(router());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, _) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    static FAILED: Throttle = Throttle::new(WARN_INTERVAL);
                    if let Some(suppressed) = FAILED.due() {
                        tracing::warn!(error = %e, suppressed, "admin listener: accepting a connection failed");
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            drop(tcp);
            metrics().listener_connection_refused("admin");
            static FULL: Throttle = Throttle::new(WARN_INTERVAL);
            if let Some(suppressed) = FULL.due() {
                tracing::warn!(
                    max_connections,
                    suppressed,
                    "admin listener: connection limit reached, closing new connections"
                );
            }
            continue;
        };
        let connection = http1.serve_connection(TokioIo::new(tcp), service.clone());
        let closing = closing.clone();
        tracker.spawn(async move {
            let _permit = permit;
            let mut connection = std::pin::pin!(connection);
            let age = tokio::time::sleep(MAX_CONNECTION_AGE);
            tokio::select! {
                _ = connection.as_mut() => return,
                () = age => {}
                () = closing.cancelled() => {}
            }
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(CLOSE_GRACE, connection).await;
        });
    }
    drop(listener);
    closing.cancel();
    tracker.close();
    let _ = tokio::time::timeout(CLOSE_GRACE * 2, tracker.wait()).await;
}
