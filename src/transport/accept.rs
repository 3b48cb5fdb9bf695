//! The accept loop: one task per connection, at most `max_connections` of
//! them (and at most `max_connections_per_ip` from one address, when set).
//! A connection over the bound is closed as soon as it is accepted:
//! refusing it early keeps the kernel's accept queue moving, and costs the
//! client one round trip instead of a hang.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use tokio::{
    net::TcpListener,
    sync::{OwnedSemaphorePermit, Semaphore},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{connection, Listener, Shared};
use crate::telemetry::metrics::metrics;

/// At most one warning per this interval while connections are refused.
const WARN_EVERY: Duration = Duration::from_secs(10);
/// Pause after a failed accept (e.g. out of file descriptors), so that the
/// loop does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A connection's slots: one under the overall bound, and one under its
/// source address's bound when there is one. Released when dropped.
pub(super) struct Slot {
    _overall: OwnedSemaphorePermit,
    _per_ip: Option<IpSlot>,
}

/// Open connections per source address, when `--max-connections-per-ip` is
/// set.
struct PerIp {
    max: u32,
    open: Mutex<HashMap<IpAddr, u32>>,
}

/// One connection counted against its address.
struct IpSlot {
    per_ip: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(ip).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            per_ip: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self
            .per_ip
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Warns at most once per [`WARN_EVERY`], with how often it was asked to.
struct Throttled {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttled {
    fn new() -> Self {
        Self {
            last: None,
            suppressed: 0,
        }
    }

    /// Whether to log now; `occurrences` counts the calls since the last log.
    fn due(&mut self) -> Option<u64> {
        self.suppressed += 1;
        if self.last.is_some_and(|at| at.elapsed() < WARN_EVERY) {
            return None;
        }
        self.last = Some(Instant::now());
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// Accepts until `stop`; the listener closes when this returns.
pub(super) async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    tracker: TaskTracker,
    stop: CancellationToken,
) {
    let settings = &shared.settings;
    let permits = Arc::new(Semaphore::new(settings.max_connections as usize));
    let per_ip = (settings.max_connections_per_ip > 0).then(|| {
        Arc::new(PerIp {
            max: settings.max_connections_per_ip,
            open: Mutex::new(HashMap::new()),
        })
    });
    let (mut accept_failed, mut full, mut ip_full) =
        (Throttled::new(), Throttled::new(), Throttled::new());
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                if let Some(times) = accept_failed.due() {
                    tracing::warn!(error = %e, times, "accepting a connection failed");
                }
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(overall) = Arc::clone(&permits).try_acquire_owned() else {
            drop(tcp);
            refused(settings.listener);
            if let Some(refused) = full.due() {
                tracing::warn!(
                    listener = ?settings.listener,
                    max_connections = settings.max_connections,
                    refused,
                    "connection limit reached: closing new connections"
                );
            }
            continue;
        };
        let ip_slot = match &per_ip {
            None => None,
            Some(per_ip) => match per_ip.take(remote.ip()) {
                Some(slot) => Some(slot),
                None => {
                    drop(tcp);
                    refused(settings.listener);
                    if let Some(refused) = ip_full.due() {
                        tracing::warn!(
                            peer.address = %remote.ip(),
                            max_connections_per_ip = settings.max_connections_per_ip,
                            refused,
                            "per-address connection limit reached: closing its new connections"
                        );
                    }
                    continue;
                }
            },
        };
        // Without TCP_NODELAY, HTTP/2 frames written apart wait for the
        // peer's delayed ACK (40 ms on Linux).
        let _ = tcp.set_nodelay(true);
        let slot = Slot {
            _overall: overall,
            _per_ip: ip_slot,
        };
        tracker.spawn(connection::serve(tcp, remote, slot, Arc::clone(&shared)));
    }
}

/// Counts a connection closed at the bound, under its listener.
fn refused(listener: Listener) {
    match listener {
        Listener::Grpc => metrics().connection_refused(),
        Listener::Health => metrics().listener_connection_refused("health"),
    }
}
