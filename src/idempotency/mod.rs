//! Idempotent sends (AIP-155). A GetUserAttributeVerificationCode that
//! carries a `request_id` is recorded under (user, attribute, request id):
//! a repeat within the window gets the first successful answer back without
//! calling Cognito again, and concurrent duplicates make one call: the others
//! wait for its answer, or, when their deadline comes first, get ABORTED
//! (`REQUEST_IN_PROGRESS`). A failed first call records nothing, so a retry
//! sends.
//!
//! This module owns the protocol ([`Idempotency`], [`Ticket`]) and the two
//! stores: [`local`] (this replica) and [`remote`] (Redis, shared by every
//! replica, when the limits use Redis).

mod local;
pub mod remote;

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use tokio::time::Instant;

use self::{local::Local, remote::Remote};

/// What a send with a request id may do.
pub enum Begin {
    /// No answer is recorded: make the call, then report through the ticket.
    First(Ticket),
    /// The first call's answer, to return as it is.
    Replay(Bytes),
}

/// Why a send with a request id cannot go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Another call with this request id is in progress past our deadline.
    InProgress,
    /// The shared store failed and the failure mode is `deny`.
    Unavailable,
}

/// The right to make the call for a request id. Report a success with
/// [`Ticket::succeeded`]; dropped otherwise, it releases the request id so
/// that a retry (or a waiting duplicate) can make the call.
pub struct Ticket(Option<Pending>);

enum Pending {
    Local(local::Claim),
    Remote(remote::Claim),
}

impl Ticket {
    /// Records the answer for repeats within the window.
    pub async fn succeeded(mut self, answer: Bytes) {
        match self.0.take() {
            Some(Pending::Local(claim)) => claim.complete(answer),
            Some(Pending::Remote(claim)) => claim.complete(answer).await,
            None => {}
        }
    }

    /// A ticket that records nothing (the store is full or unusable).
    fn untracked() -> Self {
        Self(None)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        match self.0.take() {
            Some(Pending::Local(claim)) => claim.release(),
            Some(Pending::Remote(claim)) => claim.release(),
            None => {}
        }
    }
}

/// The idempotency records: in Redis when configured, else in this replica.
#[derive(Clone)]
pub struct Idempotency {
    local: Arc<Local>,
    remote: Option<Arc<Remote>>,
}

impl Idempotency {
    /// Records answers for `window`; shared through `remote` when set.
    pub fn new(window: Duration, remote: Option<Remote>) -> Self {
        Self {
            local: Arc::new(Local::new(window)),
            remote: remote.map(Arc::new),
        }
    }

    /// Starts a send for `key` (user, attribute and request id, hashed by
    /// the caller), waiting for a duplicate in progress until `deadline`.
    pub async fn begin(&self, key: &str, deadline: Instant) -> Result<Begin, Refusal> {
        let Some(remote) = &self.remote else {
            return self.local.begin(key, deadline).await;
        };
        match remote.begin(key, deadline).await {
            Ok(begin) => Ok(begin),
            Err(remote::Failure::InProgress) => Err(Refusal::InProgress),
            Err(remote::Failure::Store) if remote.falls_back() => {
                self.local.begin(key, deadline).await
            }
            Err(remote::Failure::Store) => Err(Refusal::Unavailable),
        }
    }
}
