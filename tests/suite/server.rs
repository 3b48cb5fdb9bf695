//! Health, reflection, admission control and graceful shutdown.

use std::time::Duration;

use cognito_verify::proto::user_attribute_verification_service_client::UserAttributeVerificationServiceClient;
use serde_json::json;
use tonic::{transport::Channel, Code};
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};
use tonic_types::StatusExt;

use crate::common::{send_request, verify_request, Facade, Reply, ScriptedCognito, TOKEN};

const SERVICE: &str = "cognito.verify.v1.UserAttributeVerificationService";

async fn health(channel: Channel, service: &str) -> ServingStatus {
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner();
    response.status()
}

/// Waits until the scripted endpoint has received `n` requests.
async fn until_received(cognito: &ScriptedCognito, n: usize) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while cognito.requests().len() < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("requests reached Cognito");
}

#[tokio::test]
async fn health_reports_serving_overall_and_per_service() {
    let cognito = ScriptedCognito::start().await;
    let facade = Facade::start(&cognito.url, &[]).await;
    assert_eq!(
        health(facade.channel().await, "").await,
        ServingStatus::Serving
    );
    assert_eq!(
        health(facade.channel().await, SERVICE).await,
        ServingStatus::Serving
    );
    let unknown = HealthClient::new(facade.channel().await)
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    facade.shutdown().await;
}

/// One question to reflection v1 on `facade`; its answer.
async fn ask_v1(
    facade: &Facade,
    request: tonic_reflection::pb::v1::server_reflection_request::MessageRequest,
) -> Option<tonic_reflection::pb::v1::server_reflection_response::MessageResponse> {
    use tonic_reflection::pb::v1;
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut stream =
        v1::server_reflection_client::ServerReflectionClient::new(facade.channel().await)
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
    stream.message().await.unwrap().unwrap().message_response
}

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_the_services() {
    use tonic_reflection::pb::{v1, v1alpha};
    let cognito = ScriptedCognito::start().await;
    let facade = Facade::start(&cognito.url, &[]).await;

    let asked = ask_v1(
        &facade,
        v1::server_reflection_request::MessageRequest::ListServices(String::new()),
    )
    .await;
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) = asked
    else {
        panic!("not a service list")
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&SERVICE.to_owned()), "{names:?}");
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );

    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(format!(
                "{SERVICE}.VerifyUserAttribute"
            )),
        ),
    };
    let mut stream =
        v1alpha::server_reflection_client::ServerReflectionClient::new(facade.channel().await)
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
    let Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(files)) =
        stream.message().await.unwrap().unwrap().message_response
    else {
        panic!("not a file descriptor")
    };
    assert!(!files.file_descriptor_proto.is_empty());

    // The reasons' enum is served too, from its own file.
    let asked = ask_v1(
        &facade,
        v1::server_reflection_request::MessageRequest::FileContainingSymbol(
            "cognito.verify.v1.ErrorReason".to_owned(),
        ),
    )
    .await;
    let Some(v1::server_reflection_response::MessageResponse::FileDescriptorResponse(files)) =
        asked
    else {
        panic!("ErrorReason is not served")
    };
    let name = b"cognito/verify/v1/error_reason.proto";
    let names_it = |file: &Vec<u8>| file.windows(name.len()).any(|w| w == name);
    assert!(files.file_descriptor_proto.iter().any(names_it));
    facade.shutdown().await;
}

#[tokio::test]
async fn rate_limit_answers_with_the_exact_wait() {
    let cognito = ScriptedCognito::start().await;
    let facade = Facade::start(
        &cognito.url,
        &[
            "--verify-limit-per-sec",
            "1",
            "--get-code-limit-per-sec",
            "5",
        ],
    )
    .await;
    let mut client = facade.client().await;
    client
        .verify_user_attribute(verify_request(TOKEN, "email", "123456"))
        .await
        .unwrap();
    let status = client
        .verify_user_attribute(verify_request(TOKEN, "email", "123456"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    let details = status.get_error_details();
    let info = details.error_info().unwrap();
    assert_eq!(
        (info.reason.as_str(), info.domain.as_str()),
        ("RATE_LIMITED", "cognito-verify")
    );
    let wait = details
        .retry_info()
        .and_then(|r| r.retry_delay)
        .expect("RetryInfo");
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(1),
        "{wait:?}"
    );
    assert!(details.quota_failure().is_some());
    assert_eq!(
        cognito.requests().len(),
        1,
        "the limited call did not reach Cognito"
    );

    // The other RPC has its own limit; health is never limited.
    let get = send_request(TOKEN, "email");
    client
        .get_user_attribute_verification_code(get)
        .await
        .unwrap();
    for _ in 0..20 {
        assert_eq!(
            health(facade.channel().await, SERVICE).await,
            ServingStatus::Serving
        );
    }
    facade.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excess_concurrency_is_shed_and_service_recovers() {
    let cognito = ScriptedCognito::start().await;
    let facade = Facade::start(&cognito.url, &["--max-concurrent-rpcs", "2"]).await;
    for _ in 0..2 {
        cognito.push(Reply::ok(json!({})).after(Duration::from_millis(600)));
    }
    let mut in_flight = Vec::new();
    for _ in 0..2 {
        let mut client = facade.client().await;
        in_flight.push(tokio::spawn(async move {
            client
                .verify_user_attribute(verify_request(TOKEN, "email", "123456"))
                .await
        }));
    }
    until_received(&cognito, 2).await;

    let mut client = facade.client().await;
    let status = client
        .verify_user_attribute(verify_request(TOKEN, "email", "123456"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    let details = status.get_error_details();
    assert_eq!(details.error_info().unwrap().reason, "OVERLOADED");
    assert!(
        details.retry_info().is_some(),
        "shed before Cognito: retry is safe"
    );
    assert_eq!(
        health(facade.channel().await, SERVICE).await,
        ServingStatus::Serving
    );

    for call in in_flight {
        call.await.unwrap().expect("admitted calls complete");
    }
    client
        .verify_user_attribute(verify_request(TOKEN, "email", "123456"))
        .await
        .expect("recovered");
    assert_eq!(cognito.requests().len(), 3);
    facade.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_an_in_flight_rpc_finish() {
    let cognito = ScriptedCognito::start().await;
    let mut facade = Facade::start(&cognito.url, &["--drain-timeout-secs", "5"]).await;
    cognito.push(Reply::ok(json!({})).after(Duration::from_millis(700)));
    let mut client = facade.client().await;
    let call = tokio::spawn(async move {
        client
            .verify_user_attribute(verify_request(TOKEN, "email", "123456"))
            .await
    });
    until_received(&cognito, 1).await;
    facade.begin_shutdown();
    call.await
        .unwrap()
        .expect("the in-flight RPC finished during the drain");
    facade.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_delay_reports_not_serving_and_keeps_serving() {
    let cognito = ScriptedCognito::start().await;
    let mut facade = Facade::start(&cognito.url, &["--shutdown-delay-secs", "1"]).await;
    let channel = facade.channel().await;
    facade.begin_shutdown();
    tokio::time::timeout(Duration::from_secs(2), async {
        while health(channel.clone(), "").await != ServingStatus::NotServing {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("overall health turns NOT_SERVING");
    assert_eq!(
        health(channel.clone(), SERVICE).await,
        ServingStatus::NotServing
    );
    let mut client = UserAttributeVerificationServiceClient::new(channel);
    client
        .verify_user_attribute(verify_request(TOKEN, "email", "123456"))
        .await
        .expect("still serving during the delay");
    facade.shutdown().await;
}
