//! The GCRA (generic cell rate algorithm) math, in one place: the local store
//! calls it, and the Redis script (`gcra.lua`) is the same few lines in Lua,
//! which `tests/suite/limits_redis.rs` checks against these semantics.
//!
//! A limit of `n` per `period` with a burst of `n` keeps one number per key:
//! its TAT, the theoretical arrival time of the next call at the sustained
//! rate. A call is admitted when, after adding one emission interval
//! `T = period / n`, the TAT is at most `n × T` ahead of now. Times are
//! wall-clock microseconds since the Unix epoch, as Redis' `TIME` gives them.
//! A TAT in the past carries no information: it behaves exactly like no TAT,
//! which is why stored TATs expire when they fall behind now.

use std::time::Duration;

/// The longest period a limit may have (ten years): keeps every sum of
/// microseconds far inside `i64` and a double's exact integers (Lua).
const MAX_PERIOD_US: u64 = 10 * 366 * 24 * 3600 * 1_000_000;

/// A limit's rate: `n` calls per period with a burst of `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rate {
    /// The emission interval `T`, µs: `period / n`, rounded *up*, so the
    /// sustained rate is never above the configured one.
    pub interval_us: i64,
    /// How far ahead of now a TAT may be once a call is admitted: `n × T`,
    /// µs. This is exactly the burst: `n` calls at once, never `n + 1`.
    pub span_us: i64,
}

impl Rate {
    /// `n` per `period`; `None` when `n` or `period` is zero (the limit is off).
    pub fn per(n: u32, period: Duration) -> Option<Self> {
        if n == 0 || period.is_zero() {
            return None;
        }
        let period_us = u64::try_from(period.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, MAX_PERIOD_US);
        let interval = period_us.div_ceil(u64::from(n));
        // Both fit: interval ≤ MAX_PERIOD_US and n × interval < period + n.
        let span = interval * u64::from(n);
        Some(Self {
            interval_us: interval as i64,
            span_us: span as i64,
        })
    }

    /// How long a stored TAT of a call admitted now stays meaningful, µs
    /// (an upper bound of its time to live): the span.
    pub fn lifetime_us(self) -> i64 {
        self.span_us
    }
}

/// The decision for one key at `now`: `Ok(new_tat)` to store if the call is
/// admitted, or `Err(wait)`, the µs until it would be.
pub(crate) fn decide(tat: Option<i64>, now: i64, rate: Rate) -> Result<i64, i64> {
    // No TAT, or one in the past, means "idle": the full burst is available.
    let tat = tat.map_or(now, |tat| tat.max(now));
    let new_tat = tat.saturating_add(rate.interval_us);
    let wait = new_tat - rate.span_us - now;
    if wait > 0 {
        Err(wait)
    } else {
        Ok(new_tat)
    }
}

/// A refusal of several limits decided together: the index of the limit with
/// the longest wait (the first of equals) and that wait, µs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refused {
    pub index: usize,
    pub wait_us: i64,
}

