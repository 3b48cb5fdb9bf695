//! The local token check: what an access token must be before any Cognito
//! call is spent on it (GitHub issue "Abuse and quota protection", §1).
//!
//! The checks run in this order, and the first failure is the one reported:
//!
//! 1. `MALFORMED_TOKEN`: three base64url parts, an RS256 header with a kid,
//!    claims of the right types. Junk ends here, after one base64 decode
//!    and one borrowed JSON parse.
//! 2. `NOT_AN_ACCESS_TOKEN`, 3. `ISSUER_NOT_ALLOWED`, 4. `MISSING_SCOPE`:
//!    what kind of token it is, who issued it and what it may do. These never
//!    change for a token, nor for its refreshed successors, so they come
//!    before expiry: a caller told "expired" would refresh and fail again.
//! 5. `TOKEN_EXPIRED`: the one failure a refresh cures.
//! 6. `BAD_SIGNATURE` / `UNKNOWN_USER_POOL`: the only costly check (RSA,
//!    and a JWKS fetch when the keys are not cached), so last; a token that
//!    fails it is forged or altered (or names a pool that does not exist),
//!    and every claim check above was only a cheaper way to refuse it.
//!
//! With the signature check on, no token passes unverified: when its pool's
//! keys cannot be had in time the answer is [`CheckError::KeysUnavailable`]
//! (UNAVAILABLE with a retry delay), never "let Cognito decide".

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::Algorithm;

use super::{
    fetch::JwksSource,
    issuer::Issuers,
    jwks::{JwksSettings, KeyCache, Keys},
    jwt,
    rejection::TokenRejection,
};
use crate::{domain::AccessToken, telemetry::metrics::metrics};

/// The scope both verification operations require.
pub const ADMIN_SCOPE: &str = "aws.cognito.signin.user.admin";
/// Most leeway on `exp`: more would let expired tokens through for long.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// How tokens are checked; from the command line.
#[derive(Debug, Clone)]
pub struct TokenCheckConfig {
    /// `--user-pool`: the accepted user pool ids; empty accepts any pool
    /// (`serve` asks for `--any-user-pool` to say so).
    pub user_pools: Vec<String>,
    /// `--token-leeway-secs`: how long after `exp` a token still passes
    /// (clock skew); default 2 s.
    pub leeway: Duration,
    /// `--token-signature-check`: verify RS256 signatures against the pool's
    /// JWKS; default on.
    pub signature_check: bool,
    /// `--cognito-endpoint`: the Cognito-compatible endpoint that replaces
    /// AWS (e.g. `http://127.0.0.1:9229`). The JWKS is then fetched from it,
    /// and issuers are matched by pool id only.
    pub endpoint: Option<String>,
    /// `--region`: the SDK client's region. Not used by the checks: a pool's
    /// keys live in the pool's own region, which its id names.
    pub default_region: Option<String>,
    /// `--jwks-max-stale-secs`: how long past their refresh age a pool's
    /// last good keys still verify, while they cannot be refreshed.
    pub max_stale: Duration,
    /// `--jwks-fetches-per-sec`: key-set fetches per second for pools
    /// without cached keys, all together.
    pub fetches_per_sec: u32,
}

impl Default for TokenCheckConfig {
    fn default() -> Self {
        Self {
            user_pools: Vec::new(),
            leeway: Duration::from_secs(2),
            signature_check: true,
            endpoint: None,
            default_region: None,
            max_stale: Duration::from_secs(86_400),
            fetches_per_sec: 5,
        }
    }
}

