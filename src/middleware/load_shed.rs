//! Bounds the verification RPCs in flight. A call over the bound is answered
//! at once with RESOURCE_EXHAUSTED (reason `OVERLOADED`, a short `RetryInfo`:
//! nothing was sent to Cognito, so a retry is safe) instead of waiting in a
//! queue until its deadline. Calls to unknown paths pass through (tonic
//! answers them UNIMPLEMENTED at no cost).

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::body::Body;
use tower::{Layer, Service};

use super::{reject, ResponseFuture};
use crate::{error::ErrorKind, rpc::Operation};

/// An RPC's place under the bound, in its request's extensions: the handler
/// keeps a clone for work that outlives a cancelled RPC (its Cognito call),
/// so that cancelling calls cannot start more work than the bound.
#[derive(Debug, Clone)]
pub struct AdmissionSlot {
    _permit: Arc<OwnedSemaphorePermit>,
}

/// Adds [`LoadShed`].
#[derive(Debug, Clone)]
pub struct LoadShedLayer {
    permits: Arc<Semaphore>,
    max: u32,
}

impl LoadShedLayer {
    /// At most `max` RPCs in flight.
    pub fn new(max: u32) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max as usize)),
            max,
        }
    }
}

impl<S> Layer<S> for LoadShedLayer {
    type Service = LoadShed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LoadShed {
            bound: self.clone(),
            inner,
        }
    }
}

/// Sheds calls over the bound; see the module docs.
#[derive(Debug, Clone)]
pub struct LoadShed<S> {
    bound: LoadShedLayer,
    inner: S,
}

impl<S> Service<http::Request<Body>> for LoadShed<S>
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

    fn call(&mut self, mut req: http::Request<Body>) -> Self::Future {
        let Some(op) = Operation::from_grpc_path(req.uri().path()) else {
            return Box::pin(self.inner.call(req));
        };
        match Arc::clone(&self.bound.permits).try_acquire_owned() {
            Ok(permit) => {
                let permit = Arc::new(permit);
                req.extensions_mut().insert(AdmissionSlot {
                    _permit: Arc::clone(&permit),
                });
                let future = self.inner.call(req);
                Box::pin(async move {
                    let response = future.await;
                    drop(permit);
                    response
                })
            }
            Err(_) => reject(
                op,
                ErrorKind::Overloaded {
                    max_concurrent: self.bound.max,
                },
                req,
            ),
        }
    }
}
