//! The replica's budget of buffered request bytes
//! (`--max-buffered-request-bytes`). Every verification RPC reserves its
//! header list when it arrives and its message's declared length before the
//! message is read; what does not fit is refused at once
//! (`RequestBufferFull`), so memory held for requests has a bound that does
//! not depend on how many streams peers open or how slowly they send.
//!
//! One connection may hold only a share of the budget (an eighth, at least
//! one largest request): without it, a single connection with 100 streams
//! of unfinished messages could take the whole budget and every other
//! caller would be refused until they timed out.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use crate::{error::ErrorKind, telemetry::metrics::metrics, transport::Peer};

/// The share of the budget one connection may hold: an eighth.
const CONNECTION_SHARE_DIVISOR: u64 = 8;

/// Request bytes held by the whole replica, under a bound.
#[derive(Debug)]
pub struct Budget {
    max: u64,
    per_connection: u64,
    used: AtomicU64,
}

impl Budget {
    /// A budget of `max` bytes; one connection may hold an eighth of it, or
    /// `largest_request` if that is more (and `max` fits it).
    pub fn new(max: u64, largest_request: u64) -> Arc<Self> {
        let per_connection = (max / CONNECTION_SHARE_DIVISOR)
            .max(largest_request)
            .min(max);
        Arc::new(Self {
            max,
            per_connection,
            used: AtomicU64::new(0),
        })
    }

    /// The bytes held now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    /// Reserves `bytes` for a request on `connection` (when known), or
    /// refuses with `RequestBufferFull`.
    pub fn reserve(
        self: &Arc<Self>,
        bytes: u64,
        connection: Option<&Peer>,
    ) -> Result<Reservation, ErrorKind> {
        let mut reservation = Reservation {
            budget: Arc::clone(self),
            connection: connection.cloned(),
            bytes: 0,
        };
        reservation.grow(bytes)?;
        Ok(reservation)
    }

    fn full(&self) -> ErrorKind {
        ErrorKind::RequestBufferFull {
            budget_bytes: self.max,
        }
    }
}

/// Adds `n` to `counter` unless the sum would pass `max`.
fn try_add(counter: &AtomicU64, n: u64, max: u64) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
            used.checked_add(n).filter(|sum| *sum <= max)
        })
        .is_ok()
}

/// Bytes held for one request; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<Budget>,
    connection: Option<Peer>,
    bytes: u64,
}

impl Reservation {
    /// Holds `more` bytes too, or refuses (holding what it held).
    pub fn grow(&mut self, more: u64) -> Result<(), ErrorKind> {
        if more == 0 {
            return Ok(());
        }
        let budget = &self.budget;
        if let Some(peer) = &self.connection {
            if !try_add(peer.buffered_bytes(), more, budget.per_connection) {
                return Err(budget.full());
            }
        }
        if !try_add(&budget.used, more, budget.max) {
            if let Some(peer) = &self.connection {
                peer.buffered_bytes().fetch_sub(more, Ordering::AcqRel);
            }
            return Err(budget.full());
        }
        self.bytes += more;
        metrics().request_buffered_bytes(i64::try_from(more).unwrap_or(i64::MAX));
        Ok(())
    }

    /// The bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.bytes == 0 {
            return;
        }
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
        if let Some(peer) = &self.connection {
            peer.buffered_bytes()
                .fetch_sub(self.bytes, Ordering::AcqRel);
        }
        metrics().request_buffered_bytes(-i64::try_from(self.bytes).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> Peer {
        Peer::new("127.0.0.1:1".parse().unwrap(), None, None)
    }

    #[test]
    fn reservations_are_bounded_and_given_back() {
        let budget = Budget::new(1_000, 10);
        let a = budget.reserve(600, None).unwrap();
        let mut b = budget.reserve(300, None).unwrap();
        assert!(matches!(
            budget.reserve(101, None),
            Err(ErrorKind::RequestBufferFull {
                budget_bytes: 1_000
            })
        ));
        assert!(b.grow(101).is_err());
        assert_eq!((b.bytes(), budget.used()), (300, 900));
        b.grow(100).unwrap();
        assert_eq!(budget.used(), 1_000);
        drop(a);
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn one_connection_holds_at_most_its_share() {
        let budget = Budget::new(8_000, 10);
        let (one, other) = (peer(), peer());
        let held = budget.reserve(1_000, Some(&one)).unwrap();
        assert!(budget.reserve(1, Some(&one)).is_err());
        assert_eq!(budget.used(), 1_000, "a refusal holds nothing");
        let elsewhere = budget.reserve(1_000, Some(&other)).unwrap();
        drop(held);
        assert_eq!(one.buffered_bytes().load(Ordering::Acquire), 0);
        budget.reserve(1_000, Some(&one)).unwrap();
        drop(elsewhere);
    }

    #[test]
    fn the_share_holds_one_largest_request() {
        let budget = Budget::new(8_000, 2_000);
        assert!(budget.reserve(2_000, Some(&peer())).is_ok());
        let small = Budget::new(1_500, 2_000);
        assert!(small.reserve(1_500, Some(&peer())).is_ok());
    }

    #[test]
    fn a_global_refusal_gives_back_the_connection_share() {
        let budget = Budget::new(800, 500);
        let (one, other) = (peer(), peer());
        let _held = budget.reserve(500, Some(&one)).unwrap();
        assert!(budget.reserve(400, Some(&other)).is_err());
        assert_eq!(other.buffered_bytes().load(Ordering::Acquire), 0);
        assert!(budget.reserve(300, Some(&other)).is_ok());
    }
}
