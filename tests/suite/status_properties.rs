//! Properties of the one mapping from errors to gRPC statuses (`src/status.rs`)
//! over every `ErrorKind`, with arbitrary Cognito error types, messages and
//! strings wherever a kind carries data: the code matches the error
//! table (docs/errors.md) and is never OK, there is exactly one `ErrorInfo` with a
//! stable UPPER_SNAKE reason, `RetryInfo` appears only on the table's rows
//! with retry advice, and no token, code or server-side detail reaches the
//! caller.

use std::{
    collections::{BTreeSet, HashMap},
    time::Duration,
};

use cognito_verify::{
    convert, proto::GetUserAttributeVerificationCodeRequest, CognitoError, Error, ErrorKind,
    FieldViolation, Limit, Operation, TokenRejection, COGNITO_DOMAIN, IN_PROGRESS_RETRY_DELAY,
    KEYS_MIN_RETRY_DELAY, LIMITS_RETRY_DELAY, OVERLOAD_RETRY_DELAY, SERVICE_DOMAIN,
};
use proptest::{prelude::*, sample::select, strategy::ValueTree as _};
use prost::Message as _;
use tonic::{metadata::MetadataValue, Code, Request, Status};
use tonic_types::{ErrorDetail, ErrorDetails, RetryInfo, StatusExt};

use crate::common::{send_request, verify_request};

/// The rows of docs/errors.md for Cognito's error types: type, gRPC code, `reason`,
/// whether Cognito's message reaches the caller (else a generic one), and
/// whether `RetryInfo` is sent (the only retry advice a status carries).
#[rustfmt::skip]
const COGNITO_TABLE: &[(&str, Code, &str, bool, bool)] = &[
    ("CodeMismatchException", Code::InvalidArgument, "CODE_MISMATCH", true, false),
    ("InvalidParameterException", Code::InvalidArgument, "INVALID_PARAMETER", true, false),
    ("ExpiredCodeException", Code::FailedPrecondition, "EXPIRED_CODE", true, false),
    ("UserNotConfirmedException", Code::FailedPrecondition, "USER_NOT_CONFIRMED", true, false),
    ("PasswordResetRequiredException", Code::FailedPrecondition, "PASSWORD_RESET_REQUIRED", true, false),
    ("OperationNotEnabledException", Code::FailedPrecondition, "OPERATION_NOT_ENABLED", true, false),
    ("UserLambdaValidationException", Code::FailedPrecondition, "USER_LAMBDA_VALIDATION", true, false),
    ("NotAuthorizedException", Code::Unauthenticated, "NOT_AUTHORIZED", true, false),
    ("ForbiddenException", Code::PermissionDenied, "FORBIDDEN", true, false),
    ("UserNotFoundException", Code::NotFound, "USER_NOT_FOUND", true, false),
    ("ResourceNotFoundException", Code::NotFound, "RESOURCE_NOT_FOUND", true, false),
    ("AliasExistsException", Code::AlreadyExists, "ALIAS_EXISTS", true, false),
    ("TooManyRequestsException", Code::ResourceExhausted, "TOO_MANY_REQUESTS", true, true),
    ("LimitExceededException", Code::ResourceExhausted, "LIMIT_EXCEEDED", true, false),
    ("CodeDeliveryFailureException", Code::Unavailable, "CODE_DELIVERY_FAILURE", false, false),
    ("UnexpectedLambdaException", Code::Unavailable, "UNEXPECTED_LAMBDA", false, false),
    ("InternalErrorException", Code::Internal, "INTERNAL_ERROR", false, false),
    ("InvalidSmsRoleAccessPolicyException", Code::Internal, "INVALID_SMS_ROLE_ACCESS_POLICY", false, false),
    ("InvalidSmsRoleTrustRelationshipException", Code::Internal, "INVALID_SMS_ROLE_TRUST_RELATIONSHIP", false, false),
    ("InvalidEmailRoleAccessPolicyException", Code::Internal, "INVALID_EMAIL_ROLE_ACCESS_POLICY", false, false),
    ("InvalidLambdaResponseException", Code::Internal, "INVALID_LAMBDA_RESPONSE", false, false),
];

