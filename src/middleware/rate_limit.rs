//! A per-RPC rate limit for this replica (GCRA, via governor). Cognito's
//! account-wide quotas for user-update calls start at 25 requests per second,
//! so that is the default per RPC; with several replicas, divide the account's
//! quota among them. 0 turns a limit off.
//!
//! A rejected call gets RESOURCE_EXHAUSTED with the exact wait until the next
//! admission (`RetryInfo`) and the limit (`QuotaFailure`). A small `Clone`
//! layer around an `Arc` of the limiters, because tower's `RateLimit` is not
//! `Clone` and cannot wrap a tonic service.

use std::{
    convert::Infallible,
    num::NonZeroU32,
    sync::Arc,
    task::{Context, Poll},
};

use governor::{clock::Clock, DefaultDirectRateLimiter, Quota, RateLimiter};
use tonic::body::Body;
use tower::{Layer, Service};

use super::{reject, ResponseFuture};
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

/// Adds [`RateLimit`].
#[derive(Debug, Clone)]
pub struct RateLimitLayer {
    get_code: Option<Arc<Limit>>,
    verify: Option<Arc<Limit>>,
}

impl RateLimitLayer {
    /// Limits per second for the two RPCs (0 = off).
    pub fn new(get_code_per_sec: u32, verify_per_sec: u32) -> Self {
        Self {
            get_code: Limit::new(get_code_per_sec).map(Arc::new),
            verify: Limit::new(verify_per_sec).map(Arc::new),
        }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            limits: self.clone(),
            inner,
        }
    }
}

/// Rejects calls over their RPC's rate; see the module docs.
#[derive(Debug, Clone)]
pub struct RateLimit<S> {
    limits: RateLimitLayer,
    inner: S,
}

impl<S> Service<http::Request<Body>> for RateLimit<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let op = Operation::from_grpc_path(req.uri().path());
        let limit = match op {
            Some(Operation::GetUserAttributeVerificationCode) => self.limits.get_code.as_deref(),
            Some(Operation::VerifyUserAttribute) => self.limits.verify.as_deref(),
            None => None,
        };
        if let (Some(op), Some(limit)) = (op, limit) {
            if let Err(not_until) = limit.limiter.check() {
                let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
                return reject(
                    op,
                    ErrorKind::RateLimited {
                        wait,
                        limit_per_sec: limit.per_sec,
                    },
                );
            }
        }
        Box::pin(self.inner.call(req))
    }
}
