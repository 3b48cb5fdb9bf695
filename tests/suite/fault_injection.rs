//! Every row of the error table, end to end through the real SDK, driven by
//! the embedded backend's fault injection.

use std::time::Duration;

use serde_json::json;
use tonic::{Code, Request};
use tonic_types::StatusExt;

use crate::common::{stack::Stack, verify_request};

const ROWS: &[(&str, Code)] = &[
    ("CodeMismatchException", Code::InvalidArgument),
    ("InvalidParameterException", Code::InvalidArgument),
    ("ExpiredCodeException", Code::FailedPrecondition),
    ("UserNotConfirmedException", Code::FailedPrecondition),
    ("PasswordResetRequiredException", Code::FailedPrecondition),
    ("OperationNotEnabledException", Code::FailedPrecondition),
    ("UserLambdaValidationException", Code::FailedPrecondition),
    ("NotAuthorizedException", Code::Unauthenticated),
    ("ForbiddenException", Code::PermissionDenied),
    ("UserNotFoundException", Code::NotFound),
    ("ResourceNotFoundException", Code::NotFound),
    ("AliasExistsException", Code::AlreadyExists),
    ("TooManyRequestsException", Code::ResourceExhausted),
    ("LimitExceededException", Code::ResourceExhausted),
    ("CodeDeliveryFailureException", Code::Unavailable),
    ("UnexpectedLambdaException", Code::Unavailable),
    ("InternalErrorException", Code::Internal),
    ("InvalidSmsRoleAccessPolicyException", Code::Internal),
    ("InvalidSmsRoleTrustRelationshipException", Code::Internal),
    ("InvalidEmailRoleAccessPolicyException", Code::Internal),
    ("InvalidLambdaResponseException", Code::Internal),
    ("ShinyNewException", Code::Unknown),
];

#[tokio::test]
async fn every_error_row_through_the_backend() {
    let stack = Stack::start().await;
    let token = stack.sign_in().await;
    let mut client = stack.facade.client().await;
    for &(error_type, code) in ROWS {
        stack
            .inject(json!({"operation": "VerifyUserAttribute", "errorType": error_type, "message": "injected"}))
            .await;
        let status = client
            .verify_user_attribute(verify_request(&token, "email", "123456"))
            .await
            .unwrap_err();
        assert_eq!(status.code(), code, "{error_type}: {status:?}");
        let info = status.get_error_details().error_info().cloned().unwrap();
        assert_eq!(info.metadata["awsErrorCode"], error_type);
        assert_eq!(info.domain, "cognito-idp.amazonaws.com");
        assert!(info.metadata.contains_key("awsRequestId"), "{error_type}");
    }
}

#[tokio::test]
async fn transport_rows_through_the_backend() {
    let stack = Stack::start().await;
    let token = stack.sign_in().await;
    let mut client = stack.facade.client().await;

    stack
        .inject(json!({"body": "<html>upstream down</html>", "httpStatus": 503}))
        .await;
    let status = client
        .verify_user_attribute(verify_request(&token, "email", "123456"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        status.get_error_details().error_info().unwrap().reason,
        "UNPARSEABLE_RESPONSE"
    );

    stack
        .inject(json!({"body": "<html>forbidden</html>", "httpStatus": 403}))
        .await;
    let status = client
        .verify_user_attribute(verify_request(&token, "email", "123456"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Internal);

    stack
        .inject(json!({"operation": "VerifyUserAttribute", "latencyMs": 2000}))
        .await;
    let mut slow = Request::new(verify_request(&token, "email", "123456"));
    slow.set_timeout(Duration::from_millis(300));
    let status = stack
        .facade
        .deadline_client()
        .verify_user_attribute(slow)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);

    // Faults are used up: the next call is answered by the backend itself
    // (no code was requested, so the code does not match).
    let status = client
        .verify_user_attribute(verify_request(&token, "email", "123456"))
        .await
        .unwrap_err();
    assert_eq!(
        status.get_error_details().error_info().unwrap().reason,
        "CODE_MISMATCH"
    );
}
