//! Every row of the error table (docs/errors.md), through the real SDK against a
//! wire-level scripted Cognito endpoint.

use std::time::Duration;

use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

use crate::common::{
    closed_port_url, send_request, verify_request, Facade, Reply, ScriptedCognito, TOKEN,
};

async fn verify_with(facade: &Facade, reply: Reply) -> Status {
    let mut client = facade.client().await;
    client
        .verify_user_attribute(verify_request(TOKEN, "email", "123456"))
        .await
        .expect_err(&format!("{reply:?} must fail"))
}

fn reason(status: &Status) -> (String, String) {
    let info = status
        .get_error_details()
        .error_info()
        .cloned()
        .expect("every status has ErrorInfo");
    (info.reason, info.domain)
}

fn meta(status: &Status, key: &str) -> Option<String> {
    status
        .get_error_details()
        .error_info()
        .and_then(|i| i.metadata.get(key).cloned())
}

/// Cognito error type → (gRPC code, Cognito's message passes through).
const TABLE: &[(&str, Code, bool)] = &[
    ("CodeMismatchException", Code::InvalidArgument, true),
    ("InvalidParameterException", Code::InvalidArgument, true),
    ("ExpiredCodeException", Code::FailedPrecondition, true),
    ("UserNotConfirmedException", Code::FailedPrecondition, true),
    (
        "PasswordResetRequiredException",
        Code::FailedPrecondition,
        true,
    ),
    (
        "OperationNotEnabledException",
        Code::FailedPrecondition,
        true,
    ),
    (
        "UserLambdaValidationException",
        Code::FailedPrecondition,
        true,
    ),
    ("NotAuthorizedException", Code::Unauthenticated, true),
    ("ForbiddenException", Code::PermissionDenied, true),
    ("UserNotFoundException", Code::NotFound, true),
    ("ResourceNotFoundException", Code::NotFound, true),
    ("AliasExistsException", Code::AlreadyExists, true),
    ("TooManyRequestsException", Code::ResourceExhausted, true),
    ("LimitExceededException", Code::ResourceExhausted, true),
    ("CodeDeliveryFailureException", Code::Unavailable, false),
    ("UnexpectedLambdaException", Code::Unavailable, false),
    ("InternalErrorException", Code::Internal, false),
    ("InvalidSmsRoleAccessPolicyException", Code::Internal, false),
    (
        "InvalidSmsRoleTrustRelationshipException",
        Code::Internal,
        false,
    ),
    (
        "InvalidEmailRoleAccessPolicyException",
        Code::Internal,
        false,
    ),
    ("InvalidLambdaResponseException", Code::Internal, false),
    ("SomethingBrandNewException", Code::Unknown, false),
];

#[tokio::test]
async fn every_cognito_error_type_maps_to_its_code() {
    let cognito = ScriptedCognito::start().await;
    let facade = Facade::start(&cognito.url, &["--throttled-retry-delay-ms", "1500"]).await;
    for &(error_type, code, passes_message) in TABLE {
        let message = format!("cognito says {error_type}");
        cognito.push(Reply::error(error_type, &message));
        let status = verify_with(&facade, Reply::error(error_type, &message)).await;
        assert_eq!(status.code(), code, "{error_type}: {status:?}");
        assert_eq!(
            status.message() == message,
            passes_message,
            "{error_type} message: {:?}",
            status.message()
        );
        let expected_reason = error_type.strip_suffix("Exception").unwrap();
        let (reason, domain) = reason(&status);
        assert_eq!(
            reason.replace('_', ""),
            expected_reason.to_uppercase(),
            "{error_type}"
        );
        assert!(reason
            .chars()
            .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit()));
        assert_eq!(domain, "cognito-idp.amazonaws.com");
        assert_eq!(meta(&status, "awsErrorCode").as_deref(), Some(error_type));
        assert_eq!(
            meta(&status, "awsRequestId"),
            Some(format!("req-{error_type}"))
        );
        assert_eq!(
            meta(&status, "operation").as_deref(),
            Some("VerifyUserAttribute")
        );

        let details = status.get_error_details();
        let retry = details.retry_info().map(|r| r.retry_delay);
        match error_type {
            "CodeMismatchException" => {
                let bad = details.bad_request().expect("BadRequest");
                assert_eq!(bad.field_violations[0].field, "code");
            }
            "TooManyRequestsException" => {
                assert_eq!(retry, Some(Some(Duration::from_millis(1500))))
            }
            "LimitExceededException" => {
                assert!(details.quota_failure().is_some(), "QuotaFailure");
                assert_eq!(retry, None, "no RetryInfo: retrying soon cannot succeed");
            }
            _ => assert_eq!(retry, None, "{error_type}: no retry advice"),
        }
    }
    assert_eq!(
        cognito.requests().len(),
        TABLE.len(),
        "one attempt per call"
    );
    facade.shutdown().await;
}

#[tokio::test]
async fn invalid_parameter_reason_code_is_kept() {
    let cognito = ScriptedCognito::start().await;
    let facade = Facade::start(&cognito.url, &[]).await;
    // GetUser first (the SMS guard needs the number), then the send.
    cognito.push(Reply::user_with_phone());
    cognito.push(Reply::raw(
        400,
        &[("x-amzn-errortype", "InvalidParameterException:"), ("x-amzn-requestid", "r-1")],
        r#"{"__type":"InvalidParameterException","message":"bad phone","reasonCode":"INVALID_PHONE_NUMBER"}"#,
    ));
    let mut client = facade.client().await;
    let req = send_request(TOKEN, "phone_number");
    let status = client
        .get_user_attribute_verification_code(req)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "bad phone");
    assert_eq!(
        meta(&status, "reasonCode").as_deref(),
        Some("INVALID_PHONE_NUMBER")
    );
    assert_eq!(
        meta(&status, "operation").as_deref(),
        Some("GetUserAttributeVerificationCode")
    );
    facade.shutdown().await;
}