/// Decides a call against all its limits at once: the new TATs of all of them
/// if every limit admits it, or the refusal with the longest wait. The caller
/// stores the new TATs only on `Ok`: a refusal by one limit consumes nothing
/// from the others. That longest wait is exact: a limit that admits the call
/// now still admits it later (its TAT does not move), so the call is admitted
/// as soon as the slowest limit is.
pub(crate) fn decide_all(
    limits: impl IntoIterator<Item = (Option<i64>, Rate)>,
    now: i64,
) -> Result<Vec<i64>, Refused> {
    let mut new_tats = Vec::with_capacity(4);
    let mut worst: Option<Refused> = None;
    for (index, (tat, rate)) in limits.into_iter().enumerate() {
        match decide(tat, now, rate) {
            Ok(new_tat) => new_tats.push(new_tat),
            Err(wait_us) => {
                if worst.is_none_or(|w| wait_us > w.wait_us) {
                    worst = Some(Refused { index, wait_us });
                }
            }
        }
    }
    match worst {
        Some(refused) => Err(refused),
        None => Ok(new_tats),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = 1_000_000;
    const NOW: i64 = 1_750_000_000 * SEC;

    fn per_hour(n: u32) -> Rate {
        Rate::per(n, Duration::from_secs(3600)).unwrap()
    }

    /// Admits calls at `now` until one is refused; the count and the wait.
    fn burst(rate: Rate, mut tat: Option<i64>, now: i64) -> (u32, i64) {
        let mut admitted = 0;
        loop {
            match decide(tat, now, rate) {
                Ok(new_tat) => {
                    admitted += 1;
                    tat = Some(new_tat);
                }
                Err(wait) => return (admitted, wait),
            }
        }
    }

    #[test]
    fn zero_is_off() {
        assert_eq!(Rate::per(0, Duration::from_secs(1)), None);
        assert_eq!(Rate::per(5, Duration::ZERO), None);
    }

    #[test]
    fn burst_is_exactly_n_then_one_per_interval() {
        let rate = per_hour(5);
        assert_eq!(rate.interval_us, 720 * SEC);
        assert_eq!(rate.span_us, 3600 * SEC);
        let (admitted, wait) = burst(rate, None, NOW);
        assert_eq!(admitted, 5);
        // The sixth call waits one interval exactly.
        assert_eq!(wait, 720 * SEC);
    }

    #[test]
    fn boundary_exactly_at_the_limit_is_admitted() {
        let rate = per_hour(5);
        let tat = NOW + 5 * 720 * SEC; // five calls just now
        assert_eq!(decide(Some(tat), NOW, rate), Err(720 * SEC));
        // One microsecond before the wait is over: still refused, by 1 µs.
        assert_eq!(decide(Some(tat), NOW + 720 * SEC - 1, rate), Err(1));
        // Exactly at it: admitted, and the TAT moves one interval on.
        assert_eq!(
            decide(Some(tat), NOW + 720 * SEC, rate),
            Ok(tat + 720 * SEC)
        );
    }

    #[test]
    fn cooldown_is_one_per_period() {
        let rate = Rate::per(1, Duration::from_secs(60)).unwrap();
        let tat = decide(None, NOW, rate).unwrap();
        assert_eq!(tat, NOW + 60 * SEC);
        assert_eq!(decide(Some(tat), NOW + 15 * SEC, rate), Err(45 * SEC));
        assert_eq!(decide(Some(tat), NOW + 60 * SEC, rate), Ok(NOW + 120 * SEC));
    }

    #[test]
    fn long_idle_restores_the_full_burst_and_no_more() {
        let rate = per_hour(5);
        let (_, _) = burst(rate, None, NOW);
        // A TAT far in the past is the same as none: a burst of 5, not more.
        let stale = Some(NOW - 10 * 3600 * SEC);
        assert_eq!(burst(rate, stale, NOW), (5, 720 * SEC));
        // Partly recovered: two intervals later, two calls.
        let full = NOW + 5 * 720 * SEC;
        assert_eq!(burst(rate, Some(full), NOW + 2 * 720 * SEC).0, 2);
    }

    #[test]
    fn interval_rounds_up_so_the_burst_never_exceeds_n() {
        // 1 s / 3 = 333,333.33 µs: rounded up, the span is 1,000,001 µs.
        let rate = Rate::per(3, Duration::from_secs(1)).unwrap();
        assert_eq!(rate.interval_us, 333_334);
        assert_eq!(rate.span_us, 1_000_002);
        for n in [3, 7, 25, 3000, 999_999] {
            let rate = Rate::per(n, Duration::from_secs(1)).unwrap();
            assert_eq!(burst(rate, None, NOW).0, n, "burst of {n}");
        }
    }

    #[test]
    fn sustained_rate_over_a_long_run_is_at_most_n_per_period() {
        let rate = Rate::per(25, Duration::from_secs(1)).unwrap();
        let mut tat = None;
        let mut admitted = 0;
        // A call every millisecond for 10 s.
        for ms in 0..10_000 {
            if let Ok(new_tat) = decide(tat, NOW + ms * 1000, rate) {
                tat = Some(new_tat);
                admitted += 1;
            }
        }
        // The burst of 25, then 25 per second for the remaining ~10 s.
        assert_eq!(admitted, 25 + 250 - 1);
    }

    #[test]
    fn all_or_nothing_reports_the_longest_wait() {
        let hour = per_hour(5);
        let minute = Rate::per(1, Duration::from_secs(60)).unwrap();
        // Limit 0 admits, 1 refuses for 30 s, 2 refuses for 720 s.
        let limits = [
            (None, minute),
            (Some(NOW + 30 * SEC), minute),
            (Some(NOW + 3600 * SEC), hour),
        ];
        assert_eq!(
            decide_all(limits, NOW),
            Err(Refused {
                index: 2,
                wait_us: 720 * SEC
            })
        );
        // Equal waits: the first is reported (the Lua script does the same).
        let limits = [
            (Some(NOW + 60 * SEC), minute),
            (Some(NOW + 60 * SEC), minute),
        ];
        assert_eq!(decide_all(limits, NOW).unwrap_err().index, 0);
        // All admit: every new TAT, in order.
        let limits = [(None, minute), (Some(NOW - SEC), hour)];
        assert_eq!(
            decide_all(limits, NOW),
            Ok(vec![NOW + 60 * SEC, NOW + 720 * SEC])
        );
    }

    #[test]
    fn huge_periods_are_clamped_not_overflowed() {
        let rate = Rate::per(1, Duration::MAX).unwrap();
        assert_eq!(rate.interval_us, MAX_PERIOD_US as i64);
        assert!(decide(Some(i64::MAX - 1), NOW, rate).is_err());
    }
}
