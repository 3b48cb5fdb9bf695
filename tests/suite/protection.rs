//! The protection in front of Cognito, end to end with the embedded backend
//! (real RS256 tokens, keys served by the backend): the local token check,
//! the limits of one replica, and idempotent sends. What reached the backend
//! is counted there. Limits shared on Redis are in `protection_redis.rs`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use cognito_emulator::{store::Seed, store::DEMO_CLIENT, store::DEMO_POOL};
use cognito_verify::proto::user_attribute_verification_service_client::UserAttributeVerificationServiceClient as Client;
use serde_json::{json, Value};
use tonic::{transport::Channel, Code, Request, Status};
use tonic_types::StatusExt as _;

use crate::common::{send_request, send_request_with_id, stack::Stack, verify_request};

const SEND: &str = "GetUserAttributeVerificationCode";

async fn send(client: &mut Client<Channel>, token: &str) -> Result<(), Status> {
    client
        .get_user_attribute_verification_code(send_request(token, "email"))
        .await
        .map(drop)
}

fn reason(status: &Status) -> String {
    status.get_details_error_info().expect("ErrorInfo").reason
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The claims of a demo access token, to alter.
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// `token` with its payload replaced and its signature kept: a forgery.
fn forged(token: &str, claims: &Value) -> String {
    let mut parts: Vec<&str> = token.split('.').collect();
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    parts[1] = &payload;
    parts.join(".")
}

async fn stack(flags: &[&str]) -> Stack {
    let mut all = vec!["--token-signature-check", "on"];
    all.extend_from_slice(flags);
    Stack::with(Seed::demo(), None, &all).await
}

#[tokio::test]
async fn refused_tokens_cost_no_cognito_call() {
    let stack = stack(&["--user-pool", DEMO_POOL]).await;
    let token = stack.sign_in().await;
    let claims = claims_of(&token);
    let with = |change: &dyn Fn(&mut Value)| {
        let mut c = claims.clone();
        change(&mut c);
        stack.backend.sign(&c)
    };
    let mut victim = claims.clone();
    victim["sub"] = json!("someone-else");
    let id_token = {
        let sdk = stack.sdk().await;
        let out = sdk
            .initiate_auth()
            .auth_flow(aws_sdk_cognitoidentityprovider::types::AuthFlowType::UserPasswordAuth)
            .client_id(DEMO_CLIENT)
            .auth_parameters("USERNAME", "demo")
            .auth_parameters("PASSWORD", "DemoPassw0rd!")
            .send()
            .await
            .unwrap();
        out.authentication_result()
            .unwrap()
            .id_token()
            .unwrap()
            .to_owned()
    };
    let cases: Vec<(&str, String)> = vec![
        ("MALFORMED_TOKEN", "not.a.jwt".to_owned()),
        ("BAD_SIGNATURE", forged(&token, &victim)),
        ("TOKEN_EXPIRED", with(&|c| c["exp"] = json!(now() - 60))),
        ("NOT_AN_ACCESS_TOKEN", id_token),
        (
            "MISSING_SCOPE",
            with(&|c| c["scope"] = json!("openid email")),
        ),
        (
            "ISSUER_NOT_ALLOWED",
            with(&|c| {
                let iss = c["iss"]
                    .as_str()
                    .unwrap()
                    .replace(DEMO_POOL, "us-east-1_Foreign01");
                c["iss"] = json!(iss);
            }),
        ),
    ];
    let mut client = stack.facade.client().await;
    for (expected, token) in &cases {
        let status = send(&mut client, token).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::Unauthenticated,
            "{expected}: {status:?}"
        );
        assert_eq!(reason(&status), *expected, "{status:?}");
        assert!(
            !status.message().contains(token.as_str()),
            "the token was echoed"
        );
    }
    assert_eq!(
        stack.calls_of(SEND).await,
        0,
        "a refused token reached Cognito"
    );
    // The keys came from the configured endpoint, once.
    assert_eq!(stack.calls_of(&format!("jwks:{DEMO_POOL}")).await, 1);

    send(&mut client, &token).await.expect("the real token");
    assert_eq!(stack.calls_of(SEND).await, 1);
}