/// The same error in each form servers send it: told apart by type, never by
/// HTTP status.
#[tokio::test]
async fn error_forms_are_all_understood() {
    let json = "application/x-amz-json-1.1";
    let forms = [
        // header with the trailing colon, as the real service sends it
        Reply::raw(
            400,
            &[
                ("content-type", json),
                ("x-amzn-errortype", "ExpiredCodeException:"),
            ],
            r#"{"message":"m"}"#,
        ),
        // header with a namespace and a colon suffix
        Reply::raw(
            400,
            &[
                ("content-type", json),
                (
                    "x-amzn-errortype",
                    "aws.cognito#ExpiredCodeException:http://internal/",
                ),
            ],
            r#"{"message":"m"}"#,
        ),
        // body only, namespaced
        Reply::raw(
            400,
            &[("content-type", json)],
            r#"{"__type":"com.amazonaws.cognito#ExpiredCodeException","message":"m"}"#,
        ),
        // body only, plain, as an emulator sends it (application/json, no request id)
        Reply::raw(
            400,
            &[("content-type", "application/json")],
            r#"{"__type":"ExpiredCodeException","message":"m"}"#,
        ),
        // an HTTP status that does not match the type
        Reply::raw(
            500,
            &[("content-type", json)],
            r#"{"__type":"ExpiredCodeException","message":"m"}"#,
        ),
    ];
    let cognito = ScriptedCognito::start().await;
    let facade = Facade::start(&cognito.url, &[]).await;
    for form in forms {
        cognito.push(form.clone());
        let status = verify_with(&facade, form.clone()).await;
        assert_eq!(
            status.code(),
            Code::FailedPrecondition,
            "{form:?}: {status:?}"
        );
        assert_eq!(reason(&status).0, "EXPIRED_CODE", "{form:?}");
        assert_eq!(status.message(), "m");
    }
    facade.shutdown().await;
}

#[tokio::test]
async fn unparseable_responses_depend_on_http_status() {
    let html = "<html><body>502 Bad Gateway</body></html>";
    let cases = [
        (
            Reply::raw(502, &[("content-type", "text/html")], html),
            Code::Unavailable,
        ),
        (
            Reply::raw(500, &[("content-type", "text/html")], html),
            Code::Unavailable,
        ),
        (
            Reply::raw(400, &[("content-type", "text/html")], html),
            Code::Internal,
        ),
        (
            Reply::raw(
                400,
                &[("content-type", "application/x-amz-json-1.1")],
                "{\"__type\": ",
            ),
            Code::Internal,
        ),
        (
            Reply::raw(
                200,
                &[("content-type", "application/x-amz-json-1.1")],
                "{not json",
            ),
            Code::Internal,
        ),
    ];
    let cognito = ScriptedCognito::start().await;
    let facade = Facade::start(&cognito.url, &[]).await;
    for (reply, code) in cases {
        cognito.push(reply.clone());
        let status = verify_with(&facade, reply.clone()).await;
        assert_eq!(status.code(), code, "{reply:?}: {status:?}");
        assert_eq!(
            reason(&status),
            ("UNPARSEABLE_RESPONSE".into(), "cognito-verify".into())
        );
        assert!(
            !status.message().contains("html"),
            "no raw body in the message"
        );
        assert!(status.get_error_details().retry_info().is_none());
    }
    facade.shutdown().await;
}

#[tokio::test]
async fn connection_refused_is_unavailable() {
    let url = closed_port_url().await;
    let facade = Facade::start(&url, &[]).await;
    let mut client = facade.client().await;
    let status = client
        .verify_user_attribute(verify_request(TOKEN, "email", "123456"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(
        reason(&status),
        ("COGNITO_UNREACHABLE".into(), "cognito-verify".into())
    );
    facade.shutdown().await;
}

#[tokio::test]
async fn slow_cognito_hits_the_callers_deadline() {
    let cognito = ScriptedCognito::start().await;
    let facade = Facade::start(&cognito.url, &[]).await;
    cognito.push(Reply::ok(serde_json::json!({})).after(Duration::from_secs(3)));
    let mut client = facade.deadline_client();
    let mut req = Request::new(verify_request(TOKEN, "email", "123456"));
    req.set_timeout(Duration::from_millis(400));
    let started = std::time::Instant::now();
    let status = client.verify_user_attribute(req).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(reason(&status).0, "COGNITO_TIMEOUT");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered at the deadline, not after Cognito"
    );
    facade.shutdown().await;
}

#[tokio::test]
async fn slow_cognito_hits_the_configured_timeout() {
    let cognito = ScriptedCognito::start().await;
    let facade = Facade::start(&cognito.url, &["--cognito-call-timeout-ms", "300"]).await;
    cognito.push(Reply::ok(serde_json::json!({})).after(Duration::from_secs(3)));
    let mut client = facade.client().await;
    let status = client
        .verify_user_attribute(verify_request(TOKEN, "email", "123456"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(status.message().contains("300 ms"), "{}", status.message());
    facade.shutdown().await;
}

#[tokio::test]
async fn a_deadline_too_short_to_use_does_not_call_cognito() {
    let cognito = ScriptedCognito::start().await;
    let facade = Facade::start(&cognito.url, &[]).await;
    let mut client = facade.client().await;
    let mut req = Request::new(verify_request(TOKEN, "email", "123456"));
    req.set_timeout(Duration::from_millis(2));
    let status = client.verify_user_attribute(req).await.unwrap_err();
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    assert!(cognito.requests().is_empty(), "Cognito was called");
    facade.shutdown().await;
}
