//! The user pools' signing keys: fetched over HTTP(S) from the configured
//! Cognito endpoint only (never from a host named in a token), parsed once
//! into `DecodingKey`s, cached per pool.
//!
//! Fail closed: every answer is keys to verify with, or a reason to refuse
//! the token ([`Keys`]); a token is never passed on unchecked because its
//! keys could not be had.
//!
//! Fetches are rare and bounded by construction, so that tokens an attacker
//! makes up cost next to nothing:
//!
//! - **Pools without keys are rationed**: fetches for a pool seen for the
//!   first time, or whose last fetch failed, take from one budget for all
//!   pools (the pools named with `--user-pool` excepted: callers cannot make
//!   those up) ([`JwksSettings::fetches_per_sec`], with a burst of one second's
//!   worth); beyond it the token is refused (`Unavailable`, with the time
//!   until the budget refills) and the refusal is counted. Refreshes of pools
//!   whose keys are cached are not rationed: each happens at most once per
//!   [`JwksSettings::refresh_interval`].
//! - **Single flight, on a spawned task**: concurrent checks of one pool
//!   share one fetch, which a cancelled RPC does not cancel; waiting for it
//!   is bounded by the caller's deadline. At most
//!   [`JwksSettings::max_concurrent_fetches`] run at once; the others queue
//!   (never "skip the check").
//! - **Negative cache**: a pool whose key set is not found (HTTP 404, the
//!   pool does not exist) is answered `UnknownPool` without fetching again
//!   for the refresh interval; a failed fetch is retried after 1 s, 2 s, 4 s…
//!   up to the interval.
//! - **Stale keys, bounded**: keys are due for refresh an hour after their
//!   fetch; a token whose kid they hold is verified with them at once while
//!   the refresh runs in the background, and, when refreshing fails, for
//!   [`JwksSettings::max_stale`] more (counted); then the pool is
//!   `Unavailable` until a fetch succeeds.
//! - **Bounded memory**: at most [`JwksSettings::max_pools`] pools are
//!   remembered; pools without keys are evicted first, then the least
//!   recently used.

use std::{
    collections::{HashMap, HashSet},
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use tokio::{
    sync::{watch, Semaphore},
    time::Instant,
};

use super::fetch::{fetch_keys, FetchError, HttpsClient, JwksSource, KeySet};
use crate::{
    limits::gcra::{self, Rate},
    telemetry::{
        metrics::metrics,
        throttle::{Throttle, WARN_INTERVAL},
    },
};

/// The cache's bounds and timings.
#[derive(Debug, Clone)]
pub(crate) struct JwksSettings {
    /// One fetch, from connecting to the last body byte.
    pub(crate) fetch_timeout: Duration,
    /// Least time between two fetches of one pool's keys that answered
    /// (keys or "no such pool"): refresh on an unknown kid, the negative
    /// cache, and the longest wait between retries of a failing fetch.
    pub(crate) refresh_interval: Duration,
    /// Wait before retrying a failed fetch; doubled on each failure, up to
    /// the refresh interval.
    pub(crate) first_retry: Duration,
    /// Keys older than this are fetched again, so rotations are picked up.
    pub(crate) max_age: Duration,
    /// How long past `max_age` the last good keys still verify while they
    /// cannot be refreshed.
    pub(crate) max_stale: Duration,
    /// Most pools remembered (with keys or a failed fetch).
    pub(crate) max_pools: usize,
    /// Most bytes of a JWKS document (Cognito's is about 1 KiB).
    pub(crate) max_body_bytes: usize,
    /// Most fetches in flight, all pools together; more wait their turn.
    pub(crate) max_concurrent_fetches: usize,
    /// Fetches per second for pools without keys, all pools together.
    pub(crate) fetches_per_sec: u32,
}

impl Default for JwksSettings {
    fn default() -> Self {
        Self {
            fetch_timeout: Duration::from_secs(2),
            refresh_interval: Duration::from_secs(60),
            first_retry: Duration::from_secs(1),
            max_age: Duration::from_secs(3600),
            max_stale: Duration::from_secs(86_400),
            max_pools: 1024,
            max_body_bytes: 64 * 1024,
            max_concurrent_fetches: 8,
            fetches_per_sec: 5,
        }
    }
}

/// What the cache answers for a pool and a kid.
pub(crate) enum Keys {
    /// Keys to verify with; `stale` when past their refresh age because the
    /// key set could not be refreshed.
    Ready {
        /// The pool's keys (the kid may still be missing after a fetch).
        keys: Arc<KeySet>,
        /// Past their refresh age, used because refreshing failed.
        stale: bool,
    },
    /// The pool's current keys, fetched within the refresh interval, lack
    /// the kid: the token was not signed by this pool.
    UnknownKid,
    /// The pool's key set is not found: the pool does not exist.
    UnknownPool,
    /// No keys to verify with now; a fetch may be tried after `retry_after`.
    Unavailable {
        /// When a fetch may be tried again.
        retry_after: Duration,
    },
}

/// The outcome of one fetch.
#[derive(Clone)]
enum Fetched {
    Keys(Arc<KeySet>),
    NotFound,
    Failed,
}

/// The per-pool key cache and its fetcher.
pub(crate) struct KeyCache {
    client: HttpsClient,
    source: JwksSource,
    settings: JwksSettings,
    fetches: Arc<Semaphore>,
    /// The budget of fetches for pools without keys.
    ration: Option<Rate>,
    /// The configured pools, whose fetches are not rationed.
    named: HashSet<String>,
    /// The cache's own time origin (the budget counts µs from it).
    origin: Instant,
    state: Mutex<State>,
}

impl fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyCache")
            .field("source", &self.source)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    pools: HashMap<String, Entry>,
    /// A logical clock for least-recently-used eviction.
    tick: u64,
    /// Identifies fetches, so a late one never writes into a newer entry.
    fetch_id: u64,
    /// The budget's theoretical arrival time (GCRA), µs since `origin`.
    ration_tat: Option<i64>,
}

