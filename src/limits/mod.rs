//! Keyed limits that protect users, the SMS/email budget and Cognito's
//! account-wide quotas ("Abuse and quota protection"):
//!
//! | limit | key | default | reason |
//! |---|---|---|---|
//! | one code per cooldown | user + attribute | 60 s | `SEND_COOLDOWN` |
//! | codes per hour | user | 5 | `USER_SEND_QUOTA` |
//! | verify attempts per hour | user | 15 | `USER_VERIFY_QUOTA` |
//! | code requests per minute | caller | off | `CALLER_RATE_LIMITED` |
//! | calls per second | RPC | 25 each | `RATE_LIMITED` |
//! | SMS codes per hour | number prefix | off | `SMS_PREFIX_LIMIT` |
//! | SMS codes per UTC day | the deployment | off | `SMS_DAILY_LIMIT` |
//!
//! Every limit is a GCRA (`n` per period, burst `n`; [`gcra`] has the math).
//! One decision checks all the limits of a call and consumes from all of
//! them only if all pass; a refusal names the limit with the longest wait,
//! and that wait exactly. The SMS daily limit is the exception to the GCRA:
//! a counter per UTC day (Redis' day with Redis), refused until midnight;
//! the SMS guard's two limits are decided together, after the number is
//! known ([`Limits::check_sms`]). [`Limits::standing`] reads a user's
//! limits without consuming anything (the status RPC; [`standing`]).
//!
//! Where the state lives:
//! - [`local`]: this replica's bounded, expiring map: the only state without
//!   Redis, and the fallback with it.
//! - [`remote`]: Redis, shared by all replicas, one atomic Lua script per
//!   decision, bounded by a timeout; when Redis fails the [`FailureMode`]
//!   decides (locally, or refuse), and Redis coming back is picked up by
//!   itself.
//!
//! [`limit`] names the limits and words their refusals; [`rules`] maps a
//! [`Call`] to its limits, hashed keys and rates; [`config`] holds the
//! configuration and the redacting [`RedisUrl`].
//!
//! What to know when operating it:
//! - In `Local` fallback each replica limits alone: a user's quota and the
//!   per-RPC rate then hold per replica (N replicas admit up to N times the
//!   rate for as long as Redis is down). `Deny` trades that for refusals.
//! - Redis is used standalone (or Valkey, ≥ Redis 5 semantics): the script
//!   touches several keys at once, which Redis Cluster would refuse across
//!   slots. Keys start with `cognito-verify:limits:`; deployments that must
//!   not share limits use different Redis databases (`/db` in the URL).
//! - Redis decides with its own clock (`TIME`); local decisions with this
//!   host's wall clock, in the same unit (µs since the epoch).
//! - A call abandoned while Redis decides may still have been counted.

mod config;
pub(crate) mod gcra;
mod limit;
mod local;
mod remote;
mod rules;
pub mod standing;

use std::{
    fmt,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, PoisonError,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

pub use config::{FailureMode, LimitsConfig, RedisConfig, RedisUrl};
pub use limit::{Call, Limit};

use local::{Denied, LocalStore};
use remote::Remote;
use rules::{Rates, Rule};

use crate::rpc::Operation;

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// A limit is used up: the one whose wait is longest, and the time until
    /// the call would be admitted.
    Limited {
        /// The limit.
        limit: Limit,
        /// The time until the call would be admitted.
        wait: Duration,
    },
    /// Redis failed or was too slow and the failure mode is `Deny`.
    Unavailable,
}

/// The limits, shared by every request (cheap to clone).
#[derive(Clone)]
pub struct Limits(Arc<Inner>);

struct Inner {
    config: LimitsConfig,
    rates: Rates,
    local: LocalStore,
    remote: Option<Remote>,
    fallbacks: AtomicU64,
    clock: Clock,
    /// This replica's SMS codes of the day: decides the daily limit without
    /// Redis (and in fallback).
    daily: Mutex<DayCount>,
    /// The day's count as last known: Redis' after each of its decisions,
    /// else this replica's (the `cognito_verify_sms_daily_sent` gauge).
    daily_seen: Mutex<DayCount>,
}

