//! The replica's budget of buffered request bytes
//! (`--max-buffered-request-bytes`). Every verification RPC reserves its
//! header list when it arrives and its message's bytes as they arrive; what
//! does not fit is refused at once (`RequestBufferFull`), so memory held for
//! requests has a bound that does not depend on how many streams peers open
//! or how slowly they send.
//!
//! Two rules keep a few peers from holding the budget against everyone:
//!
//! - one connection may hold only a share of it (an eighth, at least one
//!   largest request): without it, a single connection with 100 streams of
//!   unfinished messages could take the whole budget;
//! - a request still waiting for its message [`PREEMPT_AFTER`] after its
//!   headers gives its bytes up to a newer request that does not fit (the
//!   oldest first; it is answered `OVERLOADED`). A real caller sends its
//!   message with its headers, so what waits that long is a slow or stalled
//!   peer; without this, ten connections of stalled streams with large
//!   header lists would refuse every real call until their read timeout,
//!   and could renew the attack forever.

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, PoisonError, Weak,
    },
    time::Duration,
};

use tokio::{sync::Notify, time::Instant};

use crate::{error::ErrorKind, telemetry::metrics::metrics, transport::Peer};

/// The share of the budget one connection may hold: an eighth.
const CONNECTION_SHARE_DIVISOR: u64 = 8;
/// How long a request may wait for its message before a newer request that
/// does not fit may take its bytes.
pub const PREEMPT_AFTER: Duration = Duration::from_secs(1);
/// Past this many entries, the queue of waiting requests drops those that
/// are done (they are otherwise dropped as the queue is walked).
const QUEUE_CLEANUP_LEN: usize = 8_192;

/// Request bytes held by the whole replica, under a bound.
#[derive(Debug)]
pub struct Budget {
    max: u64,
    per_connection: u64,
    used: AtomicU64,
    /// Requests waiting for their message, oldest first.
    waiting: Mutex<VecDeque<Weak<Held>>>,
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
            waiting: Mutex::default(),
        })
    }

    /// The configured bound, in bytes.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The bytes held now.
    #[cfg(test)]
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    /// Reserves `bytes` for a request on `connection` (when known) that
    /// arrived `now`, or refuses with `RequestBufferFull`. The request counts
    /// as waiting for its message until [`Reservation::message_complete`].
    pub fn reserve(
        self: &Arc<Self>,
        bytes: u64,
        connection: Option<&Peer>,
        now: Instant,
    ) -> Result<Reservation, ErrorKind> {
        let held = Arc::new(Held {
            bytes: AtomicU64::new(0),
            waiting: AtomicBool::new(true),
            revoked: AtomicBool::new(false),
            wake: Notify::new(),
            since: now,
            connection: connection.cloned(),
        });
        let mut reservation = Reservation {
            budget: Arc::clone(self),
            held,
        };
        reservation.grow(bytes, now)?;
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        if waiting.len() >= QUEUE_CLEANUP_LEN {
            waiting.retain(|w| w.upgrade().is_some_and(|h| h.is_waiting()));
        }
        waiting.push_back(Arc::downgrade(&reservation.held));
        Ok(reservation)
    }

    fn full(&self) -> ErrorKind {
        ErrorKind::RequestBufferFull {
            budget_bytes: self.max,
        }
    }

    /// Takes bytes back from the requests that have waited longest for
    /// their message, at least [`PREEMPT_AFTER`], until `needed` are free
    /// or none is left to take from. Returns whether any was taken.
    fn preempt(&self, needed: u64, now: Instant) -> bool {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let mut freed = 0;
        while freed < needed {
            let Some(oldest) = waiting.front() else {
                break;
            };
            let Some(held) = oldest.upgrade().filter(|h| h.is_waiting()) else {
                waiting.pop_front();
                continue;
            };
            if now.saturating_duration_since(held.since) < PREEMPT_AFTER {
                break;
            }
            waiting.pop_front();
            freed += self.revoke(&held);
        }
        freed > 0
    }

    /// Gives `held`'s bytes back now and tells its request to end.
    fn revoke(&self, held: &Held) -> u64 {
        held.revoked.store(true, Ordering::Release);
        let bytes = self.release(held);
        held.wake.notify_one();
        bytes
    }

    /// Gives back whatever `held` holds; returns how much.
    fn release(&self, held: &Held) -> u64 {
        let bytes = held.bytes.swap(0, Ordering::AcqRel);
        if bytes > 0 {
            self.used.fetch_sub(bytes, Ordering::AcqRel);
            if let Some(peer) = &held.connection {
                peer.buffered_bytes().fetch_sub(bytes, Ordering::AcqRel);
            }
            metrics().request_buffered_bytes(-i64::try_from(bytes).unwrap_or(i64::MAX));
        }
        bytes
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

/// What one request holds, shared with the queue of waiting requests.
#[derive(Debug)]
struct Held {
    bytes: AtomicU64,
    /// Still waiting for its message.
    waiting: AtomicBool,
    /// Its bytes were taken by a newer request.
    revoked: AtomicBool,
    wake: Notify,
    since: Instant,
    connection: Option<Peer>,
}

impl Held {
    fn is_waiting(&self) -> bool {
        self.waiting.load(Ordering::Acquire) && !self.revoked.load(Ordering::Acquire)
    }
}

/// Bytes held for one request; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<Budget>,
    held: Arc<Held>,
}

