//! The one place where errors become gRPC statuses. `docs/errors.md` is
//! this mapping written as a table, row by row; the test in
//! `status/table_tests.rs` fails when the two disagree.
//!
//! Every status carries a `google.rpc.ErrorInfo`: a stable UPPER_SNAKE
//! `reason` (a value of the contract's enum `ErrorReason`, but for a Cognito
//! type this build does not know: see [`reason_for`]), the domain [`COGNITO_DOMAIN`] for errors Cognito returned and
//! [`SERVICE_DOMAIN`] for the service's own, and metadata `operation`,
//! `awsErrorCode`, `awsRequestId` (when known) and `reasonCode` (when Cognito
//! sent one). Client-correctable errors carry Cognito's message; server-side
//! errors carry a generic message, and their detail is logged here instead.

use std::{borrow::Cow, collections::HashMap, time::Duration};

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    auth::TokenRejection,
    error::{CognitoError, Error, ErrorKind},
    limits::Limit,
    telemetry::{
        metrics::metrics,
        throttle::{Throttle, WARN_INTERVAL},
    },
};

/// `ErrorInfo.domain` of errors that came from Cognito.
pub const COGNITO_DOMAIN: &str = "cognito-idp.amazonaws.com";
/// `ErrorInfo.domain` of the service's own errors.
pub const SERVICE_DOMAIN: &str = "cognito-verify";
/// Retry delay advised when this replica sheds load.
pub const OVERLOAD_RETRY_DELAY: Duration = Duration::from_millis(100);
/// Retry delay advised when the shared limits cannot decide.
pub const LIMITS_RETRY_DELAY: Duration = Duration::from_secs(1);
/// Retry delay advised while a duplicate send is in progress.
pub const IN_PROGRESS_RETRY_DELAY: Duration = Duration::from_millis(500);
/// Least retry delay advised when a pool's signing keys cannot be had.
pub const KEYS_MIN_RETRY_DELAY: Duration = Duration::from_secs(1);

/// How a Cognito error type is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Cognito's message goes to the caller.
    PassMessage(Code),
    /// A generic message goes to the caller; the detail is logged.
    Generic(Code, &'static str),
}

/// Cognito's error types and how each is answered: the first table of
/// `docs/errors.md`. A type not listed is answered [`UNKNOWN_TYPE`].
#[rustfmt::skip]
const COGNITO_TYPES: &[(&str, Answer)] = &{
    use Answer::*;
    const UNDELIVERED: Answer =
        Generic(Code::Unavailable, "Cognito could not deliver the message or run its trigger");
    const MISCONFIGURED: Answer = Generic(Code::Internal, "the user pool is misconfigured");
    [
        ("CodeMismatchException",                    PassMessage(Code::InvalidArgument)),
        ("InvalidParameterException",                PassMessage(Code::InvalidArgument)),
        ("ExpiredCodeException",                     PassMessage(Code::FailedPrecondition)),
        ("UserNotConfirmedException",                PassMessage(Code::FailedPrecondition)),
        ("PasswordResetRequiredException",           PassMessage(Code::FailedPrecondition)),
        ("OperationNotEnabledException",             PassMessage(Code::FailedPrecondition)),
        ("UserLambdaValidationException",            PassMessage(Code::FailedPrecondition)),
        ("NotAuthorizedException",                   PassMessage(Code::Unauthenticated)),
        ("ForbiddenException",                       PassMessage(Code::PermissionDenied)),
        ("UserNotFoundException",                    PassMessage(Code::NotFound)),
        ("ResourceNotFoundException",                PassMessage(Code::NotFound)),
        ("AliasExistsException",                     PassMessage(Code::AlreadyExists)),
        ("TooManyRequestsException",                 PassMessage(Code::ResourceExhausted)),
        ("LimitExceededException",                   PassMessage(Code::ResourceExhausted)),
        ("CodeDeliveryFailureException",             UNDELIVERED),
        ("UnexpectedLambdaException",                UNDELIVERED),
        ("InternalErrorException",                   Generic(Code::Internal, "Cognito reported an internal error")),
        ("InvalidSmsRoleAccessPolicyException",      MISCONFIGURED),
        ("InvalidSmsRoleTrustRelationshipException", MISCONFIGURED),
        ("InvalidEmailRoleAccessPolicyException",    MISCONFIGURED),
        ("InvalidLambdaResponseException",           MISCONFIGURED),
    ]
};

