//! The idempotency records in Redis, shared by every replica:
//!
//! - a send claims its key with `SET key p:<token> NX PX <call time>`; the
//!   marker expires by itself if this replica dies mid-call;
//! - its success replaces the marker with `d:<answer>` for the window;
//! - its failure deletes the marker, if it is still its own (a small Lua
//!   compare-and-delete), so a retry sends;
//! - a duplicate finds `d:` (the answer) or `p:` (waits, polling, until its
//!   deadline).
//!
//! Every operation is bounded by the limits' Redis timeout; on failure the
//! caller applies the limits' failure mode (this replica's records, or
//! refusal).

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use redis::{
    aio::{ConnectionManager, ConnectionManagerConfig},
    AsyncCommands as _, Script,
};
use tokio::time::Instant;

use super::{Begin, Pending, Ticket};
use crate::limits::{FailureMode, RedisConfig, RedisUrl};

/// How often a duplicate looks again at a call in progress.
const POLL: Duration = Duration::from_millis(25);
/// Prefix of the keys.
const PREFIX: &str = "cognito-verify:idem:";

/// Why Redis did not decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failure {
    /// A duplicate is in progress past our deadline.
    InProgress,
    /// Redis failed or did not answer in time.
    Store,
}

/// The Redis side of the records.
pub struct Remote {
    manager: ConnectionManager,
    url: RedisUrl,
    timeout: Duration,
    failure_mode: FailureMode,
    window: Duration,
    pending_for: Duration,
    release: Arc<Script>,
}

/// A call in progress, recorded in Redis.
pub(super) struct Claim {
    manager: ConnectionManager,
    key: String,
    marker: String,
    window: Duration,
    timeout: Duration,
    release: Arc<Script>,
}

impl Remote {
    /// Records on `config`'s Redis for `window`; a marker of a call in
    /// progress lives `pending_for` (longer than a call may take). Connects
    /// in the background: Redis being down now is no error.
    pub fn new(
        config: &RedisConfig,
        window: Duration,
        pending_for: Duration,
    ) -> Result<Self, String> {
        if config.url.expose().starts_with("rediss://")
            && rustls::crypto::CryptoProvider::get_default().is_none()
        {
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        }
        let invalid = |e: redis::RedisError| {
            format!(
                "the Redis URL {} is invalid: {}",
                config.url,
                config.url.scrub(&e.to_string())
            )
        };
        let client = redis::Client::open(config.url.expose()).map_err(invalid)?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(100))
            .set_max_delay(Duration::from_secs(1));
        let manager =
            ConnectionManager::new_lazy_with_config(client, manager_config).map_err(invalid)?;
        Ok(Self {
            manager,
            url: config.url.clone(),
            timeout: config.timeout,
            failure_mode: config.failure_mode,
            window,
            pending_for,
            release: Arc::new(Script::new(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
            )),
        })
    }

    /// Whether a Redis failure falls back to this replica's records.
    pub(super) fn falls_back(&self) -> bool {
        self.failure_mode == FailureMode::Local
    }

    pub(super) async fn begin(&self, key: &str, deadline: Instant) -> Result<Begin, Failure> {
        let key = format!("{PREFIX}{key}");
        let marker = format!("p:{}", uuid::Uuid::new_v4().simple());
        loop {
            let mut conn = self.manager.clone();
            let claimed: Option<String> = self
                .bounded(
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(&marker)
                        .arg("NX")
                        .arg("PX")
                        .arg(millis(self.pending_for))
                        .query_async(&mut conn),
                )
                .await?;
            if claimed.is_some() {
                return Ok(Begin::First(Ticket(Some(Pending::Remote(Claim {
                    manager: self.manager.clone(),
                    key,
                    marker,
                    window: self.window,
                    timeout: self.timeout,
                    release: Arc::clone(&self.release),
                })))));
            }
            let value: Option<Vec<u8>> = self.bounded(conn.get(&key)).await?;
            if let Some(answer) = value.as_deref().and_then(|v| v.strip_prefix(b"d:")) {
                return Ok(Begin::Replay(Bytes::copy_from_slice(answer)));
            }
            // In progress elsewhere (or gone just now: try to claim again).
            if Instant::now() + POLL >= deadline {
                return Err(Failure::InProgress);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn bounded<T>(
        &self,
        operation: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, Failure> {
        match tokio::time::timeout(self.timeout, operation).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                tracing::debug!(error = %self.url.scrub(&e.to_string()), "idempotency record: Redis failed");
                Err(Failure::Store)
            }
            Err(_) => Err(Failure::Store),
        }
    }
}

impl Claim {
    pub(super) async fn complete(self, answer: Bytes) {
        let mut value = Vec::with_capacity(answer.len() + 2);
        value.extend_from_slice(b"d:");
        value.extend_from_slice(&answer);
        let mut conn = self.manager.clone();
        let stored = tokio::time::timeout(
            self.timeout,
            conn.pset_ex::<_, _, ()>(&self.key, value, millis(self.window)),
        )
        .await;
        if !matches!(stored, Ok(Ok(()))) {
            // Not recorded: a repeat will send again (the marker expires).
            tracing::warn!("an idempotent send's answer could not be recorded in Redis");
        }
    }

    /// Deletes the marker if it is still ours, in the background (a drop
    /// cannot wait).
    pub(super) fn release(self) {
        tokio::spawn(async move {
            let mut conn = self.manager.clone();
            let _ = tokio::time::timeout(
                self.timeout,
                self.release
                    .key(&self.key)
                    .arg(&self.marker)
                    .invoke_async::<i64>(&mut conn),
            )
            .await;
        });
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}
