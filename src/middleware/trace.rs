//! One server span per RPC, continuing the caller's W3C trace, and the RPC's
//! metrics. The span carries the RPC (`rpc.service`, `rpc.method`), the
//! peer's address, the caller identity (from its client certificate, with
//! mTLS), the gRPC status code, the latency, the AWS request id (recorded by
//! the Cognito client) and the trace and span ids that join the log line to
//! the trace. With traces exported it also carries the OpenTelemetry RPC
//! conventions (kind server, `rpc.system`, `rpc.grpc.status_code`,
//! `server.*`) and an error status for server-side faults only. One event
//! is logged when the RPC ends. Never the request or its metadata: they
//! carry the access token and the code.
//!
//! Written here rather than taken from tower-http: its gRPC classifier logs
//! every non-OK status as a failure, while a wrong code or an expired token is
//! the caller's business and belongs at INFO; server faults go to WARN.

use std::time::Instant;

use opentelemetry::trace::{TraceContextExt as _, TraceId};
use tonic::{body::Body, Code};
use tracing::{field::display, field::Empty, Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::{
    stage::{Inner, Stage, StageLayer},
    ResponseFuture,
};
use crate::{
    rpc::{code_name, Operation, RpcTraceId},
    telemetry::{
        self,
        metrics::{metrics, InFlight, GRPC_SERVICE},
        propagation,
        throttle::{Throttle, WARN_INTERVAL},
    },
    transport::Peer,
};

/// Adds [`Trace`].
pub type TraceLayer = StageLayer<Trace>;

/// Traces each RPC; see the module docs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Trace;

impl Stage for Trace {
    fn call<S: Inner>(&self, inner: &mut S, mut req: http::Request<Body>) -> ResponseFuture {
        let start = Instant::now();
        let op = Operation::from_grpc_path(req.uri().path());
        let span = server_span(&req, op);
        if let Some(trace_id) = link_to_caller(&span, req.headers()) {
            req.extensions_mut().insert(RpcTraceId(trace_id));
        }
        let in_flight = op.map(|op| {
            metrics().rpc_started(op);
            metrics().in_flight()
        });
        let future = {
            let _entered = span.enter();
            inner.call(req)
        };
        let mut completion = Completion {
            op,
            start,
            span: span.clone(),
            in_flight,
            done: false,
        };
        Box::pin(async move {
            let Ok(response) = future.instrument(span).await;
            completion.finish(status_code(&response));
            Ok(response)
        })
    }
}

/// Records how an RPC ended: the metrics, the span's status fields and the
/// log line. Dropped unfinished (the client reset the stream, or the drain
/// ended), it records the RPC as CANCELLED.
struct Completion {
    op: Option<Operation>,
    start: Instant,
    span: Span,
    in_flight: Option<InFlight>,
    done: bool,
}

impl Completion {
    fn finish(&mut self, code: Code) {
        self.done = true;
        self.in_flight = None;
        let elapsed = self.start.elapsed();
        if let Some(op) = self.op {
            metrics().rpc_handled(op, code, elapsed);
        }
        let span = &self.span;
        span.record("grpc.code", code_name(code));
        span.record(
            "latency_us",
            i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX),
        );
        if telemetry::traces_on() {
            span.record("rpc.grpc.status_code", code as i64);
            if is_error_status(code) {
                span.record("otel.status_code", "ERROR");
            }
        }
        let _entered = span.enter();
        // Callers choose what fails (a token naming a pool whose keys cannot
        // be fetched fails as UNAVAILABLE), so the WARN is throttled; every
        // call still gets its line, the others at INFO.
        static FAILED: Throttle = Throttle::new(WARN_INTERVAL);
        if code == Code::Cancelled {
            tracing::info!("rpc cancelled");
        } else if !is_server_fault(code) {
            tracing::info!("rpc finished");
        } else if let Some(suppressed) = FAILED.due() {
            tracing::warn!(suppressed_warnings = suppressed, "rpc failed");
        } else {
            tracing::info!("rpc failed");
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if !self.done {
            self.finish(Code::Cancelled);
        }
    }
}

/// The span of one RPC. The OpenTelemetry fields exist only when traces are
/// exported: otherwise they would only lengthen every log line. Names come
/// from the known operations: a path under the service that names no RPC is
/// `_OTHER`, so callers cannot mint span names.
fn server_span(req: &http::Request<Body>, op: Option<Operation>) -> Span {
    let method = op.map_or("_OTHER", Operation::as_str);
    let name = op.map_or(GRPC_SERVICE, |op| op.grpc_path().trim_start_matches('/'));
    let peer = Peer::of(req);
    let client = peer.map(|p| display(p.remote_addr().ip()));
    let caller = peer.and_then(Peer::identity);
    if !telemetry::traces_on() {
        return tracing::info_span!(
            "rpc",
            rpc.service = GRPC_SERVICE,
            rpc.method = method,
            client.address = client,
            caller,
            trace_id = Empty,
            grpc.code = Empty,
            latency_us = Empty,
            aws.request_id = Empty,
        );
    }
    let local = peer.and_then(Peer::local_addr);
    tracing::info_span!(
        "rpc",
        otel.name = name,
        otel.kind = "server",
        otel.status_code = Empty,
        rpc.system = "grpc",
        rpc.service = GRPC_SERVICE,
        rpc.method = method,
        rpc.grpc.status_code = Empty,
        server.address = local.map(|a| display(a.ip())),
        server.port = local.map(|a| i64::from(a.port())),
        client.address = client,
        client.port = peer.map(|p| i64::from(p.remote_addr().port())),
        caller,
        trace_id = Empty,
        span_id = Empty,
        grpc.code = Empty,
        latency_us = Empty,
        aws.request_id = Empty,
    )
}

/// Makes the span a child of the caller's (from `traceparent`) and records
/// the trace id, and with traces on the span id, for the log line. Returns
/// the trace id, if there is one.
fn link_to_caller(span: &Span, headers: &http::HeaderMap) -> Option<TraceId> {
    if !telemetry::traces_on() {
        let trace_id = propagation::caller_trace_id(headers)?;
        span.record("trace_id", display(trace_id));
        return Some(trace_id);
    }
    // Before the span starts: sampling sees the caller's decision.
    let _ = span.set_parent(propagation::extract(headers));
    let context = span.context();
    let ours = context.span().span_context().clone();
    if !ours.is_valid() {
        return None;
    }
    span.record("trace_id", display(ours.trace_id()));
    span.record("span_id", display(ours.span_id()));
    Some(ours.trace_id())
}

/// The status of a unary response: in the headers of a trailers-only error
/// response; a success carries it in the trailers, as 0.
fn status_code(response: &http::Response<Body>) -> Code {
    response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map_or(Code::Ok, Code::from_i32)
}

/// Codes that say this service or Cognito failed, not the caller (logged at
/// WARN).
fn is_server_fault(code: Code) -> bool {
    matches!(
        code,
        Code::Internal | Code::Unknown | Code::Unavailable | Code::DataLoss | Code::Unimplemented
    )
}

/// Codes that mark a span as failed: server-side faults, the caller's
/// deadline included; never a wrong code or an expired token.
pub fn is_error_status(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable | Code::Internal | Code::DeadlineExceeded | Code::Unknown
    )
}