/// How a Cognito error type this build does not know is answered.
const UNKNOWN_TYPE: Answer = Answer::Generic(
    Code::Unknown,
    "Cognito returned an error this service does not know",
);

/// Cognito error type → how it is answered.
fn answer_for(code: &str) -> Answer {
    COGNITO_TYPES
        .iter()
        .find(|(ty, _)| *ty == code)
        .map_or(UNKNOWN_TYPE, |(_, answer)| *answer)
}

/// `CodeMismatchException` → `CODE_MISMATCH`: the type without its
/// `Exception` suffix, in UPPER_SNAKE. Stable for a given Cognito type.
pub fn reason_for(code: &str) -> String {
    let base = code.strip_suffix("Exception").unwrap_or(code);
    let mut out = String::with_capacity(base.len() + 4);
    let mut prev_lower = false;
    for c in base.chars().filter(|c| c.is_ascii_alphanumeric()) {
        if c.is_ascii_uppercase() && prev_lower {
            out.push('_');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(c.to_ascii_uppercase());
    }
    if is_aip193_reason(&out) {
        out
    } else {
        // A type name that cannot make a valid reason (no letters to start
        // with, one character, or too long) gets one stable reason instead.
        "UNKNOWN_COGNITO_ERROR".to_owned()
    }
}

/// AIP-193's form of `ErrorInfo.reason`: `[A-Z][A-Z0-9_]+[A-Z0-9]`, at most
/// 63 characters.
pub fn is_aip193_reason(reason: &str) -> bool {
    let b = reason.as_bytes();
    (3..=63).contains(&b.len())
        && b[0].is_ascii_uppercase()
        && b[b.len() - 1] != b'_'
        && b.iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_')
}

/// The gRPC code an error is answered with (the first column of the table).
pub fn code_of(err: &Error) -> Code {
    match &err.kind {
        ErrorKind::InvalidRequest(_) => Code::InvalidArgument,
        ErrorKind::MissingToken => Code::Unauthenticated,
        ErrorKind::Cognito(c) => match answer_for(&c.code) {
            Answer::PassMessage(code) | Answer::Generic(code, _) => code,
        },
        ErrorKind::Unreachable { .. } => Code::Unavailable,
        ErrorKind::Timeout { .. } => Code::DeadlineExceeded,
        ErrorKind::UnparseableResponse {
            http_status: Some(500..=599),
            ..
        } => Code::Unavailable,
        ErrorKind::UnparseableResponse { .. } | ErrorKind::Internal { .. } => Code::Internal,
        ErrorKind::Limited { .. } | ErrorKind::Overloaded { .. } => Code::ResourceExhausted,
        ErrorKind::CallerNotAllowed { .. } => Code::PermissionDenied,
        ErrorKind::SmsCountryNotAllowed { .. } => Code::FailedPrecondition,
        ErrorKind::Token(_) => Code::Unauthenticated,
        ErrorKind::LimitsUnavailable | ErrorKind::KeysUnavailable { .. } => Code::Unavailable,
        ErrorKind::RequestInProgress => Code::Aborted,
        ErrorKind::MessageTooLarge { .. } | ErrorKind::RequestBufferFull { .. } => {
            Code::ResourceExhausted
        }
        ErrorKind::RequestReadTimeout { .. } | ErrorKind::DeadlineExceeded => {
            Code::DeadlineExceeded
        }
    }
}

/// `ErrorInfo.reason` of an error.
pub fn reason_of(kind: &ErrorKind) -> Cow<'static, str> {
    Cow::Borrowed(match kind {
        ErrorKind::InvalidRequest(_) => "INVALID_FIELD",
        ErrorKind::MissingToken => "MISSING_ACCESS_TOKEN",
        ErrorKind::Cognito(c) => return Cow::Owned(reason_for(&c.code)),
        ErrorKind::Unreachable { .. } => "COGNITO_UNREACHABLE",
        ErrorKind::Timeout { .. } => "COGNITO_TIMEOUT",
        ErrorKind::UnparseableResponse { .. } => "UNPARSEABLE_RESPONSE",
        ErrorKind::Internal { .. } => "INTERNAL",
        ErrorKind::Limited { limit, .. } => limit.reason(),
        ErrorKind::Overloaded { .. } => "OVERLOADED",
        ErrorKind::CallerNotAllowed { .. } => "CALLER_NOT_ALLOWED",
        ErrorKind::SmsCountryNotAllowed { .. } => "SMS_COUNTRY_NOT_ALLOWED",
        ErrorKind::Token(rejection) => rejection.reason(),
        ErrorKind::LimitsUnavailable => "LIMITS_UNAVAILABLE",
        ErrorKind::RequestInProgress => "REQUEST_IN_PROGRESS",
        ErrorKind::KeysUnavailable { .. } => "SIGNING_KEYS_UNAVAILABLE",
        ErrorKind::MessageTooLarge { .. } => "MESSAGE_TOO_LARGE",
        // The same advice as shedding: this replica is full, retry shortly.
        ErrorKind::RequestBufferFull { .. } => "OVERLOADED",
        ErrorKind::RequestReadTimeout { .. } => "REQUEST_READ_TIMEOUT",
        ErrorKind::DeadlineExceeded => "DEADLINE_EXCEEDED",
    })
}

