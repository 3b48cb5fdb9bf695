//! W3C Trace Context (`traceparent`, `tracestate`) and Baggage from the
//! incoming gRPC metadata, so that the server span continues the caller's
//! trace; and the ids that join a log line to its trace.

use std::sync::LazyLock;

use opentelemetry::{
    propagation::{Extractor, TextMapCompositePropagator, TextMapPropagator as _},
    trace::{SpanContext, TraceContextExt as _},
    Context,
};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

static PROPAGATOR: LazyLock<TextMapCompositePropagator> = LazyLock::new(|| {
    TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ])
});

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

/// The caller's context (its span as the remote parent, its baggage), or an
/// empty context when the headers carry none. Never the context of whatever
/// span happens to be current: the base is empty.
pub fn extract(headers: &http::HeaderMap) -> Context {
    PROPAGATOR.extract_with_context(&Context::new(), &Headers(headers))
}

/// The caller's span context, when the headers carry a valid one.
pub fn remote_span_context(cx: &Context) -> Option<SpanContext> {
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| sc.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_traceparent_is_the_parent_and_garbage_is_none() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let sc = remote_span_context(&extract(&headers)).expect("a parent");
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(sc.is_remote() && sc.is_sampled());
        headers.insert("traceparent", "00-zz-00-01".parse().unwrap());
        assert!(remote_span_context(&extract(&headers)).is_none());
        assert!(remote_span_context(&extract(&http::HeaderMap::new())).is_none());
    }
}
