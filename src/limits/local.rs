//! This replica's GCRA state: one TAT per key in a bounded map. It decides
//! every call when no Redis is configured, and the calls that fall back to it
//! when Redis fails; while Redis decides, the admissions of this replica are
//! recorded here too, so a fallback starts from what this replica has seen
//! instead of from nothing.
//!
//! ## Expiry
//! A TAT in the past carries no information (see [`gcra`](super::gcra)), so it
//! is treated as absent on access and dropped by a sweep: at least every
//! [`SWEEP_EVERY_US`], and whenever the map has doubled since the last sweep
//! and an entry is known to have expired (so it stays within about twice its
//! live entries), and when it is full. Entries are written only when a call is *admitted* (a
//! refusal writes nothing), so the map holds at most the keys admitted within
//! the longest period; with the per-RPC limits on, that is bounded by the
//! per-RPC rate, and [`capacity`] sizes the map so that bound always fits.
//!
//! ## The hard cap, and why it refuses instead of evicting
//! When the map is full of live entries (possible only with a per-RPC limit
//! off, or with rates so high that the bound passes [`MAX_ENTRIES`]), a call
//! that needs a *new* entry is refused until the soonest entry expires.
//! Evicting a live entry instead would forget a user's recent sends and let
//! them send again early: a limit would become looser than configured, which
//! costs money (SMS) and is what these limits exist to prevent. Refusing
//! costs availability for new keys under a flood of distinct keys, and only
//! then; keys already tracked are decided exactly as before. Keys are 64-bit
//! hashes: two keys that collide share one TAT, which can only make their
//! limit stricter, never looser (about one pair in 10^7 at a million keys).

use std::{
    collections::{hash_map::Entry, HashMap},
    sync::{Mutex, PoisonError},
};

use super::{
    gcra::{self, Refused},
    rules::{Rates, Rule},
};

/// The most entries the map ever holds: at about 34 bytes each in the worst
/// case of the hash table's growth, 1,000,000 entries stay under ~40 MiB.
pub(crate) const MAX_ENTRIES: usize = 1_000_000;

/// The least capacity, whatever the configuration.
const MIN_ENTRIES: usize = 10_000;

/// How often expired entries are swept at least, µs.
pub(crate) const SWEEP_EVERY_US: i64 = 10_000_000;

/// Below this size the map is swept only periodically.
const MIN_SWEEP_LEN: usize = 1024;

/// Why the local store refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denied {
    /// A limit refused it (the one with the longest wait).
    Limit(Refused),
    /// The map is full of live entries and the call needs a new one: the wait
    /// is until the soonest entry expires.
    Full { wait_us: i64 },
}

/// The bounded map of TATs.
#[derive(Debug)]
pub(crate) struct LocalStore {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    tats: HashMap<u64, i64>,
    /// When the next periodic sweep is due, µs.
    next_sweep: i64,
    /// No entry expires before this (a lower bound), µs.
    next_expiry: i64,
    /// A sweep is also due when the map reaches this size (twice what the
    /// last sweep left): sweeping stays amortized O(1) per entry, and the
    /// map stays within about twice its live entries.
    sweep_at_len: usize,
}