/// The `reason` label of `cognito_verify_rejected_total` for calls the
/// service refused itself, before Cognito; `None` for every other error.
pub fn rejection_of(kind: &ErrorKind) -> Option<&'static str> {
    match kind {
        ErrorKind::InvalidRequest(_) => Some("invalid_request"),
        ErrorKind::MissingToken => Some("missing_token"),
        ErrorKind::Limited { limit, .. } => Some(limit_label(*limit)),
        ErrorKind::Overloaded { .. } => Some("overloaded"),
        ErrorKind::CallerNotAllowed { .. } => Some("caller_not_allowed"),
        ErrorKind::SmsCountryNotAllowed { .. } => Some("sms_country_not_allowed"),
        ErrorKind::Token(rejection) => Some(token_label(*rejection)),
        ErrorKind::LimitsUnavailable => Some("limits_unavailable"),
        ErrorKind::RequestInProgress => Some("request_in_progress"),
        ErrorKind::Timeout { budget } if budget.is_zero() => Some("deadline_too_short"),
        ErrorKind::KeysUnavailable { .. } => Some("keys_unavailable"),
        ErrorKind::MessageTooLarge { .. } => Some("message_too_large"),
        ErrorKind::RequestBufferFull { .. } => Some("request_buffer_full"),
        ErrorKind::RequestReadTimeout { .. } => Some("request_read_timeout"),
        _ => None,
    }
}

/// The `reason` label of a limit's refusals.
fn limit_label(limit: Limit) -> &'static str {
    match limit {
        Limit::SendCooldown => "send_cooldown",
        Limit::UserSendQuota => "user_send_quota",
        Limit::UserVerifyQuota => "user_verify_quota",
        Limit::CallerRate => "caller_rate_limited",
        Limit::RpcRate(_) => "rate_limited",
        Limit::SmsDaily => "sms_daily_limit",
        Limit::SmsPrefix => "sms_prefix_limit",
    }
}

/// The `reason` label of a token rejection.
fn token_label(rejection: TokenRejection) -> &'static str {
    match rejection {
        TokenRejection::Malformed => "malformed_token",
        TokenRejection::Expired => "token_expired",
        TokenRejection::NotAnAccessToken => "not_an_access_token",
        TokenRejection::MissingScope => "missing_scope",
        TokenRejection::IssuerNotAllowed => "issuer_not_allowed",
        TokenRejection::BadSignature => "bad_signature",
        TokenRejection::UnknownPool => "unknown_user_pool",
    }
}

