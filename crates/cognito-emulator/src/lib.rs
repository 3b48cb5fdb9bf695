//! An embedded Cognito-compatible backend: the two verification operations
//! plus what a developer needs to drive the whole flow with standard AWS tools
//! (InitiateAuth, GetUser, UpdateUserAttributes, GlobalSignOut), over AWS JSON
//! 1.1 exactly as Cognito speaks it. It backs `cognito-verify dev`, is the
//! oracle of the integration tests, and the load target of the bench.
//!
//! - [`protocol`]: the wire format (targets, errors, request ids).
//! - [`ops`]: the operations, with Cognito's checks, limits and messages.
//! - [`tokens`]: RS256 access tokens and the JWKS.
//! - [`store`]: pools, clients and users from a seed; per-user locks.
//! - [`outbox`], [`faults`], [`clock`], [`calls`]: what tests observe and
//!   control.
//! - [`http`]: the routes.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod calls;
pub mod clock;
pub mod faults;
pub mod http;
pub mod ops;
pub mod outbox;
pub mod protocol;
pub mod store;
pub mod tokens;

use std::{
    collections::HashMap,
    future::Future,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use serde_json::{json, Value};
use tokio::net::TcpListener;

use self::{
    clock::Clock,
    faults::Faults,
    outbox::Outbox,
    protocol::ApiError,
    store::{lock, Directory, Pool, Seed},
    tokens::{AccessClaims, Signer, ADMIN_SCOPE},
};

/// Backend settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Lifetime of issued access and ID tokens, in seconds.
    pub token_ttl_secs: u64,
    /// Send this code instead of a random one (scripted demos).
    pub fixed_code: Option<String>,
    /// Enforce the per-user hourly limits (off only for load tests).
    pub user_limits: bool,
    /// Answer the verification operations with a fixed success (benchmarks).
    pub constant_response: bool,
}

impl Settings {
    /// Cognito's behaviour: random codes, per-user limits, 1 h tokens.
    pub fn faithful() -> Self {
        Self {
            token_ttl_secs: 3600,
            fixed_code: None,
            user_limits: true,
            constant_response: false,
        }
    }
}

/// A refresh token's grant.
#[derive(Debug, Clone)]
struct Grant {
    pool_id: String,
    username: String,
    client_id: String,
    origin_jti: String,
}

/// The backend's state.
#[derive(Debug)]
pub struct Backend {
    directory: Directory,
    signer: Signer,
    base_url: String,
    pub(crate) settings: Settings,
    grants: Mutex<HashMap<String, Grant>>,
    /// Time, advanceable.
    pub clock: Clock,
    /// Delivered messages.
    pub outbox: Outbox,
    /// Injected faults.
    pub faults: Faults,
    /// Requests per operation.
    pub calls: calls::Calls,
}

/// Most live refresh tokens; the oldest are not evicted, new sign-ins fail.
pub const MAX_GRANTS: usize = 100_000;

impl Backend {
    /// A backend reachable at `base_url` (the issuer prefix of its tokens).
    pub fn new(seed: Seed, base_url: String, settings: Settings) -> Result<Self, String> {
        Ok(Self {
            directory: Directory::from_seed(seed)?,
            signer: Signer::generate()?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            settings,
            grants: Mutex::new(HashMap::new()),
            clock: Clock::default(),
            outbox: Outbox::default(),
            faults: Faults::default(),
            calls: calls::Calls::default(),
        })
    }

    /// The issuer of a pool's tokens: `<base-url>/<poolId>`.
    pub fn issuer(&self, pool_id: &str) -> String {
        format!("{}/{pool_id}", self.base_url)
    }

    /// Signs `username` in through `client_id` (no password check: callers
    /// do it) and returns Cognito's `AuthenticationResult`, with tokens valid
    /// for `ttl_secs`.
    pub fn sign_in(
        &self,
        pool: &Pool,
        username: &str,
        client_id: &str,
        ttl_secs: u64,
    ) -> Result<Value, ApiError> {
        let user = pool
            .user(username)
            .ok_or_else(|| ApiError::new("UserNotFoundException", "User does not exist."))?;
        let origin_jti = uuid::Uuid::new_v4().to_string();
        let refresh = format!(
            "{}.{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        {
            let mut grants = self
                .grants
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if grants.len() >= MAX_GRANTS {
                return Err(ApiError::new(
                    "LimitExceededException",
                    "Too many sessions in this backend.",
                ));
            }
            let grant = Grant {
                pool_id: pool.id.clone(),
                username: username.to_owned(),
                client_id: client_id.to_owned(),
                origin_jti: origin_jti.clone(),
            };
            grants.insert(refresh.clone(), grant);
        }
        lock(user).sessions.insert(origin_jti.clone());
        let mut result = self.tokens(pool, username, client_id, &origin_jti, ttl_secs)?;
        result["RefreshToken"] = json!(refresh);
        Ok(result)
    }

