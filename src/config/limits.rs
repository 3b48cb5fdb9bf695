//! `serve`'s settings for the local token check and the limits that keep a
//! company's verification traffic honest: per user, per caller, per RPC,
//! local or shared on Redis; and the idempotency window of sends.

use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::{
    auth::TokenCheckConfig,
    limits::{FailureMode, LimitsConfig, RedisConfig, RedisUrl},
};

/// On or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// On.
    On,
    /// Off.
    Off,
}

/// Where a Redis failure leaves a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RedisFailureMode {
    /// Decide with this replica's own state.
    Local,
    /// Refuse the call (UNAVAILABLE, `LIMITS_UNAVAILABLE`).
    Deny,
}

/// The local token check.
#[derive(Debug, Clone, Args)]
pub struct TokenFlags {
    /// Only tokens of these user pools (e.g. `eu-west-1_AbCdEf123`);
    /// repeatable, or comma-separated in the environment. Required unless
    /// `--any-user-pool` says that any pool is meant.
    #[arg(
        long = "user-pool",
        env = "COGNITO_VERIFY_USER_POOL",
        value_name = "POOL_ID",
        value_delimiter = ','
    )]
    pub user_pools: Vec<String>,

    /// Accept tokens of any user pool (instead of naming them with
    /// `--user-pool`). Every pool's keys are then fetched on first use, and
    /// those fetches are rationed (`--jwks-fetches-per-sec`).
    #[arg(long, env = "COGNITO_VERIFY_ANY_USER_POOL")]
    pub any_user_pool: bool,

    /// Seconds a token is still accepted after its `exp`.
    #[arg(long, env = "COGNITO_VERIFY_TOKEN_LEEWAY_SECS", default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=300))]
    pub token_leeway_secs: u64,

    /// Check the token's RS256 signature against its pool's JWKS (fetched
    /// from the configured Cognito endpoint, cached).
    #[arg(long, env = "COGNITO_VERIFY_TOKEN_SIGNATURE_CHECK", value_enum, default_value_t = Switch::On)]
    pub token_signature_check: Switch,

    /// How long a pool's last good keys keep verifying tokens once they are
    /// due for refresh (an hour after the fetch) and cannot be refreshed, in
    /// seconds; 0 = never past their refresh age.
    #[arg(long, env = "COGNITO_VERIFY_JWKS_MAX_STALE_SECS", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(0..=604_800))]
    pub jwks_max_stale_secs: u64,

    /// Key-set fetches per second for pools whose keys are not cached (a
    /// pool seen for the first time, or whose last fetch failed), all pools
    /// together; a token that needs one beyond it is refused
    /// (UNAVAILABLE, `SIGNING_KEYS_UNAVAILABLE`).
    #[arg(long, env = "COGNITO_VERIFY_JWKS_FETCHES_PER_SEC", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub jwks_fetches_per_sec: u32,
}

/// The limits, checked after the token and before Cognito.
#[derive(Debug, Clone, Args)]
pub struct LimitFlags {
    /// One code per user and attribute per this many seconds; 0 = off.
    #[arg(long, env = "COGNITO_VERIFY_SEND_COOLDOWN_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub send_cooldown_secs: u64,

    /// Codes per user per hour (Cognito's own limit is 5); 0 = off.
    #[arg(long, env = "COGNITO_VERIFY_USER_SENDS_PER_HOUR", default_value_t = 5)]
    pub user_sends_per_hour: u32,

