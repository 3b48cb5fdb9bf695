//! The user pools' signing keys: fetched over HTTP(S) from the configured
//! Cognito endpoint only (never from a host named in a token), parsed once
//! into `DecodingKey`s, cached per pool.
//!
//! Fetches are rare by construction: one per pool until its keys are an hour
//! old; an unknown `kid` refreshes at most once per pool per
//! [`JwksSettings::refresh_interval`], and so does a failed fetch (the next
//! one waits out the interval); concurrent checks of one pool share one fetch
//! (single flight, on a spawned task so that a cancelled RPC does not cancel
//! it for the others); a bounded number of fetches run at once. A JWKS that
//! cannot be fetched is [`Keys::Unavailable`], never a rejection: Cognito
//! still checks the token.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use jsonwebtoken::DecodingKey;
use tokio::{
    sync::{watch, Semaphore},
    time::Instant,
};

use super::fetch::{fetch_keys, FetchError, HttpsClient, JwksSource};

/// The cache's bounds and timings.
#[derive(Debug, Clone)]
pub(crate) struct JwksSettings {
    /// One fetch, from connecting to the last body byte.
    pub(crate) fetch_timeout: Duration,
    /// Least time between two fetches of one pool's keys (refresh on an
    /// unknown kid, retry after a failure).
    pub(crate) refresh_interval: Duration,
    /// Keys older than this are fetched again, so rotations are picked up.
    pub(crate) max_age: Duration,
    /// Most pools cached; the least recently used is evicted.
    pub(crate) max_pools: usize,
    /// Most bytes of a JWKS document (Cognito's is about 1 KiB).
    pub(crate) max_body_bytes: usize,
    /// Most fetches in flight, all pools together.
    pub(crate) max_concurrent_fetches: usize,
}

impl Default for JwksSettings {
    fn default() -> Self {
        Self {
            fetch_timeout: Duration::from_secs(2),
            refresh_interval: Duration::from_secs(60),
            max_age: Duration::from_secs(3600),
            max_pools: 64,
            max_body_bytes: 64 * 1024,
            max_concurrent_fetches: 8,
        }
    }
}

/// One pool's keys by kid.
pub(crate) type KeySet = HashMap<String, DecodingKey>;

/// What the cache knows about a pool's key for a kid.
pub(crate) enum Keys {
    /// The pool's current keys; the kid may still be missing from them.
    Fetched(Arc<KeySet>),
    /// The kid is not among keys fetched within the refresh interval.
    UnknownKid,
    /// The keys could not be fetched (now or within the interval).
    Unavailable,
}

/// The per-pool key cache and its fetcher.
pub(crate) struct KeyCache {
    client: HttpsClient,
    source: JwksSource,
    settings: JwksSettings,
    fetches: Arc<Semaphore>,
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
}

/// The outcome of a fetch, as the waiters see it: `None` until it is done.
type Outcome = Option<Option<Arc<KeySet>>>;

struct Entry {
    keys: Option<(Arc<KeySet>, Instant)>,
    /// The last fetch: when it started and whether it succeeded.
    last_attempt: Option<(Instant, bool)>,
    inflight: Option<(u64, watch::Receiver<Outcome>)>,
    used: u64,
}

/// What to do after one look at the cache.
enum Plan {
    Ready(Keys),
    Wait(watch::Receiver<Outcome>),
}

impl KeyCache {
    pub(crate) fn new(client: HttpsClient, source: JwksSource, settings: JwksSettings) -> Self {
        Self {
            client,
            source,
            fetches: Arc::new(Semaphore::new(settings.max_concurrent_fetches)),
            settings,
            state: Mutex::default(),
        }
    }

    /// The keys of `pool` that may hold `kid`, fetching them when they are
    /// missing, old, or lack the kid (within the limits above).
    pub(crate) async fn keys(
        self: &Arc<Self>,
        pool: &str,
        region: &str,
        kid: &str,
        now: Instant,
    ) -> Keys {
        match self.plan(pool, region, kid, now) {
            Plan::Ready(keys) => keys,
            Plan::Wait(mut rx) => match rx.wait_for(Option::is_some).await {
                Ok(outcome) => match outcome.as_ref().and_then(Option::clone) {
                    Some(keys) => Keys::Fetched(keys),
                    None => Keys::Unavailable,
                },
                // The fetch task ended without an answer (runtime shutdown).
                Err(_) => Keys::Unavailable,
            },
        }
    }

