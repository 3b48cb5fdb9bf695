//! The TLS configuration in force, and its reload when the files change.
//!
//! The files are polled (read and compared) rather than watched: Kubernetes
//! updates a mounted Secret by swapping a symlink, which file-change
//! notifications on the files themselves miss, and three small reads every
//! few seconds cost nothing. A change is applied only when the new files
//! build a valid configuration; otherwise the previous one stays and the
//! problem is logged once. Each handshake takes the configuration current at
//! that moment, so connections already open are never cut.

use std::{
    sync::{Arc, Mutex, PoisonError, RwLock},
    time::{Duration, SystemTime},
};

use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::{
    files::{Contents, Loaded, TlsError, TlsFiles},
    identity,
};
use crate::telemetry::metrics::metrics;

/// What a reload check did.
#[derive(Debug)]
pub enum Reload {
    /// The files are as last seen.
    Unchanged,
    /// New files are in force.
    Applied,
    /// The files changed but cannot be used; the previous configuration stays.
    Rejected(TlsError),
}

/// The TLS configuration of the gRPC port; cheap to clone.
#[derive(Debug, Clone)]
pub struct Reloader {
    files: TlsFiles,
    state: Arc<State>,
}

#[derive(Debug)]
struct State {
    current: RwLock<Arc<ServerConfig>>,
    /// What the files held at the last poll.
    seen: Mutex<Seen>,
}

/// What one poll found in the files.
#[derive(Debug, PartialEq, Eq)]
enum Observation {
    Contents(Contents),
    ReadError(String),
}

/// The files' state across polls. A bad observation is reported only when
/// the next poll sees the same: a rotation caught between its writes (a new
/// certificate with the old key) is fixed by then and never reported.
#[derive(Debug)]
enum Seen {
    /// These contents are in force.
    Applied(Contents),
    /// Seen once, not usable, not reported yet.
    Pending(Observation),
    /// Seen twice, not usable, reported.
    Reported(Observation),
}

impl Reloader {
    /// Reads and checks the files (at start-up: an error is a configuration
    /// error).
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let contents = files.read()?;
        let loaded = contents.server_config(&files)?;
        log_loaded(&files, &loaded, "TLS enabled");
        Ok(Self {
            files,
            state: Arc::new(State {
                current: RwLock::new(loaded.config),
                seen: Mutex::new(Seen::Applied(contents)),
            }),
        })
    }

    /// Whether clients must present a certificate (mTLS).
    pub fn requires_client_cert(&self) -> bool {
        self.files.client_ca.is_some()
    }

    /// An acceptor with the configuration in force now.
    pub fn acceptor(&self) -> TlsAcceptor {
        let config = self
            .state
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        TlsAcceptor::from(Arc::clone(&config))
    }

    /// Reads the files again and applies them if they changed and are usable.
    pub fn reload(&self) -> Reload {
        let mut seen = self
            .state
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (observation, read_error) = match self.files.read() {
            Ok(contents) => (Observation::Contents(contents), None),
            Err(e) => (Observation::ReadError(e.to_string()), Some(e)),
        };
        match (&*seen, &observation) {
            (Seen::Applied(applied), Observation::Contents(read)) if applied == read => {
                return Reload::Unchanged
            }
            (Seen::Reported(reported), read) if reported == read => return Reload::Unchanged,
            _ => {}
        }
        let error = match (&observation, read_error) {
            (_, Some(e)) => e,
            (Observation::Contents(contents), None) => match contents.server_config(&self.files) {
                Ok(loaded) => {
                    log_loaded(&self.files, &loaded, "TLS files changed: reloaded");
                    *self
                        .state
                        .current
                        .write()
                        .unwrap_or_else(PoisonError::into_inner) = loaded.config;
                    *seen = Seen::Applied(contents.clone());
                    metrics().tls_reload("applied");
                    return Reload::Applied;
                }
                Err(e) => e,
            },
            (Observation::ReadError(_), None) => unreachable!("a read error comes with its error"),
        };
        if matches!(&*seen, Seen::Pending(o) if *o == observation) {
            *seen = Seen::Reported(observation);
            metrics().tls_reload("rejected");
            Reload::Rejected(error)
        } else {
            *seen = Seen::Pending(observation);
            Reload::Unchanged
        }
    }

    /// Checks the files every `interval` until `stop`.
    pub async fn watch(self, interval: Duration, stop: CancellationToken) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            if let Reload::Rejected(e) = self.reload() {
                tracing::warn!(error = %e, "TLS files changed but cannot be used; keeping the previous ones");
            }
        }
    }
}

fn log_loaded(files: &TlsFiles, loaded: &Loaded, message: &'static str) {
    let not_after = identity::not_after(&loaded.leaf);
    if let Some(secs) = not_after
        .and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_secs()).ok())
    {
        metrics().tls_certificate_expires(secs);
    }
    let expires_in_secs = not_after.map(|at| match at.duration_since(SystemTime::now()) {
        Ok(left) => i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
        Err(past) => -i64::try_from(past.duration().as_secs()).unwrap_or(i64::MAX),
    });
    let cert = files.cert.display().to_string();
    let mtls = files.client_ca.is_some();
    match expires_in_secs {
        Some(secs) if secs <= 0 => {
            tracing::warn!(%cert, mtls, expired_secs_ago = -secs, "{message}; the certificate has EXPIRED");
        }
        _ => tracing::info!(%cert, mtls, expires_in_secs, "{message}"),
    }
}
