//! How often each operation (and each pool's JWKS) was asked for: what tests
//! count to prove that a refused call cost Cognito nothing, and where keys
//! were fetched from.
//!
//! The names come from requests (a pool id in a JWKS path), so the table is
//! bounded: key sets of pools the backend does not have are counted under
//! one name ([`UNKNOWN_POOL_JWKS`]), and past [`MAX_NAMES`] names every new
//! one is counted under [`OTHER`].

use std::{
    collections::BTreeMap,
    sync::{Mutex, PoisonError},
};

/// The name of key-set requests for pools the backend does not have.
pub const UNKNOWN_POOL_JWKS: &str = "jwks:(unknown pool)";
/// The name of requests counted once the table is full.
pub const OTHER: &str = "(other)";
/// Most names counted apart.
pub const MAX_NAMES: usize = 256;

/// Requests per operation name (`jwks:<pool>` for the key sets).
#[derive(Debug, Default)]
pub struct Calls(Mutex<BTreeMap<String, u64>>);

impl Calls {
    /// Counts one request.
    pub fn count(&self, what: &str) {
        let mut calls = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = calls.get_mut(what) {
            *n += 1;
            return;
        }
        let name = if calls.len() < MAX_NAMES - 1 {
            what
        } else {
            OTHER
        };
        *calls.entry(name.to_owned()).or_default() += 1;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_requests_cannot_grow_the_table() {
        let calls = Calls::default();
        for n in 0..10_000 {
            calls.count(&format!("jwks:us-east-1_Fake{n}"));
        }
        calls.count("jwks:us-east-1_Fake0");
        let snapshot = calls.snapshot();
        assert_eq!(snapshot.len(), MAX_NAMES);
        assert_eq!(snapshot["jwks:us-east-1_Fake0"], 2);
        assert_eq!(snapshot.values().sum::<u64>(), 10_001);
        assert_eq!(snapshot[OTHER], 10_000 - (MAX_NAMES as u64 - 1));
    }
}
