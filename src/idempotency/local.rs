//! The idempotency records of this replica: a bounded map with expiry, and
//! a notification for the duplicates waiting on a call in progress.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use bytes::Bytes;
use tokio::{sync::Notify, time::Instant};

use super::{Begin, Pending, Refusal, Ticket};
use crate::telemetry::throttle::{Throttle, WARN_INTERVAL};

/// Most records kept; past it, sends go on unrecorded (and a warning says
/// so) rather than growing memory.
const MAX_RECORDS: usize = 100_000;

enum Slot {
    /// A call is in progress; its duplicates wait on this.
    Pending(Arc<Notify>),
    /// The first answer, until the window ends.
    Done { answer: Bytes, until: Instant },
}

/// This replica's records.
pub(super) struct Local {
    window: Duration,
    slots: Arc<Mutex<HashMap<String, Slot>>>,
}

/// A call in progress, recorded here.
pub(super) struct Claim {
    key: String,
    window: Duration,
    slots: Arc<Mutex<HashMap<String, Slot>>>,
    notify: Arc<Notify>,
}

impl Local {
    pub(super) fn new(window: Duration) -> Self {
        Self {
            window,
            slots: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub(super) async fn begin(&self, key: &str, deadline: Instant) -> Result<Begin, Refusal> {
        loop {
            let notify = match self.claim_or_replay(key) {
                Ok(begin) => return Ok(begin),
                Err(notify) => notify,
            };
            let notified = notify.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before looking again, so a completion in between
            // is not missed.
            notified.as_mut().enable();
            if let Ok(begin) = self.claim_or_replay(key) {
                return Ok(begin);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(Refusal::InProgress);
            }
        }
    }

    /// Claims `key`, or returns its answer; `Err` with the notification of
    /// the call in progress.
    fn claim_or_replay(&self, key: &str) -> Result<Begin, Arc<Notify>> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        match slots.get(key) {
            Some(Slot::Done { answer, until }) if *until > now => {
                return Ok(Begin::Replay(answer.clone()))
            }
            Some(Slot::Pending(notify)) => return Err(Arc::clone(notify)),
            _ => {}
        }
        if slots.len() >= MAX_RECORDS {
            slots.retain(|_, slot| !matches!(slot, Slot::Done { until, .. } if *until <= now));
        }
        if slots.len() >= MAX_RECORDS {
            static FULL: Throttle = Throttle::new(WARN_INTERVAL);
            if let Some(suppressed) = FULL.due() {
                tracing::warn!(
                    max = MAX_RECORDS,
                    suppressed,
                    "idempotency records full: this send is not recorded"
                );
            }
            return Ok(Begin::First(Ticket::untracked()));
        }
        let notify = Arc::new(Notify::new());
        slots.insert(key.to_owned(), Slot::Pending(Arc::clone(&notify)));
        Ok(Begin::First(Ticket(Some(Pending::Local(Claim {
            key: key.to_owned(),
            window: self.window,
            slots: Arc::clone(&self.slots),
            notify,
        })))))
    }
}

impl Claim {
    pub(super) fn complete(self, answer: Bytes) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let until = Instant::now() + self.window;
        slots.insert(self.key.clone(), Slot::Done { answer, until });
        drop(slots);
        self.notify.notify_waiters();
    }

    pub(super) fn release(self) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if matches!(slots.get(&self.key), Some(Slot::Pending(n)) if Arc::ptr_eq(n, &self.notify)) {
            slots.remove(&self.key);
        }
        drop(slots);
        self.notify.notify_waiters();
    }
}
