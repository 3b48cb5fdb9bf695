//! The caller allowlist (`--allow-caller`). With mTLS, each connection knows
//! the identity in its client certificate (see `transport::peer`); when the
//! list is not empty, a verification RPC from any other caller is answered
//! PERMISSION_DENIED (reason `CALLER_NOT_ALLOWED`) before it can spend a rate
//! limit slot or reach Cognito. An empty list admits every caller whose
//! certificate the TLS layer accepted.

use std::{collections::HashSet, sync::Arc};

use tonic::body::Body;

use super::gate::{Check, GateLayer};
use crate::{
    error::{ErrorKind, Operation},
    transport::Peer,
};

/// The allowlist as a layer.
pub type CallerLayer = GateLayer<Callers>;

/// The callers allowed; `None` when every caller is.
#[derive(Debug, Clone, Default)]
pub struct Callers(Option<Arc<HashSet<String>>>);

impl Callers {
    /// Admits only `allowed` callers; everyone when it is empty.
    pub fn layer(allowed: &[String]) -> CallerLayer {
        GateLayer::new(Self(
            (!allowed.is_empty()).then(|| Arc::new(allowed.iter().cloned().collect())),
        ))
    }
}

impl Check for Callers {
    fn check(&self, _: Operation, request: &http::Request<Body>) -> Result<(), ErrorKind> {
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