/// The AWS request id of an error, when Cognito sent one.
pub fn request_id_of(kind: &ErrorKind) -> Option<&str> {
    match kind {
        ErrorKind::Cognito(c) => c.request_id.as_deref(),
        ErrorKind::UnparseableResponse { request_id, .. } => request_id.as_deref(),
        _ => None,
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        let code = code_of(&err);
        let reason = reason_of(&err.kind).into_owned();
        if let Some(rejection) = rejection_of(&err.kind) {
            metrics().rejected(rejection);
        }
        let operation = err.operation.as_str();
        let mut metadata = HashMap::from([("operation".to_owned(), operation.to_owned())]);
        let mut details = ErrorDetails::new();
        let (message, domain) = match err.kind {
            ErrorKind::InvalidRequest(v) => {
                let message = format!("invalid {}: {}", v.field, v.description);
                details.add_bad_request_violation(v.field, v.description);
                (message, SERVICE_DOMAIN)
            }
            ErrorKind::MissingToken => (
                "an access token is required: set access_token or send `authorization: Bearer <token>` metadata".to_owned(),
                SERVICE_DOMAIN,
            ),
            ErrorKind::Cognito(c) => {
                let message = cognito(operation, &c, &mut details);
                metadata.insert("awsErrorCode".to_owned(), c.code.clone());
                insert_opt(&mut metadata, "awsRequestId", c.request_id);
                insert_opt(&mut metadata, "reasonCode", c.reason_code);
                (message, COGNITO_DOMAIN)
            }
            ErrorKind::Unreachable { detail } => {
                static UNREACHABLE: Throttle = Throttle::new(WARN_INTERVAL);
                if let Some(suppressed) = UNREACHABLE.due() {
                    tracing::error!(operation, error = %detail, suppressed, "Cognito unreachable");
                }
                ("Cognito is unreachable".to_owned(), SERVICE_DOMAIN)
            }
            ErrorKind::Timeout { budget } => (
                if budget.is_zero() {
                    "the call's deadline left no time to call Cognito".to_owned()
                } else {
                    format!("Cognito did not answer within {} ms", budget.as_millis())
                },
                SERVICE_DOMAIN,
            ),
            ErrorKind::UnparseableResponse { http_status, request_id, detail } => {
                static UNPARSEABLE: Throttle = Throttle::new(WARN_INTERVAL);
                if let Some(suppressed) = UNPARSEABLE.due() {
                    tracing::error!(operation, http_status, aws.request_id = request_id.as_deref(), error = %detail, suppressed, "unparseable Cognito response");
                }
                insert_opt(&mut metadata, "awsRequestId", request_id);
                if let Some(s) = http_status {
                    metadata.insert("httpStatus".to_owned(), s.to_string());
                }
                ("Cognito's response could not be understood".to_owned(), SERVICE_DOMAIN)
            }
            ErrorKind::Internal { detail } => {
                static INTERNAL: Throttle = Throttle::new(WARN_INTERVAL);
                if let Some(suppressed) = INTERNAL.due() {
                    tracing::error!(operation, error = %detail, suppressed, "internal error");
                }
                ("internal error".to_owned(), SERVICE_DOMAIN)
            }
            ErrorKind::Limited { limit, wait, description } => {
                // Nothing reached Cognito: a retry after the wait is safe.
                details.set_retry_info(Some(wait));
                details.add_quota_failure_violation(limit.subject(), description.clone());
                let message = format!(
                    "{description}: retry in {} ms",
                    wait.as_millis().max(1)
                );
                (message, SERVICE_DOMAIN)
            }
            ErrorKind::Token(rejection) => (rejection.message().to_owned(), SERVICE_DOMAIN),
            ErrorKind::LimitsUnavailable => {
                details.set_retry_info(Some(LIMITS_RETRY_DELAY));
                (
                    "the service's limits cannot be decided right now; nothing was sent".to_owned(),
                    SERVICE_DOMAIN,
                )
            }
            ErrorKind::RequestInProgress => {
                // The first call's answer will be stored: retrying with the
                // same request_id returns it, without sending again.
                details.set_retry_info(Some(IN_PROGRESS_RETRY_DELAY));
                (
                    "a send with this request_id is still in progress; retry with the same request_id".to_owned(),
                    SERVICE_DOMAIN,
                )
            }
            ErrorKind::SmsCountryNotAllowed { country } => {
                // The same number will be refused again: no RetryInfo.
                let message = format!(
                    "verification codes are not sent by SMS to numbers of country {country}; nothing was sent"
                );
                metadata.insert("country".to_owned(), country);
                (message, SERVICE_DOMAIN)
            }
            ErrorKind::CallerNotAllowed { caller } => {
                let message = match &caller {
                    Some(id) => format!("caller {id:?} is not allowed to call this service"),
                    None => "the client certificate names no caller identity, and only listed callers are allowed".to_owned(),
                };
                insert_opt(&mut metadata, "caller", caller);
                (message, SERVICE_DOMAIN)
            }
            ErrorKind::Overloaded { max_concurrent } => {
                details.set_retry_info(Some(OVERLOAD_RETRY_DELAY));
                details.add_quota_failure_violation(
                    "rpc:in-flight",
                    format!("at most {max_concurrent} calls in flight per replica"),
                );
                ("too many calls in flight; retry shortly".to_owned(), SERVICE_DOMAIN)
            }
            ErrorKind::KeysUnavailable { retry_after } => {
                // Nothing reached Cognito: a retry once a fetch may be tried
                // again is safe.
                details.set_retry_info(Some(retry_after.max(KEYS_MIN_RETRY_DELAY)));
                (
                    "the signing keys of the token's user pool cannot be fetched right now, so the token cannot be verified; nothing was sent".to_owned(),
                    SERVICE_DOMAIN,
                )
            }
            ErrorKind::MessageTooLarge { max_bytes } => {
                // The same message will be refused again: no RetryInfo.
                details.add_quota_failure_violation(
                    "rpc:message-bytes",
                    format!("at most {max_bytes} bytes per request message"),
                );
                (
                    format!("the request message is larger than {max_bytes} bytes"),
                    SERVICE_DOMAIN,
                )
            }
            ErrorKind::RequestBufferFull { budget_bytes } => {
                details.set_retry_info(Some(OVERLOAD_RETRY_DELAY));
                details.add_quota_failure_violation(
                    "rpc:buffered-request-bytes",
                    format!(
                        "at most {budget_bytes} bytes of requests held per replica, an eighth of it per connection"
                    ),
                );
                (
                    "too many request bytes held on this replica or connection; retry shortly"
                        .to_owned(),
                    SERVICE_DOMAIN,
                )
            }
            ErrorKind::RequestReadTimeout { timeout } => (
                format!(
                    "the request message did not arrive within {} ms; nothing was sent",
                    timeout.as_millis()
                ),
                SERVICE_DOMAIN,
            ),
            ErrorKind::DeadlineExceeded => (
                "the call's deadline (grpc-timeout) passed before it was answered".to_owned(),
                SERVICE_DOMAIN,
            ),
        };
        details.set_error_info(reason, domain, metadata);
        Status::with_error_details(code, message, details)
    }
}