/// The waiters' view of a fetch: `None` until it is done.
type Outcome = Option<Fetched>;

struct Entry {
    /// The last keys fetched, and when.
    good: Option<(Arc<KeySet>, Instant)>,
    /// The last fetch that finished.
    last: Option<Attempt>,
    inflight: Option<(u64, watch::Receiver<Outcome>)>,
    used: u64,
}

/// How the last fetch of a pool ended.
#[derive(Clone, Copy)]
struct Attempt {
    at: Instant,
    result: Result<(), Failure>,
    /// Failures in a row (0 after an answer).
    failures: u32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Failure {
    NotFound,
    Failed,
}

/// What to do after one look at the cache.
enum Plan {
    Ready(Keys),
    Wait(watch::Receiver<Outcome>),
}

/// Most looks at the cache for one token: a fetch is waited for at most
/// twice (a second only when an eviction lost the first one's answer).
const MAX_PLANS: usize = 3;

impl KeyCache {
    pub(crate) fn new(
        client: HttpsClient,
        source: JwksSource,
        settings: JwksSettings,
        named: &[String],
    ) -> Self {
        Self {
            client,
            source,
            named: named.iter().cloned().collect(),
            fetches: Arc::new(Semaphore::new(settings.max_concurrent_fetches.max(1))),
            ration: Rate::per(settings.fetches_per_sec, Duration::from_secs(1)),
            origin: Instant::now(),
            settings,
            state: Mutex::default(),
        }
    }

    /// The keys that may verify `kid` of `pool` as of `now` (the cache's
    /// clock), fetching them when needed within the limits above; a fetch
    /// is waited for until `wait_until` at most.
    pub(crate) async fn keys(
        self: &Arc<Self>,
        pool: &str,
        region: &str,
        kid: &str,
        now: Instant,
        wait_until: Instant,
    ) -> Keys {
        for _ in 0..MAX_PLANS {
            let mut rx = match self.plan(pool, region, kid, now) {
                Plan::Ready(keys) => return keys,
                Plan::Wait(rx) => rx,
            };
            let done = tokio::time::timeout_at(wait_until, async {
                rx.wait_for(Option::is_some).await.map(|_| ())
            })
            .await;
            match done {
                // Done: the state holds the answer; look again.
                Ok(Ok(())) => {}
                // The fetch task ended without an answer (runtime shutdown).
                Ok(Err(_)) => break,
                Err(_) => {
                    return Keys::Unavailable {
                        retry_after: self.settings.first_retry,
                    }
                }
            }
        }
        Keys::Unavailable {
            retry_after: self.settings.first_retry,
        }
    }

