//! The limits' state in Redis (or Valkey), shared by every replica: one
//! round trip per decision, the Lua script `gcra.lua` run with EVALSHA (the
//! `redis` crate loads it again after a Redis restart), bounded by the
//! configured timeout.
//!
//! The connection is the `redis` crate's `ConnectionManager`, created without
//! connecting (so Redis being down at start-up is no error) and connected in
//! the background at once; it reconnects by itself after I/O errors. Should
//! Redis keep failing anyway (e.g. a password fixed on the server, which is
//! no I/O error the manager retries), the manager is rebuilt every
//! [`REBUILD_AFTER`] until Redis answers. The caller applies the failure
//! mode; this module logs the failure, at most every [`WARN_EVERY`], with
//! the URL and the error scrubbed of the password.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, PoisonError,
    },
    time::{Duration, Instant},
};

use redis::{
    aio::{ConnectionManager, ConnectionManagerConfig},
    Script,
};

use super::{
    rules::{Rule, KEY_PREFIX},
    DayCount, FailureMode, RedisConfig, RedisUrl,
};

/// How long Redis fails before the connection manager is replaced.
const REBUILD_AFTER: Duration = Duration::from_secs(5);
/// At most one warning per this long while Redis fails.
const WARN_EVERY: Duration = Duration::from_secs(30);
/// One connection attempt's bound (the decision's own timeout is separate).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The Redis side of the limits.
pub(crate) struct Remote {
    url: RedisUrl,
    timeout: Duration,
    failure_mode: FailureMode,
    script: Arc<Script>,
    peek: Script,
    conn: Mutex<Conn>,
    /// Set while Redis fails: the fast path of a success reads only this.
    failing: AtomicBool,
    health: Mutex<Health>,
}

struct Conn {
    manager: ConnectionManager,
    built: Instant,
}

#[derive(Default)]
struct Health {
    failing_since: Option<Instant>,
    /// Warnings are at most every [`WARN_EVERY`], across outages too, so a
    /// flapping Redis cannot flood the log.
    last_warning: Option<Instant>,
    /// Whether this outage was warned about (and so its end is told).
    warned: bool,
    failures_unreported: u64,
}

impl Remote {
    /// A client for `config`, connecting in the background. Must be called
    /// within a Tokio runtime.
    pub fn new(config: &RedisConfig) -> Result<Self, String> {
        if config.timeout.is_zero() {
            return Err("the Redis timeout must be more than 0".to_owned());
        }
        let script = Arc::new(Script::new(include_str!("gcra.lua")));
        let manager = connect(&config.url, &script)?;
        Ok(Self {
            url: config.url.clone(),
            timeout: config.timeout,
            failure_mode: config.failure_mode,
            script,
            peek: Script::new(include_str!("peek.lua")),
            conn: Mutex::new(Conn {
                manager,
                built: Instant::now(),
            }),
            failing: AtomicBool::new(false),
            health: Mutex::new(Health::default()),
        })
    }

    /// Decides a call against all its `rules` in Redis, and against the
    /// daily counter when `daily` (its limit) is more than 0: `Ok(verdict)`
    /// (admitted and consumed from all, or refused and nothing consumed),
    /// `Err` (scrubbed) if Redis failed or did not answer in time.
    pub async fn decide(&self, rules: &[Rule], daily: u32) -> Result<Verdict, String> {
        let mut invocation = self.script.prepare_invoke();
        invocation.key(daily_key_prefix()).arg(daily);
        for rule in rules {
            invocation
                .key(&rule.key.redis)
                .arg(rule.rate.interval_us)
                .arg(rule.rate.span_us);
        }
        let mut manager = self.manager();
        let reply = tokio::time::timeout(
            self.timeout,
            invocation.invoke_async::<(i64, i64, i64, i64)>(&mut manager),
        )
        .await;
        let verdict = match reply {
            Ok(Ok((0, _, count, day))) => Ok(Verdict {
                refused: None,
                day_count: DayCount { day, count },
            }),
            Ok(Ok((1, wait_us, count, day))) if daily > 0 && wait_us > 0 => Ok(Verdict {
                refused: Some((Refused::Daily, wait_us)),
                day_count: DayCount { day, count },
            }),
            Ok(Ok((index, wait_us, count, day)))
                if index >= 2 && index as usize - 2 < rules.len() && wait_us > 0 =>
            {
                Ok(Verdict {
                    refused: Some((Refused::Rule(index as usize - 2), wait_us)),
                    day_count: DayCount { day, count },
                })
            }
            Ok(Ok(other)) => Err(format!("unexpected reply {other:?} from the limits script")),
            Ok(Err(error)) => Err(self.url.scrub(&error.to_string())),
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        };
        self.outcome(verdict)
    }

