//! A per-RPC rate limit for this replica (GCRA, via governor). Cognito's
//! account-wide quotas for user-update calls start at 25 requests per second,
//! so that is the default per RPC; with several replicas, divide the account's
//! quota among them. 0 turns a limit off.
//!
//! A rejected call gets RESOURCE_EXHAUSTED with the exact wait until the next
//! admission (`RetryInfo`) and the limit (`QuotaFailure`). A small `Clone`
//! layer around an `Arc` of the limiters, because tower's `RateLimit` is not
//! `Clone` and cannot wrap a tonic service (see `gate`).

use std::{num::NonZeroU32, sync::Arc};

use governor::{clock::Clock, DefaultDirectRateLimiter, Quota, RateLimiter};
use tonic::body::Body;

use super::gate::{Check, GateLayer};
use crate::error::{ErrorKind, Operation};

/// One RPC's limiter.
#[derive(Debug)]
struct Limit {
    limiter: DefaultDirectRateLimiter,
    per_sec: u32,
}

impl Limit {
    /// `per_sec` calls per second with a burst of one second's worth; `None`
    /// for 0 (no limit).
    fn new(per_sec: u32) -> Option<Self> {
        let n = NonZeroU32::new(per_sec)?;
        Some(Self {
            limiter: RateLimiter::direct(Quota::per_second(n)),
            per_sec,
        })
    }
}

/// The per-RPC limits as a layer.
pub type RateLimitLayer = GateLayer<RateLimits>;

/// The limiters of the two RPCs; `None` where a limit is off.
#[derive(Debug, Clone)]
pub struct RateLimits {
    get_code: Option<Arc<Limit>>,
    verify: Option<Arc<Limit>>,
}

impl RateLimits {
    /// Limits per second for the two RPCs (0 = off).
    pub fn layer(get_code_per_sec: u32, verify_per_sec: u32) -> RateLimitLayer {
        GateLayer::new(Self {
            get_code: Limit::new(get_code_per_sec).map(Arc::new),
            verify: Limit::new(verify_per_sec).map(Arc::new),
        })
    }
}

impl Check for RateLimits {
    fn check(&self, op: Operation, _: &http::Request<Body>) -> Result<(), ErrorKind> {
        let limit = match op {
            Operation::GetUserAttributeVerificationCode => self.get_code.as_deref(),
            Operation::VerifyUserAttribute => self.verify.as_deref(),
        };
        let Some(limit) = limit else {
            return Ok(());
        };
        limit
            .limiter
            .check()
            .map_err(|not_until| ErrorKind::RateLimited {
                wait: not_until.wait_time_from(governor::clock::DefaultClock::default().now()),
                limit_per_sec: limit.per_sec,
            })
    }
}
