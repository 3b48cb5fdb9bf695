//! The rich-status decoding and the retry policy.

use std::{collections::HashMap, time::Duration};

use tonic_types::{ErrorDetails, StatusExt as _};

use super::*;

fn status(code: Code, reason: &str, retry: Option<Duration>) -> tonic::Status {
    let mut details = ErrorDetails::with_error_info(reason, "cognito-verify", HashMap::new());
    if let Some(wait) = retry {
        details.set_retry_info(Some(wait));
    }
    tonic::Status::with_error_details(code, "refused", details)
}

#[test]
fn decodes_every_detail() {
    let mut details = ErrorDetails::with_error_info(
        "SEND_COOLDOWN",
        "cognito-verify",
        HashMap::from([("k".to_owned(), "v".to_owned())]),
    );
    details
        .set_retry_info(Some(Duration::from_millis(1500)))
        .add_quota_failure_violation("user:attribute", "one code a minute")
        .add_bad_request_violation("attribute_name", "unknown attribute");
    let status = tonic::Status::with_error_details(Code::ResourceExhausted, "wait", details);
    let e = Error::from(status);
    assert_eq!(e.kind(), ErrorKind::Status);
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert_eq!(e.message(), "wait");
    assert_eq!(e.reason(), Some(ErrorReason::SendCooldown));
    assert_eq!(e.raw_reason(), Some("SEND_COOLDOWN"));
    assert_eq!(e.domain(), Some("cognito-verify"));
    assert_eq!(e.metadata().get("k").map(String::as_str), Some("v"));
    assert_eq!(e.retry_after(), Some(Duration::from_millis(1500)));
    assert!(e.is_retryable());
    assert_eq!(e.quota_violations()[0].subject, "user:attribute");
    assert_eq!(e.field_violations()[0].field, "attribute_name");
    let shown = e.to_string();
    assert!(shown.contains("SEND_COOLDOWN"), "{shown}");
    assert!(shown.contains("wait"), "{shown}");
    assert!(shown.contains("attribute_name"), "{shown}");
}

#[test]
fn keeps_a_reason_newer_than_the_client() {
    let e = Error::from(status(Code::Unknown, "BRAND_NEW", None));
    assert_eq!(e.reason(), None);
    assert_eq!(e.raw_reason(), Some("BRAND_NEW"));
    assert!(!e.is_retryable());
}

#[test]
fn a_bare_status_has_no_details() {
    let e = Error::from(tonic::Status::unavailable("connection reset"));
    assert_eq!(e.code(), Code::Unavailable);
    assert_eq!(e.reason(), None);
    assert_eq!(e.raw_reason(), None);
    assert_eq!(e.domain(), None);
    assert_eq!(e.retry_after(), None);
    assert!(e.field_violations().is_empty() && e.quota_violations().is_empty());
    assert!(!e.is_retryable());
}

#[test]
fn secrets_are_not_in_debug() {
    let send = SendCode::new("eyJsecret-token", "email").request_id("id-1");
    let verify = Verify::new("eyJsecret-token", "email", "123456");
    let raw = proto::VerifyUserAttributeRequest {
        access_token: "eyJsecret-token".into(),
        attribute_name: "email".into(),
        code: "123456".into(),
    };
    let raw_send = proto::GetUserAttributeVerificationCodeRequest {
        access_token: "eyJsecret-token".into(),
        ..Default::default()
    };
    for shown in [
        format!("{send:?}"),
        format!("{verify:?}"),
        format!("{raw:?}"),
        format!("{raw_send:?}"),
    ] {
        assert!(!shown.contains("secret"), "{shown}");
        assert!(!shown.contains("123456"), "{shown}");
    }
}

const SEND_WITH_ID: Rpc = Rpc::SendCode {
    with_request_id: true,
};
const SEND_WITHOUT_ID: Rpc = Rpc::SendCode {
    with_request_id: false,
};

#[test]
fn a_send_is_retried_only_with_a_request_id_and_retry_info() {
    let wait = Duration::from_millis(100);
    let overloaded = Error::from(status(Code::ResourceExhausted, "OVERLOADED", Some(wait)));
    assert_eq!(retry_delay(SEND_WITH_ID, &overloaded), Some(wait));
    assert_eq!(retry_delay(SEND_WITHOUT_ID, &overloaded), None);
    let in_progress = Error::from(status(Code::Aborted, "REQUEST_IN_PROGRESS", Some(wait)));
    assert_eq!(retry_delay(SEND_WITH_ID, &in_progress), Some(wait));
    // No RetryInfo: never, even where a retry might look harmless.
    for (code, reason) in [
        (Code::Unavailable, "COGNITO_UNREACHABLE"),
        (Code::DeadlineExceeded, "COGNITO_TIMEOUT"),
        (Code::ResourceExhausted, "LIMIT_EXCEEDED"),
        (Code::InvalidArgument, "INVALID_FIELD"),
    ] {
        let e = Error::from(status(code, reason, None));
        assert_eq!(retry_delay(SEND_WITH_ID, &e), None, "{reason}");
    }
    assert_eq!(
        retry_delay(
            SEND_WITH_ID,
            &Error::from(tonic::Status::unavailable("reset"))
        ),
        None
    );
}