    /// REFRESH_TOKEN_AUTH: new access and ID tokens for a live session.
    fn refresh(&self, pool: &Pool, client_id: &str, token: &str) -> Result<Value, ApiError> {
        let grant = self
            .grants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(token)
            .cloned();
        let invalid = || ApiError::not_authorized("Invalid Refresh Token");
        let grant = grant
            .filter(|g| g.pool_id == pool.id && g.client_id == client_id)
            .ok_or_else(invalid)?;
        let user = pool.user(&grant.username).ok_or_else(invalid)?;
        if !lock(user).sessions.contains(&grant.origin_jti) {
            return Err(ApiError::not_authorized("Refresh Token has been revoked"));
        }
        self.tokens(
            pool,
            &grant.username,
            client_id,
            &grant.origin_jti,
            self.settings.token_ttl_secs,
        )
    }

    fn tokens(
        &self,
        pool: &Pool,
        username: &str,
        client_id: &str,
        origin_jti: &str,
        ttl: u64,
    ) -> Result<Value, ApiError> {
        let user = pool
            .user(username)
            .ok_or_else(|| ApiError::new("UserNotFoundException", "User does not exist."))?;
        let now = self.clock.now();
        let (sub, attributes) = {
            let user = lock(user);
            (user.sub.clone(), user.attributes.clone())
        };
        let access = AccessClaims {
            sub: sub.clone(),
            iss: self.issuer(&pool.id),
            client_id: client_id.to_owned(),
            origin_jti: origin_jti.to_owned(),
            token_use: "access".into(),
            scope: ADMIN_SCOPE.into(),
            auth_time: now,
            exp: now + ttl,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            username: username.to_owned(),
        };
        let mut id = json!({
            "sub": sub, "aud": client_id, "iss": self.issuer(&pool.id), "token_use": "id",
            "cognito:username": username, "auth_time": now, "exp": now + ttl, "iat": now,
            "jti": uuid::Uuid::new_v4().to_string(), "origin_jti": origin_jti,
        });
        for (name, value) in attributes {
            id[name.as_str()] = match value.as_str() {
                "true" if name.ends_with("_verified") => json!(true),
                "false" if name.ends_with("_verified") => json!(false),
                _ => json!(value),
            };
        }
        Ok(json!({
            "AccessToken": self.signer.sign(&access),
            "IdToken": self.signer.sign(&id),
            "ExpiresIn": ttl,
            "TokenType": "Bearer",
        }))
    }

    /// Signs any claims with the backend's key: tokens sign-in would not
    /// issue (expired, another scope, another pool), for tests of a client's
    /// own checks. The backend itself still refuses what Cognito would.
    pub fn sign(&self, claims: &Value) -> String {
        self.signer.sign(claims)
    }

    /// The pool with `id`.
    pub fn pool(&self, id: &str) -> Option<&Pool> {
        self.directory.pool(id)
    }
}

/// A backend bound to a listener, not yet serving.
pub struct Bound {
    /// The listener.
    pub listener: TcpListener,
    /// Its address.
    pub addr: SocketAddr,
    /// The backend, shared with the server.
    pub backend: Arc<Backend>,
}

/// Binds `addr` and builds the backend whose issuer is the bound address.
pub async fn bind(addr: SocketAddr, seed: Seed, settings: Settings) -> Result<Bound, String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let mut addr = listener.local_addr().map_err(|e| e.to_string())?;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let backend = Backend::new(seed, format!("http://{addr}"), settings)?;
    Ok(Bound {
        listener,
        addr,
        backend: Arc::new(backend),
    })
}

/// Serves the backend until `shutdown` completes.
pub async fn serve(
    bound: Bound,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(bound.listener, http::router(bound.backend))
        .with_graceful_shutdown(shutdown)
        .await
}
