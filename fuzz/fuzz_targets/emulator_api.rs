//! The embedded backend's Cognito API: `POST /` with an `X-Amz-Target` and an
//! AWS JSON 1.1 body, through the real router (`emulator::http::router`), so
//! the body parsing, the operations' input types and the error encoding of
//! `emulator::protocol` all run. `$TOKEN` and `$REFRESH` in the body become a
//! live access and refresh token of the demo user, so that the fuzzer gets
//! past authentication. The demo user's state is reset after every input.
//! Checks: no panic, and every answer is Cognito's wire format (200 with a
//! JSON object, or 400 with `x-amzn-ErrorType` and `{"__type", "message"}`).
//!
//! Input: the operation, a newline, then the body. The operation gets the
//! target prefix `AWSCognitoIdentityProviderService.`; `!` before it sends
//! the header as written, and a lone `-` sends none.

#![no_main]
#![forbid(unsafe_code)]

use std::{
    collections::{BTreeMap, HashSet},
    sync::{Arc, LazyLock, Mutex, PoisonError},
};

use axum::{body::Body, Router};
use cognito_emulator::{http::router, ops, protocol::CONTENT_TYPE, protocol::TARGET_PREFIX, store::lock, store::Seed, store::DEMO_CLIENT, store::DEMO_POOL, store::DEMO_USER, Backend, Settings};
use http_body_util::BodyExt as _;
use libfuzzer_sys::fuzz_target;
use tokio::runtime::Runtime;
use tower::ServiceExt as _;

/// Inputs after which the backend is built anew (its refresh-token grants
/// are private and only grow).
const REBUILD_EVERY: u64 = 50_000;

struct Harness {
    runtime: Runtime,
    backend: Arc<Backend>,
    router: Router,
    access: String,
    refresh: String,
    /// The demo user's attributes and live sessions right after sign-in.
    attributes: BTreeMap<String, String>,
    sessions: HashSet<String>,
    inputs: u64,
}

impl Harness {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let settings = Settings {
            fixed_code: Some("123456".to_owned()),
            ..Settings::faithful()
        };
        let backend = Arc::new(
            Backend::new(Seed::demo(), "http://127.0.0.1:9229".to_owned(), settings)
                .expect("demo backend"),
        );
        let pool = backend.pool(DEMO_POOL).expect("demo pool");
        let auth = backend
            .sign_in(pool, DEMO_USER, DEMO_CLIENT, 3600)
            .expect("demo sign-in");
        let user = lock(pool.user(DEMO_USER).expect("demo user"));
        let (attributes, sessions) = (user.attributes.clone(), user.sessions.clone());
        drop(user);
        let harness = Self {
            runtime,
            router: router(Arc::clone(&backend)),
            access: auth["AccessToken"].as_str().expect("token").to_owned(),
            refresh: auth["RefreshToken"].as_str().expect("token").to_owned(),
            backend,
            attributes,
            sessions,
            inputs: 0,
        };
        harness.check_token();
        harness
    }

    /// Puts the demo user and the test controls back as after sign-in.
    fn reset(&mut self) {
        self.inputs += 1;
        if self.inputs.is_multiple_of(REBUILD_EVERY) {
            *self = Self::new();
            return;
        }
        let pool = self.backend.pool(DEMO_POOL).expect("demo pool");
        let mut user = lock(pool.user(DEMO_USER).expect("demo user"));
        user.attributes.clone_from(&self.attributes);
        user.sessions.clone_from(&self.sessions);
        user.pending.clear();
        user.codes.clear();
        user.code_requests.clear();
        user.failed_attempts.clear();
        drop(user);
        self.backend.outbox.clear();
        self.backend.faults.clear();
        self.backend.calls.clear();
        if self.inputs.is_multiple_of(1000) {
            self.check_token();
        }
    }

    /// The harness's own check: the demo user's token still works, so the
    /// fuzzer keeps reaching past authentication.
    fn check_token(&self) {
        let input = serde_json::json!({ "AccessToken": self.access });
        let result = ops::dispatch(&self.backend, "GetUser", input);
        assert!(result.is_ok(), "the harness's token stopped working");
    }
}

static HARNESS: LazyLock<Mutex<Harness>> = LazyLock::new(|| Mutex::new(Harness::new()));

fn replace(body: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    while let Some(at) = rest.windows(from.len()).position(|w| w == from) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to);
        rest = &rest[at + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

fuzz_target!(|data: &[u8]| {
    let (operation, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let target = match operation {
        b"-" => None,
        [b'!', raw @ ..] => Some(raw.to_vec()),
        name => Some([TARGET_PREFIX.as_bytes(), name].concat()),
    };
    let mut harness = HARNESS.lock().unwrap_or_else(PoisonError::into_inner);
    let body = replace(body, b"$TOKEN", harness.access.as_bytes());
    let body = replace(&body, b"$REFRESH", harness.refresh.as_bytes());
    let mut request = http::Request::post("/").header("content-type", CONTENT_TYPE);
    if let Some(target) = target {
        if http::HeaderValue::from_bytes(&target).is_err() {
            return;
        }
        request = request.header("x-amz-target", target);
    }
    let request = request.body(Body::from(body)).expect("request");

    let router = harness.router.clone();
    let (parts, body) = harness.runtime.block_on(async move {
        let response = router.oneshot(request).await.expect("infallible");
        let (parts, body) = response.into_parts();
        (parts, body.collect().await.expect("body").to_bytes())
    });
    harness.reset();

    let json: serde_json::Value = serde_json::from_slice(&body).expect("a JSON body");
    assert!(json.is_object(), "{json}");
    assert!(parts.headers.contains_key("x-amzn-requestid"));
    match parts.status.as_u16() {
        200 => assert!(!parts.headers.contains_key("x-amzn-errortype")),
        400 => {
            let error_type = json["__type"].as_str().expect("__type");
            assert!(!error_type.is_empty());
            assert_ne!(error_type, "InternalErrorException");
            let header = parts.headers.get("x-amzn-errortype").expect("error type");
            assert_eq!(header.as_bytes(), format!("{error_type}:").as_bytes());
        }
        other => panic!("HTTP {other} without an injected fault: {json}"),
    }
});
