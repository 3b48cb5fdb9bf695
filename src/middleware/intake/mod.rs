//! Takes a verification RPC in: its deadline, and its whole message, before
//! anything else may hold resources for it.
//!
//! hyper hands a request over as soon as its HEADERS arrive; the message
//! follows whenever the peer pleases, or never. Without this layer, streams
//! that never sent their message took admission slots (1,100 such streams
//! shed every real call with OVERLOADED), nothing ended them (tonic enforces
//! `grpc-timeout` only in its own server), and unfinished 1 MB messages were
//! buffered without a bound (300 of them: 320 MiB). Here:
//!
//! - the caller's `grpc-timeout` is a deadline around everything below, the
//!   reading of the message included (DEADLINE_EXCEEDED, `DEADLINE_EXCEEDED`);
//! - the message must arrive in full within `--request-read-timeout-secs`
//!   (DEADLINE_EXCEEDED, `REQUEST_READ_TIMEOUT`);
//! - a message declaring more than `--max-message-bytes` is refused as soon
//!   as its prefix arrives (RESOURCE_EXHAUSTED, `MESSAGE_TOO_LARGE`);
//! - the header list, then the message's bytes as they arrive, are reserved
//!   from the replica's request budget (RESOURCE_EXHAUSTED, `OVERLOADED`,
//!   with RetryInfo, when they do not fit; a request that has waited over a
//!   second for its message gives its bytes up to a newer one: [`Budget`]);
//! - only then does the request go on, with its message in memory, to the
//!   load shedding and the service; the reservation is held until the
//!   service answers (or the call is dropped).

mod budget;
mod message;

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use http_body_util::Full;
use tokio::time::Instant;
use tonic::body::Body;
use tower::Service;

pub use budget::{Budget, Reservation};
use message::Unread;
pub use message::PREFIX_BYTES;

use super::{
    drain_refused, refusal, reject,
    stage::{Inner, Stage, StageLayer},
    ResponseFuture,
};
use crate::{
    config::ServeConfig,
    deadline,
    error::{Error, ErrorKind},
    rpc::Operation,
    telemetry::metrics::metrics,
    transport::{Peer, MAX_HEADER_LIST_BYTES},
};

/// What every call of the layer shares.
#[derive(Debug)]
struct Settings {
    max_message: u32,
    read_timeout: Duration,
    budget: Arc<Budget>,
}

/// Adds [`Intake`].
pub type IntakeLayer = StageLayer<Intake>;

impl IntakeLayer {
    /// The layer for `serve`'s configuration.
    pub fn new(config: &ServeConfig) -> Self {
        let largest = u64::from(config.max_message_bytes)
            + PREFIX_BYTES as u64
            + u64::from(MAX_HEADER_LIST_BYTES);
        let settings = Settings {
            max_message: config.max_message_bytes,
            read_timeout: config.connections.request_read_timeout(),
            budget: Budget::new(config.connections.max_buffered_request_bytes, largest),
        };
        Intake {
            settings: Arc::new(settings),
        }
        .into()
    }
}

/// Reads each verification RPC's message in; see the module docs.
#[derive(Debug, Clone)]
pub struct Intake {
    settings: Arc<Settings>,
}

impl Stage for Intake {
    fn call<S: Inner>(&self, inner: &mut S, req: http::Request<Body>) -> ResponseFuture {
        let Some(op) = Operation::from_grpc_path(req.uri().path()) else {
            return Box::pin(inner.call(req));
        };
        let arrived = Instant::now();
        let headers = header_list_bytes(&req);
        let reserved = self
            .settings
            .budget
            .reserve(headers, Peer::of(&req), arrived);
        let reservation = match reserved {
            Ok(reservation) => reservation,
            Err(kind) => return reject(op, kind, req),
        };
        // The service that was made ready is the one to call.
        let ready = inner.clone();
        let inner = std::mem::replace(inner, ready);
        let call = Call {
            op,
            settings: Arc::clone(&self.settings),
            reservation,
            deadline: deadline::timeout(req.headers()).and_then(|t| arrived.checked_add(t)),
            read_by: arrived + self.settings.read_timeout,
        };
        Box::pin(call.run(req, inner))
    }
}