/// The rows of docs/errors.md for token rejections: all UNAUTHENTICATED, no retry advice.
const TOKEN_TABLE: &[(TokenRejection, &str)] = &[
    (TokenRejection::Malformed, "MALFORMED_TOKEN"),
    (TokenRejection::Expired, "TOKEN_EXPIRED"),
    (TokenRejection::NotAnAccessToken, "NOT_AN_ACCESS_TOKEN"),
    (TokenRejection::MissingScope, "MISSING_SCOPE"),
    (TokenRejection::IssuerNotAllowed, "ISSUER_NOT_ALLOWED"),
    (TokenRejection::BadSignature, "BAD_SIGNATURE"),
    (TokenRejection::UnknownPool, "UNKNOWN_USER_POOL"),
];

/// The rows of docs/errors.md for the limits: RESOURCE_EXHAUSTED with RetryInfo (the
/// exact wait) and QuotaFailure.
const LIMIT_TABLE: &[(Limit, &str)] = &[
    (Limit::SendCooldown, "SEND_COOLDOWN"),
    (Limit::UserSendQuota, "USER_SEND_QUOTA"),
    (Limit::UserVerifyQuota, "USER_VERIFY_QUOTA"),
    (Limit::CallerRate, "CALLER_RATE_LIMITED"),
    (
        Limit::RpcRate(Operation::GetUserAttributeVerificationCode),
        "RATE_LIMITED",
    ),
    (
        Limit::RpcRate(Operation::VerifyUserAttribute),
        "RATE_LIMITED",
    ),
    (
        Limit::RpcRate(Operation::GetVerificationStatus),
        "RATE_LIMITED",
    ),
    (Limit::SmsDaily, "SMS_DAILY_LIMIT"),
    (Limit::SmsPrefix, "SMS_PREFIX_LIMIT"),
];

/// Fields a `BadRequest` may name.
const FIELDS: &[&str] = &[
    "access_token",
    "authorization",
    "attribute_name",
    "code",
    "client_metadata",
    "request_id",
];

/// A recipe for an `ErrorKind` (which is not `Clone`), so that one kind can
/// be built twice and compared with its expected row.
#[derive(Debug, Clone)]
enum Spec {
    InvalidRequest(&'static str, String),
    MissingToken,
    Cognito(CognitoSpec),
    Unreachable(String),
    Timeout(Duration),
    Unparseable(Option<u16>, Option<String>, String),
    Internal(String),
    Token(TokenRejection),
    Limited(Limit, Duration, String),
    LimitsUnavailable,
    RequestInProgress,
    CallerNotAllowed(Option<String>),
    SmsCountryNotAllowed(String),
    Overloaded(u32),
    KeysUnavailable(Duration),
    MessageTooLarge(u32),
    RequestBufferFull(u64),
    RequestReadTimeout(Duration),
    DeadlineExceeded,
}

#[derive(Debug, Clone)]
struct CognitoSpec {
    code: String,
    message: Option<String>,
    reason_code: Option<String>,
    request_id: Option<String>,
    throttle: Duration,
    detail: String,
}

impl Spec {
    fn kind(&self) -> ErrorKind {
        match self.clone() {
            Spec::InvalidRequest(field, description) => {
                ErrorKind::InvalidRequest(FieldViolation::new(field, description))
            }
            Spec::MissingToken => ErrorKind::MissingToken,
            Spec::Cognito(c) => ErrorKind::Cognito(Box::new(CognitoError {
                code: c.code,
                message: c.message,
                reason_code: c.reason_code,
                request_id: c.request_id,
                throttle_retry_delay: c.throttle,
                detail: c.detail,
            })),
            Spec::Unreachable(detail) => ErrorKind::Unreachable { detail },
            Spec::Timeout(budget) => ErrorKind::Timeout { budget },
            Spec::Unparseable(http_status, request_id, detail) => ErrorKind::UnparseableResponse {
                http_status,
                request_id,
                detail,
            },
            Spec::Internal(detail) => ErrorKind::Internal { detail },
            Spec::Token(rejection) => ErrorKind::Token(rejection),
            Spec::Limited(limit, wait, description) => ErrorKind::Limited {
                limit,
                wait,
                description,
            },
            Spec::LimitsUnavailable => ErrorKind::LimitsUnavailable,
            Spec::RequestInProgress => ErrorKind::RequestInProgress,
            Spec::CallerNotAllowed(caller) => ErrorKind::CallerNotAllowed { caller },
            Spec::SmsCountryNotAllowed(country) => ErrorKind::SmsCountryNotAllowed { country },
            Spec::Overloaded(max_concurrent) => ErrorKind::Overloaded { max_concurrent },
            Spec::KeysUnavailable(retry_after) => ErrorKind::KeysUnavailable { retry_after },
            Spec::MessageTooLarge(max_bytes) => ErrorKind::MessageTooLarge { max_bytes },
            Spec::RequestBufferFull(budget_bytes) => ErrorKind::RequestBufferFull { budget_bytes },
            Spec::RequestReadTimeout(timeout) => ErrorKind::RequestReadTimeout { timeout },
            Spec::DeadlineExceeded => ErrorKind::DeadlineExceeded,
        }
    }

