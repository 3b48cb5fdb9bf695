//! The backend's clock: wall-clock time plus an offset that tests (and the
//! `/_emulator/clock` endpoint) can advance, so that code and token expiry are
//! tested without sleeping.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// The most the clock can be moved forward in all: 100 years. Expiry
/// arithmetic (`now + ttl`) then stays far from `u64::MAX`.
pub const MAX_OFFSET_SECS: u64 = 100 * 366 * 24 * 3600;

/// Wall-clock time, shifted forward by what [`Clock::advance`] added.
#[derive(Debug, Default)]
pub struct Clock {
    offset_secs: AtomicU64,
}

impl Clock {
    /// Seconds since the Unix epoch, as the backend sees them.
    pub fn now(&self) -> u64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        wall.saturating_add(self.offset_secs.load(Ordering::Relaxed))
    }

    /// Moves the backend's time forward (it never goes back); `None`, and
    /// no change, when the offset would pass [`MAX_OFFSET_SECS`].
    pub fn advance(&self, by: Duration) -> Option<u64> {
        self.offset_secs
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |offset| {
                offset
                    .checked_add(by.as_secs())
                    .filter(|total| *total <= MAX_OFFSET_SECS)
            })
            .ok()?;
        Some(self.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_past_the_bound_is_refused_and_changes_nothing() {
        let clock = Clock::default();
        let before = clock.now();
        assert_eq!(clock.advance(Duration::from_secs(u64::MAX)), None);
        assert_eq!(
            clock.advance(Duration::from_secs(MAX_OFFSET_SECS + 1)),
            None
        );
        assert!(clock.now() < before + 60);
        let day = clock.advance(Duration::from_secs(86_400)).unwrap();
        assert!(day >= before + 86_400);
        assert_eq!(clock.advance(Duration::from_secs(MAX_OFFSET_SECS)), None);
    }
}