/// A count of one UTC day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DayCount {
    pub day: i64,
    pub count: i64,
}

impl DayCount {
    /// The count of `day`: 0 when this one is of another day.
    fn of(self, day: i64) -> i64 {
        if self.day == day {
            self.count
        } else {
            0
        }
    }
}

/// A UTC day, µs.
const DAY_US: i64 = 86_400_000_000;

/// The UTC day of `now` (days since the epoch) and the µs until its end.
fn day_of(now: i64) -> (i64, i64) {
    let day = now.div_euclid(DAY_US);
    (day, (day + 1) * DAY_US - now)
}

/// Wall-clock microseconds since the Unix epoch, as Redis' `TIME` counts.
type Clock = Box<dyn Fn() -> i64 + Send + Sync>;

fn system_clock() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

impl Limits {
    /// The limits of `config`. With Redis, connects in the background: Redis
    /// being down now is no error (the failure mode applies until it is up).
    /// Errors are configuration errors (e.g. a zero Redis timeout). Must be
    /// called within a Tokio runtime.
    pub async fn new(config: LimitsConfig) -> Result<Self, String> {
        Self::with_clock(config, Box::new(system_clock))
    }

    fn with_clock(config: LimitsConfig, clock: Clock) -> Result<Self, String> {
        let rates = Rates::new(&config);
        let remote = config.redis.as_ref().map(Remote::new).transpose()?;
        Ok(Self(Arc::new(Inner {
            local: LocalStore::new(local::capacity_for(&rates)),
            rates,
            remote,
            config,
            fallbacks: AtomicU64::new(0),
            clock,
            daily: Mutex::new(DayCount::default()),
            daily_seen: Mutex::new(DayCount::default()),
        })))
    }

    /// Decides `call` against every limit that applies to it, and consumes
    /// from all of them if it is admitted.
    pub async fn check(&self, call: &Call<'_>) -> Result<(), Refusal> {
        let rules = self.0.rates.rules(call);
        self.decide(&rules, 0, call.operation).await
    }

    /// Decides only the rates of `call`: per caller and per RPC (what a
    /// code by SMS spends before Cognito's GetUser is asked for the number).
    pub async fn check_rates(&self, call: &Call<'_>) -> Result<(), Refusal> {
        let rules = self.0.rates.rate_rules(call);
        self.decide(&rules, 0, call.operation).await
    }

    /// Decides the user's limits of `call` (its cooldown, its hourly quota)
    /// and, for a code by SMS to a number of `sms_prefix`, the SMS guard's:
    /// the prefix's hourly limit and the daily limit. All or nothing: a
    /// refusal by the daily limit spends nothing of the user's.
    pub async fn check_user_and_sms(
        &self,
        call: &Call<'_>,
        sms_prefix: Option<&str>,
    ) -> Result<(), Refusal> {
        let inner = &*self.0;
        let mut rules = inner.rates.user_rules(call);
        let daily = match sms_prefix {
            Some(prefix) => {
                rules.extend(inner.rates.sms_rules(prefix));
                inner.config.sms_per_day
            }
            None => 0,
        };
        self.decide(&rules, daily, call.operation).await
    }