    /// The row of docs/errors.md: gRPC code, `reason` (`None`: the Cognito type in
    /// UPPER_SNAKE), and the retry delay advised, if any.
    fn expected(&self) -> (Code, Option<&'static str>, Option<Duration>) {
        match self {
            Spec::InvalidRequest(..) => (Code::InvalidArgument, Some("INVALID_FIELD"), None),
            Spec::MissingToken => (Code::Unauthenticated, Some("MISSING_ACCESS_TOKEN"), None),
            Spec::Cognito(c) => match cognito_row(&c.code) {
                Some(&(_, code, reason, _, retry)) => {
                    (code, Some(reason), retry.then_some(c.throttle))
                }
                None => (Code::Unknown, None, None),
            },
            Spec::Unreachable(_) => (Code::Unavailable, Some("COGNITO_UNREACHABLE"), None),
            Spec::Timeout(_) => (Code::DeadlineExceeded, Some("COGNITO_TIMEOUT"), None),
            Spec::Unparseable(Some(500..=599), ..) => {
                (Code::Unavailable, Some("UNPARSEABLE_RESPONSE"), None)
            }
            Spec::Unparseable(..) => (Code::Internal, Some("UNPARSEABLE_RESPONSE"), None),
            // Not a row of docs/errors.md (an SDK build failure: a bug).
            Spec::Internal(_) => (Code::Internal, Some("INTERNAL"), None),
            Spec::Token(rejection) => {
                let reason = TOKEN_TABLE.iter().find(|(r, _)| r == rejection).unwrap().1;
                (Code::Unauthenticated, Some(reason), None)
            }
            Spec::Limited(limit, wait, _) => {
                let reason = LIMIT_TABLE.iter().find(|(l, _)| l == limit).unwrap().1;
                (Code::ResourceExhausted, Some(reason), Some(*wait))
            }
            Spec::LimitsUnavailable => (
                Code::Unavailable,
                Some("LIMITS_UNAVAILABLE"),
                Some(LIMITS_RETRY_DELAY),
            ),
            Spec::RequestInProgress => (
                Code::Aborted,
                Some("REQUEST_IN_PROGRESS"),
                Some(IN_PROGRESS_RETRY_DELAY),
            ),
            Spec::CallerNotAllowed(_) => (Code::PermissionDenied, Some("CALLER_NOT_ALLOWED"), None),
            Spec::SmsCountryNotAllowed(_) => (
                Code::FailedPrecondition,
                Some("SMS_COUNTRY_NOT_ALLOWED"),
                None,
            ),
            Spec::Overloaded(_) => (
                Code::ResourceExhausted,
                Some("OVERLOADED"),
                Some(OVERLOAD_RETRY_DELAY),
            ),
            Spec::KeysUnavailable(retry_after) => (
                Code::Unavailable,
                Some("SIGNING_KEYS_UNAVAILABLE"),
                Some((*retry_after).max(KEYS_MIN_RETRY_DELAY)),
            ),
            Spec::MessageTooLarge(_) => (Code::ResourceExhausted, Some("MESSAGE_TOO_LARGE"), None),
            Spec::RequestBufferFull(_) => (
                Code::ResourceExhausted,
                Some("OVERLOADED"),
                Some(OVERLOAD_RETRY_DELAY),
            ),
            Spec::RequestReadTimeout(_) => {
                (Code::DeadlineExceeded, Some("REQUEST_READ_TIMEOUT"), None)
            }
            Spec::DeadlineExceeded => (Code::DeadlineExceeded, Some("DEADLINE_EXCEEDED"), None),
        }
    }

