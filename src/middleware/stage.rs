//! The tower plumbing every middleware here shares, written once. A
//! [`StageLayer`] wraps a service in [`Staged`], whose readiness is the
//! inner service's and whose `call` hands each request to a [`Stage`]: what
//! that middleware does with one request. A middleware file then holds only
//! its decision (`impl Stage for Trace`) and a name for its layer
//! (`pub type TraceLayer = StageLayer<Trace>`).

use std::{
    convert::Infallible,
    task::{Context, Poll},
};

use tonic::body::Body;
use tower::{Layer, Service};

use super::ResponseFuture;

/// What a middleware does with one request: answer it at once, or pass it
/// on to the inner service (changed or not), perhaps watching the answer.
pub trait Stage {
    /// Handles `req`. `inner` has been made ready for it: call it at most
    /// once, for this request.
    fn call<S: Inner>(&self, inner: &mut S, req: http::Request<Body>) -> ResponseFuture;
}

/// The service behind a stage. Every stage gets the same bound, the one the
/// intake needs to move the service it made ready into its future
/// (`Clone + Send + 'static`): it costs the others nothing, since tonic's
/// router takes only such services (health, reflection and verification
/// all are), and one bound is one thing to check.
pub trait Inner:
    Service<
        http::Request<Body>,
        Response = http::Response<Body>,
        Error = Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
}

impl<S> Inner for S
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
}

/// Wraps a service in [`Staged`] with the stage `T`, which each service it
/// makes gets a clone of (settings shared between them sit behind an `Arc`).
#[derive(Debug, Clone, Copy, Default)]
pub struct StageLayer<T>(T);

impl<T> From<T> for StageLayer<T> {
    fn from(stage: T) -> Self {
        Self(stage)
    }
}

impl<T: Clone, S> Layer<S> for StageLayer<T> {
    type Service = Staged<T, S>;

    fn layer(&self, inner: S) -> Self::Service {
        Staged {
            stage: self.0.clone(),
            inner,
        }
    }
}

/// The service `S` behind the stage `T`.
#[derive(Debug, Clone)]
pub struct Staged<T, S> {
    stage: T,
    inner: S,
}

impl<T: Stage, S: Inner> Service<http::Request<Body>> for Staged<T, S> {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    /// Ready when the inner service is: no stage waits for anything before
    /// it takes a request (the load shedding refuses at once instead).
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        self.stage.call(&mut self.inner, req)
    }
}