    /// Reads, without changing anything: Redis' clock (µs), this UTC day's
    /// SMS counter, and the TAT of each of `rules` (`None` when absent).
    pub async fn peek(&self, rules: &[&Rule]) -> Result<(i64, i64, Vec<Option<i64>>), String> {
        let mut invocation = self.peek.prepare_invoke();
        invocation.key(daily_key_prefix());
        for rule in rules {
            invocation.key(&rule.key.redis);
        }
        let mut manager = self.manager();
        let reply = tokio::time::timeout(
            self.timeout,
            invocation.invoke_async::<Vec<i64>>(&mut manager),
        )
        .await;
        let read = match reply {
            Ok(Ok(values)) if values.len() == rules.len() + 2 => Ok((
                values[0],
                values[1],
                values[2..]
                    .iter()
                    .map(|&tat| (tat >= 0).then_some(tat))
                    .collect(),
            )),
            Ok(Ok(other)) => Err(format!(
                "unexpected reply of {} values from the peek script",
                other.len()
            )),
            Ok(Err(error)) => Err(self.url.scrub(&error.to_string())),
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        };
        self.outcome(read)
    }

    fn outcome<T>(&self, result: Result<T, String>) -> Result<T, String> {
        match &result {
            Ok(_) => self.succeeded(),
            Err(error) => self.failed(error),
        }
        result
    }

    /// What the caller does when [`Remote::decide`] fails.
    pub fn failure_mode(&self) -> FailureMode {
        self.failure_mode
    }

    fn manager(&self) -> ConnectionManager {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        conn.manager.clone()
    }

    fn succeeded(&self) {
        if !self.failing.load(Ordering::Relaxed) {
            return;
        }
        let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(since) = health.failing_since.take() {
            self.failing.store(false, Ordering::Relaxed);
            if std::mem::take(&mut health.warned) {
                tracing::info!(
                    redis = %self.url,
                    failed_for = ?since.elapsed(),
                    failed_decisions = health.failures_unreported,
                    "the limits' Redis answers again: limits are shared across replicas",
                );
                health.failures_unreported = 0;
            }
        }
    }

    fn failed(&self, error: &str) {
        let now = Instant::now();
        let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        self.failing.store(true, Ordering::Relaxed);
        let since = *health.failing_since.get_or_insert(now);
        health.failures_unreported += 1;
        if health
            .last_warning
            .is_none_or(|last| now.duration_since(last) >= WARN_EVERY)
        {
            health.last_warning = Some(now);
            health.warned = true;
            let consequence = match self.failure_mode {
                FailureMode::Local => "limits are decided by each replica alone",
                FailureMode::Deny => "calls are refused",
            };
            tracing::warn!(
                redis = %self.url,
                error,
                failure_mode = %self.failure_mode,
                failed_decisions = health.failures_unreported,
                "the limits' Redis failed: {consequence} until it answers again",
            );
            health.failures_unreported = 0;
        }
        drop(health);
        if now.duration_since(since) >= REBUILD_AFTER {
            let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
            if now.duration_since(conn.built) >= REBUILD_AFTER {
                // The URL parsed before, so this cannot fail; keep the old
                // manager if it somehow does.
                if let Ok(manager) = connect(&self.url, &self.script) {
                    *conn = Conn {
                        manager,
                        built: now,
                    };
                }
            }
        }
    }
}

/// What Redis decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// `None`: admitted. Else what refused it (the longest wait) and the
    /// wait, µs.
    pub refused: Option<(Refused, i64)>,
    /// The daily counter after the decision (0 without one), and its UTC
    /// day by Redis' clock.
    pub day_count: DayCount,
}

/// What refused a call on Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The daily counter.
    Daily,
    /// The rule of this index.
    Rule(usize),
}

/// The prefix of the SMS guard's daily counters; the script appends the
/// UTC day's number (days since the epoch).
fn daily_key_prefix() -> String {
    format!("{KEY_PREFIX}sms-day")
}

/// A connection manager for `url` that connects, and loads the script, in
/// the background: the first decision does not wait for either.
fn connect(url: &RedisUrl, script: &Arc<Script>) -> Result<ConnectionManager, String> {
    let invalid = |error: redis::RedisError| {
        format!(
            "the Redis URL {url} is invalid: {}",
            url.scrub(&error.to_string())
        )
    };
    if url.is_tls() {
        install_crypto_provider();
    }
    let client = redis::Client::open(url.expose()).map_err(invalid)?;
    // Few, short retries: when a round of them fails, the next decision
    // starts another, so Redis coming back is noticed within about a second.
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_number_of_retries(2)
        .set_min_delay(Duration::from_millis(100))
        .set_max_delay(Duration::from_secs(1));
    let manager = ConnectionManager::new_lazy_with_config(client, config).map_err(invalid)?;
    let mut warm = manager.clone();
    let script = Arc::clone(script);
    tokio::spawn(async move {
        let _ = script.load_async(&mut warm).await;
    });
    Ok(manager)
}

/// The redis crate's rustls client uses the process-level crypto provider.
/// rustls picks one by itself only while exactly one provider's feature is
/// on in the whole dependency tree, and panics otherwise; so install this
/// binary's one (aws-lc-rs, as for all its TLS) unless one already is.
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Fails only if another thread installed one meanwhile: fine too.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}