    fn plan(self: &Arc<Self>, pool: &str, region: &str, kid: &str, now: Instant) -> Plan {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.tick += 1;
        let tick = state.tick;
        if !state.pools.contains_key(pool) {
            self.evict_for_one_more(&mut state);
            let entry = Entry {
                keys: None,
                last_attempt: None,
                inflight: None,
                used: tick,
            };
            state.pools.insert(pool.to_owned(), entry);
        }
        let State {
            pools, fetch_id, ..
        } = &mut *state;
        let entry = pools.get_mut(pool).expect("inserted above");
        entry.used = tick;
        let fresh = entry
            .keys
            .as_ref()
            .filter(|(_, at)| now.saturating_duration_since(*at) < self.settings.max_age)
            .map(|(keys, _)| keys);
        if let Some(keys) = fresh.filter(|keys| keys.contains_key(kid)) {
            return Plan::Ready(Keys::Fetched(keys.clone()));
        }
        if let Some((_, rx)) = &entry.inflight {
            // `has_changed` fails only when the task died without answering.
            if rx.has_changed().is_ok() {
                return Plan::Wait(rx.clone());
            }
        }
        let may_fetch = entry.last_attempt.is_none_or(|(at, _)| {
            now.saturating_duration_since(at) >= self.settings.refresh_interval
        });
        if may_fetch {
            if let Ok(permit) = self.fetches.clone().try_acquire_owned() {
                *fetch_id += 1;
                let id = *fetch_id;
                let (tx, rx) = watch::channel(None);
                entry.inflight = Some((id, rx.clone()));
                let cache = Arc::clone(self);
                let (pool, region) = (pool.to_owned(), region.to_owned());
                tokio::spawn(async move {
                    let keys = cache.fetch(&pool, &region).await;
                    cache.record(&pool, id, now, keys.clone());
                    drop(permit);
                    let _ = tx.send(Some(keys));
                });
                return Plan::Wait(rx);
            }
            // Too many fetches in flight: do not queue behind them.
            return Plan::Ready(Keys::Unavailable);
        }
        let last_ok = entry.last_attempt.is_some_and(|(_, ok)| ok);
        Plan::Ready(if fresh.is_some() && last_ok {
            Keys::UnknownKid
        } else {
            Keys::Unavailable
        })
    }

    fn evict_for_one_more(&self, state: &mut State) {
        while state.pools.len() >= self.settings.max_pools.max(1) {
            let oldest = state
                .pools
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(pool, _)| pool.clone());
            match oldest {
                Some(pool) => state.pools.remove(&pool),
                None => break,
            };
        }
    }

    fn record(&self, pool: &str, id: u64, started: Instant, keys: Option<Arc<KeySet>>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = state.pools.get_mut(pool) else {
            return; // evicted meanwhile; the waiters still get the keys
        };
        if entry.inflight.as_ref().is_some_and(|(i, _)| *i == id) {
            entry.inflight = None;
            entry.last_attempt = Some((started, keys.is_some()));
            if let Some(keys) = keys {
                entry.keys = Some((keys, started));
            }
        }
    }

    /// Fetches and parses one pool's JWKS; a failure is logged here (at most
    /// once per pool per interval, as fetches are) and is `None`.
    async fn fetch(&self, pool: &str, region: &str) -> Option<Arc<KeySet>> {
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
            Ok(keys) => Some(Arc::new(keys)),
            Err(error) => {
                tracing::warn!(
                    pool,
                    %error,
                    retry_after_secs = self.settings.refresh_interval.as_secs(),
                    "could not fetch the user pool's JWKS; its tokens pass unverified, Cognito still checks them"
                );
                None
            }
        }
    }
}
