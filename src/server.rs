//! The gRPC server: the verification service behind its middleware, plus
//! health (`grpc.health.v1`) and reflection (v1 and v1alpha), and the
//! graceful shutdown sequence.

use std::future::Future;

use tokio::net::TcpListener;
use tonic::{
    service::LayerExt as _,
    transport::{server::TcpIncoming, Server},
};
use tonic_health::ServingStatus;

use crate::{
    cognito::Cognito,
    config::ServeConfig,
    middleware,
    proto::{
        self, user_attribute_verification_service_server::UserAttributeVerificationServiceServer,
    },
    service::VerificationService,
};

type VerificationServer = UserAttributeVerificationServiceServer<VerificationService>;

/// Failure to serve.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Reflection could not load a descriptor set (a build defect).
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The server stopped with an error.
    #[error("server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves on `listener` until `shutdown` completes, then shuts down
/// gracefully:
///
/// 1. health turns NOT_SERVING (overall and per service) while the server
///    keeps serving for `shutdown_delay`, so that endpoints drop this replica;
/// 2. the listener closes and in-flight RPCs get `drain_timeout` to finish;
/// 3. returns (RPCs still running after the drain timeout are abandoned).
pub async fn run(
    listener: TcpListener,
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

    let verification = VerificationServer::new(VerificationService::new(cognito))
        .max_decoding_message_size(config.max_message_bytes as usize);
    let verification = middleware::layers(config).named_layer(verification);

    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "listening");
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // Our own listener (tests and `dev` bind port 0 first), so socket options
    // are set here: without TCP_NODELAY, HTTP/2 frames written apart wait for
    // the peer's delayed ACK (40 ms on Linux).
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let serve = Server::builder()
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(verification)
        .serve_with_incoming_shutdown(incoming, async {
            let _ = stop_rx.await;
        });
    tokio::pin!(serve);

    tokio::select! {
        result = &mut serve => return Ok(result?),
        () = shutdown => {}
    }
    tracing::info!(
        delay_secs = config.shutdown_delay_secs,
        "shutdown requested: health is NOT_SERVING"
    );
    health.set_not_serving::<VerificationServer>().await;
    health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    tokio::select! {
        result = &mut serve => return Ok(result?),
        () = tokio::time::sleep(config.shutdown_delay()) => {}
    }

    tracing::info!(
        drain_timeout_secs = config.drain_timeout_secs,
        "closing the listener; draining in-flight RPCs"
    );
    let _ = stop_tx.send(());
    match tokio::time::timeout(config.drain_timeout(), &mut serve).await {
        Ok(result) => {
            tracing::info!("drained; stopped");
            Ok(result?)
        }
        Err(_) => {
            tracing::warn!("drain timeout elapsed; abandoning the RPCs still in flight");
            Ok(())
        }
    }
}
