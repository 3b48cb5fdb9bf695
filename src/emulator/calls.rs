//! How often each operation (and each pool's JWKS) was asked for: what tests
//! count to prove that a refused call cost Cognito nothing, and where keys
//! were fetched from.

use std::{
    collections::BTreeMap,
    sync::{Mutex, PoisonError},
};

/// Requests per operation name (`jwks:<pool>` for the key sets).
#[derive(Debug, Default)]
pub struct Calls(Mutex<BTreeMap<String, u64>>);

impl Calls {
    /// Counts one request.
    pub fn count(&self, what: &str) {
        let mut calls = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *calls.entry(what.to_owned()).or_default() += 1;
    }

    /// The counts so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Starts counting again.
    pub fn clear(&self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}
