//! The gRPC server: the verification service behind its middleware, plus
//! health (`grpc.health.v1`) and reflection (v1 and v1alpha, behind the
//! caller allowlist), each behind its own layers, on the gRPC port (TLS
//! when configured) and, optionally, health alone on a plaintext port for
//! kubelet probes; the admin (metrics) port; one descriptor budget for all
//! of their connections; and the graceful shutdown sequence.

use std::{future::Future, net::SocketAddr, time::Duration};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::{LayerExt as _, Routes};
use tonic_health::ServingStatus;

use crate::{
    cognito::Cognito,
    config::ServeConfig,
    middleware,
    proto::{
        self, user_attribute_verification_service_server::UserAttributeVerificationServiceServer,
    },
    service::{checks::Checks, VerificationService},
    telemetry::{admin, metrics::metrics},
    tls::{Reloader, TlsError, TlsFiles},
    transport::{self, ListenerCaps, MAX_HEADER_LIST_BYTES},
};

type VerificationServer = UserAttributeVerificationServiceServer<VerificationService>;

/// How long the plaintext health listener may take to close once the gRPC
/// port has drained.
const HEALTH_CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Failure to start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The TLS files are unusable: a configuration error.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Settings that do not fit together: a configuration error.
    #[error("{0}")]
    Config(String),
    /// An address cannot be bound.
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The reason.
        source: std::io::Error,
    },
}

/// Failure to serve.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Reflection could not load a descriptor set (a build defect).
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// The listeners and the TLS configuration, ready to serve. Binding comes
/// first so that tests and `dev` can bind port 0 and learn the address.
#[derive(Debug)]
pub struct Bound {
    checks: Checks,
    grpc: TcpListener,
    health: Option<TcpListener>,
    admin: Option<TcpListener>,
    tls: Option<Reloader>,
}

impl Bound {
    /// Loads the TLS files (if any) and binds the gRPC and health addresses.
    pub async fn bind(config: &ServeConfig) -> Result<Self, StartError> {
        config.tls.validate().map_err(StartError::Config)?;
        validate_request_budget(config).map_err(StartError::Config)?;
        let checks = Checks::from_config(config)
            .await
            .map_err(StartError::Config)?;
        if config.limits.limits_redis_url.is_some() {
            let limits = checks.limit_state().clone();
            metrics().limit_fallbacks_from(move || limits.fallbacks());
        }
        let limits = checks.limit_state().clone();
        metrics().sms_daily_from(config.sms.sms_daily_limit, move || limits.sms_today());
        let tls = TlsFiles::from_config(&config.tls)
            .map(Reloader::load)
            .transpose()?;
        let bind = |what, addr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { what, addr, source })
        };
        let grpc = bind("gRPC", config.listen).await?;
        let health = match config.health_listen.addr() {
            Some(addr) => Some(bind("health", addr).await?),
            None => None,
        };
        let admin = match config.telemetry.admin_listen.addr() {
            Some(addr) => Some(bind("admin", addr).await?),
            None => None,
        };
        Ok(Self {
            checks,
            grpc,
            health,
            admin,
            tls,
        })
    }

    /// The gRPC port's address.
    pub fn grpc_addr(&self) -> std::io::Result<SocketAddr> {
        self.grpc.local_addr()
    }

    /// The health listener's address, when there is one.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The admin (metrics) listener's address, when there is one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }
}

/// The request budget must hold one largest request, or such a request
/// could never be served.
fn validate_request_budget(config: &ServeConfig) -> Result<(), String> {
    let largest = u64::from(config.max_message_bytes)
        + middleware::intake::PREFIX_BYTES as u64
        + u64::from(MAX_HEADER_LIST_BYTES);
    let budget = config.connections.max_buffered_request_bytes;
    if budget < largest {
        return Err(format!(
            "--max-buffered-request-bytes ({budget}) must hold one largest request: --max-message-bytes ({}) plus {} bytes of prefix and headers",
            config.max_message_bytes,
            largest - u64::from(config.max_message_bytes)
        ));
    }
    Ok(())
}