impl LocalStore {
    /// A store of at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            state: Mutex::new(State {
                tats: HashMap::new(),
                next_sweep: i64::MIN,
                next_expiry: i64::MAX,
                sweep_at_len: MIN_SWEEP_LEN,
            }),
        }
    }

    /// Decides a call against all its `rules` at `now` and, if every one
    /// admits it, consumes from all of them.
    pub fn decide(&self, rules: &[Rule], now: i64) -> Result<(), Denied> {
        let mut state = self.lock();
        state.sweep_if_due(now);
        let new_tats = gcra::decide_all(
            rules
                .iter()
                .map(|rule| (state.live_tat(rule.key.local, now), rule.rate)),
            now,
        )
        .map_err(Denied::Limit)?;
        let missing = rules
            .iter()
            .filter(|rule| !state.tats.contains_key(&rule.key.local))
            .count();
        if state.tats.len() + missing > self.capacity {
            if now >= state.next_expiry {
                state.sweep(now);
            }
            if state.tats.len() + missing > self.capacity {
                return Err(Denied::Full {
                    wait_us: (state.next_expiry - now).max(1),
                });
            }
        }
        for (rule, new_tat) in rules.iter().zip(new_tats) {
            state.store(rule.key.local, new_tat);
        }
        Ok(())
    }

    /// Records a call admitted elsewhere (by Redis) at `now`: consumes from
    /// every rule without deciding. Where the map is full, the new entries
    /// are skipped: this is a best-effort copy for fallbacks.
    pub fn record(&self, rules: &[Rule], now: i64) {
        let mut state = self.lock();
        state.sweep_if_due(now);
        for rule in rules {
            let tat = state.live_tat(rule.key.local, now).unwrap_or(now);
            let new_tat = tat.saturating_add(rule.rate.interval_us);
            if state.tats.len() < self.capacity || state.tats.contains_key(&rule.key.local) {
                state.store(rule.key.local, new_tat);
            }
        }
    }

    /// The live TAT of each key at `now`, changing nothing.
    pub fn peek(&self, keys: impl IntoIterator<Item = u64>, now: i64) -> Vec<Option<i64>> {
        let state = self.lock();
        keys.into_iter()
            .map(|key| state.live_tat(key, now))
            .collect()
    }

    /// The number of entries held, live or not yet swept.
    pub fn len(&self) -> usize {
        self.lock().tats.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The map is consistent after every statement: a panic elsewhere
        // cannot leave it half-updated, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// The key's TAT, if it still carries information at `now`.
    fn live_tat(&self, key: u64, now: i64) -> Option<i64> {
        self.tats.get(&key).copied().filter(|&tat| tat > now)
    }

    fn store(&mut self, key: u64, tat: i64) {
        match self.tats.entry(key) {
            // An existing entry's TAT only moves later: the lower bound holds.
            Entry::Occupied(mut entry) => *entry.get_mut() = tat,
            Entry::Vacant(entry) => {
                entry.insert(tat);
                self.next_expiry = self.next_expiry.min(tat);
            }
        }
    }

    fn sweep_if_due(&mut self, now: i64) {
        let grown = self.tats.len() >= self.sweep_at_len && now >= self.next_expiry;
        if grown || now >= self.next_sweep {
            self.sweep(now);
        }
    }

    /// Drops every entry whose TAT is not after `now`, and gives memory back
    /// when the map has shrunk well below its allocation.
    fn sweep(&mut self, now: i64) {
        let mut next_expiry = i64::MAX;
        self.tats.retain(|_, &mut tat| {
            let live = tat > now;
            if live {
                next_expiry = next_expiry.min(tat);
            }
            live
        });
        self.next_expiry = next_expiry;
        self.next_sweep = now.saturating_add(SWEEP_EVERY_US);
        self.sweep_at_len = (2 * self.tats.len()).max(MIN_SWEEP_LEN);
        if self.tats.capacity() > 1024 && self.tats.capacity() > 4 * self.tats.len() {
            self.tats.shrink_to(2 * self.tats.len());
        }
    }
}

/// The capacity for a configuration: the most keys the per-RPC limits can
/// admit within each keyed limit's lifetime (so the cap never binds while
/// they are on), doubled because a replica that moves between Redis and
/// fallback decisions records both; within [`MIN_ENTRIES`, `MAX_ENTRIES`].
/// `keyed` gives, per keyed limit, the per-second rate of the RPC it belongs
/// to (`None` when that RPC's rate limit is off) and its lifetime in µs.
fn capacity(keyed: impl IntoIterator<Item = (Option<u32>, i64)>) -> usize {
    let mut total: u128 = 3; // the three per-RPC keys
    for (rpc_per_sec, lifetime_us) in keyed {
        let Some(per_sec) = rpc_per_sec else {
            return MAX_ENTRIES;
        };
        // The burst of one second plus the rate over the lifetime.
        let secs = u128::try_from(lifetime_us).unwrap_or(0).div_ceil(1_000_000) + 1;
        total += u128::from(per_sec) * secs;
    }
    usize::try_from(total * 2)
        .unwrap_or(usize::MAX)
        .clamp(MIN_ENTRIES, MAX_ENTRIES)
}

