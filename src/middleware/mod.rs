//! Tower middleware, per service: the verification service behind the full
//! stack ([`layers`]); health behind time bounds only ([`health_layers`]),
//! reflection behind the caller allowlist and time bounds
//! ([`reflection_layers`]): they must answer even when the verification
//! service is saturated, so they are never shed.
//!
//! The tower plumbing is written once, in `stage`: each layer here is a
//! `stage::StageLayer` around a `stage::Stage`, what that middleware does with one
//! request, and its service a `stage::Staged`, ready when the service it wraps
//! is. Each middleware's file holds only that decision, and names its layer
//! (`TraceLayer`, `CallerLayer`, …).

mod caller;
pub mod intake;
mod load_shed;
pub mod side;
mod stage;
pub mod trace;

use std::{convert::Infallible, future::Future, pin::Pin, time::Duration};

use tonic::body::Body;
use tower::{
    layer::util::{Identity, Stack},
    ServiceBuilder,
};

pub use caller::{CallerGuardLayer, CallerLayer, Callers};
pub use intake::IntakeLayer;
pub use load_shed::{AdmissionSlot, LoadShedLayer};
pub use side::SideLayer;
pub use trace::TraceLayer;

use crate::{
    audit::Entry,
    config::ServeConfig,
    error::{Error, ErrorKind},
    rpc::Operation,
};

/// The response future of every layer here.
pub type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

/// The stack [`layers`] builds.
pub type Layers =
    Stack<LoadShedLayer, Stack<IntakeLayer, Stack<CallerLayer, Stack<TraceLayer, Identity>>>>;

/// The layers around the verification service, outermost first:
///
/// 1. [`TraceLayer`]: one span per RPC, opened first so that everything below
///    (including refusals by the other layers, and streams ended for their
///    deadline or read timeout) is timed, logged, counted and audited.
/// 2. [`CallerLayer`]: the `--allow-caller` list; a caller that may not call
///    at all must not take request bytes or an admission slot from those
///    who may. It needs only the headers, so it comes before the message is
///    read.
/// 3. [`IntakeLayer`]: the caller's deadline around everything below, and
///    the whole message read in within the read timeout, its size checked
///    and its bytes reserved from the request budget before it is buffered.
///    It comes before the load shedding so that a stream holds an admission
///    slot only once its message is complete: streams that never send one
///    cannot shed real calls.
/// 4. [`LoadShedLayer`]: bounds the RPCs in flight and rejects the excess at
///    once with RESOURCE_EXHAUSTED, so overload shows up as fast, retryable
///    errors instead of queueing into timeouts.
///
/// The rate limits are not a layer: they need the checked token (per user)
/// and are decided with the other limits in one step, in `service`.
pub fn layers(config: &ServeConfig) -> ServiceBuilder<Layers> {
    ServiceBuilder::new()
        .layer(TraceLayer::default())
        .layer(Callers::layer(&config.tls.allowed_callers()))
        .layer(IntakeLayer::new(config))
        .layer(LoadShedLayer::new(config.max_concurrent_rpcs))
}

/// The stack [`health_layers`] builds.
pub type HealthLayers = Stack<SideLayer, Identity>;

/// The layers around health, on either port: only [`SideLayer`] (the
/// caller's deadline and the read timeout), so that a stalled probe stream
/// ends but a probe is never shed, limited or refused by the allowlist.
pub fn health_layers(config: &ServeConfig) -> ServiceBuilder<HealthLayers> {
    ServiceBuilder::new().layer(SideLayer::health(config.connections.request_read_timeout()))
}

/// The stack [`reflection_layers`] builds.
pub type ReflectionLayers = Stack<SideLayer, Stack<CallerGuardLayer, Identity>>;

/// The layers around reflection (v1 and v1alpha), outermost first:
///
/// 1. [`CallerGuardLayer`]: the `--allow-caller` list, as for verification:
///    reflection describes the API to whoever may call it, no one else.
/// 2. [`SideLayer`]: the caller's deadline, and each frame of the stream
///    within the read timeout of the last, so an idle stream ends.
pub fn reflection_layers(config: &ServeConfig) -> ServiceBuilder<ReflectionLayers> {
    ServiceBuilder::new()
        .layer(Callers::guard(&config.tls.allowed_callers()))
        .layer(SideLayer::reflection(
            config.connections.request_read_timeout(),
        ))
}

/// Most bytes of a refused request read before answering.
const DRAIN_MAX_BYTES: usize = 64 * 1024;
/// Longest wait for the rest of a refused request.
const DRAIN_TIMEOUT: Duration = Duration::from_millis(500);

/// An immediate gRPC error response for `operation`, built by the one
/// error-to-status mapping, and its audit event. The rest of the request is
/// read first ([`drain_refused`]).
fn reject(operation: Operation, kind: ErrorKind, request: http::Request<Body>) -> ResponseFuture {
    let response = refusal(operation, kind, request.extensions());
    Box::pin(async move {
        drain_refused(request.into_body()).await;
        Ok(response)
    })
}

/// The gRPC error response for `operation`, built by the one error-to-status
/// mapping, and its audit event; `extensions` are the request's.
fn refusal(
    operation: Operation,
    kind: ErrorKind,
    extensions: &http::Extensions,
) -> http::Response<Body> {
    let audit = Entry::start(operation, extensions);
    audit.failed(Error::new(operation, kind)).into_http()
}

/// Reads what is left of a refused request, within bounds, and drops it:
/// answering a stream the client is still sending resets it, and under
/// heavy shedding the client's late frames for such streams count against
/// the connection's budget of resets, which ends in a GOAWAY that fails
/// every RPC on it.
async fn drain_refused(body: Body) {
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, drain(body)).await;
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