    /// Verification attempts per user per hour (Cognito's own limit is 15);
    /// 0 = off.
    #[arg(
        long,
        env = "COGNITO_VERIFY_USER_VERIFIES_PER_HOUR",
        default_value_t = 15
    )]
    pub user_verifies_per_hour: u32,

    /// Code requests per caller (mTLS identity, else peer address) per
    /// minute; 0 = off.
    #[arg(
        long,
        env = "COGNITO_VERIFY_CALLER_SENDS_PER_MINUTE",
        default_value_t = 0
    )]
    pub caller_sends_per_minute: u32,

    /// GetUserAttributeVerificationCode calls admitted per second (burst:
    /// one second's worth): per replica, or cluster-wide with Redis; 0 = off.
    #[arg(
        long,
        env = "COGNITO_VERIFY_GET_CODE_LIMIT_PER_SEC",
        default_value_t = 25
    )]
    pub get_code_limit_per_sec: u32,

    /// VerifyUserAttribute calls admitted per second (burst: one second's
    /// worth): per replica, or cluster-wide with Redis; 0 = off.
    #[arg(
        long,
        env = "COGNITO_VERIFY_VERIFY_LIMIT_PER_SEC",
        default_value_t = 25
    )]
    pub verify_limit_per_sec: u32,

    /// GetVerificationStatus calls admitted per second (burst: one second's
    /// worth): per replica, or cluster-wide with Redis; 0 = off. Each call
    /// is one Cognito GetUser.
    #[arg(
        long,
        env = "COGNITO_VERIFY_STATUS_LIMIT_PER_SEC",
        default_value_t = 25
    )]
    pub status_limit_per_sec: u32,

    /// Redis (or Valkey) that shares the limits and the idempotency records
    /// across replicas: `redis://[user:password@]host:port[/db]` or
    /// `rediss://` (TLS). The password is a secret: it is never logged.
    /// Unset: each replica decides alone.
    #[arg(long, env = "COGNITO_VERIFY_LIMITS_REDIS_URL", value_name = "URL")]
    pub limits_redis_url: Option<String>,

    /// Time for one decision on Redis, in milliseconds.
    #[arg(long, env = "COGNITO_VERIFY_LIMITS_REDIS_TIMEOUT_MS", default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub limits_redis_timeout_ms: u64,

    /// When Redis fails or is too slow: `local` (this replica's own limits;
    /// warned and counted) or `deny` (UNAVAILABLE, `LIMITS_UNAVAILABLE`).
    #[arg(long, env = "COGNITO_VERIFY_LIMITS_REDIS_FAILURE_MODE", value_enum, default_value_t = RedisFailureMode::Local)]
    pub limits_redis_failure_mode: RedisFailureMode,

    /// A send repeated with the same `request_id` within this many seconds
    /// returns the first answer instead of sending again.
    #[arg(long, env = "COGNITO_VERIFY_IDEMPOTENCY_WINDOW_SECS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub idempotency_window_secs: u64,
}

impl TokenFlags {
    /// The posture `serve` insists on: the accepted pools are named, or
    /// "any pool" is said explicitly, and never without the signature check
    /// (tokens of made-up pools would then reach Cognito).
    pub fn validate(&self) -> Result<(), String> {
        let named = self.user_pools.iter().any(|p| !p.trim().is_empty());
        match (named, self.any_user_pool) {
            (false, false) => Err("name the user pools whose tokens are accepted with --user-pool \
                                   (COGNITO_VERIFY_USER_POOL), or accept any pool with --any-user-pool"
                .to_owned()),
            (true, true) => {
                Err("--user-pool and --any-user-pool contradict each other: give one".to_owned())
            }
            (false, true) if self.token_signature_check == Switch::Off => Err(
                "--any-user-pool needs --token-signature-check on: without it, tokens of made-up \
                 pools would reach Cognito"
                    .to_owned(),
            ),
            _ => Ok(()),
        }
    }

    /// The token checker's configuration.
    pub fn check_config(&self, endpoint: Option<&str>, region: Option<&str>) -> TokenCheckConfig {
        TokenCheckConfig {
            user_pools: self
                .user_pools
                .iter()
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect(),
            leeway: Duration::from_secs(self.token_leeway_secs),
            signature_check: self.token_signature_check == Switch::On,
            max_stale: Duration::from_secs(self.jwks_max_stale_secs),
            fetches_per_sec: self.jwks_fetches_per_sec,
            endpoint: endpoint.map(str::to_owned),
            default_region: region.map(str::to_owned),
        }
    }
}

impl LimitFlags {
    /// The Redis URL, checked; its text never appears in the error.
    pub fn redis_url(&self) -> Result<Option<RedisUrl>, String> {
        match self.limits_redis_url.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(url) => url.parse::<RedisUrl>().map(Some).map_err(|_| {
                "--limits-redis-url is not a redis:// or rediss:// URL (its value is not shown: it may hold a password)".to_owned()
            }),
        }
    }

    /// The limits' configuration.
    pub fn limits_config(&self) -> Result<LimitsConfig, String> {
        let redis = self.redis_url()?.map(|url| RedisConfig {
            url,
            timeout: Duration::from_millis(self.limits_redis_timeout_ms),
            failure_mode: match self.limits_redis_failure_mode {
                RedisFailureMode::Local => FailureMode::Local,
                RedisFailureMode::Deny => FailureMode::Deny,
            },
        });
        Ok(LimitsConfig {
            send_cooldown: Duration::from_secs(self.send_cooldown_secs),
            user_sends_per_hour: self.user_sends_per_hour,
            user_verifies_per_hour: self.user_verifies_per_hour,
            caller_sends_per_minute: self.caller_sends_per_minute,
            get_code_per_sec: self.get_code_limit_per_sec,
            verify_per_sec: self.verify_limit_per_sec,
            status_per_sec: self.status_limit_per_sec,
            sms_per_day: 0,
            sms_prefix_per_hour: 0,
            redis,
        })
    }

    /// How long a send's answer is kept for repeats of its `request_id`.
    pub fn idempotency_window(&self) -> Duration {
        Duration::from_secs(self.idempotency_window_secs)
    }
}