    /// Text that must never reach the caller: server-side details, and the
    /// message of a Cognito error answered with a generic one.
    fn hidden(&self) -> Vec<&str> {
        match self {
            Spec::Cognito(c) => {
                let mut hidden = vec![c.detail.as_str()];
                if !cognito_row(&c.code).is_some_and(|row| row.3) {
                    hidden.extend(c.message.as_deref());
                }
                hidden
            }
            Spec::Unreachable(detail)
            | Spec::Internal(detail)
            | Spec::Unparseable(_, _, detail) => {
                vec![detail.as_str()]
            }
            _ => Vec::new(),
        }
    }
}

/// The name of an `ErrorKind`'s variant. The match is exhaustive on purpose:
/// a new variant does not compile here until `Spec` and the tables cover it.
fn variant(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest(_) => "InvalidRequest",
        ErrorKind::MissingToken => "MissingToken",
        ErrorKind::Cognito(_) => "Cognito",
        ErrorKind::Unreachable { .. } => "Unreachable",
        ErrorKind::Timeout { .. } => "Timeout",
        ErrorKind::UnparseableResponse { .. } => "UnparseableResponse",
        ErrorKind::Internal { .. } => "Internal",
        ErrorKind::Token(_) => "Token",
        ErrorKind::Limited { .. } => "Limited",
        ErrorKind::LimitsUnavailable => "LimitsUnavailable",
        ErrorKind::RequestInProgress => "RequestInProgress",
        ErrorKind::CallerNotAllowed { .. } => "CallerNotAllowed",
        ErrorKind::SmsCountryNotAllowed { .. } => "SmsCountryNotAllowed",
        ErrorKind::Overloaded { .. } => "Overloaded",
        ErrorKind::KeysUnavailable { .. } => "KeysUnavailable",
        ErrorKind::MessageTooLarge { .. } => "MessageTooLarge",
        ErrorKind::RequestBufferFull { .. } => "RequestBufferFull",
        ErrorKind::RequestReadTimeout { .. } => "RequestReadTimeout",
        ErrorKind::DeadlineExceeded => "DeadlineExceeded",
    }
}

fn cognito_row(code: &str) -> Option<&'static (&'static str, Code, &'static str, bool, bool)> {
    COGNITO_TABLE.iter().find(|row| row.0 == code)
}

fn status(operation: Operation, spec: &Spec) -> Status {
    Status::from(Error::new(operation, spec.kind()))
}

/// `UPPER_SNAKE_CASE`: upper-case words of letters and digits joined by `_`.
fn is_upper_snake(s: &str) -> bool {
    !s.is_empty()
        && s.split('_').all(|word| {
            !word.is_empty()
                && word
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        })
}

/// AIP-193's `[A-Z][A-Z0-9_]+[A-Z0-9]`, at most 63 characters: what every
/// reason must look like, whatever Cognito sent.
fn is_aip193_reason(s: &str) -> bool {
    is_upper_snake(s)
        && s.starts_with(|c: char| c.is_ascii_uppercase())
        && (3..=63).contains(&s.len())
}

/// A secret marker: long and random enough never to occur in a fixed text.
fn marker() -> impl Strategy<Value = String> {
    "[a-z]{6}[0-9]{6}[A-Z]{6}"
}

/// Arbitrary text, often containing a marker.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        (any::<String>(), marker(), any::<String>()).prop_map(|(a, m, b)| format!("{a}{m}{b}")),
    ]
}

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0u64..100_000).prop_map(Duration::from_millis),
        (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
    ]
}

fn cognito_type() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(COGNITO_TABLE).prop_map(|row| row.0.to_owned()),
        2 => "[A-Z][A-Za-z0-9]{0,30}Exception",
        1 => "[A-Za-z][A-Za-z0-9]{0,30}",
        // Names no reason can be made from as they are.
        1 => "[0-9][A-Za-z0-9]{0,5}(Exception)?",
        1 => "[A-Z][a-z]{60,90}Exception",
        1 => any::<String>(),
    ]
}

