//! The backend's clock: wall-clock time plus an offset that tests (and the
//! `/_emulator/clock` endpoint) can advance, so that code and token expiry are
//! tested without sleeping.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

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
        wall + self.offset_secs.load(Ordering::Relaxed)
    }

    /// Moves the backend's time forward (it never goes back).
    pub fn advance(&self, by: Duration) -> u64 {
        self.offset_secs.fetch_add(by.as_secs(), Ordering::Relaxed);
        self.now()
    }
}