impl TokenCheckConfig {
    /// Checks what the types cannot; the error is one line for the operator.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(endpoint) = &self.endpoint {
            endpoint_base(endpoint)?;
        }
        let issuers = Issuers::new(&[], self.endpoint.is_some());
        if let Some(pool) = self.user_pools.iter().find(|p| !issuers.is_pool_id(p)) {
            let region = if self.endpoint.is_some() {
                "a prefix"
            } else {
                "an AWS region"
            };
            return Err(format!(
                "--user-pool {pool:?} is not a Cognito user pool id: expected <region>_<id> with \
                 {region} before the underscore and letters or digits after it, \
                 e.g. eu-west-1_AbCdEf123"
            ));
        }
        if self.leeway > MAX_LEEWAY {
            return Err(format!(
                "--token-leeway-secs must be at most {}",
                MAX_LEEWAY.as_secs()
            ));
        }
        Ok(())
    }
}

/// The endpoint without trailing slashes, if it is an http(s) URL with a
/// host and no query: the base of the JWKS URLs.
fn endpoint_base(endpoint: &str) -> Result<String, String> {
    let base = endpoint.trim_end_matches('/');
    let uri: http::Uri = base
        .parse()
        .map_err(|_| format!("--cognito-endpoint {endpoint:?} is not a URL"))?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    if !scheme_ok || uri.host().is_none_or(str::is_empty) || uri.query().is_some() {
        return Err(format!(
            "--cognito-endpoint {endpoint:?} must be an http:// or https:// URL with a host and no query"
        ));
    }
    Ok(base.to_owned())
}

/// A token that passed the local checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedToken {
    /// The user pool, e.g. `eu-west-1_AbCdEf123`.
    pub pool_id: String,
    /// The pool id's prefix, e.g. `eu-west-1`.
    pub region: String,
    /// The user's immutable id.
    pub sub: String,
    /// The app client, when the token names one.
    pub client_id: Option<String>,
    /// Whether the signature was verified.
    pub signature: Signature,
}

/// Whether a token's signature was verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    /// RS256, against the pool's keys.
    Verified,
    /// Not checked: `--token-signature-check off`. Cognito still checks the
    /// token.
    Unverified,
}

/// Why a token cannot go on to Cognito.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// The token is refused: its claims, issuer or signature.
    #[error(transparent)]
    Rejected(#[from] TokenRejection),
    /// The pool's signing keys cannot be had now (fetch failing, rationed,
    /// or slower than the caller's deadline): the token could not be
    /// verified, so it is not passed on.
    #[error("the user pool's signing keys are unavailable")]
    KeysUnavailable {
        /// When a fetch may be tried again.
        retry_after: Duration,
    },
}

impl CheckError {
    /// The rejection, if this is one (for tests and the audit trail).
    pub fn rejection(self) -> Option<TokenRejection> {
        match self {
            Self::Rejected(r) => Some(r),
            Self::KeysUnavailable { .. } => None,
        }
    }
}

/// The longest a check waits for a pool's key set when the caller set no
/// deadline: a fetch's own bound (twice its timeout) and some.
const DEFAULT_KEY_WAIT: Duration = Duration::from_secs(5);

/// Checks access tokens; cheap to clone (one `Arc`), one per process.
#[derive(Debug, Clone)]
pub struct TokenChecker {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    issuers: Issuers,
    leeway: Duration,
    /// `None` when the signature check is off.
    keys: Option<Arc<KeyCache>>,
}

impl TokenChecker {
    /// A checker for `config`; fails on an invalid configuration, or when
    /// HTTPS is needed for the JWKS and the system has no root certificates.
    pub fn new(config: TokenCheckConfig) -> Result<Self, String> {
        let settings = JwksSettings {
            max_stale: config.max_stale,
            fetches_per_sec: config.fetches_per_sec,
            ..JwksSettings::default()
        };
        Self::with_settings(config, settings)
    }