fn spec_code(spec: &Spec) -> &str {
    match spec {
        Spec::Cognito(c) => &c.code,
        _ => unreachable!("a Cognito spec"),
    }
}

fn operation() -> impl Strategy<Value = Operation> {
    select(Operation::ALL.to_vec())
}

fn spec() -> impl Strategy<Value = Spec> {
    let cognito = (
        cognito_type(),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(text()),
        duration(),
        text(),
    )
        .prop_map(
            |(code, message, reason_code, request_id, throttle, detail)| {
                Spec::Cognito(CognitoSpec {
                    code,
                    message,
                    reason_code,
                    request_id,
                    throttle,
                    detail,
                })
            },
        );
    prop_oneof![
        1 => (select(FIELDS), text()).prop_map(|(f, d)| Spec::InvalidRequest(f, d)),
        1 => Just(Spec::MissingToken),
        4 => cognito,
        1 => text().prop_map(Spec::Unreachable),
        1 => duration().prop_map(Spec::Timeout),
        1 => (
            proptest::option::of(prop_oneof![any::<u16>(), 400u16..600]),
            proptest::option::of(text()),
            text()
        )
            .prop_map(|(s, r, d)| Spec::Unparseable(s, r, d)),
        1 => text().prop_map(Spec::Internal),
        1 => select(TOKEN_TABLE).prop_map(|(r, _)| Spec::Token(r)),
        1 => (select(LIMIT_TABLE), duration(), text()).prop_map(|((l, _), w, d)| Spec::Limited(l, w, d)),
        1 => Just(Spec::LimitsUnavailable),
        1 => Just(Spec::RequestInProgress),
        1 => proptest::option::of(text()).prop_map(Spec::CallerNotAllowed),
        1 => prop_oneof![Just("FR".to_owned()), Just("unknown".to_owned())].prop_map(Spec::SmsCountryNotAllowed),
        1 => any::<u32>().prop_map(Spec::Overloaded),
        1 => duration().prop_map(Spec::KeysUnavailable),
        1 => any::<u32>().prop_map(Spec::MessageTooLarge),
        1 => any::<u64>().prop_map(Spec::RequestBufferFull),
        1 => duration().prop_map(Spec::RequestReadTimeout),
        1 => Just(Spec::DeadlineExceeded),
    ]
}

/// Every `ErrorInfo` in the status's details, counted on the wire (every
/// `Any` of that type) and decoded.
fn error_infos(status: &Status) -> Vec<tonic_types::ErrorInfo> {
    let raw = tonic_types::Status::decode(status.details()).expect("google.rpc.Status");
    let on_wire = raw
        .details
        .iter()
        .filter(|any| any.type_url == tonic_types::ErrorInfo::TYPE_URL)
        .count();
    let decoded: Vec<_> = status
        .check_error_details_vec()
        .expect("details decode")
        .into_iter()
        .filter_map(|d| match d {
            ErrorDetail::ErrorInfo(info) => Some(info),
            _ => None,
        })
        .collect();
    assert_eq!(on_wire, decoded.len());
    decoded
}

/// The status's message and every string of its details, for leak checks.
fn caller_visible(status: &Status) -> String {
    format!("{} {:?}", status.message(), status.get_error_details_vec())
}