    /// One decision: every rule and, when `daily` (its limit) is more than
    /// 0, the SMS daily counter; on Redis, else (or in `Local` fallback) on
    /// this replica's state. A full local table refuses as `op`'s rate.
    async fn decide(&self, rules: &[Rule], daily: u32, op: Operation) -> Result<(), Refusal> {
        let inner = &*self.0;
        if rules.is_empty() && daily == 0 {
            return Ok(());
        }
        if let Some(remote) = &inner.remote {
            match remote.decide(rules, daily).await {
                Ok(verdict) => {
                    if daily > 0 {
                        self.seen(verdict.day_count);
                    }
                    return match verdict.refused {
                        None => {
                            // Kept locally too, so a fallback knows this
                            // replica's recent admissions.
                            let now = (inner.clock)();
                            inner.local.record(rules, now);
                            if daily > 0 {
                                self.count_locally(now);
                            }
                            Ok(())
                        }
                        Some((refused, wait_us)) => Err(self.refusal(rules, refused, wait_us)),
                    };
                }
                Err(_) => self.fell_back(remote)?,
            }
        }
        let now = (inner.clock)();
        let (day, until_midnight) = day_of(now);
        let mut count = inner.daily.lock().unwrap_or_else(PoisonError::into_inner);
        if daily > 0 && count.of(day) >= i64::from(daily) {
            return Err(Refusal::Limited {
                limit: Limit::SmsDaily,
                wait: micros(until_midnight),
            });
        }
        inner
            .local
            .decide(rules, now)
            .map_err(|denied| match denied {
                Denied::Limit(refused) => limited(rules, refused.index, refused.wait_us),
                // The table is full (see `local`): a rate limit of the RPC.
                Denied::Full { wait_us } => Refusal::Limited {
                    limit: Limit::RpcRate(op),
                    wait: micros(wait_us),
                },
            })?;
        if daily > 0 {
            *count = DayCount {
                day,
                count: count.of(day) + 1,
            };
            let mine = *count;
            drop(count);
            // Without Redis, this replica's count is the count; in a
            // fallback, the higher of it and Redis' last one, so that the
            // gauge (and its alert) still moves while Redis is down.
            let mut seen = inner
                .daily_seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            *seen = DayCount {
                day,
                count: seen.of(day).max(mine.count),
            };
        }
        Ok(())
    }

    /// The SMS codes counted against the daily limit in the current UTC
    /// day, as last known (Redis' count with Redis, else this replica's).
    pub fn sms_today(&self) -> i64 {
        let (day, _) = day_of((self.0.clock)());
        self.0
            .daily_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .of(day)
    }

    /// This replica's own count, kept while Redis decides (a fallback
    /// starts from it).
    fn count_locally(&self, now: i64) {
        let (day, _) = day_of(now);
        let mut count = self.0.daily.lock().unwrap_or_else(PoisonError::into_inner);
        *count = DayCount {
            day,
            count: count.of(day) + 1,
        };
    }

    /// The day's count as Redis decided it (its day, by its clock).
    fn seen(&self, count: DayCount) {
        *self
            .0
            .daily_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = count;
    }

    /// Redis failed: `Ok` to decide locally (counted), or the refusal of
    /// the `Deny` mode.
    fn fell_back(&self, remote: &Remote) -> Result<(), Refusal> {
        // Logged by `remote`, at most every 30 s.
        match remote.failure_mode() {
            FailureMode::Deny => Err(Refusal::Unavailable),
            FailureMode::Local => {
                self.0.fallbacks.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        }
    }

    fn refusal(&self, rules: &[Rule], refused: remote::Refused, wait_us: i64) -> Refusal {
        match refused {
            remote::Refused::Daily => Refusal::Limited {
                limit: Limit::SmsDaily,
                wait: micros(wait_us),
            },
            remote::Refused::Rule(index) => limited(rules, index, wait_us),
        }
    }

    /// How many decisions were made locally because Redis failed or was too
    /// slow (in `Local` failure mode), since start.
    pub fn fallbacks(&self) -> u64 {
        self.0.fallbacks.load(Ordering::Relaxed)
    }

    /// The configuration, e.g. for [`Limit::description`].
    pub fn config(&self) -> &LimitsConfig {
        &self.0.config
    }
}

impl fmt::Debug for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limits")
            .field("config", &self.0.config)
            .field("local_entries", &self.0.local.len())
            .field("fallbacks", &self.fallbacks())
            .finish()
    }
}

fn limited(rules: &[Rule], index: usize, wait_us: i64) -> Refusal {
    Refusal::Limited {
        limit: rules[index].limit,
        wait: micros(wait_us),
    }
}

fn micros(us: i64) -> Duration {
    Duration::from_micros(u64::try_from(us).unwrap_or(0))
}

#[cfg(test)]
mod tests;