#[test]
fn a_verify_is_retried_only_on_reasons_decided_before_cognito() {
    let wait = Duration::from_secs(1);
    for reason in [
        "OVERLOADED",
        "RATE_LIMITED",
        "USER_VERIFY_QUOTA",
        "SIGNING_KEYS_UNAVAILABLE",
        "LIMITS_UNAVAILABLE",
    ] {
        let e = Error::from(status(Code::ResourceExhausted, reason, Some(wait)));
        assert_eq!(retry_delay(Rpc::Verify, &e), Some(wait), "{reason}");
    }
    // RetryInfo with a reason this client cannot place, one only a send
    // gets, or Cognito's own throttling (Cognito was called): not retried.
    for reason in [
        "BRAND_NEW",
        "REQUEST_IN_PROGRESS",
        "CALLER_RATE_LIMITED",
        "TOO_MANY_REQUESTS",
    ] {
        let e = Error::from(status(Code::Aborted, reason, Some(wait)));
        assert_eq!(retry_delay(Rpc::Verify, &e), None, "{reason}");
    }
    // After the call may have reached Cognito: never.
    for (code, reason) in [
        (Code::Unavailable, "COGNITO_UNREACHABLE"),
        (Code::DeadlineExceeded, "COGNITO_TIMEOUT"),
        (Code::DeadlineExceeded, "DEADLINE_EXCEEDED"),
        (Code::InvalidArgument, "CODE_MISMATCH"),
    ] {
        let e = Error::from(status(code, reason, None));
        assert_eq!(retry_delay(Rpc::Verify, &e), None, "{reason}");
    }
}

/// A stub server would be heavier than the policy it checks: the loop's
/// limits (retries, deadline) are checked against a channel to nowhere.
#[tokio::test(flavor = "current_thread")]
async fn the_deadline_bounds_the_call() {
    let client = Client::builder("http://127.0.0.1:9")
        .timeout(Duration::from_millis(300))
        .connect_lazy()
        .expect("lazy channel");
    let started = std::time::Instant::now();
    let e = client
        .verify(Verify::new("t", "email", "1").timeout(Duration::from_millis(200)))
        .await
        .expect_err("nothing listens there");
    assert!(started.elapsed() < Duration::from_secs(2), "{e}");
    assert!(!e.is_retryable());
}

#[test]
fn config_errors_are_reported() {
    let e = Client::builder("not a uri")
        .connect_lazy()
        .expect_err("bad address");
    assert_eq!(e.kind(), ErrorKind::Config);
    let e = Client::builder("https://localhost:1")
        .ca_file("/nonexistent/ca.pem")
        .connect_lazy()
        .expect_err("no CA file");
    assert_eq!(e.kind(), ErrorKind::Config);
    let e = Client::builder("https://localhost:1")
        .identity_files("c.pem", "k.pem")
        .connect_lazy()
        .expect_err("identity without CA");
    assert_eq!(e.kind(), ErrorKind::Config);
}

#[test]
fn a_bare_address_gets_the_scheme_of_its_transport() {
    assert_eq!(
        Client::builder("127.0.0.1:50051").uri(),
        "http://127.0.0.1:50051"
    );
    assert_eq!(
        Client::builder("verify.internal:443")
            .ca_file("ca.pem")
            .uri(),
        "https://verify.internal:443"
    );
    assert_eq!(
        Client::builder("http://[::1]:50051").uri(),
        "http://[::1]:50051"
    );
}

#[test]
fn a_status_read_is_retried_on_any_retry_info() {
    let wait = Duration::from_millis(250);
    for reason in ["RATE_LIMITED", "COGNITO_UNREACHABLE", "TOO_MANY_REQUESTS"] {
        let e = Error::from(status(Code::Unavailable, reason, Some(wait)));
        assert_eq!(retry_delay(Rpc::Status, &e), Some(wait), "{reason}");
    }
    let e = Error::from(status(Code::Unavailable, "COGNITO_UNREACHABLE", None));
    assert_eq!(retry_delay(Rpc::Status, &e), None);
}