proptest! {
    // Failures print their minimal input; nothing is written next to tests/.
    #![proptest_config(ProptestConfig {
        cases: 2048,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Code, reason, domain and retry advice are docs/errors.md's, for any data.
    #[test]
    fn every_kind_maps_to_its_row(operation in operation(), spec in spec()) {
        let status = status(operation, &spec);
        let (code, reason, retry) = spec.expected();
        prop_assert_ne!(status.code(), Code::Ok);
        prop_assert_eq!(status.code(), code, "{:?}", status);
        match &spec {
            // Cognito's message (its type when it sent none or a blank one)
            // goes through as is.
            Spec::Cognito(c) if cognito_row(&c.code).is_some_and(|row| row.3) => {
                let sent = c.message.as_deref().filter(|m| !m.trim().is_empty());
                prop_assert_eq!(status.message(), sent.unwrap_or(&c.code));
            }
            _ => prop_assert!(!status.message().is_empty(), "{:?}", spec),
        }

        let infos = error_infos(&status);
        prop_assert_eq!(infos.len(), 1, "exactly one ErrorInfo: {:?}", status);
        let info = &infos[0];
        prop_assert!(is_aip193_reason(&info.reason), "reason {:?}", info.reason);
        if let Some(reason) = reason {
            prop_assert_eq!(&info.reason, reason);
        }
        let domain = if matches!(spec, Spec::Cognito(_)) { COGNITO_DOMAIN } else { SERVICE_DOMAIN };
        prop_assert_eq!(&info.domain, domain);
        prop_assert_eq!(info.metadata.get("operation").map(String::as_str), Some(operation.as_str()));

        let details = status.get_error_details();
        let advised = details.retry_info().map(|r| r.retry_delay);
        let expected = retry.map(|d| Some(d.min(RetryInfo::MAX_RETRY_DELAY)));
        prop_assert_eq!(advised, expected, "RetryInfo of {:?}", spec);
    }

    /// The same kind always gets the same reason and code.
    #[test]
    fn reasons_are_stable(operation in operation(), spec in spec(), other in operation()) {
        let first = status(operation, &spec);
        let second = status(other, &spec);
        prop_assert_eq!(first.code(), second.code());
        prop_assert_eq!(&error_infos(&first)[0].reason, &error_infos(&second)[0].reason);
    }

    /// A Cognito type's reason depends on the type alone, not on the message,
    /// request id or anything else Cognito sent.
    #[test]
    fn cognito_reason_depends_on_the_type_only(a in spec(), b in spec()) {
        if let (Spec::Cognito(a), Spec::Cognito(mut b)) = (a, b) {
            b.code.clone_from(&a.code);
            let op = Operation::VerifyUserAttribute;
            let (sa, sb) = (status(op, &Spec::Cognito(a)), status(op, &Spec::Cognito(b)));
            prop_assert_eq!(sa.code(), sb.code());
            prop_assert_eq!(&error_infos(&sa)[0].reason, &error_infos(&sb)[0].reason);
        }
    }

    /// Error types shaped like Cognito's keep their name in the reason: the
    /// type without `Exception`, in UPPER_SNAKE.
    #[test]
    fn cognito_shaped_types_name_their_reason(code in "[A-Z][A-Za-z0-9]{2,30}Exception") {
        let spec = Spec::Cognito(CognitoSpec {
            code, message: None, reason_code: None, request_id: None,
            throttle: Duration::ZERO, detail: String::new(),
        });
        let status = status(Operation::GetUserAttributeVerificationCode, &spec);
        let reason = error_infos(&status)[0].reason.clone();
        prop_assert!(is_aip193_reason(&reason), "{}", reason);
        let name = spec_code(&spec).strip_suffix("Exception").unwrap().to_ascii_uppercase();
        prop_assert_eq!(reason.replace('_', ""), name);
    }

    /// Server-side details never reach the caller, nor a Cognito message that
    /// the table answers with a generic one.
    #[test]
    fn hidden_text_stays_hidden(operation in operation(), spec in spec()) {
        let visible = caller_visible(&status(operation, &spec));
        for hidden in spec.hidden() {
            // Only text that no fixed message could contain by chance.
            if hidden.len() >= 18 {
                prop_assert!(!visible.contains(hidden), "{:?} leaked into {}", hidden, visible);
            }
        }
    }

    /// A token or code a caller sent never appears in the status for a
    /// rejected request, wherever it was sent and whatever was wrong.
    #[test]
    fn tokens_and_codes_never_echo(
        secret in marker(),
        token_extra in "[ +/!é]?[A-Za-z0-9]{0,8}",
        code_extra in "[ \t]?[0-9]{0,4}",
        attribute in prop_oneof![Just("email".to_owned()), any::<String>()],
        in_metadata in any::<bool>(),
        scheme in select(vec!["Bearer ", "bearer  ", "Basic ", "Bearer"]),
        verify in any::<bool>(),
        request_id in prop_oneof![Just(String::new()), any::<String>()],
    ) {
        let token = format!("{secret}{token_extra}");
        let code = format!("{}{code_extra}", secret.to_uppercase());
        let field = if in_metadata { String::new() } else { token.clone() };
        let header = MetadataValue::try_from(format!("{scheme}{token}")).ok();
        let result = if verify {
            let mut request = Request::new(verify_request(&field, &attribute, &code));
            if let (true, Some(h)) = (in_metadata, header) {
                request.metadata_mut().insert("authorization", h);
            }
            convert::verify_code(request).map(drop).map_err(|k| (Operation::VerifyUserAttribute, k))
        } else {
            let mut request = Request::new(GetUserAttributeVerificationCodeRequest {
                client_metadata: HashMap::from([(secret.clone(), code.clone())]),
                request_id,
                ..send_request(&field, &attribute)
            });
            if let (true, Some(h)) = (in_metadata, header) {
                request.metadata_mut().insert("authorization", h);
            }
            convert::send_code(request).map(drop).map_err(|k| (Operation::GetUserAttributeVerificationCode, k))
        };
        if let Err((operation, kind)) = result {
            let status = Status::from(Error::new(operation, kind));
            prop_assert!(matches!(status.code(), Code::InvalidArgument | Code::Unauthenticated));
            let visible = caller_visible(&status);
            prop_assert!(!visible.contains(&secret), "secret in {}", visible);
            prop_assert!(!visible.contains(&secret.to_uppercase()), "code in {}", visible);
        }
    }
}

