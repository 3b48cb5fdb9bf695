//! W3C Trace Context from the incoming gRPC metadata, so that the server span
//! continues the caller's trace: `traceparent` and `tracestate` when traces
//! are exported; only the trace id of `traceparent` otherwise, for the log
//! line. Baggage is not read: nothing here uses it, and its parser logs
//! malformed entries (with the caller's header) at WARN.

use opentelemetry::{
    propagation::{Extractor, TextMapPropagator as _},
    trace::TraceId,
    Context,
};
use opentelemetry_sdk::propagation::TraceContextPropagator;

/// Reads the propagation headers of a request.
struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// The caller's context (its span as the remote parent), or an empty context
/// when the headers carry none. Never the context of whatever span happens
/// to be current: the base is empty.
pub fn extract(headers: &http::HeaderMap) -> Context {
    TraceContextPropagator::new().extract_with_context(&Context::new(), &Headers(headers))
}

/// The trace id of a valid `traceparent` (version 00 layout:
/// `00-<32 hex>-<16 hex>-<2 hex>`), without building a context.
pub fn caller_trace_id(headers: &http::HeaderMap) -> Option<TraceId> {
    let value = headers.get("traceparent")?.to_str().ok()?.trim();
    let mut parts = value.split('-');
    let (version, trace_id, span_id, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex(version, 2)
        || version == "ff"
        || !hex(trace_id, 32)
        || !hex(span_id, 16)
        || !hex(flags, 2)
    {
        return None;
    }
    // Version 00 has exactly four parts; later versions may add more.
    if version == "00" && parts.next().is_some() {
        return None;
    }
    let id = TraceId::from_hex(trace_id).ok()?;
    let zero = |s: &str| s.bytes().all(|b| b == b'0');
    (!zero(trace_id) && !zero(span_id)).then_some(id)
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TraceContextExt as _;

    use super::*;

    fn headers(traceparent: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert("traceparent", traceparent.parse().unwrap());
        headers
    }

    #[test]
    fn a_valid_traceparent_is_the_parent_and_garbage_is_none() {
        let valid = headers("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let cx = extract(&valid);
        let sc = cx.span().span_context().clone();
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(sc.is_remote() && sc.is_sampled());
        assert_eq!(caller_trace_id(&valid), Some(sc.trace_id()));
        for bad in [
            "00-zz-00-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(caller_trace_id(&headers(bad)), None, "{bad}");
            assert!(
                !extract(&headers(bad)).span().span_context().is_valid(),
                "{bad}"
            );
        }
        assert_eq!(caller_trace_id(&http::HeaderMap::new()), None);
    }
}
