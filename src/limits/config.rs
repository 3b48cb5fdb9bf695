//! The limits' configuration, and the Redis URL that keeps its password out
//! of every log line, `Debug` and error message.

use std::{fmt, str::FromStr, sync::Arc, time::Duration};

use redis::IntoConnectionInfo as _;

/// The limits (0 or a zero duration turns one off) and where their state is
/// shared.
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// One code per user and attribute per this long (default 60 s).
    pub send_cooldown: Duration,
    /// Codes per user per hour (default 5, Cognito's own).
    pub user_sends_per_hour: u32,
    /// Verification attempts per user per hour (default 15).
    pub user_verifies_per_hour: u32,
    /// Code requests per caller per minute (default 0: off).
    pub caller_sends_per_minute: u32,
    /// GetUserAttributeVerificationCode calls per second (default 25).
    pub get_code_per_sec: u32,
    /// VerifyUserAttribute calls per second (default 25).
    pub verify_per_sec: u32,
    /// GetVerificationStatus calls per second (default 25).
    pub status_per_sec: u32,
    /// SMS codes per UTC day, all users together (default 0: off).
    pub sms_per_day: u32,
    /// SMS codes per number prefix per hour (default 0: off).
    pub sms_prefix_per_hour: u32,
    /// Shares the limits' state across replicas; `None` keeps it local.
    pub redis: Option<RedisConfig>,
}

impl LimitsConfig {
    /// Every limit off, nothing shared.
    pub fn off() -> Self {
        Self {
            send_cooldown: Duration::ZERO,
            user_sends_per_hour: 0,
            user_verifies_per_hour: 0,
            caller_sends_per_minute: 0,
            get_code_per_sec: 0,
            verify_per_sec: 0,
            status_per_sec: 0,
            sms_per_day: 0,
            sms_prefix_per_hour: 0,
            redis: None,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            send_cooldown: Duration::from_secs(60),
            user_sends_per_hour: 5,
            user_verifies_per_hour: 15,
            caller_sends_per_minute: 0,
            get_code_per_sec: 25,
            verify_per_sec: 25,
            status_per_sec: 25,
            sms_per_day: 0,
            sms_prefix_per_hour: 0,
            redis: None,
        }
    }
}

/// Where and how to reach Redis.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://` or `rediss://` (TLS, with rustls and the system's roots).
    pub url: RedisUrl,
    /// The most one decision waits for Redis before the failure mode applies
    /// (default 50 ms).
    pub timeout: Duration,
    /// What to do when Redis fails or is too slow (default: decide locally).
    pub failure_mode: FailureMode,
}

impl RedisConfig {
    /// The default timeout for one decision.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);

    /// `url` with the default timeout and failure mode.
    pub fn new(url: RedisUrl) -> Self {
        Self {
            url,
            timeout: Self::DEFAULT_TIMEOUT,
            failure_mode: FailureMode::default(),
        }
    }
}

/// What a decision does when Redis fails or does not answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailureMode {
    /// Decide with this replica's own state: limits hold per replica (the
    /// per-RPC rate then holds per replica, not across the cluster).
    #[default]
    Local,
    /// Refuse the call (`Refusal::Unavailable`).
    Deny,
}

impl FailureMode {
    /// `local` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Deny => "deny",
        }
    }
}

impl fmt::Display for FailureMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FailureMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "local" => Ok(Self::Local),
            "deny" => Ok(Self::Deny),
            other => Err(format!(
                "unknown failure mode {other:?}: expected local or deny"
            )),
        }
    }
}

/// A Redis URL, `redis://[user[:password]@]host[:port][/db]` or `rediss://…`.
/// `Debug` and `Display` show it with the password replaced by `***`; only
/// [`RedisUrl::expose`] gives the real one, for the client.
#[derive(Clone)]
pub struct RedisUrl(Arc<Inner>);

struct Inner {
    url: String,
    redacted: String,
    /// The password as written in the URL and percent-decoded, to scrub
    /// from error messages.
    secrets: Vec<String>,
}

impl RedisUrl {
    /// The URL with its password, for the Redis client only: never log it.
    pub fn expose(&self) -> &str {
        &self.0.url
    }

    /// Whether the URL is `rediss://` (TLS).
    pub(crate) fn is_tls(&self) -> bool {
        self.0.url.starts_with("rediss:")
    }

    /// Replaces the URL and its password in `text` (e.g. a client error)
    /// by their redacted forms.
    pub fn scrub(&self, text: &str) -> String {
        let mut text = text.replace(&self.0.url, &self.0.redacted);
        for secret in &self.0.secrets {
            text = text.replace(secret.as_str(), "***");
        }
        text
    }
}