/// Every fixed reason of the tables is AIP-193 shaped, and the table's
/// reasons are what `status` sends (a plain test: the rows are finite).
#[test]
fn table_rows_are_exact() {
    for &(code_name, code, reason, passes, retry) in COGNITO_TABLE {
        assert!(is_aip193_reason(reason), "{reason}");
        let spec = Spec::Cognito(CognitoSpec {
            code: code_name.to_owned(),
            message: Some(format!("cognito says {code_name}")),
            reason_code: None,
            request_id: Some("req-1".to_owned()),
            throttle: Duration::from_millis(1500),
            detail: "detail".to_owned(),
        });
        let status = status(Operation::VerifyUserAttribute, &spec);
        assert_eq!(status.code(), code, "{code_name}");
        assert_eq!(error_infos(&status)[0].reason, reason);
        assert_eq!(
            status.message() == format!("cognito says {code_name}"),
            passes,
            "{code_name}: {}",
            status.message()
        );
        let details: ErrorDetails = status.get_error_details();
        assert_eq!(details.retry_info().is_some(), retry, "{code_name}");
        let info = &error_infos(&status)[0];
        assert_eq!(
            info.metadata.get("awsErrorCode").map(String::as_str),
            Some(code_name)
        );
        assert_eq!(
            info.metadata.get("awsRequestId").map(String::as_str),
            Some("req-1")
        );
    }
    let fixed = TOKEN_TABLE.iter().map(|row| row.1);
    for reason in fixed.chain(LIMIT_TABLE.iter().map(|row| row.1)) {
        assert!(is_aip193_reason(reason), "{reason}");
    }
}

/// The generator reaches every `ErrorKind` variant (2048 cases make missing
/// one practically impossible unless `spec()` forgets it).
#[test]
fn generator_covers_every_variant() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = spec();
    let mut names = BTreeSet::new();
    for _ in 0..2048 {
        let spec = strategy.new_tree(&mut runner).unwrap().current();
        names.insert(variant(&spec.kind()));
    }
    let all = [
        "InvalidRequest",
        "MissingToken",
        "Cognito",
        "Unreachable",
        "Timeout",
        "UnparseableResponse",
        "Internal",
        "Token",
        "Limited",
        "LimitsUnavailable",
        "RequestInProgress",
        "CallerNotAllowed",
        "SmsCountryNotAllowed",
        "Overloaded",
        "KeysUnavailable",
        "MessageTooLarge",
        "RequestBufferFull",
        "RequestReadTimeout",
        "DeadlineExceeded",
    ];
    assert_eq!(names, BTreeSet::from(all));
}
