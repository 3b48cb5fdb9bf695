//! A layer that checks each verification RPC before it goes further and
//! answers at once when the check refuses it: the caller allowlist and the
//! per-RPC rate limit are such checks ([`Check`]). Calls to other paths pass
//! through (health and reflection are not wrapped at all; unknown paths are
//! answered UNIMPLEMENTED by tonic).

use std::{
    convert::Infallible,
    task::{Context, Poll},
};

use tonic::body::Body;
use tower::{Layer, Service};

use super::{reject, ResponseFuture};
use crate::{error::ErrorKind, rpc::Operation};

/// A check of one verification RPC, made before anything else happens to it.
pub trait Check: Clone + Send + Sync + 'static {
    /// `Err` refuses the call with that error.
    fn check(&self, operation: Operation, request: &http::Request<Body>) -> Result<(), ErrorKind>;
}

/// Adds [`Gate`] with the check `C`.
#[derive(Debug, Clone)]
pub struct GateLayer<C>(C);

impl<C> GateLayer<C> {
    /// A layer applying `check`.
    pub fn new(check: C) -> Self {
        Self(check)
    }
}

impl<C: Clone, S> Layer<S> for GateLayer<C> {
    type Service = Gate<C, S>;

    fn layer(&self, inner: S) -> Self::Service {
        Gate {
            check: self.0.clone(),
            inner,
        }
    }
}

/// Refuses calls its check refuses; see the module docs.
#[derive(Debug, Clone)]
pub struct Gate<C, S> {
    check: C,
    inner: S,
}

impl<C, S> Service<http::Request<Body>> for Gate<C, S>
where
    C: Check,
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
        if let Some(op) = Operation::from_grpc_path(req.uri().path()) {
            if let Err(kind) = self.check.check(op, &req) {
                return reject(op, kind, req);
            }
        }
        Box::pin(self.inner.call(req))
    }
}