    fn plan(self: &Arc<Self>, pool: &str, region: &str, kid: &str, now: Instant) -> Plan {
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let state = &mut *guard;
        state.tick += 1;
        let tick = state.tick;
        let Some(entry) = state.pools.get_mut(pool) else {
            // A pool seen for the first time: its fetch is rationed.
            if let Err(retry_after) = self.ration(pool, &mut state.ration_tat, now) {
                return Plan::Ready(Keys::Unavailable { retry_after });
            }
            self.evict_for_one_more(state);
            let mut entry = Entry {
                good: None,
                last: None,
                inflight: None,
                used: tick,
            };
            let rx = self.start_fetch(&mut state.fetch_id, &mut entry, pool, region, now);
            state.pools.insert(pool.to_owned(), entry);
            return Plan::Wait(rx);
        };
        entry.used = tick;
        let settings = &self.settings;
        if let Some((keys, at)) = &entry.good {
            let age = now.saturating_duration_since(*at);
            if keys.contains_key(kid) && age < settings.max_age + settings.max_stale {
                let keys = Arc::clone(keys);
                let due = age >= settings.max_age;
                if due && entry.inflight.is_none() && now >= self.next_fetch(entry, now) {
                    // Refreshed in the background: this token need not wait.
                    let _ = self.start_fetch(&mut state.fetch_id, entry, pool, region, now);
                }
                let stale = due && entry.last.is_some_and(|a| a.result.is_err());
                return Plan::Ready(Keys::Ready { keys, stale });
            }
        }
        // The kid is not among usable keys: a fetch is needed.
        if let Some((_, rx)) = &entry.inflight {
            // `has_changed` fails only when the task died without answering.
            if rx.has_changed().is_ok() {
                return Plan::Wait(rx.clone());
            }
        }
        let next = self.next_fetch(entry, now);
        if now >= next {
            if entry.good.is_some() {
                let rx = self.start_fetch(&mut state.fetch_id, entry, pool, region, now);
                return Plan::Wait(rx);
            }
            return match self.ration(pool, &mut state.ration_tat, now) {
                Ok(()) => {
                    let rx = self.start_fetch(&mut state.fetch_id, entry, pool, region, now);
                    Plan::Wait(rx)
                }
                Err(retry_after) => Plan::Ready(Keys::Unavailable { retry_after }),
            };
        }
        Plan::Ready(match entry.last.map(|a| a.result) {
            Some(Err(Failure::NotFound)) => Keys::UnknownPool,
            // Fetched within the interval, and the kid is not there.
            Some(Ok(())) if entry.good.is_some() => Keys::UnknownKid,
            _ => Keys::Unavailable {
                retry_after: next.saturating_duration_since(now),
            },
        })
    }

    /// Takes one fetch from the budget of pools without keys, or says how
    /// long until one is available (counted as a refused fetch).
    fn ration(&self, pool: &str, tat: &mut Option<i64>, now: Instant) -> Result<(), Duration> {
        let Some(rate) = self.ration.filter(|_| !self.named.contains(pool)) else {
            return Ok(());
        };
        let now_us = i64::try_from(now.saturating_duration_since(self.origin).as_micros())
            .unwrap_or(i64::MAX / 2);
        match gcra::decide(*tat, now_us, rate) {
            Ok(new_tat) => {
                *tat = Some(new_tat);
                Ok(())
            }
            Err(wait_us) => {
                metrics().jwks_fetch("refused");
                Err(Duration::from_micros(u64::try_from(wait_us).unwrap_or(0)))
            }
        }
    }

    /// When the next fetch of a pool may start: at once if never fetched,
    /// the refresh interval after an answer, a doubling backoff after
    /// failures.
    fn next_fetch(&self, entry: &Entry, now: Instant) -> Instant {
        let Some(last) = entry.last else {
            return now;
        };
        let wait = match last.result {
            Ok(()) | Err(Failure::NotFound) => self.settings.refresh_interval,
            Err(Failure::Failed) => {
                let doublings = last.failures.saturating_sub(1).min(16);
                self.settings
                    .first_retry
                    .saturating_mul(1 << doublings)
                    .min(self.settings.refresh_interval)
            }
        };
        last.at + wait
    }