impl Reservation {
    /// Holds `more` bytes too, or refuses (holding what it held). When the
    /// replica's budget is full, requests that have waited too long for
    /// their message give theirs up first.
    pub fn grow(&mut self, more: u64, now: Instant) -> Result<(), ErrorKind> {
        if more == 0 {
            return Ok(());
        }
        let (budget, held) = (&self.budget, &self.held);
        if held.revoked.load(Ordering::Acquire) {
            return Err(budget.full());
        }
        if let Some(peer) = &held.connection {
            if !try_add(peer.buffered_bytes(), more, budget.per_connection) {
                return Err(budget.full());
            }
        }
        let fits = try_add(&budget.used, more, budget.max)
            || (budget.preempt(more, now) && try_add(&budget.used, more, budget.max));
        if !fits {
            if let Some(peer) = &held.connection {
                peer.buffered_bytes().fetch_sub(more, Ordering::AcqRel);
            }
            return Err(budget.full());
        }
        held.bytes.fetch_add(more, Ordering::AcqRel);
        metrics().request_buffered_bytes(i64::try_from(more).unwrap_or(i64::MAX));
        Ok(())
    }

    /// The message is complete: the request no longer waits, and its bytes
    /// are no longer taken for newer ones.
    pub fn message_complete(&self) {
        self.held.waiting.store(false, Ordering::Release);
    }

    /// A handle that completes when a newer request takes this one's bytes.
    pub fn revocation(&self) -> Revocation {
        Revocation(Arc::clone(&self.held))
    }

    /// The bytes held.
    #[cfg(test)]
    pub fn bytes(&self) -> u64 {
        self.held.bytes.load(Ordering::Acquire)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.release(&self.held);
    }
}

/// See [`Reservation::revocation`].
#[derive(Debug)]
pub struct Revocation(Arc<Held>);

impl Revocation {
    /// Completes once the request's bytes were taken by a newer request.
    pub async fn revoked(&self) {
        while !self.0.revoked.load(Ordering::Acquire) {
            self.0.wake.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Instant {
        Instant::now()
    }

    fn peer() -> Peer {
        Peer::new("127.0.0.1:1".parse().unwrap(), None, None)
    }

    #[test]
    fn reservations_are_bounded_and_given_back() {
        let budget = Budget::new(1_000, 10);
        let a = budget.reserve(600, None, now()).unwrap();
        let mut b = budget.reserve(300, None, now()).unwrap();
        assert!(matches!(
            budget.reserve(101, None, now()),
            Err(ErrorKind::RequestBufferFull {
                budget_bytes: 1_000
            })
        ));
        assert!(b.grow(101, now()).is_err());
        assert_eq!((b.bytes(), budget.used()), (300, 900));
        b.grow(100, now()).unwrap();
        assert_eq!(budget.used(), 1_000);
        drop(a);
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn one_connection_holds_at_most_its_share() {
        let budget = Budget::new(8_000, 10);
        let (one, other) = (peer(), peer());
        let held = budget.reserve(1_000, Some(&one), now()).unwrap();
        assert!(budget.reserve(1, Some(&one), now()).is_err());
        assert_eq!(budget.used(), 1_000, "a refusal holds nothing");
        let elsewhere = budget.reserve(1_000, Some(&other), now()).unwrap();
        drop(held);
        assert_eq!(one.buffered_bytes().load(Ordering::Acquire), 0);
        budget.reserve(1_000, Some(&one), now()).unwrap();
        drop(elsewhere);
    }

    #[test]
    fn the_share_holds_one_largest_request() {
        let budget = Budget::new(8_000, 2_000);
        assert!(budget.reserve(2_000, Some(&peer()), now()).is_ok());
        let small = Budget::new(1_500, 2_000);
        assert!(small.reserve(1_500, Some(&peer()), now()).is_ok());
    }

    #[test]
    fn a_global_refusal_gives_back_the_connection_share() {
        let budget = Budget::new(800, 500);
        let (one, other) = (peer(), peer());
        let _held = budget.reserve(500, Some(&one), now()).unwrap();
        assert!(budget.reserve(400, Some(&other), now()).is_err());
        assert_eq!(other.buffered_bytes().load(Ordering::Acquire), 0);
        assert!(budget.reserve(300, Some(&other), now()).is_ok());
    }

    #[test]
    fn requests_waiting_too_long_give_their_bytes_to_newer_ones() {
        let budget = Budget::new(1_000, 10);
        let t0 = Instant::now();
        let stalled = budget.reserve(600, None, t0).unwrap();
        let revoked = stalled.revocation();
        let complete = budget.reserve(300, None, t0).unwrap();
        complete.message_complete();
        // Within PREEMPT_AFTER of their arrival, nothing is taken.
        assert!(budget.reserve(200, None, t0 + PREEMPT_AFTER / 2).is_err());
        // After it, the stalled request gives its bytes up, the oldest first;
        // a request whose message is complete keeps them.
        let newer = budget.reserve(200, None, t0 + PREEMPT_AFTER).unwrap();
        assert_eq!(budget.used(), 500);
        assert_eq!(stalled.bytes(), 0);
        assert!(futures_ready(revoked.revoked()));
        let mut stalled = stalled;
        assert!(stalled.grow(1, t0 + PREEMPT_AFTER).is_err(), "revoked");
        drop((stalled, complete, newer));
        assert_eq!(budget.used(), 0);
    }

    /// Whether `future` is ready at its first poll.
    fn futures_ready(future: impl std::future::Future<Output = ()>) -> bool {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        std::pin::pin!(future).poll(&mut cx).is_ready()
    }
}