/// How a wait for the message ended early.
#[derive(Debug, Clone, Copy)]
enum Ended {
    /// The caller's own deadline.
    Deadline,
    /// The read timeout.
    ReadTimeout,
}

/// One verification RPC being taken in.
struct Call {
    op: Operation,
    settings: Arc<Settings>,
    reservation: Reservation,
    deadline: Option<Instant>,
    read_by: Instant,
}

impl Call {
    async fn run<S>(
        mut self,
        req: http::Request<Body>,
        mut inner: S,
    ) -> Result<http::Response<Body>, Infallible>
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    {
        let (mut parts, mut body) = req.into_parts();
        let (until, ends) = match self.deadline {
            Some(at) if at <= self.read_by => (at, Ended::Deadline),
            _ => (self.read_by, Ended::ReadTimeout),
        };
        let revocation = self.reservation.revocation();
        let read = message::read(&mut body, self.settings.max_message, &mut self.reservation);
        let read = async {
            tokio::select! {
                read = read => read,
                // A newer request took this one's bytes (it waited too long).
                () = revocation.revoked() => Err(Unread::Refused(ErrorKind::RequestBufferFull {
                    budget_bytes: self.settings.budget.max(),
                })),
            }
        };
        let body = match tokio::time::timeout_at(until, read).await {
            Ok(Ok(message)) => {
                self.reservation.message_complete();
                Body::new(Full::new(message))
            }
            Ok(Err(Unread::Failed(received, status))) => Body::new(Failed {
                received: Some(received),
                error: Some(status),
            }),
            Ok(Err(Unread::Refused(kind))) => {
                let response = refusal(self.op, kind, &parts.extensions);
                drain_refused(body).await;
                return Ok(response);
            }
            Err(_) => {
                let kind = match ends {
                    Ended::Deadline => {
                        metrics().stream_ended("deadline");
                        ErrorKind::DeadlineExceeded
                    }
                    Ended::ReadTimeout => {
                        metrics().stream_ended("read_timeout");
                        ErrorKind::RequestReadTimeout {
                            timeout: self.settings.read_timeout,
                        }
                    }
                };
                // The peer has stopped sending: nothing to wait for.
                return Ok(refusal(self.op, kind, &parts.extensions));
            }
        };
        let Some(at) = self.deadline else {
            let response = inner.call(http::Request::from_parts(parts, body)).await;
            drop(self.reservation);
            return response;
        };
        // The service counts its own deadline from what is left now, so
        // that its DEADLINE_EXCEEDED (with the details of what timed out)
        // comes before this layer's.
        let left = at.saturating_duration_since(Instant::now());
        parts
            .headers
            .insert(deadline::GRPC_TIMEOUT, deadline::encode_grpc_timeout(left));
        let answer = inner.call(http::Request::from_parts(parts, body));
        let response = match tokio::time::timeout_at(at, answer).await {
            Ok(response) => response,
            Err(_) => {
                metrics().stream_ended("deadline");
                // No audit event here: the RPC's work goes on in its own
                // task, which writes the event with its real outcome.
                let status: tonic::Status = Error::new(self.op, ErrorKind::DeadlineExceeded).into();
                Ok(status.into_http())
            }
        };
        drop(self.reservation);
        response
    }
}

/// The size of a request's header list as HTTP/2 counts it (name, value
/// and 32 bytes per field), the path and authority included.
fn header_list_bytes(req: &http::Request<Body>) -> u64 {
    const FIELD_OVERHEAD: usize = 32;
    let pseudo = req.uri().path().len() + req.uri().authority().map_or(0, |a| a.as_str().len());
    let fields: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + FIELD_OVERHEAD)
        .sum();
    (pseudo + 4 * FIELD_OVERHEAD + fields) as u64
}

/// What arrived of a body that then failed, and the failure: passed on so
/// that tonic answers it as it would have (the peer that reset the stream
/// is usually gone, and hyper drops the call anyway).
struct Failed {
    received: Option<bytes::Bytes>,
    error: Option<tonic::Status>,
}

impl http_body::Body for Failed {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if let Some(received) = this.received.take().filter(|b| !b.is_empty()) {
            return Poll::Ready(Some(Ok(http_body::Frame::data(received))));
        }
        Poll::Ready(this.error.take().map(Err))
    }
}