    pub(crate) fn with_settings(
        config: TokenCheckConfig,
        settings: JwksSettings,
    ) -> Result<Self, String> {
        config.validate()?;
        let keys = if config.signature_check {
            let source = match &config.endpoint {
                Some(endpoint) => JwksSource::Endpoint(endpoint_base(endpoint)?),
                None => JwksSource::Aws,
            };
            let needs_roots =
                !matches!(&source, JwksSource::Endpoint(b) if b.starts_with("http://"));
            let client = super::fetch::https_client(needs_roots, settings.fetch_timeout)?;
            Some(Arc::new(KeyCache::new(
                client,
                source,
                settings,
                &config.user_pools,
            )))
        } else {
            None
        };
        Ok(Self {
            inner: Arc::new(Inner {
                issuers: Issuers::new(&config.user_pools, config.endpoint.is_some()),
                leeway: config.leeway,
                keys,
            }),
        })
    }

    /// Checks `token` now, waiting for its pool's key set (when it must be
    /// fetched) for `wait` at most (`None`: a default bound).
    pub async fn check(
        &self,
        token: &AccessToken,
        wait: Option<Duration>,
    ) -> Result<CheckedToken, CheckError> {
        self.check_at(token, SystemTime::now(), wait).await
    }

    /// Checks `token` as of `now` (expiry); the key cache keeps its own
    /// monotonic time.
    pub async fn check_at(
        &self,
        token: &AccessToken,
        now: SystemTime,
        wait: Option<Duration>,
    ) -> Result<CheckedToken, CheckError> {
        self.check_with(token, now, tokio::time::Instant::now(), wait)
            .await
    }

    pub(crate) async fn check_with(
        &self,
        token: &AccessToken,
        now: SystemTime,
        clock: tokio::time::Instant,
        wait: Option<Duration>,
    ) -> Result<CheckedToken, CheckError> {
        let inner = &*self.inner;
        let jwt = jwt::parse(token.expose()).ok_or(TokenRejection::Malformed)?;
        let claims = jwt.claims().ok_or(TokenRejection::Malformed)?;
        if claims.token_use != "access" {
            return Err(TokenRejection::NotAnAccessToken.into());
        }
        let (pool, region) = inner
            .issuers
            .accept(&claims.iss)
            .ok_or(TokenRejection::IssuerNotAllowed)?;
        let scoped = claims
            .scope
            .as_deref()
            .is_some_and(|s| s.split_ascii_whitespace().any(|s| s == ADMIN_SCOPE));
        if !scoped {
            return Err(TokenRejection::MissingScope.into());
        }
        let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let expires = claims.expires().ok_or(TokenRejection::Malformed)?;
        if since_epoch > expires.saturating_add(inner.leeway) {
            return Err(TokenRejection::Expired.into());
        }
        let checked = CheckedToken {
            pool_id: pool.to_owned(),
            region: region.to_owned(),
            sub: claims.sub.into_owned(),
            client_id: claims.client_id.map(|c| c.into_owned()),
            signature: Signature::Unverified,
        };
        let Some(cache) = &inner.keys else {
            return Ok(checked);
        };
        let wait_until = tokio::time::Instant::now() + wait.unwrap_or(DEFAULT_KEY_WAIT);
        let (keys, stale) = match cache
            .keys(
                &checked.pool_id,
                &checked.region,
                &jwt.kid,
                clock,
                wait_until,
            )
            .await
        {
            Keys::Ready { keys, stale } => (keys, stale),
            Keys::UnknownKid => return Err(TokenRejection::BadSignature.into()),
            Keys::UnknownPool => return Err(TokenRejection::UnknownPool.into()),
            Keys::Unavailable { retry_after } => {
                return Err(CheckError::KeysUnavailable { retry_after })
            }
        };
        let key = keys.get(&jwt.kid).ok_or(TokenRejection::BadSignature)?;
        let signed = jwt.signed.as_bytes();
        match jsonwebtoken::crypto::verify(jwt.signature, signed, key, Algorithm::RS256) {
            Ok(true) if stale => metrics().jwks_stale_verification(),
            Ok(true) => {}
            _ => return Err(TokenRejection::BadSignature.into()),
        }
        Ok(CheckedToken {
            signature: Signature::Verified,
            ..checked
        })
    }
}
