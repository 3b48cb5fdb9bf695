//! The whole flow through the facade: tonic client → facade → AWS SDK →
//! embedded backend, with codes read from the backend's outbox.

use std::{collections::BTreeMap, time::Duration};

use aws_sdk_cognitoidentityprovider::types::AttributeType;
use cognito_emulator::{
    store::ClientSeed, store::PoolSeed, store::Seed, store::UserSeed, store::DEMO_CLIENT,
    tokens::AccessClaims, tokens::Signer, tokens::ADMIN_SCOPE,
};
use cognito_verify::proto::DeliveryMedium;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::common::{send_request, stack::Stack, verify_request};

fn reason(status: &Status) -> String {
    status
        .get_error_details()
        .error_info()
        .expect("ErrorInfo")
        .reason
        .clone()
}

#[tokio::test]
async fn email_send_and_verify() {
    let stack = Stack::start().await;
    let token = stack.sign_in().await;
    let mut client = stack.facade.client().await;
    assert_eq!(
        stack.attribute(&token, "email_verified").await.as_deref(),
        Some("false")
    );

    let sent = client
        .get_user_attribute_verification_code(send_request(&token, "email"))
        .await
        .unwrap()
        .into_inner();
    let details = sent.code_delivery_details.expect("delivery details");
    assert_eq!(details.destination, "d***@e***");
    assert_eq!(details.delivery_medium(), DeliveryMedium::Email);
    assert_eq!(details.attribute_name, "email");

    let code = stack.latest_code("email").await;
    assert_eq!(code.len(), 6);
    client
        .verify_user_attribute(verify_request(&token, "email", &code))
        .await
        .unwrap();
    assert_eq!(
        stack.attribute(&token, "email_verified").await.as_deref(),
        Some("true")
    );
    assert_eq!(
        stack
            .attribute(&token, "phone_number_verified")
            .await
            .as_deref(),
        Some("false")
    );
}

#[tokio::test]
async fn phone_send_and_verify() {
    let stack = Stack::start().await;
    let token = stack.sign_in().await;
    let mut client = stack.facade.client().await;
    let sent = client
        .get_user_attribute_verification_code(send_request(&token, "phone_number"))
        .await
        .unwrap()
        .into_inner();
    let details = sent.code_delivery_details.unwrap();
    assert_eq!(details.delivery_medium(), DeliveryMedium::Sms);
    assert_eq!(details.destination, "+*******0100");
    let code = stack.latest_code("phone_number").await;
    client
        .verify_user_attribute(verify_request(&token, "phone_number", &code))
        .await
        .unwrap();
    assert_eq!(
        stack
            .attribute(&token, "phone_number_verified")
            .await
            .as_deref(),
        Some("true")
    );
}

#[tokio::test]
async fn pending_email_is_applied_on_verify() {
    let stack = Stack::start().await;
    let token = stack.sign_in().await;
    let change = AttributeType::builder()
        .name("email")
        .value("new@example.org")
        .build()
        .unwrap();
    let updated = stack
        .sdk()
        .await
        .update_user_attributes()
        .access_token(&token)
        .user_attributes(change)
        .send()
        .await
        .unwrap();
    let delivery = &updated.code_delivery_details_list()[0];
    assert_eq!(delivery.destination(), Some("n***@e***"));
    // The old value stays in use until the new one is verified.
    assert_eq!(
        stack.attribute(&token, "email").await.as_deref(),
        Some("demo@example.com")
    );

    let code = stack.latest_code("email").await;
    let mut client = stack.facade.client().await;
    client
        .verify_user_attribute(verify_request(&token, "email", &code))
        .await
        .unwrap();
    assert_eq!(
        stack.attribute(&token, "email").await.as_deref(),
        Some("new@example.org")
    );
    assert_eq!(
        stack.attribute(&token, "email_verified").await.as_deref(),
        Some("true")
    );
}

#[tokio::test]
async fn wrong_used_and_expired_codes() {
    let stack = Stack::start().await;
    let token = stack.sign_in().await;
    let mut client = stack.facade.client().await;
    client
        .get_user_attribute_verification_code(send_request(&token, "email"))
        .await
        .unwrap();
    let code = stack.latest_code("email").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };

    let status = client
        .verify_user_attribute(verify_request(&token, "email", wrong))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::InvalidArgument, "CODE_MISMATCH")
    );
    assert_eq!(
        status.message(),
        "Invalid verification code provided, please try again."
    );

    client
        .verify_user_attribute(verify_request(&token, "email", &code))
        .await
        .unwrap();
    let status = client
        .verify_user_attribute(verify_request(&token, "email", &code))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::FailedPrecondition, "EXPIRED_CODE")
    );
    assert_eq!(
        status.message(),
        "Invalid code provided, please request a code again."
    );

    // A code older than 24 hours (the token expires too: sign in again).
    client
        .get_user_attribute_verification_code(send_request(&token, "phone_number"))
        .await
        .unwrap();
    let code = stack.latest_code("phone_number").await;
    stack.advance(Duration::from_secs(24 * 3600 + 1)).await;
    let fresh = stack.sign_in().await;
    let status = client
        .verify_user_attribute(verify_request(&fresh, "phone_number", &code))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::FailedPrecondition, "EXPIRED_CODE")
    );
}

