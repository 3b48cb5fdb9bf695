//! Tower middleware around the verification service (never around health or
//! reflection: those must answer even when the service is saturated).

mod caller;
mod gate;
mod load_shed;
pub mod trace;

use std::{convert::Infallible, future::Future, pin::Pin, time::Duration};

use tonic::body::Body;
use tower::{
    layer::util::{Identity, Stack},
    ServiceBuilder,
};

pub use caller::{CallerLayer, Callers};
pub use gate::{Check, Gate, GateLayer};
pub use load_shed::{AdmissionSlot, LoadShedLayer};
pub use trace::TraceLayer;

use crate::{
    audit::Entry,
    config::ServeConfig,
    error::{Error, ErrorKind, Operation},
};

/// The response future of every layer here.
pub type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

/// The stack [`layers`] builds.
pub type Layers = Stack<LoadShedLayer, Stack<CallerLayer, Stack<TraceLayer, Identity>>>;

/// The layers around the verification service, outermost first:
///
/// 1. [`TraceLayer`]: one span per RPC, opened first so that everything below
///    (including rejections by the other layers) is timed and logged.
/// 2. [`CallerLayer`]: the `--allow-caller` list; a caller that may not call
///    at all must not take an admission slot from those who may.
/// 3. [`LoadShedLayer`]: bounds the RPCs in flight and rejects the excess at
///    once with RESOURCE_EXHAUSTED, so overload shows up as fast, retryable
///    errors instead of queueing into timeouts.
///
/// The rate limits are not a layer: they need the checked token (per user)
/// and are decided with the other limits in one step, in `service`.
pub fn layers(config: &ServeConfig) -> ServiceBuilder<Layers> {
    ServiceBuilder::new()
        .layer(TraceLayer)
        .layer(Callers::layer(&config.tls.allowed_callers()))
        .layer(LoadShedLayer::new(config.max_concurrent_rpcs))
}

/// Most bytes of a refused request read before answering.
const DRAIN_MAX_BYTES: usize = 64 * 1024;
/// Longest wait for the rest of a refused request.
const DRAIN_TIMEOUT: Duration = Duration::from_millis(500);

/// An immediate gRPC error response for `operation`, built by the one
/// error-to-status mapping, and its audit event. The rest of the request is
/// read first (within bounds): answering a stream the client is still
/// sending resets it, and under heavy shedding the client's late frames for
/// such streams count against the connection's budget of resets, which
/// ends in a GOAWAY that fails every RPC on it.
fn reject(operation: Operation, kind: ErrorKind, request: http::Request<Body>) -> ResponseFuture {
    let audit = Entry::start(operation, request.extensions());
    let response = audit.failed(Error::new(operation, kind)).into_http();
    Box::pin(async move {
        let body = request.into_body();
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, drain(body)).await;
        Ok(response)
    })
}

/// Reads a body to its end, or to [`DRAIN_MAX_BYTES`], or to an error.
async fn drain(body: Body) {
    use http_body_util::BodyExt as _;
    let mut body = std::pin::pin!(body);
    let mut read = 0;
    while let Some(Ok(frame)) = body.frame().await {
        read += frame.data_ref().map_or(0, |d| d.len());
        if read > DRAIN_MAX_BYTES {
            return;
        }
    }
}
