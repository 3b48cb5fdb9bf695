//! The admin listener (`--admin-listen`): plaintext HTTP with `GET /metrics`
//! for Prometheus. It is its own port, outside the gRPC middleware: never
//! rate limited, shed or behind TLS, so that monitoring sees an overloaded
//! replica too.

use std::future::Future;

use axum::{
    http::{header, HeaderMap, StatusCode},
    response::IntoResponse,
    routing::get,
    Router,
};
use tokio::net::TcpListener;

use super::{exposition, metrics::metrics};

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

/// Serves the admin routes on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) {
    if let Err(e) = axum::serve(listener, router())
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::warn!(error = %e, "admin listener failed");
    }
}
