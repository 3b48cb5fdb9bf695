//! The embedded backend driven directly with the AWS SDK (no facade): it must
//! answer like Cognito, so the same expectations can later be run against
//! other Cognito-compatible endpoints.

use std::time::Duration;

use aws_sdk_cognitoidentityprovider::{
    error::ProvideErrorMetadata,
    operation::{
        get_user_attribute_verification_code::GetUserAttributeVerificationCodeError,
        initiate_auth::InitiateAuthError, verify_user_attribute::VerifyUserAttributeError,
    },
    types::{AuthFlowType, DeliveryMediumType},
};
use cognito_emulator::{store::DEMO_CLIENT, store::DEMO_PASSWORD, store::DEMO_POOL};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::common::stack::{http, http_json, Stack};

#[tokio::test]
async fn verification_answers_like_cognito() {
    let stack = Stack::start().await;
    let sdk = stack.sdk().await;
    let token = stack.sign_in().await;

    let out = sdk
        .get_user_attribute_verification_code()
        .access_token(&token)
        .attribute_name("email")
        .send()
        .await
        .unwrap();
    let details = out.code_delivery_details().unwrap();
    assert_eq!(details.delivery_medium(), Some(&DeliveryMediumType::Email));
    assert_eq!(details.destination(), Some("d***@e***"));

    let err = sdk
        .verify_user_attribute()
        .access_token(&token)
        .attribute_name("email")
        .code("x")
        .send()
        .await
        .unwrap_err();
    let err = err.into_service_error();
    assert!(
        matches!(err, VerifyUserAttributeError::CodeMismatchException(_)),
        "{err:?}"
    );
    assert_eq!(
        err.message(),
        Some("Invalid verification code provided, please try again.")
    );

    let code = stack.latest_code("email").await;
    sdk.verify_user_attribute()
        .access_token(&token)
        .attribute_name("email")
        .code(&code)
        .send()
        .await
        .unwrap();
    let err = sdk
        .verify_user_attribute()
        .access_token(&token)
        .attribute_name("email")
        .code(&code)
        .send()
        .await
        .unwrap_err();
    let err = err.into_service_error();
    assert!(
        matches!(err, VerifyUserAttributeError::ExpiredCodeException(_)),
        "{err:?}"
    );
    assert_eq!(
        err.message(),
        Some("Invalid code provided, please request a code again.")
    );

    let err = sdk
        .get_user_attribute_verification_code()
        .access_token(&token)
        .attribute_name("name")
        .send()
        .await
        .unwrap_err();
    let err = err.into_service_error();
    assert!(
        matches!(
            err,
            GetUserAttributeVerificationCodeError::InvalidParameterException(_)
        ),
        "{err:?}"
    );

    let err = sdk
        .get_user_attribute_verification_code()
        .access_token("garbage")
        .attribute_name("email")
        .send()
        .await
        .unwrap_err();
    let err = err.into_service_error();
    assert!(
        matches!(
            err,
            GetUserAttributeVerificationCodeError::NotAuthorizedException(_)
        ),
        "{err:?}"
    );
    assert_eq!(err.message(), Some("Invalid Access Token"));
}

