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
    /// What was last read, usable or not, so that a bad file is reported
    /// once and not on every poll.
    seen: Mutex<Seen>,
}

#[derive(Debug)]
enum Seen {
    Contents(Contents),
    ReadError(String),
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
                seen: Mutex::new(Seen::Contents(contents)),
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
        let contents = match self.files.read() {
            Ok(contents) => contents,
            Err(e) => {
                let message = e.to_string();
                if matches!(&*seen, Seen::ReadError(m) if *m == message) {
                    return Reload::Unchanged;
                }
                *seen = Seen::ReadError(message);
                return Reload::Rejected(e);
            }
        };
        if matches!(&*seen, Seen::Contents(c) if *c == contents) {
            return Reload::Unchanged;
        }
        let result = contents.server_config(&self.files);
        *seen = Seen::Contents(contents);
        match result {
            Ok(loaded) => {
                log_loaded(&self.files, &loaded, "TLS files changed: reloaded");
                *self
                    .state
                    .current
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = loaded.config;
                Reload::Applied
            }
            Err(e) => Reload::Rejected(e),
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
