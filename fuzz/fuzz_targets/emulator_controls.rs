//! The embedded backend's test controls and key sets, through the real router
//! (`emulator::http::router`): JSON bodies of `POST /_emulator/faults` (then a
//! `POST /` that consumes the fault, so injected error types, statuses, bodies
//! and content types are encoded) and `POST /_emulator/clock`, the outbox's
//! query string, and `/{pool}/.well-known/jwks.json`. The input is a short
//! sequence of such requests; tokio's clock is paused, so injected latency
//! costs nothing, and the backend's clock is turned back after each input.
//! Checks: no panic, every request is answered, and a fault the backend
//! accepted is queued.
//!
//! Input: up to 8 requests separated by a line `--`, each `METHOD URI
//! [OPERATION]` on its first line and the body after it; `POST /` gets the
//! target header of OPERATION.

#![no_main]
#![forbid(unsafe_code)]

use std::{
    sync::{Arc, LazyLock, Mutex, PoisonError},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{body::Body, Router};
use cognito_emulator::{http::router, protocol::CONTENT_TYPE, protocol::TARGET_PREFIX, store::Seed, Backend, Settings};
use http::{Method, StatusCode};
use http_body_util::BodyExt as _;
use libfuzzer_sys::fuzz_target;
use tokio::runtime::Runtime;
use tower::ServiceExt as _;

struct Harness {
    runtime: Runtime,
    backend: Arc<Backend>,
    router: Router,
}

impl Harness {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime");
        let backend = Arc::new(
            Backend::new(
                Seed::demo(),
                "http://127.0.0.1:9229".to_owned(),
                Settings::faithful(),
            )
            .expect("demo backend"),
        );
        Self {
            runtime,
            router: router(Arc::clone(&backend)),
            backend,
        }
    }

    /// Empties the queues and turns the backend's clock back to the wall
    /// clock, so that one input's state never carries into the next.
    fn reset(&mut self) {
        self.backend.faults.clear();
        self.backend.outbox.clear();
        self.backend.calls.clear();
        // `Clock::advance` only goes forward, but its offset is a wrapping
        // atomic: advancing by the offset's two's complement brings it back
        // to 0 (an offset that overflowed the clock has panicked already).
        let offset = self.clock_offset();
        if offset != 0 {
            let back = Duration::from_secs(offset.wrapping_neg());
            self.backend.clock.advance(back);
            if self.clock_offset() != 0 {
                // The clock no longer wraps: start afresh (a new RSA key).
                *self = Self::new();
            }
        }
    }

    /// How far the backend's clock is ahead of the wall clock, in seconds.
    fn clock_offset(&self) -> u64 {
        let wall = || {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        };
        loop {
            let before = wall();
            let now = self.backend.clock.now();
            if wall() == before {
                return now.wrapping_sub(before);
            }
        }
    }
}

static HARNESS: LazyLock<Mutex<Harness>> = LazyLock::new(|| Mutex::new(Harness::new()));

/// Most requests of one input.
const MAX_STEPS: usize = 8;

/// One step's request: `METHOD URI [OPERATION]` and the body. `POST /` gets
/// the target header of OPERATION (none without it).
fn request(step: &[u8]) -> Option<http::Request<Body>> {
    let (line, body) = match step.iter().position(|&b| b == b'\n') {
        Some(at) => (&step[..at], &step[at + 1..]),
        None => (step, &[][..]),
    };
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.splitn(3, ' ');
    let method = Method::from_bytes(words.next()?.as_bytes()).ok()?;
    let uri = words.next()?;
    let content_type = if uri.starts_with("/_emulator/") {
        "application/json"
    } else {
        CONTENT_TYPE
    };
    let mut request = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type);
    if let Some(operation) = words.next() {
        let target = http::HeaderValue::from_str(&format!("{TARGET_PREFIX}{operation}")).ok()?;
        request = request.header("x-amz-target", target);
    }
    request.body(Body::from(body.to_vec())).ok()
}

fn steps(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let data = rest?;
        match data.windows(4).position(|w| w == b"\n--\n") {
            Some(at) => {
                rest = Some(&data[at + 4..]);
                Some(&data[..at])
            }
            None => {
                rest = None;
                Some(data)
            }
        }
    })
    .take(MAX_STEPS)
}

fuzz_target!(|data: &[u8]| {
    let mut harness = HARNESS.lock().unwrap_or_else(PoisonError::into_inner);
    for step in steps(data) {
        let Some(request) = request(step) else {
            continue;
        };
        let adds_fault =
            request.method() == Method::POST && request.uri().path() == "/_emulator/faults";
        let router = harness.router.clone();
        let queued = harness.backend.faults.list().len();
        let status = harness.runtime.block_on(async move {
            let response = router.oneshot(request).await.expect("infallible");
            let status = response.status();
            response.into_body().collect().await.expect("body");
            status
        });
        if adds_fault && status == StatusCode::NO_CONTENT {
            assert_eq!(harness.backend.faults.list().len(), queued + 1);
        }
    }
    harness.reset();
});
