//! The token check against real sockets: a JWKS server on `127.0.0.1:0`
//! that counts its requests per pool and can fail on demand, tokens signed
//! by the embedded backend's [`Signer`], and the key cache's clock passed in
//! (`check_with`) so intervals and key ages are stepped, not slept.

mod attacks;
mod jwks;
mod rejections;

use std::{
    net::SocketAddr,
    sync::{Arc, LazyLock, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use serde_json::{json, Value};
use tokio::{net::TcpListener, sync::watch, time::Instant};

use super::{
    check::{TokenCheckConfig, TokenChecker, ADMIN_SCOPE},
    jwks::JwksSettings,
    CheckError, CheckedToken, TokenRejection,
};
use crate::domain::AccessToken;
use cognito_emulator::tokens::Signer;

/// "Now" of the expiry checks.
pub(super) const NOW_SECS: u64 = 1_700_000_000;
pub(super) const POOL: &str = "us-east-1_TestPool1";

pub(super) fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_SECS)
}

/// Two keys, generated once for all tests (RSA generation is slow).
pub(super) static KEY_A: LazyLock<Signer> = LazyLock::new(|| Signer::generate().unwrap());
pub(super) static KEY_B: LazyLock<Signer> = LazyLock::new(|| Signer::generate().unwrap());

/// An access token's claims, valid for an hour after [`NOW_SECS`].
pub(super) fn claims(iss: &str) -> Value {
    json!({
        "sub": "8f1c-user", "iss": iss, "client_id": "client-1", "origin_jti": "o",
        "token_use": "access", "scope": ADMIN_SCOPE, "auth_time": NOW_SECS - 60,
        "exp": NOW_SECS + 3600, "iat": NOW_SECS - 60, "jti": "j", "username": "demo",
    })
}

pub(super) fn token(s: &str) -> AccessToken {
    AccessToken::parse(s.to_owned(), "access_token").unwrap()
}

pub(super) fn signed(key: &Signer, claims: &Value) -> AccessToken {
    token(&key.sign(claims))
}

/// A compact JWT with any header and claims and a meaningless signature.
pub(super) fn unsigned(header: &Value, claims: &Value) -> AccessToken {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    token(&format!("{}.{}.c2lnbmF0dXJl", part(header), part(claims)))
}

/// A JWKS with `key`'s public key.
pub(super) fn jwks(key: &Signer) -> Value {
    key.jwks().clone()
}

/// What the JWKS server answers.
#[derive(Clone)]
pub(super) enum Mode {
    Keys(Value),
    /// These keys for the pools named, 404 for every other pool.
    KeysFor(Vec<String>, Value),
    Status(u16),
    Body(&'static str, String),
    /// Never answers.
    Hang,
}

#[derive(Clone)]
struct ServerState {
    mode: Arc<Mutex<Mode>>,
    hits: Arc<Mutex<Vec<String>>>,
    count: watch::Sender<usize>,
    /// Requests wait while this is false.
    open: watch::Sender<bool>,
}

/// A JWKS server on `127.0.0.1:0`.
pub(super) struct JwksServer {
    pub(super) addr: SocketAddr,
    state: ServerState,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    pub(super) async fn start(mode: Mode) -> Self {
        let state = ServerState {
            mode: Arc::new(Mutex::new(mode)),
            hits: Arc::default(),
            count: watch::channel(0).0,
            open: watch::channel(true).0,
        };
        let app = Router::new()
            .route("/{pool}/.well-known/jwks.json", get(serve))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, state, task }
    }

    pub(super) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The issuer of `pool` as an emulator would write it (its own host).
    pub(super) fn issuer(&self, pool: &str) -> String {
        format!("http://{}/{pool}", self.addr)
    }

    pub(super) fn set(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    /// Requests so far, all pools.
    pub(super) fn hits(&self) -> usize {
        self.state.hits.lock().unwrap().len()
    }

    /// Requests so far for `pool`.
    pub(super) fn hits_for(&self, pool: &str) -> usize {
        self.state
            .hits
            .lock()
            .unwrap()
            .iter()
            .filter(|p| *p == pool)
            .count()
    }

    /// Holds every request until [`Self::open`].
    pub(super) fn close(&self) {
        self.state.open.send_replace(false);
    }

    pub(super) fn open(&self) {
        self.state.open.send_replace(true);
    }

    /// Waits until `n` requests have arrived (no sleeping).
    pub(super) async fn wait_for_hits(&self, n: usize) {
        let mut rx = self.state.count.subscribe();
        rx.wait_for(|c| *c >= n).await.unwrap();
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(State(state): State<ServerState>, Path(pool): Path<String>) -> Response {
    state.hits.lock().unwrap().push(pool.clone());
    state.count.send_modify(|c| *c += 1);
    let mut open = state.open.subscribe();
    open.wait_for(|open| *open).await.unwrap();
    let mode = state.mode.lock().unwrap().clone();
    match mode {
        Mode::Keys(keys) => Json(keys).into_response(),
        Mode::KeysFor(pools, keys) if pools.contains(&pool) => Json(keys).into_response(),
        Mode::KeysFor(..) => StatusCode::NOT_FOUND.into_response(),
        Mode::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
        Mode::Body(content_type, body) => ([("content-type", content_type)], body).into_response(),
        Mode::Hang => std::future::pending().await,
    }
}

/// Short timeouts, so a failing fetch is quick.
pub(super) fn settings() -> JwksSettings {
    JwksSettings {
        fetch_timeout: Duration::from_millis(500),
        ..JwksSettings::default()
    }
}

/// A checker that fetches keys from `endpoint`.
pub(super) fn checker_for(endpoint: &str, settings: JwksSettings) -> TokenChecker {
    let config = TokenCheckConfig {
        endpoint: Some(endpoint.to_owned()),
        ..TokenCheckConfig::default()
    };
    TokenChecker::with_settings(config, settings).unwrap()
}

/// Checks with the expiry clock at [`now`] and the cache clock at
/// `base + secs`, waiting for a fetch up to [`WAIT`].
pub(super) async fn check_after(
    checker: &TokenChecker,
    token: &AccessToken,
    base: Instant,
    secs: u64,
) -> Result<CheckedToken, CheckError> {
    check_waiting(checker, token, base, secs, WAIT).await
}

/// [`check_after`] with another wait for a fetch.
pub(super) async fn check_waiting(
    checker: &TokenChecker,
    token: &AccessToken,
    base: Instant,
    secs: u64,
    wait: Duration,
) -> Result<CheckedToken, CheckError> {
    checker
        .check_with(token, now(), base + Duration::from_secs(secs), Some(wait))
        .await
}

/// How long the tests' checks wait for a fetch: longer than any fetch of
/// theirs takes (their timeouts are shorter), so an answer is never a wait
/// that ran out unless a test says so.
pub(super) const WAIT: Duration = Duration::from_secs(10);

/// The reason a check refused a token, or `KEYS_UNAVAILABLE`.
pub(super) fn reason_of(error: CheckError) -> &'static str {
    error
        .rejection()
        .map_or("KEYS_UNAVAILABLE", TokenRejection::reason)
}
