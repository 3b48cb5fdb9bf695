//! AWS JSON 1.1 as Cognito speaks it: `POST /` with
//! `X-Amz-Target: AWSCognitoIdentityProviderService.<Operation>`, bodies in
//! `application/x-amz-json-1.1`; errors as HTTP 400 (500 for
//! InternalErrorException) with `x-amzn-ErrorType: <Type>:`,
//! `x-amzn-ErrorMessage`, `x-amzn-RequestId` and `{"__type","message"}`.

use axum::{
    http::{HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{json, Value};

/// The prefix of every Cognito target.
pub const TARGET_PREFIX: &str = "AWSCognitoIdentityProviderService.";
/// Cognito's content type.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// Cognito's answer to too many code requests or wrong codes.
pub const ATTEMPT_LIMIT: &str = "Attempt limit exceeded, please try after some time.";

/// An error as Cognito returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// e.g. `CodeMismatchException`.
    pub error_type: String,
    /// Cognito's message; `None` sends no message member.
    pub message: Option<String>,
    /// 400, or 500 for InternalErrorException (fault injection may choose).
    pub status: StatusCode,
}

impl ApiError {
    /// An error of `error_type` with `message`, at Cognito's HTTP status.
    pub fn new(error_type: &str, message: impl Into<String>) -> Self {
        let status = if error_type == "InternalErrorException" {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::BAD_REQUEST
        };
        Self {
            error_type: error_type.to_owned(),
            message: Some(message.into()),
            status,
        }
    }

    /// NotAuthorizedException.
    pub fn not_authorized(message: &str) -> Self {
        Self::new("NotAuthorizedException", message)
    }

    /// InvalidParameterException.
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterException", message)
    }

    /// LimitExceededException with Cognito's message.
    pub fn attempt_limit() -> Self {
        Self::new("LimitExceededException", ATTEMPT_LIMIT)
    }

    /// What Cognito answers to a target it does not know.
    pub fn unknown_operation() -> Self {
        Self {
            error_type: "UnknownOperationException".into(),
            message: None,
            status: StatusCode::BAD_REQUEST,
        }
    }

    /// The HTTP response, tagged with `request_id`.
    pub fn into_response(self, request_id: &str) -> Response {
        let body = match &self.message {
            Some(m) => json!({"__type": self.error_type, "message": m}),
            None => json!({"__type": self.error_type}),
        };
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert("content-type", HeaderValue::from_static(CONTENT_TYPE));
        if let Ok(v) = HeaderValue::from_str(&format!("{}:", self.error_type)) {
            headers.insert("x-amzn-errortype", v);
        }
        if let Some(Ok(v)) = self.message.as_deref().map(HeaderValue::from_str) {
            headers.insert("x-amzn-errormessage", v);
        }
        insert_request_id(&mut response, request_id);
        response
    }
}

/// A successful answer.
pub fn ok(body: &Value, request_id: &str) -> Response {
    let mut response = (StatusCode::OK, body.to_string()).into_response();
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static(CONTENT_TYPE));
    insert_request_id(&mut response, request_id);
    response
}

fn insert_request_id(response: &mut Response, request_id: &str) {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-amzn-requestid", v);
    }
}
