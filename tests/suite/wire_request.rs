//! What the facade sends to Cognito, and how Cognito's answers come back.

use std::collections::HashMap;

use cognito_verify::{
    proto::CodeDeliveryDetails, proto::DeliveryMedium,
    proto::GetUserAttributeVerificationCodeRequest,
};
use serde_json::json;
use tonic::{Code, Request};

use crate::common::{send_request, verify_request, Facade, Reply, ScriptedCognito, TOKEN};

#[tokio::test]
async fn get_code_sends_the_cognito_request_and_maps_delivery() {
    let cognito = ScriptedCognito::start().await;
    let facade = Facade::start(&cognito.url, &[]).await;
    cognito.push(Reply::ok(json!({"CodeDeliveryDetails": {
        "Destination": "d***@e***", "DeliveryMedium": "EMAIL", "AttributeName": "email"}})));
    let mut client = facade.client().await;
    let response = client
        .get_user_attribute_verification_code(GetUserAttributeVerificationCodeRequest {
            client_metadata: HashMap::from([("flow".to_owned(), "signup".to_owned())]),
            ..send_request(TOKEN, "email")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        response.code_delivery_details,
        Some(CodeDeliveryDetails {
            destination: "d***@e***".into(),
            delivery_medium: DeliveryMedium::Email.into(),
            attribute_name: "email".into(),
        })
    );

    let requests = cognito.requests();
    assert_eq!(requests.len(), 1, "exactly one attempt");
    let sent = &requests[0];
    assert_eq!(
        sent.headers["x-amz-target"],
        "AWSCognitoIdentityProviderService.GetUserAttributeVerificationCode"
    );
    assert_eq!(sent.headers["content-type"], "application/x-amz-json-1.1");
    assert!(
        sent.headers.get("authorization").is_none(),
        "noAuth: no SigV4, no credentials"
    );
    assert_eq!(
        sent.json(),
        json!({"AccessToken": TOKEN, "AttributeName": "email", "ClientMetadata": {"flow": "signup"}})
    );
    facade.shutdown().await;
}

#[tokio::test]
async fn sms_delivery_and_missing_details() {
    let cognito = ScriptedCognito::start().await;
    let facade = Facade::start(&cognito.url, &[]).await;
    let mut client = facade.client().await;
    let request = || send_request(TOKEN, "phone_number");
    // A code for a phone number: GetUser first, for the number (the SMS
    // guard), then the send.
    let user = Reply::user_with_phone;

    cognito.push(user());
    cognito.push(Reply::ok(json!({"CodeDeliveryDetails": {
        "Destination": "+*******0100", "DeliveryMedium": "SMS", "AttributeName": "phone_number"}})));
    let details = client
        .get_user_attribute_verification_code(request())
        .await
        .unwrap()
        .into_inner();
    let details = details.code_delivery_details.unwrap();
    assert_eq!(details.delivery_medium(), DeliveryMedium::Sms);
    assert_eq!(details.destination, "+*******0100");

    // Some emulators answer `{}`: the field stays unset.
    cognito.push(user());
    cognito.push(Reply::ok(json!({})));
    let empty = client
        .get_user_attribute_verification_code(request())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(empty.code_delivery_details, None);

    let requests = cognito.requests();
    assert_eq!(requests.len(), 4);
    assert_eq!(requests[2].json(), json!({"AccessToken": TOKEN}));
    // No ClientMetadata member when the map is empty.
    assert_eq!(
        requests[3].json(),
        json!({"AccessToken": TOKEN, "AttributeName": "phone_number"})
    );
    facade.shutdown().await;
}

#[tokio::test]
async fn verify_sends_the_cognito_request() {
    let cognito = ScriptedCognito::start().await;
    let facade = Facade::start(&cognito.url, &[]).await;
    let mut client = facade.client().await;
    client
        .verify_user_attribute(verify_request(TOKEN, "email", "123456"))
        .await
        .unwrap();
    let sent = &cognito.requests()[0];
    assert_eq!(
        sent.headers["x-amz-target"],
        "AWSCognitoIdentityProviderService.VerifyUserAttribute"
    );
    assert_eq!(
        sent.json(),
        json!({"AccessToken": TOKEN, "AttributeName": "email", "Code": "123456"})
    );
    facade.shutdown().await;
}

#[tokio::test]
async fn server_errors_are_not_retried() {
    let cognito = ScriptedCognito::start().await;
    let facade = Facade::start(&cognito.url, &[]).await;
    let mut client = facade.client().await;
    // The SDK's default policy would retry each of these up to 3 times.
    for error_type in [
        "InternalErrorException",
        "TooManyRequestsException",
        "LimitExceededException",
    ] {
        cognito.push(Reply::error(error_type, "x"));
        cognito.push(Reply::ok(json!({})));
    }
    for _ in 0..3 {
        let req = verify_request(TOKEN, "email", "1");
        client.verify_user_attribute(req).await.unwrap_err();
        // Drain the success reply the SDK would have used for its retry.
        assert_eq!(cognito.requests().len() % 2, 1);
        let req = verify_request(TOKEN, "email", "1");
        client.verify_user_attribute(req).await.unwrap();
    }
    for sent in cognito.requests() {
        assert_eq!(sent.headers["amz-sdk-request"], "attempt=1; max=1");
    }
    facade.shutdown().await;
}

#[tokio::test]
async fn token_from_bearer_metadata() {
    let cognito = ScriptedCognito::start().await;
    let facade = Facade::start(&cognito.url, &[]).await;
    let mut client = facade.client().await;
    let mut req = Request::new(verify_request("", "email", "123456"));
    req.metadata_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    client.verify_user_attribute(req).await.unwrap();
    assert_eq!(cognito.requests()[0].json()["AccessToken"], TOKEN);

    // Neither field nor metadata: UNAUTHENTICATED, and Cognito is not called.
    let req = verify_request("", "email", "1");
    let status = client.verify_user_attribute(req).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(cognito.requests().len(), 1);
    facade.shutdown().await;
}
