//! The accept loop: one task per connection, at most `max_connections` of
//! them. A connection over the bound is closed as soon as it is accepted:
//! refusing it early keeps the kernel's accept queue moving, and costs the
//! client one round trip instead of a hang.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{connection, Shared};
use crate::telemetry::metrics::metrics;

/// At most one warning per this interval while connections are refused.
const WARN_EVERY: Duration = Duration::from_secs(10);
/// Pause after a failed accept (e.g. out of file descriptors), so that the
/// loop does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Accepts until `stop`; the listener closes when this returns.
pub(super) async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    tracker: TaskTracker,
    stop: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(shared.settings.max_connections as usize));
    let mut refused: u64 = 0;
    let mut last_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            drop(tcp);
            metrics().connection_refused();
            refused += 1;
            if last_warning.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                last_warning = Some(Instant::now());
                tracing::warn!(
                    max_connections = shared.settings.max_connections,
                    refused_total = refused,
                    "connection limit reached: closing new connections"
                );
            }
            continue;
        };
        // Without TCP_NODELAY, HTTP/2 frames written apart wait for the
        // peer's delayed ACK (40 ms on Linux).
        let _ = tcp.set_nodelay(true);
        tracker.spawn(connection::serve(tcp, remote, permit, Arc::clone(&shared)));
    }
}