#[tokio::test]
async fn a_send_within_the_cooldown_is_refused_with_the_exact_wait() {
    let stack = stack(&["--send-cooldown-secs", "60"]).await;
    let token = stack.sign_in().await;
    let mut client = stack.facade.client().await;
    send(&mut client, &token).await.unwrap();
    let status = send(&mut client, &token).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(reason(&status), "SEND_COOLDOWN");
    let wait = status
        .get_details_retry_info()
        .unwrap()
        .retry_delay
        .unwrap();
    assert!(
        wait > Duration::from_secs(55) && wait <= Duration::from_secs(60),
        "{wait:?}"
    );
    let quota = status.get_details_quota_failure().unwrap();
    assert_eq!(quota.violations[0].subject, "user:attribute");
    // Another attribute is another cooldown.
    client
        .get_user_attribute_verification_code(send_request(&token, "phone_number"))
        .await
        .unwrap();
    assert_eq!(stack.calls_of(SEND).await, 2);
}

#[tokio::test]
async fn a_refusal_by_one_limit_consumes_nothing_from_the_others() {
    // Two sends per hour; a cooldown of 60 s refuses the second at once. The
    // refused send must not have used the hour's second slot: after the
    // cooldown would pass, it is still there. Shown by a third limit, the
    // caller's, with room for exactly two sends.
    let stack = stack(&[
        "--send-cooldown-secs",
        "60",
        "--user-sends-per-hour",
        "2",
        "--caller-sends-per-minute",
        "2",
    ])
    .await;
    let token = stack.sign_in().await;
    let mut client = stack.facade.client().await;
    send(&mut client, &token).await.unwrap();
    for _ in 0..3 {
        let status = send(&mut client, &token).await.unwrap_err();
        assert_eq!(reason(&status), "SEND_COOLDOWN");
    }
    // Another attribute: the cooldown does not apply, and the user's and the
    // caller's second slots are still free.
    client
        .get_user_attribute_verification_code(send_request(&token, "phone_number"))
        .await
        .expect("the refusals consumed nothing");
    assert_eq!(stack.calls_of(SEND).await, 2);
}

#[tokio::test]
async fn with_the_keys_down_no_token_passes_and_none_uses_up_a_limit() {
    // The key set cannot be fetched: no token can be verified, so none goes
    // on to Cognito (forged or not) and none is counted against a limit.
    let stack = stack(&["--user-sends-per-hour", "1", "--send-cooldown-secs", "0"]).await;
    stack
        .inject(json!({"operation": "jwks", "count": 1000, "httpStatus": 500, "body": "down"}))
        .await;
    let victim = stack.sign_in().await;
    let mut client = stack.facade.client().await;
    for i in 0..3 {
        let mut claims = claims_of(&victim);
        claims["jti"] = json!(format!("forged-{i}"));
        for token in [forged(&victim, &claims), victim.clone()] {
            let status = send(&mut client, &token).await.unwrap_err();
            assert_eq!(status.code(), Code::Unavailable, "{status:?}");
            assert_eq!(reason(&status), "SIGNING_KEYS_UNAVAILABLE");
            let retry = status.get_details_retry_info().expect("RetryInfo");
            assert!(retry.retry_delay.is_some());
        }
    }
    assert_eq!(stack.calls_of(SEND).await, 0);
    // The keys back (after the retry delay): the victim's one send of the
    // hour is still there, and forgeries are now bad signatures.
    stack.clear_faults().await;
    let mut sent = None;
    for _ in 0..100 {
        match send(&mut client, &victim).await {
            Err(s) if reason(&s) == "SIGNING_KEYS_UNAVAILABLE" => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => {
                sent = Some(other);
                break;
            }
        }
    }
    sent.expect("the keys are fetched again within 10 s")
        .expect("the victim's own send is untouched");
    let mut claims = claims_of(&victim);
    claims["jti"] = json!("forged-late");
    let status = send(&mut client, &forged(&victim, &claims))
        .await
        .unwrap_err();
    assert_eq!(reason(&status), "BAD_SIGNATURE");
    assert_eq!(stack.calls_of(SEND).await, 1);
}

