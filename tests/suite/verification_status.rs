//! GetVerificationStatus against the embedded backend: what the user has
//! and whether it is verified (Cognito's GetUser), and where the user's
//! limits stand, with exact counts before and after a send and a verify,
//! read locally and on a real Redis without consuming anything.

use std::time::Duration;

use cognito_emulator::store::Seed;
use cognito_verify::proto::{
    user_attribute_verification_service_client::UserAttributeVerificationServiceClient as Client,
    AttributeStatus, DeliveryMedium, ErrorReason, GetVerificationStatusResponse,
};
use tonic::{transport::Channel, Code};
use tonic_types::StatusExt as _;

use crate::common::{
    redis::RedisServer, send_request, stack::Stack, status_request, verify_request, Facade,
};

/// The user limits as shipped: a 60 s cooldown, 5 codes and 15 attempts an
/// hour (the tests' defaults turn them off).
const USER_LIMITS: [&str; 6] = [
    "--send-cooldown-secs",
    "60",
    "--user-sends-per-hour",
    "5",
    "--user-verifies-per-hour",
    "15",
];

async fn status(client: &mut Client<Channel>, token: &str) -> GetVerificationStatusResponse {
    client
        .get_verification_status(status_request(token))
        .await
        .expect("GetVerificationStatus")
        .into_inner()
}

fn attribute<'a>(answer: &'a GetVerificationStatusResponse, name: &str) -> &'a AttributeStatus {
    answer
        .attributes
        .iter()
        .find(|a| a.attribute_name == name)
        .unwrap_or_else(|| panic!("no {name} in {answer:?}"))
}

fn next_send_in(a: &AttributeStatus) -> Duration {
    let d = a.next_send_in.expect("next_send_in is always set");
    Duration::new(d.seconds as u64, d.nanos as u32)
}