#[tokio::test]
async fn a_new_code_replaces_the_old_one() {
    let stack = Stack::start().await;
    let token = stack.sign_in().await;
    let mut client = stack.facade.client().await;
    client
        .get_user_attribute_verification_code(send_request(&token, "email"))
        .await
        .unwrap();
    let first = stack.latest_code("email").await;
    let mut second = first.clone();
    // Random codes can repeat; ask again until they differ (bounded).
    for _ in 0..3 {
        client
            .get_user_attribute_verification_code(send_request(&token, "email"))
            .await
            .unwrap();
        second = stack.latest_code("email").await;
        if second != first {
            break;
        }
    }
    assert_ne!(first, second, "three codes in a row were equal");
    let status = client
        .verify_user_attribute(verify_request(&token, "email", &first))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    client
        .verify_user_attribute(verify_request(&token, "email", &second))
        .await
        .unwrap();
}

#[tokio::test]
async fn five_wrong_codes_then_attempt_limit() {
    let stack = Stack::with(Seed::demo(), Some("424242"), &[]).await;
    let token = stack.sign_in().await;
    let mut client = stack.facade.client().await;
    client
        .get_user_attribute_verification_code(send_request(&token, "email"))
        .await
        .unwrap();
    for _ in 0..5 {
        let status = client
            .verify_user_attribute(verify_request(&token, "email", "000000"))
            .await
            .unwrap_err();
        assert_eq!(reason(&status), "CODE_MISMATCH");
    }
    // Even the right code is refused now.
    let status = client
        .verify_user_attribute(verify_request(&token, "email", "424242"))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::ResourceExhausted, "LIMIT_EXCEEDED")
    );
    assert_eq!(
        status.message(),
        "Attempt limit exceeded, please try after some time."
    );
    assert!(status.get_error_details().retry_info().is_none());
    // An hour later the limit has passed.
    stack.advance(Duration::from_secs(3601)).await;
    let token = stack.sign_in().await;
    client
        .verify_user_attribute(verify_request(&token, "email", "424242"))
        .await
        .unwrap();
}

#[tokio::test]
async fn five_code_requests_per_hour() {
    let stack = Stack::start().await;
    let token = stack.sign_in().await;
    let mut client = stack.facade.client().await;
    for _ in 0..5 {
        client
            .get_user_attribute_verification_code(send_request(&token, "email"))
            .await
            .unwrap();
    }
    let status = client
        .get_user_attribute_verification_code(send_request(&token, "phone_number"))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::ResourceExhausted, "LIMIT_EXCEEDED")
    );
}

#[tokio::test]
async fn expired_forged_and_revoked_tokens() {
    let stack = Stack::start().await;
    let mut client = stack.facade.client().await;
    let unauthenticated = |status: Status, message: &str| {
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        assert_eq!(reason(&status), "NOT_AUTHORIZED");
        assert_eq!(status.message(), message);
    };

    // Forged: the right shape and issuer, signed by another key.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let forged = Signer::generate().unwrap().sign(&AccessClaims {
        sub: "x".into(),
        iss: format!("{}/us-east-1_DevPool01", stack.url),
        client_id: DEMO_CLIENT.into(),
        origin_jti: "o".into(),
        token_use: "access".into(),
        scope: ADMIN_SCOPE.into(),
        auth_time: now,
        exp: now + 3600,
        iat: now,
        jti: "j".into(),
        username: "demo".into(),
    });
    let status = client
        .get_user_attribute_verification_code(send_request(&forged, "email"))
        .await
        .unwrap_err();
    unauthenticated(status, "Invalid Access Token");

    // Revoked by GlobalSignOut.
    let token = stack.sign_in().await;
    stack
        .sdk()
        .await
        .global_sign_out()
        .access_token(&token)
        .send()
        .await
        .unwrap();
    let status = client
        .get_user_attribute_verification_code(send_request(&token, "email"))
        .await
        .unwrap_err();
    unauthenticated(status, "Access Token has been revoked");

    // Expired.
    let token = stack.sign_in().await;
    stack.advance(Duration::from_secs(3601)).await;
    let status = client
        .verify_user_attribute(verify_request(&token, "email", "123456"))
        .await
        .unwrap_err();
    unauthenticated(status, "Access Token has expired");
}

#[tokio::test]
async fn unknown_attribute_and_user_without_phone() {
    let seed = Seed {
        pools: vec![PoolSeed {
            id: "eu-west-1_NoPhone".into(),
            auto_verified_attributes: vec!["email".into()],
            attributes_require_verification_before_update: vec![],
            clients: vec![ClientSeed {
                client_id: DEMO_CLIENT.into(),
                client_name: None,
            }],
            users: vec![UserSeed {
                username: "demo".into(),
                password: "pw-Without-Phone1".into(),
                attributes: BTreeMap::from([("email".into(), "x@example.com".into())]),
            }],
        }],
    };
    let stack = Stack::with(seed, None, &["--user-pool", "eu-west-1_NoPhone"]).await;
    let token =
        crate::common::stack::sign_in(&stack.sdk().await, "demo", "pw-Without-Phone1").await;
    let mut client = stack.facade.client().await;

    let status = client
        .get_user_attribute_verification_code(send_request(&token, "phone_number"))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::InvalidArgument, "INVALID_PARAMETER")
    );
    assert_eq!(
        status.message(),
        "User does not have a valid registered phone number"
    );

    let status = client
        .get_user_attribute_verification_code(send_request(&token, "custom:tier"))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::InvalidArgument, "INVALID_PARAMETER")
    );
    assert_eq!(
        status.message(),
        "Invalid attribute name. Only phone_number and email can be verified."
    );
}
