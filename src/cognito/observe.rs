//! What each Cognito call leaves behind: a client span (child of the RPC's
//! server span) with the OpenTelemetry conventions for AWS calls, the AWS
//! request id on both spans, the HTTP status read by an SDK interceptor, and
//! the call's metrics.

use std::time::Instant;

use aws_sdk_cognitoidentityprovider::{
    config::{
        interceptors::BeforeDeserializationInterceptorContextRef, ConfigBag, Intercept,
        RuntimeComponents,
    },
    error::BoxError,
};
use tracing::{field::Empty, Span};

use crate::{
    error::{Error, ErrorKind},
    middleware::trace::is_error_status,
    rpc::CognitoOperation,
    telemetry::{self, metrics::metrics},
};

tokio::task_local! {
    /// The client span of the call in progress on this task, for the
    /// interceptor (the SDK's own spans may be current when it runs).
    static CLIENT_SPAN: Span;
}

/// One Cognito call being observed.
pub struct Call {
    op: CognitoOperation,
    started: Instant,
    /// The RPC's server span, current when the call began.
    server: Span,
    /// The client span, or a disabled span when traces are off.
    client: Span,
}

impl Call {
    /// Starts observing a call of `op` to `region`.
    pub fn start(op: CognitoOperation, region: &str) -> Self {
        let client = if telemetry::traces_on() {
            tracing::info_span!(
                "cognito",
                otel.name = client_span_name(op),
                otel.kind = "client",
                otel.status_code = Empty,
                rpc.system = "aws-api",
                rpc.service = "CognitoIdentityProvider",
                rpc.method = op.as_str(),
                cloud.region = region,
                aws.request_id = Empty,
                http.response.status_code = Empty,
                error.type = Empty,
            )
        } else {
            Span::none()
        };
        Self {
            op,
            started: Instant::now(),
            server: Span::current(),
            client,
        }
    }

    /// Runs the SDK's future inside the client span, where the interceptor
    /// finds it.
    pub async fn run<F: std::future::Future>(&self, sdk_call: F) -> F::Output {
        let traced = tracing::Instrument::instrument(sdk_call, self.client.clone());
        if telemetry::traces_on() {
            CLIENT_SPAN.scope(self.client.clone(), traced).await
        } else {
            traced.await
        }
    }

    /// Records a success.
    pub fn succeeded(self, request_id: Option<&str>) {
        self.record_request_id(request_id);
        metrics().cognito_call(self.op, "ok", self.started);
    }

    /// Records a failure, already classified.
    pub fn failed(self, error: &Error) {
        let (outcome, request_id) = match &error.kind {
            ErrorKind::Cognito(c) => (c.code.as_str(), c.request_id.as_deref()),
            ErrorKind::Timeout { .. } => ("timeout", None),
            ErrorKind::Unreachable { .. } => ("unreachable", None),
            ErrorKind::UnparseableResponse { request_id, .. } => {
                ("unparseable_response", request_id.as_deref())
            }
            _ => ("internal", None),
        };
        self.record_request_id(request_id);
        self.client.record("error.type", outcome);
        if is_error_status(crate::status::code_of(error)) {
            self.client.record("otel.status_code", "ERROR");
        }
        metrics().cognito_call(self.op, outcome, self.started);
    }

    fn record_request_id(&self, id: Option<&str>) {
        if let Some(id) = id {
            self.server.record("aws.request_id", id);
            self.client.record("aws.request_id", id);
        }
    }
}

fn client_span_name(op: CognitoOperation) -> &'static str {
    match op {
        CognitoOperation::GetUserAttributeVerificationCode => {
            "CognitoIdentityProvider/GetUserAttributeVerificationCode"
        }
        CognitoOperation::VerifyUserAttribute => "CognitoIdentityProvider/VerifyUserAttribute",
        CognitoOperation::GetUser => "CognitoIdentityProvider/GetUser",
    }
}

/// Puts the HTTP status of Cognito's response on the client span.
#[derive(Debug)]
pub struct HttpStatusOnSpan;

impl Intercept for HttpStatusOnSpan {
    fn name(&self) -> &'static str {
        "HttpStatusOnSpan"
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let status = i64::from(context.response().status().as_u16());
        let _ = CLIENT_SPAN.try_with(|span| {
            span.record("http.response.status_code", status);
        });
        Ok(())
    }
}