#[tokio::test]
async fn repeats_of_a_request_id_make_one_call_and_get_the_same_answer() {
    let stack = stack(&["--user-sends-per-hour", "1"]).await;
    let token = stack.sign_in().await;
    let mut client = stack.facade.client().await;
    let id = "4f8e3c2a-9b1d-4e6f-8a7b-2c5d9e0f1a3b";
    let first = client
        .get_user_attribute_verification_code(send_request_with_id(&token, id))
        .await
        .unwrap()
        .into_inner();
    // Spelled differently, the same UUID.
    let again = client
        .get_user_attribute_verification_code(send_request_with_id(&token, &id.to_uppercase()))
        .await
        .expect("a repeat does not count against the limits")
        .into_inner();
    assert_eq!(first, again);
    assert_eq!(stack.calls_of(SEND).await, 1);
    // A new intent is a new send: now over the hour's quota of one.
    let status = client
        .get_user_attribute_verification_code(send_request_with_id(
            &token,
            "0c9a7e35-6a1f-4f5e-9a55-7d2e6b1c3f80",
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&status), "USER_SEND_QUOTA");

    let status = client
        .get_user_attribute_verification_code(send_request_with_id(&token, "not-a-uuid"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let bad = status.get_details_bad_request().unwrap();
    assert_eq!(bad.field_violations[0].field, "request_id");
    assert_eq!(stack.calls_of(SEND).await, 1);
}

#[tokio::test]
async fn concurrent_duplicates_make_one_call_and_late_ones_are_aborted() {
    let stack = stack(&[]).await;
    let token = stack.sign_in().await;
    stack
        .inject(json!({"operation": SEND, "count": 10, "latencyMs": 700}))
        .await;
    let id = "9d7d2c1e-1f3a-4b5c-8d6e-7f8091a2b3c4";
    let mut calls = Vec::new();
    for _ in 0..5 {
        let mut client = stack.facade.client().await;
        let token = token.clone();
        calls.push(tokio::spawn(async move {
            client
                .get_user_attribute_verification_code(send_request_with_id(&token, id))
                .await
                .map(|r| r.into_inner())
        }));
    }
    // One whose deadline ends while the first is still in Cognito.
    let mut hasty = stack.facade.deadline_client();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut request = Request::new(send_request_with_id(&token, id));
    request.set_timeout(Duration::from_millis(300));
    let status = hasty
        .get_user_attribute_verification_code(request)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    assert_eq!(reason(&status), "REQUEST_IN_PROGRESS");
    assert!(status.get_details_retry_info().is_some());

    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.unwrap().expect("every duplicate answered"));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    assert_eq!(stack.calls_of(SEND).await, 1);
}

#[tokio::test]
async fn a_failed_first_call_lets_its_retry_send() {
    let stack = stack(&[]).await;
    let token = stack.sign_in().await;
    stack
        .inject(json!({"operation": SEND, "count": 1, "errorType": "CodeDeliveryFailureException", "message": "no"}))
        .await;
    let mut client = stack.facade.client().await;
    let id = "2b7e1516-28ae-42a6-abf7-158809cf4f3c";
    let failed = client
        .get_user_attribute_verification_code(send_request_with_id(&token, id))
        .await
        .unwrap_err();
    assert_eq!(failed.code(), Code::Unavailable);
    client
        .get_user_attribute_verification_code(send_request_with_id(&token, id))
        .await
        .expect("the retry sends");
    assert_eq!(stack.calls_of(SEND).await, 2);
}

#[tokio::test]
async fn verify_attempts_are_limited_per_user() {
    let stack = stack(&["--user-verifies-per-hour", "2"]).await;
    let token = stack.sign_in().await;
    let mut client = stack.facade.client().await;
    let verify = || verify_request(&token, "email", "000000");
    for _ in 0..2 {
        let status = client.verify_user_attribute(verify()).await.unwrap_err();
        assert_ne!(reason(&status), "USER_VERIFY_QUOTA");
    }
    let status = client.verify_user_attribute(verify()).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(reason(&status), "USER_VERIFY_QUOTA");
    assert_eq!(stack.calls_of("VerifyUserAttribute").await, 2);
}
