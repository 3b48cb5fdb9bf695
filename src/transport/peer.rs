//! Who is on the other end of a connection. The connection puts a [`Peer`]
//! into every request's extensions; the middleware reads it for the span,
//! the log line and the caller allowlist, and counts on it the request bytes
//! the connection holds (so that one connection cannot take the whole
//! request budget).

use std::{
    net::SocketAddr,
    sync::{atomic::AtomicU64, Arc},
};

/// The other end of a connection; cheap to clone.
#[derive(Debug, Clone)]
pub struct Peer(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    remote: SocketAddr,
    local: Option<SocketAddr>,
    identity: Option<String>,
    buffered_bytes: AtomicU64,
}

impl Peer {
    /// A peer at `remote`, connected to our `local` address, with the
    /// identity of its client certificate if it presented one.
    pub fn new(remote: SocketAddr, local: Option<SocketAddr>, identity: Option<String>) -> Self {
        Self(Arc::new(Inner {
            remote,
            local,
            identity,
            buffered_bytes: AtomicU64::new(0),
        }))
    }

    /// Our address on this connection.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.0.local
    }

    /// The peer's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.0.remote
    }

    /// The caller identity from the client certificate (mTLS), if any.
    pub fn identity(&self) -> Option<&str> {
        self.0.identity.as_deref()
    }

    /// The request bytes this connection holds now (kept by
    /// `middleware::intake`).
    pub fn buffered_bytes(&self) -> &AtomicU64 {
        &self.0.buffered_bytes
    }

    /// The peer of a request served by [`crate::transport`].
    pub fn of<B>(request: &http::Request<B>) -> Option<&Self> {
        request.extensions().get::<Self>()
    }
}
