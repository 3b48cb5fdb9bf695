//! One span per RPC with the method, the peer's address, the caller identity
//! (from its client certificate, with mTLS), the gRPC status code, the latency
//! and the AWS request id (recorded by the Cognito client), and one event when
//! the RPC ends. Never the request or its metadata: they carry the access token and
//! the code.
//!
//! Written here rather than taken from tower-http: its gRPC classifier logs
//! every non-OK status as a failure, while a wrong code or an expired token is
//! the caller's business and belongs at INFO; server faults go to WARN.

use std::{
    convert::Infallible,
    task::{Context, Poll},
    time::Instant,
};

use tonic::{body::Body, Code};
use tower::{Layer, Service};
use tracing::{field::Empty, Instrument};

use super::ResponseFuture;
use crate::transport::Peer;

/// Adds [`Trace`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceLayer;

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Trace { inner }
    }
}

/// Traces each RPC; see the module docs.
#[derive(Debug, Clone)]
pub struct Trace<S> {
    inner: S,
}

impl<S> Service<http::Request<Body>> for Trace<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let peer = Peer::of(&req);
        let span = tracing::info_span!(
            "rpc",
            rpc.method = req.uri().path(),
            client.address = peer.map(|p| tracing::field::display(p.remote_addr().ip())),
            caller = peer.and_then(Peer::identity),
            grpc.code = Empty,
            latency_us = Empty,
            aws.request_id = Empty,
        );
        let start = Instant::now();
        let future = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        Box::pin(async move {
            let Ok(response) = future.instrument(span.clone()).await;
            // A unary error is a trailers-only response: grpc-status is in the
            // headers. A unary success carries it in the trailers, as 0.
            let code = response
                .headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<i32>().ok())
                .map_or(Code::Ok, Code::from_i32);
            let latency_us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
            span.record("grpc.code", format!("{code:?}"));
            span.record("latency_us", latency_us);
            let _entered = span.enter();
            if is_server_fault(code) {
                tracing::warn!("rpc failed");
            } else {
                tracing::info!("rpc finished");
            }
            Ok(response)
        })
    }
}

/// Codes that say this service or Cognito failed, not the caller.
fn is_server_fault(code: Code) -> bool {
    matches!(
        code,
        Code::Internal | Code::Unknown | Code::Unavailable | Code::DataLoss | Code::Unimplemented
    )
}