/// The message and extra details of a Cognito error.
fn cognito(operation: &str, err: &CognitoError, details: &mut ErrorDetails) -> String {
    // Cognito's message, or its error type when the message is absent or
    // blank: a status never goes out with an empty message.
    let message = err
        .message
        .as_deref()
        .filter(|m| !m.trim().is_empty())
        .map_or_else(|| err.code.clone(), str::to_owned);
    match answer_for(&err.code) {
        Answer::PassMessage(_) => {
            match err.code.as_str() {
                "CodeMismatchException" => {
                    details.add_bad_request_violation("code", message.clone());
                }
                // Cognito asks to slow down: a retry after a pause is safe.
                "TooManyRequestsException" => {
                    details.set_retry_info(Some(err.throttle_retry_delay));
                }
                // A per-user attempt limit: retrying soon cannot succeed, so
                // there is no RetryInfo.
                "LimitExceededException" => {
                    details.add_quota_failure_violation(
                        format!("cognito:{operation}"),
                        message.clone(),
                    );
                }
                _ => {}
            }
            tracing::debug!(operation, aws.error_code = %err.code, aws.request_id = err.request_id.as_deref(), "Cognito rejected the call");
            message
        }
        Answer::Generic(_, generic) => {
            // One line per interval carries the detail (every call still
            // has its own RPC line with the code).
            static FAILED: Throttle = Throttle::new(WARN_INTERVAL);
            if let Some(suppressed) = FAILED.due() {
                tracing::error!(
                    operation,
                    aws.error_code = %err.code,
                    aws.request_id = err.request_id.as_deref(),
                    error = %err.detail,
                    suppressed,
                    "Cognito call failed",
                );
            }
            generic.to_owned()
        }
    }
}

fn insert_opt(map: &mut HashMap<String, String>, key: &str, value: Option<String>) {
    if let Some(v) = value {
        map.insert(key.to_owned(), v);
    }
}

#[cfg(test)]
mod table_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_upper_snake_without_suffix() {
        assert_eq!(reason_for("CodeMismatchException"), "CODE_MISMATCH");
        assert_eq!(
            reason_for("InvalidSmsRoleAccessPolicyException"),
            "INVALID_SMS_ROLE_ACCESS_POLICY"
        );
        assert_eq!(reason_for("NotAuthorizedException"), "NOT_AUTHORIZED");
        assert_eq!(reason_for("SomethingNew2Exception"), "SOMETHING_NEW2");
        assert_eq!(reason_for("Exception"), "UNKNOWN_COGNITO_ERROR");
    }

    #[test]
    fn unknown_types_are_unknown() {
        assert_eq!(
            answer_for("BrandNewException"),
            Answer::Generic(
                Code::Unknown,
                "Cognito returned an error this service does not know"
            )
        );
        assert_eq!(
            answer_for("ExpiredCodeException"),
            Answer::PassMessage(Code::FailedPrecondition)
        );
    }
}