/// The whole sequence, on whatever stack `flags` make. With `second`, the
/// status is read through a second facade (a replica sharing nothing with
/// the first but what `flags` share: Redis), and the calls go through the
/// first.
async fn status_follows_a_send_and_a_verify(flags: &[&str], second: bool) {
    let flags: Vec<&str> = USER_LIMITS
        .iter()
        .copied()
        .chain(flags.iter().copied())
        .collect();
    let stack = Stack::with(Seed::demo(), Some("424242"), &flags).await;
    let token = stack.sign_in().await;
    let mut caller = stack.facade.client().await;
    let reader = match second {
        true => Some(Facade::start(&stack.url, &flags).await),
        false => None,
    };
    let mut client = match &reader {
        Some(facade) => facade.client().await,
        None => stack.facade.client().await,
    };

    // Before anything: both present, unverified, sendable, full quotas.
    let before = status(&mut client, &token).await;
    let names: Vec<&str> = before
        .attributes
        .iter()
        .map(|a| a.attribute_name.as_str())
        .collect();
    assert_eq!(names, ["email", "phone_number"]);
    let email = attribute(&before, "email");
    assert!(email.present && !email.verified, "{email:?}");
    assert_eq!(email.destination, "d***@e***");
    assert_eq!(email.delivery_medium(), DeliveryMedium::Email);
    assert_eq!(next_send_in(email), Duration::ZERO);
    assert_eq!(email.send_blocked_by(), ErrorReason::Unspecified);
    let phone = attribute(&before, "phone_number");
    assert_eq!(phone.destination, "+*******0100");
    assert_eq!(phone.delivery_medium(), DeliveryMedium::Sms);
    assert_eq!(phone.country, "US");
    assert_eq!(
        (before.sends_left, before.verify_attempts_left),
        (Some(5), Some(15))
    );

    // Reading does not consume: the same answer again, and nothing sent.
    assert_eq!(status(&mut client, &token).await, before);
    assert_eq!(stack.calls_of("GetUserAttributeVerificationCode").await, 0);
    assert_eq!(stack.calls_of("GetUser").await, 2);

    // A send: the email's cooldown runs, one code of five is spent; the
    // phone's cooldown is its own.
    caller
        .get_user_attribute_verification_code(send_request(&token, "email"))
        .await
        .expect("send");
    for _ in 0..3 {
        let after_send = status(&mut client, &token).await;
        let email = attribute(&after_send, "email");
        let wait = next_send_in(email);
        assert!(
            wait > Duration::from_secs(55) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        assert_eq!(email.send_blocked_by(), ErrorReason::SendCooldown);
        let phone = attribute(&after_send, "phone_number");
        assert_eq!(next_send_in(phone), Duration::ZERO);
        assert_eq!(phone.send_blocked_by(), ErrorReason::Unspecified);
        assert_eq!(
            (after_send.sends_left, after_send.verify_attempts_left),
            (Some(4), Some(15))
        );
    }
    // The cooldown the status announced is the one a send meets.
    let refused = caller
        .get_user_attribute_verification_code(send_request(&token, "email"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert_eq!(
        refused.get_details_error_info().unwrap().reason,
        "SEND_COOLDOWN"
    );

    // A wrong code and the right one: two attempts of fifteen, and the
    // email is verified as Cognito holds it now.
    let wrong = caller
        .verify_user_attribute(verify_request(&token, "email", "000000"))
        .await
        .unwrap_err();
    assert_eq!(
        wrong.get_details_error_info().unwrap().reason,
        "CODE_MISMATCH"
    );
    assert_eq!(
        status(&mut client, &token).await.verify_attempts_left,
        Some(14)
    );
    caller
        .verify_user_attribute(verify_request(&token, "email", "424242"))
        .await
        .expect("verify");
    for _ in 0..2 {
        let after = status(&mut client, &token).await;
        assert!(attribute(&after, "email").verified);
        assert!(!attribute(&after, "phone_number").verified);
        assert_eq!(
            (after.sends_left, after.verify_attempts_left),
            (Some(4), Some(13))
        );
    }
    assert_eq!(stack.calls_of("GetUserAttributeVerificationCode").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_before_and_after_a_send_and_a_verify() {
    status_follows_a_send_and_a_verify(&[], false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_on_redis_reads_without_consuming() {
    let redis = RedisServer::start();
    let url = redis.url();
    status_follows_a_send_and_a_verify(
        &[
            "--limits-redis-url",
            &url,
            "--limits-redis-timeout-ms",
            "1000",
            "--limits-redis-failure-mode",
            "deny",
        ],
        true,
    )
    .await;
}

#[tokio::test]
async fn with_redis_down_the_status_follows_the_failure_mode() {
    let redis = RedisServer::not_started();
    let url = redis.url();
    for (mode, refused) in [("deny", true), ("local", false)] {
        let flags = [
            "--limits-redis-url",
            url.as_str(),
            "--limits-redis-failure-mode",
            mode,
            "--user-sends-per-hour",
            "5",
        ];
        let stack = Stack::with(Seed::demo(), None, &flags).await;
        let token = stack.sign_in().await;
        let mut client = stack.facade.client().await;
        let answer = client.get_verification_status(status_request(&token)).await;
        match (refused, answer) {
            (true, Err(status)) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                let reason = status.get_details_error_info().unwrap().reason;
                assert_eq!(reason, "LIMITS_UNAVAILABLE");
            }
            // This replica's own view: nothing spent yet.
            (false, Ok(answer)) => assert_eq!(answer.into_inner().sends_left, Some(5)),
            (_, other) => panic!("{mode}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn limits_off_are_absent_and_the_rpc_has_its_own_rate() {
    let stack = Stack::with(Seed::demo(), None, &["--status-limit-per-sec", "2"]).await;
    let token = stack.sign_in().await;
    let mut client = stack.facade.client().await;
    let answer = status(&mut client, &token).await;
    // The tests' defaults turn the user limits off: no count to show.
    assert_eq!(
        (answer.sends_left, answer.verify_attempts_left),
        (None, None)
    );
    status(&mut client, &token).await;
    let refused = client
        .get_verification_status(status_request(&token))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert_eq!(
        refused.get_details_error_info().unwrap().reason,
        "RATE_LIMITED"
    );
    let quota = refused.get_details_quota_failure().unwrap();
    assert_eq!(quota.violations[0].subject, "rpc:GetVerificationStatus");
    // The refused call never reached Cognito.
    assert_eq!(stack.calls_of("GetUser").await, 2);
    // A bad token is refused before Cognito, as for the other RPCs.
    let bad = client
        .get_verification_status(status_request("not-a-token"))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::Unauthenticated);
    assert_eq!(stack.calls_of("GetUser").await, 2);
}
