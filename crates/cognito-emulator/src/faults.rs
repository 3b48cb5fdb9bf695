//! Fault injection: make the next N calls of an operation fail with a given
//! error (or raw body) and HTTP status, or answer late. Set over HTTP with
//! `POST /_emulator/faults`, so every error path of a client can be driven end
//! to end.

use std::{sync::Mutex, time::Duration};

use serde::{Deserialize, Serialize};

/// One injected fault.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fault {
    /// The operation it applies to; every operation when absent.
    #[serde(default)]
    pub operation: Option<String>,
    /// How many calls it applies to (default 1).
    #[serde(default = "one")]
    pub count: u32,
    /// Answer with this Cognito error type (e.g. `CodeMismatchException`).
    #[serde(default)]
    pub error_type: Option<String>,
    /// The error's message.
    #[serde(default)]
    pub message: Option<String>,
    /// The HTTP status (default: 400, or 500 for InternalErrorException).
    #[serde(default)]
    pub http_status: Option<u16>,
    /// Answer with this raw body instead of a Cognito error (e.g. an HTML page).
    #[serde(default)]
    pub body: Option<String>,
    /// Content type of `body` (default `text/html`).
    #[serde(default)]
    pub content_type: Option<String>,
    /// Delay before answering, in milliseconds; alone, the call then proceeds
    /// normally.
    #[serde(default)]
    pub latency_ms: u64,
}

fn one() -> u32 {
    1
}

impl Fault {
    /// The delay to apply.
    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms)
    }

    /// Whether the fault replaces the answer (rather than only delaying it).
    pub fn answers(&self) -> bool {
        self.error_type.is_some() || self.body.is_some() || self.http_status.is_some()
    }
}

/// Faults not yet used up.
#[derive(Debug, Default)]
pub struct Faults {
    queue: Mutex<Vec<Fault>>,
}

/// Most faults queued at once.
pub const MAX_FAULTS: usize = 1000;

impl Faults {
    /// Queues a fault; false when the queue is full.
    pub fn add(&self, fault: Fault) -> bool {
        let mut queue = self
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if queue.len() >= MAX_FAULTS || fault.count == 0 {
            return false;
        }
        queue.push(fault);
        true
    }

    /// Takes one use of the first fault for `operation`.
    pub fn take(&self, operation: &str) -> Option<Fault> {
        self.take_where(|f| f.operation.as_deref().is_none_or(|o| o == operation))
    }

    /// The next fault queued for exactly `operation` (not for "any"): the
    /// key sets' faults, which must not consume the API's.
    pub fn take_exact(&self, operation: &str) -> Option<Fault> {
        self.take_where(|f| f.operation.as_deref() == Some(operation))
    }

    fn take_where(&self, matches: impl Fn(&Fault) -> bool) -> Option<Fault> {
        let mut queue = self
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let at = queue.iter().position(matches)?;
        queue[at].count -= 1;
        let fault = queue[at].clone();
        if queue[at].count == 0 {
            queue.remove(at);
        }
        Some(fault)
    }

    /// The faults still queued.
    pub fn list(&self) -> Vec<Fault> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Drops every fault.
    pub fn clear(&self) {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}
