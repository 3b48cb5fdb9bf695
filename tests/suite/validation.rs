//! Requests Cognito would reject by its model are rejected here first, with a
//! BadRequest naming the field, and never reach Cognito.

use std::collections::HashMap;

use cognito_verify::proto::GetUserAttributeVerificationCodeRequest;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

use crate::common::{send_request, verify_request, Facade, ScriptedCognito, TOKEN};

fn violation(status: &Status) -> String {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let details = status.get_error_details();
    let info = details.error_info().expect("ErrorInfo");
    assert_eq!(
        (info.reason.as_str(), info.domain.as_str()),
        ("INVALID_FIELD", "cognito-verify")
    );
    let bad = details.bad_request().expect("BadRequest");
    assert_eq!(bad.field_violations.len(), 1);
    bad.field_violations[0].field.clone()
}

#[tokio::test]
async fn invalid_verify_requests_never_reach_cognito() {
    let cognito = ScriptedCognito::start().await;
    let facade = Facade::start(&cognito.url, &[]).await;
    let mut client = facade.client().await;
    let long_attribute = "a".repeat(33);
    let long_code = "1".repeat(2049);
    let cases = [
        (verify_request("tok en", "email", "1"), "access_token"),
        (verify_request("tok/en", "email", "1"), "access_token"),
        (verify_request(TOKEN, "", "1"), "attribute_name"),
        (
            verify_request(TOKEN, &long_attribute, "1"),
            "attribute_name",
        ),
        (verify_request(TOKEN, "em\u{1}ail", "1"), "attribute_name"),
        (verify_request(TOKEN, "email", ""), "code"),
        (verify_request(TOKEN, "email", "12 34"), "code"),
        (verify_request(TOKEN, "email", &long_code), "code"),
    ];
    for (request, field) in cases {
        let status = client.verify_user_attribute(request).await.unwrap_err();
        assert_eq!(violation(&status), field);
    }
    let mut bad_bearer = Request::new(verify_request("", "email", "1"));
    bad_bearer
        .metadata_mut()
        .insert("authorization", "Bearer a+b".parse().unwrap());
    let status = client.verify_user_attribute(bad_bearer).await.unwrap_err();
    assert_eq!(violation(&status), "authorization");

    assert!(cognito.requests().is_empty(), "Cognito was called");
    facade.shutdown().await;
}

#[tokio::test]
async fn client_metadata_is_bounded() {
    let cognito = ScriptedCognito::start().await;
    // Cognito's own bounds on client_metadata are larger than the default
    // --max-message-bytes: raised here so that the field check is reached.
    let facade = Facade::start(&cognito.url, &["--max-message-bytes", "1048576"]).await;
    let mut client = facade.client().await;
    let request = |metadata: HashMap<String, String>| GetUserAttributeVerificationCodeRequest {
        client_metadata: metadata,
        ..send_request(TOKEN, "email")
    };
    let too_long = HashMap::from([("k".to_owned(), "v".repeat(131_073))]);
    let status = client
        .get_user_attribute_verification_code(request(too_long))
        .await
        .unwrap_err();
    assert_eq!(violation(&status), "client_metadata");
    let too_much: HashMap<_, _> = (0..5)
        .map(|i| (i.to_string(), "v".repeat(131_072)))
        .collect();
    let status = client
        .get_user_attribute_verification_code(request(too_much))
        .await
        .unwrap_err();
    assert_eq!(violation(&status), "client_metadata");
    assert!(cognito.requests().is_empty(), "Cognito was called");
    facade.shutdown().await;
}

#[tokio::test]
async fn oversized_messages_are_refused() {
    let cognito = ScriptedCognito::start().await;
    let facade = Facade::start(&cognito.url, &["--max-message-bytes", "65536"]).await;
    let mut client = facade.client().await;
    let big = HashMap::from([("k".to_owned(), "v".repeat(100_000))]);
    let req = GetUserAttributeVerificationCodeRequest {
        client_metadata: big,
        ..send_request(TOKEN, "email")
    };
    let status = client
        .get_user_attribute_verification_code(req)
        .await
        .unwrap_err();
    // Refused by the intake from the message's declared length, before it
    // was buffered (tonic's own bound, OUT_OF_RANGE, is never reached).
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let details = status.get_error_details();
    assert_eq!(details.error_info().unwrap().reason, "MESSAGE_TOO_LARGE");
    assert!(
        details.retry_info().is_none(),
        "the same message fails again"
    );
    assert!(cognito.requests().is_empty());
    facade.shutdown().await;
}