#[tokio::test]
async fn sign_in_refresh_and_sign_out() {
    let stack = Stack::start().await;
    let sdk = stack.sdk().await;
    let auth = |flow: AuthFlowType| sdk.initiate_auth().auth_flow(flow).client_id(DEMO_CLIENT);

    let err = auth(AuthFlowType::UserPasswordAuth)
        .auth_parameters("USERNAME", "demo")
        .auth_parameters("PASSWORD", "wrong")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(err, InitiateAuthError::NotAuthorizedException(_)),
        "{err:?}"
    );
    assert_eq!(err.message(), Some("Incorrect username or password."));

    let result = auth(AuthFlowType::UserPasswordAuth)
        .auth_parameters("USERNAME", "demo")
        .auth_parameters("PASSWORD", DEMO_PASSWORD)
        .send()
        .await
        .unwrap();
    let result = result.authentication_result().unwrap();
    let (access, refresh) = (
        result.access_token().unwrap(),
        result.refresh_token().unwrap(),
    );
    assert_eq!(result.token_type(), Some("Bearer"));

    // The access token is a Cognito-shaped RS256 JWT, checkable with the JWKS.
    let (status, jwks) = http_json(
        &stack.url,
        "GET",
        &format!("/{DEMO_POOL}/.well-known/jwks.json"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let key = &jwks["keys"][0];
    let decoding =
        DecodingKey::from_rsa_components(key["n"].as_str().unwrap(), key["e"].as_str().unwrap())
            .unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[format!("{}/{DEMO_POOL}", stack.url)]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(access, &decoding, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["token_use"], "access");
    assert_eq!(claims["client_id"], DEMO_CLIENT);
    assert_eq!(claims["username"], "demo");
    assert_eq!(claims["scope"], "aws.cognito.signin.user.admin");
    for claim in ["sub", "exp", "iat", "jti", "origin_jti"] {
        assert!(!claims[claim].is_null(), "{claim}");
    }

    let refreshed = auth(AuthFlowType::RefreshTokenAuth)
        .auth_parameters("REFRESH_TOKEN", refresh)
        .send()
        .await
        .unwrap();
    let new_access = refreshed
        .authentication_result()
        .unwrap()
        .access_token()
        .unwrap()
        .to_owned();
    sdk.get_user()
        .access_token(&new_access)
        .send()
        .await
        .unwrap();

    sdk.global_sign_out()
        .access_token(access)
        .send()
        .await
        .unwrap();
    for token in [access, new_access.as_str()] {
        let err = sdk
            .get_user()
            .access_token(token)
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert_eq!(err.message(), Some("Access Token has been revoked"));
    }
    let err = auth(AuthFlowType::RefreshTokenAuth)
        .auth_parameters("REFRESH_TOKEN", refresh)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.message(), Some("Refresh Token has been revoked"));
}

#[tokio::test]
async fn expired_tokens_and_limits_answer_like_cognito() {
    let stack = Stack::start().await;
    let sdk = stack.sdk().await;
    let token = stack.sign_in().await;
    for _ in 0..5 {
        sdk.get_user_attribute_verification_code()
            .access_token(&token)
            .attribute_name("email")
            .send()
            .await
            .unwrap();
    }
    let err = sdk
        .get_user_attribute_verification_code()
        .access_token(&token)
        .attribute_name("email")
        .send()
        .await
        .unwrap_err();
    let err = err.into_service_error();
    assert!(
        matches!(
            err,
            GetUserAttributeVerificationCodeError::LimitExceededException(_)
        ),
        "{err:?}"
    );
    assert_eq!(
        err.message(),
        Some("Attempt limit exceeded, please try after some time.")
    );

    stack.advance(Duration::from_secs(3600)).await;
    let err = sdk
        .get_user()
        .access_token(&token)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("NotAuthorizedException"));
    assert_eq!(err.message(), Some("Access Token has expired"));
}

/// A raw AWS JSON 1.1 call: status, headers, JSON body.
async fn call(url: &str, operation: &str, body: &str) -> (u16, http::HeaderMap, serde_json::Value) {
    let target = format!("AWSCognitoIdentityProviderService.{operation}");
    let headers = [
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", target.as_str()),
    ];
    let (status, headers, body) = http(url, "POST", "/", &headers, body.into()).await;
    (
        status,
        headers,
        serde_json::from_slice(&body).unwrap_or_default(),
    )
}

#[tokio::test]
async fn wire_format_is_cognitos() {
    let stack = Stack::start().await;

    let (status, headers, body) = call(&stack.url, "GetUser", r#"{"AccessToken":"nope"}"#).await;
    assert_eq!(status, 400);
    assert_eq!(headers["x-amzn-errortype"], "NotAuthorizedException:");
    assert_eq!(headers["content-type"], "application/x-amz-json-1.1");
    assert_eq!(headers["x-amzn-requestid"].len(), 36, "a UUID request id");
    assert_eq!(
        body,
        serde_json::json!({"__type": "NotAuthorizedException", "message": "Invalid Access Token"})
    );

    let (status, _, body) = call(&stack.url, "DeleteUserPool", "{}").await;
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "UnknownOperationException");

    let (status, _, body) = call(
        &stack.url,
        "VerifyUserAttribute",
        r#"{"AttributeName":"email","Code":"1"}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "InvalidParameterException");
    assert!(
        body["message"].as_str().unwrap().contains("'accessToken'"),
        "{body}"
    );

    let (status, _, body) = call(&stack.url, "GetUser", "not json").await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("SerializationException"))
    );
}