    /// Starts the fetch of `pool` on its own task and records it in `entry`.
    fn start_fetch(
        self: &Arc<Self>,
        fetch_id: &mut u64,
        entry: &mut Entry,
        pool: &str,
        region: &str,
        now: Instant,
    ) -> watch::Receiver<Outcome> {
        *fetch_id += 1;
        let id = *fetch_id;
        let (tx, rx) = watch::channel(None);
        entry.inflight = Some((id, rx.clone()));
        let cache = Arc::clone(self);
        let (pool, region) = (pool.to_owned(), region.to_owned());
        // The wait for a slot counts too: a fetch ends within twice its
        // timeout, whatever the queue.
        let bound = self.settings.fetch_timeout.saturating_mul(2);
        tokio::spawn(async move {
            let fetch = async {
                let _slot = cache.fetches.acquire().await;
                cache.fetch(&pool, &region).await
            };
            let fetched = tokio::time::timeout(bound, fetch)
                .await
                .unwrap_or(Fetched::Failed);
            cache.record(&pool, id, now, &fetched);
            let _ = tx.send(Some(fetched));
        });
        rx
    }

    /// Makes room for one more pool: pools without keys go first (the
    /// oldest look first), then the least recently used.
    fn evict_for_one_more(&self, state: &mut State) {
        while state.pools.len() >= self.settings.max_pools.max(1) {
            let victim = state
                .pools
                .iter()
                .min_by_key(|(_, e)| (e.good.is_some(), e.inflight.is_some(), e.used))
                .map(|(pool, _)| pool.clone());
            match victim {
                Some(pool) => state.pools.remove(&pool),
                None => break,
            };
        }
    }

    fn record(&self, pool: &str, id: u64, started: Instant, fetched: &Fetched) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = state.pools.get_mut(pool) else {
            return; // evicted meanwhile
        };
        if entry.inflight.as_ref().is_none_or(|(i, _)| *i != id) {
            return;
        }
        entry.inflight = None;
        let failures = entry.last.map_or(0, |a| a.failures);
        entry.last = Some(match fetched {
            Fetched::Keys(keys) => {
                entry.good = Some((Arc::clone(keys), started));
                Attempt {
                    at: started,
                    result: Ok(()),
                    failures: 0,
                }
            }
            Fetched::NotFound => Attempt {
                at: started,
                result: Err(Failure::NotFound),
                failures: 0,
            },
            Fetched::Failed => Attempt {
                at: started,
                result: Err(Failure::Failed),
                failures: failures.saturating_add(1),
            },
        });
    }

    /// Fetches and parses one pool's JWKS; counts the outcome, and logs a
    /// failure (throttled: tokens choose which pools are fetched).
    async fn fetch(&self, pool: &str, region: &str) -> Fetched {
        static FAILED: Throttle = Throttle::new(WARN_INTERVAL);
        let result = match self.source.url(pool, region) {
            Ok(url) => {
                let fetch = fetch_keys(&self.client, url, self.settings.max_body_bytes);
                tokio::time::timeout(self.settings.fetch_timeout, fetch)
                    .await
                    .unwrap_or(Err(FetchError::Timeout))
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(keys) => {
                metrics().jwks_fetch("ok");
                Fetched::Keys(Arc::new(keys))
            }
            Err(FetchError::Status(status)) if status == http::StatusCode::NOT_FOUND => {
                metrics().jwks_fetch("unknown_pool");
                tracing::debug!(pool, "the user pool's key set is not found");
                Fetched::NotFound
            }
            Err(error) => {
                metrics().jwks_fetch("failed");
                if let Some(suppressed) = FAILED.due() {
                    tracing::warn!(
                        pool,
                        %error,
                        suppressed,
                        "could not fetch a user pool's signing keys; its tokens are refused \
                         (UNAVAILABLE) unless its last good keys hold their kid"
                    );
                }
                Fetched::Failed
            }
        }
    }
}