impl FromStr for RedisUrl {
    type Err = String;

    /// Errors name what is wrong and show the URL redacted, or not at all
    /// when it does not parse (a redacted form cannot be built then).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const FORM: &str = "expected redis://[user[:password]@]host[:port][/db] or rediss://…";
        let Some(mut url) = redis::parse_redis_url(s) else {
            return Err(format!("the Redis URL does not parse ({FORM})"));
        };
        let mut secrets = Vec::new();
        if let Some(password) = url.password().filter(|p| !p.is_empty()) {
            secrets.push(password.to_owned());
            // Never fails: a URL with a password has a host.
            let _ = url.set_password(Some("***"));
        }
        let redacted = url.as_str().to_owned();
        if !matches!(url.scheme(), "redis" | "rediss") {
            return Err(format!(
                "the Redis URL {redacted} is not redis:// or rediss:// ({FORM})"
            ));
        }
        // The client would take `#insecure` as "skip certificate checks",
        // which this build cannot do: every connection would fail.
        if url.fragment().is_some() {
            return Err(format!(
                "the Redis URL {redacted} has a #fragment: none is supported \
                 (rediss:// always verifies the server's certificate)"
            ));
        }
        // The client's own checks (host, port, database, TLS fragment); its
        // messages are fixed texts, scrubbed all the same.
        let info = s.into_connection_info().map_err(|e| {
            let e = e.to_string().replace(s, &redacted);
            let e = secrets.iter().fold(e, |e, p| e.replace(p.as_str(), "***"));
            format!("the Redis URL {redacted} is invalid: {e}")
        })?;
        if let Some(decoded) = info.redis_settings().password() {
            if !decoded.is_empty() && !secrets.iter().any(|p| p == decoded) {
                secrets.push(decoded.to_owned());
            }
        }
        // Longest first, so a password that contains another is scrubbed whole.
        secrets.sort_by_key(|p| std::cmp::Reverse(p.len()));
        Ok(Self(Arc::new(Inner {
            url: s.to_owned(),
            redacted,
            secrets,
        })))
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.redacted)
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RedisUrl").field(&self.0.redacted).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_and_rediss_only() {
        for ok in [
            "redis://127.0.0.1:6379",
            "redis://cache",
            "rediss://cache.example:6380/2",
            "redis://:pw@127.0.0.1",
        ] {
            let url: RedisUrl = ok.parse().unwrap();
            assert_eq!(url.expose(), ok);
        }
        for bad in [
            "http://cache:6379",
            "valkey://cache",
            "unix:///tmp/redis.sock",
            "cache:6379",
            "redis://cache/notadb",
            "rediss://cache/#insecure",
            "",
        ] {
            assert!(bad.parse::<RedisUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_password_never_shows() {
        let raw = "rediss://app:p%40ss-w0rd@cache.example:6380/1";
        let url: RedisUrl = raw.parse().unwrap();
        assert_eq!(url.to_string(), "rediss://app:***@cache.example:6380/1");
        assert_eq!(
            format!("{url:?}"),
            "RedisUrl(\"rediss://app:***@cache.example:6380/1\")"
        );
        let config = RedisConfig::new(url.clone());
        assert!(!format!("{config:?}").contains("w0rd"));
        assert_eq!(url.expose(), raw);
        // Scrubs the URL, the password as written and as decoded.
        let scrubbed = url.scrub(&format!("failed: {raw}; auth p@ss-w0rd; p%40ss-w0rd"));
        assert!(!scrubbed.contains("w0rd"), "{scrubbed}");
        // Errors show no password either.
        for bad in [
            "http://u:s3cret@cache",
            "redis://u:s3cret@cache/notadb",
            "redis://u:s3cret@cache:99999",
            "redis://u:s3cret@[::1",
        ] {
            let err = bad.parse::<RedisUrl>().unwrap_err();
            assert!(!err.contains("s3cret"), "{err}");
        }
    }

    #[test]
    fn failure_modes() {
        assert_eq!("local".parse(), Ok(FailureMode::Local));
        assert_eq!("deny".parse(), Ok(FailureMode::Deny));
        assert!("open".parse::<FailureMode>().is_err());
        assert_eq!(FailureMode::default(), FailureMode::Local);
        assert_eq!(
            RedisConfig::new("redis://h".parse().unwrap()).timeout,
            Duration::from_millis(50)
        );
    }
}
