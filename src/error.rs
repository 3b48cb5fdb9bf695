//! The service's one error type. Each failure is created as a typed value
//! where it happens (validation, the Cognito client, the middleware) and is
//! turned into a gRPC status in exactly one place, [`crate::status`].

use std::time::Duration;

use crate::{auth::TokenRejection, limits::Limit};
// Kept here too: the operation is part of every error.
pub use crate::rpc::Operation;

/// A request field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The proto field, e.g. `attribute_name`.
    pub field: &'static str,
    /// What is wrong with it, in words a caller can act on.
    pub description: String,
}

impl FieldViolation {
    /// A violation of `field`.
    pub fn new(field: &'static str, description: impl Into<String>) -> Self {
        Self {
            field,
            description: description.into(),
        }
    }
}

/// An error Cognito returned, told apart by its type (`x-amzn-ErrorType` or
/// `__type`), never by HTTP status.
#[derive(Debug, Clone)]
pub struct CognitoError {
    /// The error type without namespace or suffix, e.g. `CodeMismatchException`.
    pub code: String,
    /// Cognito's message, if any.
    pub message: Option<String>,
    /// `reasonCode` of an InvalidParameterException.
    pub reason_code: Option<String>,
    /// `x-amzn-RequestId`, if sent.
    pub request_id: Option<String>,
    /// The retry delay to advise if this is a throttling error.
    pub throttle_retry_delay: Duration,
    /// The full error chain, for the log only.
    pub detail: String,
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// A request field is invalid; Cognito was not called.
    #[error("invalid {}: {}", .0.field, .0.description)]
    InvalidRequest(FieldViolation),
    /// Neither the field nor the metadata carried an access token.
    #[error("no access token")]
    MissingToken,
    /// Cognito answered with an error.
    #[error("Cognito returned {}", .0.code)]
    Cognito(Box<CognitoError>),
    /// Cognito could not be reached (connection refused, DNS, TLS, reset).
    #[error("Cognito unreachable: {detail}")]
    Unreachable {
        /// The transport error chain, for the log.
        detail: String,
    },
    /// The Cognito call did not finish within its time budget.
    #[error("Cognito call exceeded its {budget:?} budget")]
    Timeout {
        /// The time the call had: the configured timeout or what remained of
        /// the caller's deadline.
        budget: Duration,
    },
    /// Cognito's answer could not be understood (e.g. an HTML error page).
    #[error("unparseable Cognito response (HTTP {http_status:?}): {detail}")]
    UnparseableResponse {
        /// The HTTP status of the response, if one arrived.
        http_status: Option<u16>,
        /// `x-amzn-RequestId`, if sent.
        request_id: Option<String>,
        /// The parse error chain, for the log.
        detail: String,
    },
    /// The SDK could not build the request: a bug or a misconfiguration.
    #[error("internal: {detail}")]
    Internal {
        /// The error chain, for the log.
        detail: String,
    },
    /// The token failed the local check; Cognito was not called.
    #[error("token rejected: {}", .0.reason())]
    Token(TokenRejection),
    /// A limit refused the call; Cognito was not called.
    #[error("limited by {}", .limit.reason())]
    Limited {
        /// Which limit.
        limit: Limit,
        /// The earliest time the call would be admitted.
        wait: Duration,
        /// The limit in words, for `QuotaFailure`.
        description: String,
    },
    /// The SMS guard refused a code to a number outside the allowed
    /// countries (`--sms-allow-country`, mode `enforce`); nothing was sent.
    #[error("SMS to country {country} not allowed")]
    SmsCountryNotAllowed {
        /// ISO 3166-1 alpha-2, or `unknown`.
        country: String,
    },
    /// The shared limits (Redis) could not decide, and the failure mode is
    /// `deny`; Cognito was not called.
    #[error("limits unavailable")]
    LimitsUnavailable,
    /// A send with the same `request_id` is in progress and did not finish
    /// within this call's deadline.
    #[error("request in progress")]
    RequestInProgress,
    /// The caller's client certificate is not on `--allow-caller`.
    #[error("caller not allowed")]
    CallerNotAllowed {
        /// The caller's identity, when its certificate names one.
        caller: Option<String>,
    },
    /// Too many RPCs in flight: shed before doing any work.
    #[error("overloaded")]
    Overloaded {
        /// The configured concurrency bound.
        max_concurrent: u32,
    },
    /// The signing keys of the token's user pool cannot be had right now
    /// (the key set cannot be fetched, or fetches are rationed): the token
    /// could not be verified, so Cognito was not called.
    #[error("signing keys unavailable")]
    KeysUnavailable {
        /// When a new fetch may be tried.
        retry_after: Duration,
    },
    /// The request message is larger than `--max-message-bytes`; refused
    /// before it was buffered.
    #[error("message too large")]
    MessageTooLarge {
        /// The configured bound, in bytes.
        max_bytes: u32,
    },
    /// The replica's budget of buffered request bytes is spent; refused
    /// before the message was buffered.
    #[error("request buffer full")]
    RequestBufferFull {
        /// The configured budget, in bytes.
        budget_bytes: u64,
    },
    /// The request message did not arrive in full within the read timeout.
    #[error("request read timed out")]
    RequestReadTimeout {
        /// The configured read timeout.
        timeout: Duration,
    },
    /// The caller's own deadline (`grpc-timeout`) passed before the call was
    /// answered.
    #[error("deadline exceeded")]
    DeadlineExceeded,
}

/// An error of one operation.
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", .operation.as_str())]
pub struct Error {
    /// Which RPC.
    pub operation: Operation,
    /// What went wrong.
    pub kind: ErrorKind,
}

impl Error {
    /// An error of `operation`.
    pub fn new(operation: Operation, kind: ErrorKind) -> Self {
        Self { operation, kind }
    }
}
