//! One connection, from accept to close:
//!
//! 1. TLS handshake (when on) and HTTP/2 preface, both before the handshake
//!    deadline; a failed handshake is logged at debug and costs nothing else;
//! 2. HTTP/2 serving, every request carrying the [`Peer`];
//! 3. a GOAWAY when the connection reaches its age, has been idle (no RPC)
//!    for the idle timeout, or the server drains; after a GOAWAY for age or
//!    idleness, RPCs in flight get the grace period, then the connection is
//!    closed.

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    pin::{pin, Pin},
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::Duration,
};

use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use pin_project_lite::pin_project;
use rand::Rng as _;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
    time::Instant,
};
use tonic::{body::Body, service::Routes};
use tower::util::Oneshot;

use super::{peer::Peer, preface::Preface, Listener, Shared};
use crate::{telemetry::metrics::metrics, tls};

/// Serves one accepted connection; `slot` is its place under the accept
/// loop's bounds, held (and so released) with the connection.
pub(super) async fn serve(
    tcp: TcpStream,
    remote: SocketAddr,
    slot: impl Send + 'static,
    shared: Arc<Shared>,
) {
    let _slot = slot;
    let _open = (shared.settings.listener == Listener::Grpc).then(|| metrics().connection_opened());
    let local = tcp.local_addr().ok();
    let deadline = Instant::now() + shared.settings.handshake_timeout;
    let Some(reloader) = &shared.tls else {
        return run(tcp, Peer::new(remote, local, None), deadline, &shared).await;
    };
    let acceptor = reloader.acceptor();
    let handshake = tokio::select! {
        handshake = tokio::time::timeout_at(deadline, acceptor.accept(tcp)) => handshake,
        () = shared.drain.cancelled() => return,
    };
    let stream = match handshake {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(peer.address = %remote, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(peer.address = %remote, "TLS handshake timed out");
            return;
        }
    };
    let identity = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(tls::caller_identity);
    run(
        stream,
        Peer::new(remote, local, identity),
        deadline,
        &shared,
    )
    .await;
}

/// Why a connection is being closed.
#[derive(Debug, Clone, Copy)]
enum Closing {
    Age,
    Idle,
    Drain,
}

async fn run<IO>(io: IO, peer: Peer, deadline: Instant, shared: &Shared)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let remote = peer.remote_addr();
    let activity = Arc::new(Activity::new());
    let service = ConnService {
        routes: shared.routes.clone(),
        peer,
        activity: Arc::clone(&activity),
    };
    let mut conn = pin!(shared
        .http2
        .serve_connection(TokioIo::new(Preface::new(io, deadline)), service));
    let settings = &shared.settings;
    let mut age = pin!(sleep_or_never(settings.max_age.map(jitter)));
    let mut idle = pin!(idle(&activity, settings.idle_timeout));
    let mut grace = pin!(tokio::time::sleep(Duration::ZERO));
    let mut closing: Option<Closing> = None;
    loop {
        let reason = tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(peer.address = %remote, error = %e, "connection ended with an error");
                }
                return;
            }
            () = shared.abort.cancelled() => return,
            () = &mut grace, if matches!(closing, Some(Closing::Age | Closing::Idle)) => {
                tracing::debug!(peer.address = %remote, "grace period over: closing the connection");
                return;
            }
            () = &mut age, if closing.is_none() => Closing::Age,
            () = &mut idle, if closing.is_none() => Closing::Idle,
            () = shared.drain.cancelled(), if closing.is_none() => Closing::Drain,
        };
        tracing::debug!(peer.address = %remote, ?reason, "sending GOAWAY");
        conn.as_mut().graceful_shutdown();
        grace.as_mut().reset(Instant::now() + settings.grace);
        closing = Some(reason);
    }
}

/// `max_age` ± 10 %, so that connections opened together do not all close
/// together.
fn jitter(max_age: Duration) -> Duration {
    max_age.mul_f64(rand::rng().random_range(0.9..=1.1))
}

async fn sleep_or_never(duration: Option<Duration>) {
    match duration {
        Some(duration) => tokio::time::sleep(duration).await,
        None => std::future::pending().await,
    }
}

/// Completes once the connection has had no RPC for `timeout`.
async fn idle(activity: &Activity, timeout: Option<Duration>) {
    let Some(timeout) = timeout else {
        return std::future::pending().await;
    };
    loop {
        let wait = match activity.idle_for() {
            Some(idle) if idle >= timeout => return,
            Some(idle) => timeout - idle,
            None => timeout,
        };
        tokio::time::sleep(wait).await;
    }
}

/// RPCs in flight on a connection and when the last one ended.
#[derive(Debug)]
struct Activity {
    start: Instant,
    in_flight: AtomicUsize,
    last_end_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_end_ms: AtomicU64::new(0),
        }
    }

    fn begin(self: &Arc<Self>) -> RpcGuard {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        RpcGuard(Arc::clone(self))
    }

    /// How long the connection has been without an RPC; `None` while one is
    /// in flight.
    fn idle_for(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last_end_ms.load(Ordering::Acquire));
        Some(self.start.elapsed().saturating_sub(last))
    }
}

/// Counts one RPC in flight until dropped.
struct RpcGuard(Arc<Activity>);

impl Drop for RpcGuard {
    fn drop(&mut self) {
        let ms = u64::try_from(self.0.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last_end_ms.store(ms, Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The router, as one connection's HTTP/2 service: adds the [`Peer`] to each
/// request and counts it as activity until its response has been sent (for
/// a stream, such as a health Watch, until the stream ends).
#[derive(Clone)]
struct ConnService {
    routes: Routes,
    peer: Peer,
    activity: Arc<Activity>,
}

impl hyper::service::Service<http::Request<Incoming>> for ConnService {
    type Response = http::Response<TrackedBody>;
    type Error = Infallible;
    type Future = Tracked<Oneshot<Routes, http::Request<Body>>>;

    fn call(&self, request: http::Request<Incoming>) -> Self::Future {
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(self.peer.clone());
        Tracked {
            inner: Oneshot::new(self.routes.clone(), request),
            guard: Some(self.activity.begin()),
        }
    }
}

pin_project! {
    /// A response future whose RPC counts as activity; the count moves into
    /// the response body.
    struct Tracked<F> {
        #[pin]
        inner: F,
        guard: Option<RpcGuard>,
    }
}

impl<F> Future for Tracked<F>
where
    F: Future<Output = Result<http::Response<Body>, Infallible>>,
{
    type Output = Result<http::Response<TrackedBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Poll::Ready(Ok(response)) = this.inner.poll(cx) else {
            return Poll::Pending;
        };
        let guard = this.guard.take();
        Poll::Ready(Ok(response.map(|inner| TrackedBody { inner, guard })))
    }
}

pin_project! {
    /// A response body that counts as activity until its last frame is sent
    /// (or it is dropped, when the stream is reset).
    struct TrackedBody {
        #[pin]
        inner: Body,
        guard: Option<RpcGuard>,
    }
}

impl http_body::Body for TrackedBody {
    type Data = <Body as http_body::Body>::Data;
    type Error = <Body as http_body::Body>::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = this.inner.poll_frame(cx);
        if let Poll::Ready(None) = frame {
            this.guard.take();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
