//! The floor to measure the facade against: a **minimal forwarder** for the
//! same proto. Its handler makes the same JSON 1.1 call to the same backend
//! with a bare hyper client: no AWS SDK, no middleware, no validation, no
//! logs. Not product code: the least "gRPC in, one HTTP call out" can cost
//! on this machine with the same crates (tonic's own server, hyper, tokio's
//! default runtime).
//!
//! It runs as its own process, like the facade, so that its CPU is measured
//! the same way: the bench binary re-executes itself with
//! `--floor ADDR BACKEND_URL` ([`serve_if_asked`]).

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use cognito_verify::{
    proto::user_attribute_verification_service_server::UserAttributeVerificationService,
    proto::user_attribute_verification_service_server::UserAttributeVerificationServiceServer,
    proto::CodeDeliveryDetails, proto::DeliveryMedium,
    proto::GetUserAttributeVerificationCodeRequest,
    proto::GetUserAttributeVerificationCodeResponse, proto::GetVerificationStatusRequest,
    proto::GetVerificationStatusResponse, proto::VerifyUserAttributeRequest,
    proto::VerifyUserAttributeResponse,
};
use http_body_util::{BodyExt as _, Full};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};
use serde_json::{json, Value};
use tonic::{Request, Response, Status};

use crate::procs::{self, Proc};

const TARGET_PREFIX: &str = "AWSCognitoIdentityProviderService.";

struct Floor {
    client: Client<HttpConnector, Full<Bytes>>,
    backend: http::Uri,
}

impl Floor {
    /// One JSON 1.1 call; the answer's JSON, or its `__type` as the status.
    async fn call(&self, operation: &str, body: Value) -> Result<Value, Status> {
        let request = http::Request::post(self.backend.clone())
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", format!("{TARGET_PREFIX}{operation}"))
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| Status::internal(e.to_string()))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let ok = response.status().is_success();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?
            .to_bytes();
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|e| Status::internal(e.to_string()))?;
        if ok {
            Ok(value)
        } else {
            let kind = value["__type"].as_str().unwrap_or("Unknown");
            Err(Status::invalid_argument(kind.to_owned()))
        }
    }
}

#[tonic::async_trait]
impl UserAttributeVerificationService for Floor {
    async fn get_user_attribute_verification_code(
        &self,
        request: Request<GetUserAttributeVerificationCodeRequest>,
    ) -> Result<Response<GetUserAttributeVerificationCodeResponse>, Status> {
        let request = request.into_inner();
        let answer = self
            .call(
                "GetUserAttributeVerificationCode",
                json!({"AccessToken": request.access_token, "AttributeName": request.attribute_name}),
            )
            .await?;
        let details = &answer["CodeDeliveryDetails"];
        let medium = match details["DeliveryMedium"].as_str() {
            Some("EMAIL") => DeliveryMedium::Email,
            Some("SMS") => DeliveryMedium::Sms,
            _ => DeliveryMedium::Unspecified,
        };
        Ok(Response::new(GetUserAttributeVerificationCodeResponse {
            code_delivery_details: Some(CodeDeliveryDetails {
                destination: details["Destination"].as_str().unwrap_or("").to_owned(),
                delivery_medium: medium.into(),
                attribute_name: details["AttributeName"].as_str().unwrap_or("").to_owned(),
            }),
        }))
    }

    async fn verify_user_attribute(
        &self,
        request: Request<VerifyUserAttributeRequest>,
    ) -> Result<Response<VerifyUserAttributeResponse>, Status> {
        let request = request.into_inner();
        self.call(
            "VerifyUserAttribute",
            json!({
                "AccessToken": request.access_token,
                "AttributeName": request.attribute_name,
                "Code": request.code,
            }),
        )
        .await?;
        Ok(Response::new(VerifyUserAttributeResponse {}))
    }

    /// The floor forwards the two calls the scenarios compare; the status
    /// RPC is measured against the facade alone (`sms.rs`).
    async fn get_verification_status(
        &self,
        _: Request<GetVerificationStatusRequest>,
    ) -> Result<Response<GetVerificationStatusResponse>, Status> {
        Err(Status::unimplemented(
            "the floor forwards the two verification calls only",
        ))
    }
}

/// When the bench binary was started as the floor (`--floor ADDR URL`),
/// serves until killed and never returns; otherwise returns at once.
pub fn serve_if_asked(args: &[String]) {
    let Some(at) = args.iter().position(|a| a == "--floor") else {
        return;
    };
    let addr: SocketAddr = args[at + 1].parse().expect("--floor ADDR");
    let backend: http::Uri = args[at + 2].parse().expect("--floor ADDR BACKEND_URL");
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(async move {
        let floor = Floor {
            client: Client::builder(TokioExecutor::new()).build_http(),
            backend,
        };
        tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(UserAttributeVerificationServiceServer::new(floor))
            .serve(addr)
            .await
            .expect("the floor serves");
    });
    std::process::exit(0);
}

/// Starts the floor in front of `backend_url`; the process and its address.
pub async fn start(backend_url: &str) -> (Proc, String) {
    let addr = format!("127.0.0.1:{}", procs::free_port());
    let exe = std::env::current_exe().expect("the bench binary");
    let proc = Proc::spawn_program(&exe, &["--floor", &addr, backend_url]);
    procs::wait_http(&addr).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    (proc, addr)
}
