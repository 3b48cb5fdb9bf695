//! The caller allowlist (`--allow-caller`). With mTLS, each connection knows
//! the identity in its client certificate (see `transport::peer`); when the
//! list is not empty, a verification RPC from any other caller is answered
//! PERMISSION_DENIED (reason `CALLER_NOT_ALLOWED`) before it can spend a rate
//! limit slot or reach Cognito. An empty list admits every caller whose
//! certificate the TLS layer accepted.
//!
//! Reflection is behind the same list ([`CallerGuard`]): it describes the
//! whole API, error details included, to whoever asks, and a caller that
//! may not call has no use for that. Health stays open to every caller
//! whose certificate the TLS layer accepted: load balancers and probes must
//! reach it without being listed.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use tonic::{body::Body, Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use super::{
    reject,
    stage::{Inner, Stage, StageLayer},
    ResponseFuture,
};
use crate::{
    error::ErrorKind,
    rpc::Operation,
    status::{reason_of, SERVICE_DOMAIN},
    transport::Peer,
};

/// The allowlist as a layer, for verification.
pub type CallerLayer = StageLayer<Callers>;

/// The allowlist as a layer, for reflection.
pub type CallerGuardLayer = StageLayer<CallerGuard>;

/// The callers allowed; `None` when every caller is. As a stage, it refuses
/// a verification RPC of a caller not on the list; calls to other paths pass
/// through (health and reflection have layers of their own, reflection's
/// with [`CallerGuard`]; tonic answers unknown paths UNIMPLEMENTED).
#[derive(Debug, Clone, Default)]
pub struct Callers(Option<Arc<HashSet<String>>>);

impl Callers {
    /// Admits only `allowed` callers; everyone when it is empty.
    pub fn layer(allowed: &[String]) -> CallerLayer {
        Self::listed(allowed).into()
    }

    fn listed(allowed: &[String]) -> Self {
        Self((!allowed.is_empty()).then(|| Arc::new(allowed.iter().cloned().collect())))
    }

    /// The list for every request of a service that is not verification:
    /// reflection.
    pub fn guard(allowed: &[String]) -> CallerGuardLayer {
        CallerGuard(Self::listed(allowed)).into()
    }

    /// Whether the caller of `request` may call.
    fn admits(&self, request: &http::Request<Body>) -> Result<(), ErrorKind> {
        let Some(allowed) = &self.0 else {
            return Ok(());
        };
        let caller = Peer::of(request).and_then(Peer::identity);
        if caller.is_some_and(|id| allowed.contains(id)) {
            return Ok(());
        }
        Err(ErrorKind::CallerNotAllowed {
            caller: caller.map(str::to_owned),
        })
    }
}

impl Stage for Callers {
    /// A refusal goes through the one error mapping, with its audit event,
    /// as every refused verification RPC does.
    fn call<S: Inner>(&self, inner: &mut S, req: http::Request<Body>) -> ResponseFuture {
        if let Some(op) = Operation::from_grpc_path(req.uri().path()) {
            if let Err(kind) = self.admits(&req) {
                return reject(op, kind, req);
            }
        }
        Box::pin(inner.call(req))
    }
}

/// Refuses every request of a caller not on the list, whatever its path;
/// see the module docs.
#[derive(Debug, Clone)]
pub struct CallerGuard(Callers);

impl Stage for CallerGuard {
    fn call<S: Inner>(&self, inner: &mut S, req: http::Request<Body>) -> ResponseFuture {
        match self.0.admits(&req) {
            Ok(()) => Box::pin(inner.call(req)),
            Err(kind) => {
                let status = not_allowed(&kind);
                Box::pin(async move { Ok(status.into_http()) })
            }
        }
    }
}

/// PERMISSION_DENIED with the reason verification RPCs get, without the
/// operation (there is none): the same ErrorInfo a client already handles.
fn not_allowed(kind: &ErrorKind) -> Status {
    let mut metadata = HashMap::new();
    if let ErrorKind::CallerNotAllowed {
        caller: Some(caller),
    } = kind
    {
        metadata.insert("caller".to_owned(), caller.clone());
    }
    let mut details = ErrorDetails::new();
    details.set_error_info(reason_of(kind), SERVICE_DOMAIN, metadata);
    Status::with_error_details(
        Code::PermissionDenied,
        "this caller is not allowed to call this service",
        details,
    )
}
