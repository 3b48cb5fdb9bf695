//! Warnings that requests can trigger (a token naming a user pool whose keys
//! cannot be fetched, a call failing upstream) are logged at most once per
//! interval per place in the code: a flood of such requests must not become
//! a flood of log lines. The line that is logged says how many were left
//! out since the last one (`suppressed`), and the metric
//! `cognito_verify_log_warnings_suppressed_total` counts them all.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        LazyLock,
    },
    time::{Duration, Instant},
};

use super::metrics::metrics;

/// The default interval between two warnings from one place.
pub const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// The time all throttles count from.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// One place's warning, logged at most once per interval; a `static`.
#[derive(Debug)]
pub struct Throttle {
    interval_ms: u64,
    /// When the last warning was logged, in ms since [`EPOCH`], plus one
    /// (0: never).
    last: AtomicU64,
    /// Warnings not logged since the last one that was.
    suppressed: AtomicU64,
}

impl Throttle {
    /// A throttle of one warning per `interval`.
    pub const fn new(interval: Duration) -> Self {
        Self {
            interval_ms: interval.as_millis() as u64,
            last: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(suppressed)` when the warning may be logged now, with the count
    /// left out since the last one; `None` (counted) when it may not.
    pub fn due(&self) -> Option<u64> {
        self.due_at(u64::try_from(EPOCH.elapsed().as_millis()).unwrap_or(u64::MAX - 1))
    }

    /// [`Self::due`] at `now_ms` since the throttles' epoch.
    fn due_at(&self, now_ms: u64) -> Option<u64> {
        let now = now_ms.saturating_add(1);
        let last = self.last.load(Ordering::Acquire);
        let may = last == 0 || now.saturating_sub(last) >= self.interval_ms;
        if may
            && self
                .last
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::AcqRel));
        }
        self.suppressed.fetch_add(1, Ordering::AcqRel);
        metrics().warnings_suppressed(1);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_per_interval_with_the_count_left_out() {
        let t = Throttle::new(Duration::from_millis(200));
        assert_eq!(t.due_at(1_000), Some(0));
        let suppressed_before = metrics_suppressed();
        for ms in [1_000, 1_050, 1_100, 1_150, 1_199] {
            assert_eq!(t.due_at(ms), None);
        }
        assert!(metrics_suppressed() >= suppressed_before + 5);
        assert_eq!(t.due_at(1_200), Some(5));
        assert_eq!(t.due_at(1_201), None);
        // The first warning ever is logged whenever it comes.
        assert_eq!(Throttle::new(WARN_INTERVAL).due_at(0), Some(0));
    }

    #[test]
    fn many_threads_log_once() {
        static T: Throttle = Throttle::new(Duration::from_secs(3600));
        let logged: u64 = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| (0..1000).filter(|_| T.due().is_some()).count() as u64))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(logged, 1);
    }

    fn metrics_suppressed() -> u64 {
        metrics().warnings_suppressed_count()
    }
}