/// The capacity of the local store for `rates` (see [`capacity`]).
pub(crate) fn capacity_for(rates: &Rates) -> usize {
    capacity(rates.keyed_lifetimes())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::limits::{gcra::Rate, rules::Key, Limit};

    const SEC: i64 = 1_000_000;
    const NOW: i64 = 1_750_000_000 * SEC;

    fn rule(limit: Limit, key: &str, n: u32, period_secs: u64) -> Rule {
        Rule {
            limit,
            key: Key::new("test", &[key]),
            rate: Rate::per(n, Duration::from_secs(period_secs)).unwrap(),
        }
    }

    #[test]
    fn a_refusal_consumes_nothing_from_the_other_limits() {
        let store = LocalStore::new(100);
        let quota = rule(Limit::UserSendQuota, "alice", 5, 3600);
        let cooldown = rule(Limit::SendCooldown, "alice/email", 1, 60);
        store
            .decide(&[cooldown.clone(), quota.clone()], NOW)
            .unwrap();
        // Refused by the cooldown, ten times: the quota must not move.
        for i in 1..=10 {
            let refused = store.decide(&[cooldown.clone(), quota.clone()], NOW + i);
            assert!(matches!(refused, Err(Denied::Limit(r)) if r.index == 0));
        }
        // The quota alone still has 4 of its 5.
        for _ in 0..4 {
            store
                .decide(std::slice::from_ref(&quota), NOW + 20)
                .unwrap();
        }
        assert!(store
            .decide(std::slice::from_ref(&quota), NOW + 20)
            .is_err());
    }

    #[test]
    fn the_refusal_names_the_longest_wait() {
        let store = LocalStore::new(100);
        let quota = rule(Limit::UserSendQuota, "bob", 1, 3600);
        let cooldown = rule(Limit::SendCooldown, "bob/email", 1, 60);
        store
            .decide(&[cooldown.clone(), quota.clone()], NOW)
            .unwrap();
        assert_eq!(
            store.decide(&[cooldown, quota], NOW + 10 * SEC),
            Err(Denied::Limit(Refused {
                index: 1,
                wait_us: 3590 * SEC
            }))
        );
    }

    #[test]
    fn expired_entries_are_swept() {
        let store = LocalStore::new(1000);
        for user in 0..100 {
            let r = rule(Limit::SendCooldown, &format!("u{user}"), 1, 1);
            store.decide(&[r], NOW).unwrap();
        }
        assert_eq!(store.len(), 100);
        // Before the sweep is due, nothing is dropped…
        store
            .decide(&[rule(Limit::SendCooldown, "x", 1, 1)], NOW + 2 * SEC)
            .unwrap();
        assert_eq!(store.len(), 101);
        // …and once it is, every expired entry goes.
        store.decide(&[], NOW + SWEEP_EVERY_US).unwrap();
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn memory_stays_flat_under_a_stream_of_distinct_users() {
        // 100,000 distinct users over 5 s of the store's clock, each admitted
        // once with a 1 s cooldown: about 20,000 are live at any time, and
        // the map stays within about twice that, well below its capacity.
        let store = LocalStore::new(MAX_ENTRIES);
        let mut most = 0;
        for user in 0..100_000_i64 {
            let now = NOW + user * 50; // one every 50 µs
            let r = rule(Limit::SendCooldown, &format!("user-{user}"), 1, 1);
            store.decide(&[r], now).unwrap();
            most = most.max(store.len());
        }
        assert!(most <= 2 * 20_000 + MIN_SWEEP_LEN, "{most} entries");
        // A second later every entry has expired; the next sweep drops them.
        store.decide(&[], NOW + 5 * SEC + SWEEP_EVERY_US).unwrap();
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn the_cap_refuses_new_keys_and_never_forgets_live_ones() {
        let store = LocalStore::new(1000);
        let mut full = None;
        for user in 0..100_000_i64 {
            let now = NOW + user; // 100,000 users within 0.1 s
            let r = rule(Limit::UserSendQuota, &format!("user-{user}"), 1, 3600);
            match store.decide(&[r], now) {
                Ok(()) => {}
                Err(Denied::Full { wait_us }) => {
                    full.get_or_insert((user, wait_us));
                }
                Err(other) => panic!("unexpected {other:?}"),
            }
            assert!(store.len() <= 1000);
        }
        let (first_refused, wait) = full.expect("the cap was reached");
        assert_eq!(first_refused, 1000);
        // The wait is until the first user's entry expires, an hour on.
        assert_eq!(wait, 3600 * SEC - 1000);
        // Every tracked user is still limited: nothing was evicted.
        let r = rule(Limit::UserSendQuota, "user-0", 1, 3600);
        assert!(matches!(
            store.decide(&[r], NOW + SEC),
            Err(Denied::Limit(_))
        ));
        // Once entries expire, new users are admitted again.
        let late = NOW + 3600 * SEC + 500;
        let fresh = rule(Limit::UserSendQuota, "newcomer", 1, 3600);
        store.decide(&[fresh], late).unwrap();
        assert!(store.len() <= 1000);
    }

    #[test]
    fn recorded_admissions_count_in_fallback_decisions() {
        let store = LocalStore::new(100);
        let cooldown = rule(Limit::SendCooldown, "carol/email", 1, 60);
        store.record(std::slice::from_ref(&cooldown), NOW);
        assert_eq!(
            store.decide(&[cooldown], NOW + SEC),
            Err(Denied::Limit(Refused {
                index: 0,
                wait_us: 59 * SEC
            }))
        );
    }

    #[test]
    fn capacity_fits_what_the_rpc_limits_can_admit() {
        let hour = 3600 * SEC;
        // Defaults: cooldown 60 s and 5/h on sends at 25/s, 15/h on verifies
        // at 25/s: 25 × (61 + 3601 + 3601) + the 3 RPC keys, doubled.
        let keyed = [(Some(25), 60 * SEC), (Some(25), hour), (Some(25), hour)];
        assert_eq!(capacity(keyed), 2 * (25 * (61 + 3601 + 3601) + 3));
        assert_eq!(capacity([(None, 60 * SEC)]), MAX_ENTRIES);
        assert_eq!(capacity([]), MIN_ENTRIES);
        assert_eq!(capacity([(Some(u32::MAX), hour)]), MAX_ENTRIES);
    }

    #[test]
    fn the_capacity_follows_the_rpc_rates() {
        use crate::limits::LimitsConfig;
        let rates = Rates::new(&LimitsConfig::default());
        assert_eq!(capacity_for(&rates), 2 * (25 * (61 + 3601 + 3601) + 3));
        let rates = Rates::new(&LimitsConfig {
            get_code_per_sec: 0,
            ..LimitsConfig::default()
        });
        assert_eq!(capacity_for(&rates), MAX_ENTRIES);
    }
}
