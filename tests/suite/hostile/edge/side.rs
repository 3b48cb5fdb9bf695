//! Health and reflection: never shed, but not open forever either, and
//! reflection only for listed callers.

use std::time::Duration;

use bytes::Bytes;
use prost::Message as _;
use tokio::time::Instant;
use tonic::Code;
use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
use tonic_reflection::pb::{v1, v1alpha};
use tonic_types::StatusExt as _;

use super::{outcome, streams_ended};
use crate::{
    common::{
        certs::{self, Ca, Name, TempDir},
        Facade, ScriptedCognito,
    },
    hostile::h2raw::{self, Conn},
};

const HEALTH_CHECK: &str = "/grpc.health.v1.Health/Check";
const HEALTH_WATCH: &str = "/grpc.health.v1.Health/Watch";
const REFLECTION_V1: &str = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";

/// A health Check that never sends its message, a Watch with a deadline and
/// a reflection stream left idle: each is ended with DEADLINE_EXCEEDED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_health_and_reflection_streams_are_ended() {
    let cognito = ScriptedCognito::start().await;
    let facade = Facade::start(
        &cognito.url,
        &[
            "--health-listen",
            "127.0.0.1:0",
            "--request-read-timeout-secs",
            "1",
        ],
    )
    .await;
    let before = streams_ended();
    let mut grpc = Conn::open(facade.addr).await;
    let mut health = Conn::open(facade.health.unwrap()).await;
    let started = Instant::now();

    // HEADERS only, on either port.
    let mut checks = [
        health.stream(HEALTH_CHECK, &[]).await,
        grpc.stream(HEALTH_CHECK, &[]).await,
    ];
    // A whole request (all that Watch reads), then the answers until the
    // deadline.
    let mut watch = grpc.stream(HEALTH_WATCH, &[("grpc-timeout", "2S")]).await;
    watch.body.send_data(h2raw::prefix(0), true).unwrap();
    // One question, answered, then nothing.
    let mut reflection = grpc.stream(REFLECTION_V1, &[]).await;
    let question = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    }
    .encode_to_vec();
    let mut framed = h2raw::prefix(question.len() as u32).to_vec();
    framed.extend_from_slice(&question);
    h2raw::send(&mut reflection.body, Bytes::from(framed))
        .await
        .unwrap();

    for check in &mut checks {
        let ended = outcome(check).await;
        assert_eq!(ended.code, Code::DeadlineExceeded, "{ended:?}");
        assert!(ended.at - started >= Duration::from_secs(1));
    }
    let ended = outcome(&mut watch).await;
    assert_eq!(ended.code, Code::DeadlineExceeded, "{ended:?}");
    assert!(ended.at - started >= Duration::from_secs(2));
    let ended = outcome(&mut reflection).await;
    assert_eq!(ended.code, Code::DeadlineExceeded, "{ended:?}");
    assert!(ended.at - started >= Duration::from_secs(1));

    let after = streams_ended();
    assert!(after.0 > before.0 && after.1 >= before.1 + 3, "{after:?}");
    facade.shutdown().await;
}

/// Reflection (v1 and v1alpha) answers listed callers only; health answers
/// every caller the TLS layer accepted.
#[tokio::test]
async fn reflection_answers_only_listed_callers() {
    const ALLOWED: &str = "spiffe://example.org/ns/shop/sa/checkout";
    let ca = Ca::new("server CA");
    let clients = Ca::new("client CA");
    let dir = TempDir::new();
    let mut flags = certs::write_server_files(&dir, &ca.server("server-1"), Some(&clients));
    flags.extend(["--allow-caller".to_owned(), ALLOWED.to_owned()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let cognito = ScriptedCognito::start().await;
    let facade = Facade::start(&cognito.url, &flags).await;

    let allowed = clients.client(Name::Uri(ALLOWED));
    let other = clients.client(Name::Uri("spiffe://example.org/ns/shop/sa/other"));
    for (leaf, admitted) in [(&allowed, true), (&other, false)] {
        let channel = certs::channel(facade.addr, &ca, Some(leaf)).await.unwrap();
        let v1 = v1::server_reflection_client::ServerReflectionClient::new(channel.clone())
            .server_reflection_info(tokio_stream::iter([v1::ServerReflectionRequest {
                host: String::new(),
                message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
                    String::new(),
                )),
            }]))
            .await;
        let v1alpha =
            v1alpha::server_reflection_client::ServerReflectionClient::new(channel.clone())
                .server_reflection_info(tokio_stream::iter([v1alpha::ServerReflectionRequest {
                    host: String::new(),
                    message_request: Some(
                        v1alpha::server_reflection_request::MessageRequest::ListServices(
                            String::new(),
                        ),
                    ),
                }]))
                .await;
        if admitted {
            let mut v1 = v1.unwrap().into_inner();
            assert!(v1.message().await.unwrap().is_some());
            let mut v1alpha = v1alpha.unwrap().into_inner();
            assert!(v1alpha.message().await.unwrap().is_some());
        } else {
            for status in [v1.unwrap_err(), v1alpha.unwrap_err()] {
                assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
                let info = status.get_error_details().error_info().unwrap().clone();
                assert_eq!(info.reason, "CALLER_NOT_ALLOWED");
                assert_eq!(
                    info.metadata.get("caller").map(String::as_str),
                    Some("spiffe://example.org/ns/shop/sa/other")
                );
            }
        }
        let health = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await;
        assert!(health.is_ok(), "health is open to every caller: {health:?}");
    }
    facade.shutdown().await;
}
