//! Bounds the verification RPCs in flight. A call over the bound is answered
//! at once with RESOURCE_EXHAUSTED (reason `OVERLOADED`, a short `RetryInfo`:
//! nothing was sent to Cognito, so a retry is safe) instead of waiting in a
//! queue until its deadline. Calls to unknown paths pass through (tonic
//! answers them UNIMPLEMENTED at no cost).

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::body::Body;

use super::{
    reject,
    stage::{Inner, Stage, StageLayer},
    ResponseFuture,
};
use crate::{error::ErrorKind, rpc::Operation};

/// An RPC's place under the bound, in its request's extensions: the handler
/// keeps a clone for work that outlives a cancelled RPC (its Cognito call),
/// so that cancelling calls cannot start more work than the bound.
#[derive(Debug, Clone)]
pub struct AdmissionSlot {
    _permit: Arc<OwnedSemaphorePermit>,
}

/// Adds [`LoadShed`].
pub type LoadShedLayer = StageLayer<LoadShed>;

impl LoadShedLayer {
    /// At most `max` RPCs in flight.
    pub fn new(max: u32) -> Self {
        LoadShed {
            permits: Arc::new(Semaphore::new(max as usize)),
            max,
        }
        .into()
    }
}

/// Sheds calls over the bound; see the module docs.
#[derive(Debug, Clone)]
pub struct LoadShed {
    permits: Arc<Semaphore>,
    max: u32,
}

impl Stage for LoadShed {
    fn call<S: Inner>(&self, inner: &mut S, mut req: http::Request<Body>) -> ResponseFuture {
        let Some(op) = Operation::from_grpc_path(req.uri().path()) else {
            return Box::pin(inner.call(req));
        };
        match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => {
                let permit = Arc::new(permit);
                req.extensions_mut().insert(AdmissionSlot {
                    _permit: Arc::clone(&permit),
                });
                let future = inner.call(req);
                Box::pin(async move {
                    let response = future.await;
                    drop(permit);
                    response
                })
            }
            Err(_) => reject(
                op,
                ErrorKind::Overloaded {
                    max_concurrent: self.max,
                },
                req,
            ),
        }
    }
}
