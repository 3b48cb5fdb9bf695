//! Time bounds for the services beside verification: health (on the gRPC
//! port and the plaintext health port) and reflection. They are never shed
//! or rate limited, so that probes answer under load, but a stream on them
//! must not stay open for as long as its peer likes either: with nothing
//! enforcing `grpc-timeout` in our connection loop, and no read timeout,
//! stalled streams would sit there until their connection closed.
//!
//! - The caller's `grpc-timeout` bounds the whole call: the answer, and for
//!   a stream (health `Watch`, reflection) its last frame, which then
//!   carries DEADLINE_EXCEEDED.
//! - The request must keep arriving: a health request (one small message)
//!   in full within `--request-read-timeout-secs`; on a reflection stream,
//!   which grpcurl keeps open while it asks its questions, each frame within
//!   that time of the previous one. Otherwise the stream is ended with
//!   DEADLINE_EXCEEDED.
//!
//! Both count in `cognito_verify_streams_ended_total{reason}`. Their statuses
//! are made here: these are not verification RPCs, so they have no place in
//! the error mapping or the audit trail.

use std::{
    future::Future as _,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body::Frame;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tonic::{body::Body, Status};

use super::{
    stage::{Inner, Stage, StageLayer},
    ResponseFuture,
};
use crate::{deadline, telemetry::metrics::metrics};

/// How a request must keep arriving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// The whole request within the read timeout (unary, server streaming).
    Whole,
    /// Each frame within the read timeout of the previous one (a client or
    /// bidirectional stream).
    BetweenFrames,
}

/// Adds [`Side`].
pub type SideLayer = StageLayer<Side>;

impl SideLayer {
    /// For health: its request in full within `read_timeout`.
    pub fn health(read_timeout: Duration) -> Self {
        Side {
            read_timeout,
            reading: Reading::Whole,
        }
        .into()
    }

    /// For reflection's stream: each request frame within `read_timeout` of
    /// the last.
    pub fn reflection(read_timeout: Duration) -> Self {
        Side {
            read_timeout,
            reading: Reading::BetweenFrames,
        }
        .into()
    }
}

/// Bounds a health or reflection call in time; see the module docs.
#[derive(Debug, Clone, Copy)]
pub struct Side {
    read_timeout: Duration,
    reading: Reading,
}

impl Stage for Side {
    fn call<S: Inner>(&self, inner: &mut S, req: http::Request<Body>) -> ResponseFuture {
        let deadline = deadline::timeout(req.headers()).and_then(|t| Instant::now().checked_add(t));
        let timed_out = Arc::new(AtomicBool::new(false));
        let Self {
            read_timeout,
            reading,
        } = *self;
        let req = req.map(|body| {
            Body::new(ReadTimed {
                inner: body,
                timer: Box::pin(tokio::time::sleep(read_timeout)),
                read_timeout,
                reading,
                timed_out: Arc::clone(&timed_out),
                done: false,
            })
        });
        let future = inner.call(req);
        Box::pin(async move {
            let Some(at) = deadline else {
                let Ok(response) = future.await;
                return Ok(response.map(|body| bounded(body, None, timed_out)));
            };
            match tokio::time::timeout_at(at, future).await {
                Ok(Ok(response)) => Ok(response.map(|body| bounded(body, Some(at), timed_out))),
                Err(_) => {
                    metrics().stream_ended("deadline");
                    Ok(deadline_exceeded().into_http())
                }
            }
        })
    }
}

fn deadline_exceeded() -> Status {
    Status::deadline_exceeded("the call's deadline (grpc-timeout) passed before it was answered")
}

fn read_timed_out(timeout: Duration) -> Status {
    Status::deadline_exceeded(format!(
        "the request did not arrive within {} ms",
        timeout.as_millis()
    ))
}

/// The response body, bounded by the deadline and told of a read timeout.
fn bounded(body: Body, deadline: Option<Instant>, timed_out: Arc<AtomicBool>) -> Body {
    Body::new(Bounded {
        inner: body,
        deadline: deadline.map(|at| Box::pin(tokio::time::sleep_until(at))),
        read_timed_out: timed_out,
        done: false,
    })
}

pin_project! {
    /// A request body that fails with DEADLINE_EXCEEDED when it does not
    /// arrive in time (see [`Reading`]), and says so to the response.
    struct ReadTimed {
        #[pin]
        inner: Body,
        timer: Pin<Box<Sleep>>,
        read_timeout: Duration,
        reading: Reading,
        timed_out: Arc<AtomicBool>,
        done: bool,
    }
}

impl http_body::Body for ReadTimed {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if *this.reading == Reading::BetweenFrames {
                    this.timer
                        .as_mut()
                        .reset(Instant::now() + *this.read_timeout);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(other) => {
                *this.done = other.is_none();
                Poll::Ready(other)
            }
            Poll::Pending => {
                if this.timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                *this.done = true;
                this.timed_out.store(true, Ordering::Release);
                metrics().stream_ended("read_timeout");
                Poll::Ready(Some(Err(read_timed_out(*this.read_timeout))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }
}

pin_project! {
    /// A response body that ends with DEADLINE_EXCEEDED at the caller's
    /// deadline, and whose trailers say DEADLINE_EXCEEDED when the request
    /// was ended for its read timeout (reflection's handler then just stops,
    /// and its stream would otherwise end as if all went well).
    struct Bounded {
        #[pin]
        inner: Body,
        deadline: Option<Pin<Box<Sleep>>>,
        read_timed_out: Arc<AtomicBool>,
        done: bool,
    }
}

impl http_body::Body for Bounded {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) if frame.is_trailers() => {
                *this.done = true;
                if this.read_timed_out.load(Ordering::Acquire) {
                    return Poll::Ready(Some(Ok(trailers(&read_timed_out_status()))));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(other)) => Poll::Ready(Some(other)),
            Poll::Ready(None) => {
                *this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                let Some(deadline) = this.deadline else {
                    return Poll::Pending;
                };
                if deadline.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                *this.done = true;
                metrics().stream_ended("deadline");
                Poll::Ready(Some(Ok(trailers(&deadline_exceeded()))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }
}

/// The status of a stream whose request was ended for its read timeout, as
/// its trailers say it (the timeout itself was in the request's error).
fn read_timed_out_status() -> Status {
    Status::deadline_exceeded("the request stopped arriving (read timeout)")
}

/// `status` as a trailers frame.
fn trailers(status: &Status) -> Frame<Bytes> {
    let mut headers = http::HeaderMap::new();
    // A status made here always has a valid message.
    let _ = status.add_header(&mut headers);
    Frame::trailers(headers)
}