/// Serves until `shutdown` completes, then shuts down gracefully:
///
/// 1. health turns NOT_SERVING (overall and per service, on both listeners)
///    while the server keeps serving for `shutdown_delay`, so that endpoints
///    drop this replica;
/// 2. the listener closes, every connection gets a GOAWAY, and in-flight
///    RPCs get `drain_timeout` to finish;
/// 3. returns (connections still open after the drain timeout are closed).
pub async fn run(
    bound: Bound,
    config: &ServeConfig,
    cognito: Cognito,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<VerificationServer>().await;

    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            // So that clients can decode the error details we send.
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    // grpcurl before 1.8.8, grpcui, Postman and evans speak only v1alpha.
    let reflection_v1alpha = reflection().build_v1alpha()?;

    let service = VerificationService::new(cognito, bound.checks);
    let rpc_tasks = service.tasks();
    let verification = VerificationServer::new(service)
        .max_decoding_message_size(config.max_message_bytes as usize);
    let verification = middleware::layers(config).named_layer(verification);
    let health_layers = || middleware::health_layers(config);
    let reflection_layers = || middleware::reflection_layers(config);
    let routes = Routes::new(health_layers().named_layer(health_service.clone()))
        .add_service(reflection_layers().named_layer(reflection_v1))
        .add_service(reflection_layers().named_layer(reflection_v1alpha))
        .add_service(verification)
        .prepare();

    let caps = transport::fit_open_file_limit(ListenerCaps {
        grpc: config.connections.max_connections,
        health: bound
            .health
            .is_some()
            .then_some(transport::HEALTH_MAX_CONNECTIONS),
        admin: bound.admin.is_some().then_some(admin::MAX_CONNECTIONS),
    });
    let stop_watching = CancellationToken::new();
    // Dropped with `run`'s future, these stop the watcher and the admin
    // listener too.
    let _watching = stop_watching.clone().drop_guard();
    if let Some(tls) = &bound.tls {
        let interval = Duration::from_secs(config.tls.tls_reload_interval_secs);
        tokio::spawn(tls.clone().watch(interval, stop_watching.clone()));
    }
    if let Ok(address) = bound.grpc.local_addr() {
        let tls = bound.tls.is_some();
        let mtls = bound
            .tls
            .as_ref()
            .is_some_and(Reloader::requires_client_cert);
        tracing::info!(%address, tls, mtls, "listening");
    }
    let grpc = transport::Server::start(
        bound.grpc,
        bound.tls,
        routes,
        transport::Settings {
            max_connections: caps.grpc,
            ..transport::Settings::from_config(&config.connections)
        },
    );
    let health_listener = bound.health.map(|listener| {
        if let Ok(address) = listener.local_addr() {
            tracing::info!(%address, "health listening (plaintext, grpc.health.v1 only)");
        }
        transport::Server::start(
            listener,
            None,
            Routes::new(health_layers().named_layer(health_service)).prepare(),
            transport::Settings {
                max_connections: caps.health.unwrap_or(transport::HEALTH_MAX_CONNECTIONS),
                ..transport::Settings::health(&config.connections)
            },
        )
    });

    let stop_admin = CancellationToken::new();
    let _admin_running = stop_admin.clone().drop_guard();
    let admin = bound.admin.map(|listener| {
        if let Ok(address) = listener.local_addr() {
            tracing::info!(%address, "admin listening (GET /metrics)");
        }
        let stop = stop_admin.clone();
        tokio::spawn(admin::serve(
            listener,
            caps.admin.unwrap_or(admin::MAX_CONNECTIONS),
            async move { stop.cancelled().await },
        ))
    });

    shutdown.await;
    tracing::info!(
        delay_secs = config.shutdown_delay_secs,
        "shutdown requested: health is NOT_SERVING"
    );
    health.set_not_serving::<VerificationServer>().await;
    health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    tokio::time::sleep(config.shutdown_delay()).await;

    tracing::info!(
        drain_timeout_secs = config.drain_timeout_secs,
        "closing the listener; draining in-flight RPCs"
    );
    let drain_started = tokio::time::Instant::now();
    let connections_drained = grpc.shutdown(config.drain_timeout()).await;
    // The work of RPCs whose callers left (their Cognito calls) finishes too,
    // within what is left of the drain.
    rpc_tasks.close();
    let left = config
        .drain_timeout()
        .saturating_sub(drain_started.elapsed());
    let tasks_done = tokio::time::timeout(left, rpc_tasks.wait()).await.is_ok();
    if connections_drained && tasks_done {
        tracing::info!("drained; stopped");
    } else {
        tracing::warn!("drain timeout elapsed; closed the connections still open");
    }
    if let Some(health_listener) = health_listener {
        health_listener.shutdown(HEALTH_CLOSE_TIMEOUT).await;
    }
    // Metrics stay scrapable through the drain.
    stop_admin.cancel();
    if let Some(admin) = admin {
        let _ = admin.await;
    }
    stop_watching.cancel();
    Ok(())
}
