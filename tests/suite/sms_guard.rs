//! The SMS guard end to end: the embedded backend counts what reached it.
//! A refused country costs no send; `monitor` sends and counts; the prefix
//! limit holds; two replica processes on one `redis-server` share the daily
//! limit exactly; and no log line of the binary carries a phone number.

use std::{
    collections::BTreeMap,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use cognito_emulator::store::{Seed, UserSeed, DEMO_PASSWORD};
use cognito_verify::{
    metrics,
    proto::user_attribute_verification_service_client::UserAttributeVerificationServiceClient as Client,
};
use tonic::{transport::Channel, Code, Status};
use tonic_types::StatusExt as _;

use crate::{
    common::{
        binary::{command, Running},
        redis::RedisServer,
        send_request,
        stack::{sign_in, Stack},
        status_request,
    },
    protection_redis::replica,
};

const SEND: &str = "GetUserAttributeVerificationCode";

async fn send(client: &mut Client<Channel>, token: &str, attribute: &str) -> Result<(), Status> {
    client
        .get_user_attribute_verification_code(send_request(token, attribute))
        .await
        .map(|_| ())
}

fn reason(status: &Status) -> String {
    status.get_details_error_info().expect("ErrorInfo").reason
}

fn retry_after(status: &Status) -> Duration {
    status
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .expect("RetryInfo")
}

/// The demo seed plus users whose numbers share the prefix `+44 7700`
/// (`uk-0`..), and one in another UK prefix.
fn seed_with_one_prefix(users: usize) -> Seed {
    let mut seed = Seed::demo();
    let user = |name: String, phone: String| UserSeed {
        username: name,
        password: DEMO_PASSWORD.to_owned(),
        attributes: BTreeMap::from([
            ("phone_number".to_owned(), phone),
            ("phone_number_verified".to_owned(), "false".to_owned()),
        ]),
    };
    let pool = &mut seed.pools[0];
    for i in 0..users {
        pool.users
            .push(user(format!("uk-{i}"), format!("+44770090{i:04}")));
    }
    pool.users
        .push(user("uk-other".to_owned(), "+447911123456".to_owned()));
    seed
}

#[tokio::test]
async fn a_refused_country_costs_no_send_and_email_still_goes() {
    let stack = Stack::with(Seed::demo(), None, &["--sms-allow-country", "US,CA"]).await;
    let sdk = stack.sdk().await;
    let mut client = stack.facade.client().await;
    let gb = sign_in(&sdk, "demo-gb", DEMO_PASSWORD).await;

    let refused = send(&mut client, &gb, "phone_number").await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(reason(&refused), "SMS_COUNTRY_NOT_ALLOWED");
    let info = refused.get_details_error_info().unwrap();
    assert_eq!(info.metadata["country"], "GB");
    assert!(refused.get_details_retry_info().is_none(), "no retry helps");
    assert!(!refused.message().contains("7700"), "{}", refused.message());
    // Cognito was asked for the number, and nothing was sent.
    assert_eq!(stack.calls_of("GetUser").await, 1);
    assert_eq!(stack.calls_of(SEND).await, 0);

    // The status says so before anyone tries.
    let status = client
        .get_verification_status(status_request(&gb))
        .await
        .unwrap()
        .into_inner();
    let phone = &status.attributes[1];
    assert_eq!(
        (
            phone.country.as_str(),
            phone.send_blocked_by().as_str_name()
        ),
        ("GB", "SMS_COUNTRY_NOT_ALLOWED")
    );

    // Email is not the guard's business; an allowed country is sent.
    send(&mut client, &gb, "email").await.expect("email goes");
    let demo = stack.sign_in().await;
    send(&mut client, &demo, "phone_number")
        .await
        .expect("US goes");
    assert_eq!(stack.calls_of(SEND).await, 2);
}

#[tokio::test]
async fn monitor_mode_sends_and_counts() {
    let flags = ["--sms-allow-country", "US", "--sms-country-mode", "monitor"];
    let stack = Stack::with(Seed::demo(), None, &flags).await;
    let mut client = stack.facade.client().await;
    // India is this test's own country: no other test sends there.
    let india = sign_in(&stack.sdk().await, "demo-in", DEMO_PASSWORD).await;
    let before = (
        metrics().sms_count("monitored", "IN"),
        metrics().sms_count("sent", "IN"),
    );
    send(&mut client, &india, "phone_number")
        .await
        .expect("sent in monitor mode");
    assert_eq!(stack.calls_of(SEND).await, 1);
    assert_eq!(
        (
            metrics().sms_count("monitored", "IN"),
            metrics().sms_count("sent", "IN"),
        ),
        (before.0 + 1, before.1 + 1)
    );
}

#[tokio::test]
async fn the_prefix_limit_holds() {
    let flags = ["--sms-prefix-sends-per-hour", "2"];
    let stack = Stack::with(seed_with_one_prefix(3), None, &flags).await;
    let sdk = stack.sdk().await;
    let mut client = stack.facade.client().await;
    for i in 0..2 {
        let token = sign_in(&sdk, &format!("uk-{i}"), DEMO_PASSWORD).await;
        send(&mut client, &token, "phone_number")
            .await
            .expect("within the prefix's limit");
    }
    // A third number of the same range: refused, though its user never sent.
    let third = sign_in(&sdk, "uk-2", DEMO_PASSWORD).await;
    let refused = send(&mut client, &third, "phone_number").await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert_eq!(reason(&refused), "SMS_PREFIX_LIMIT");
    let quota = refused.get_details_quota_failure().unwrap();
    assert_eq!(quota.violations[0].subject, "sms:prefix");
    // Two an hour: the next slot comes back half an hour after the first.
    let wait = retry_after(&refused);
    assert!(
        wait > Duration::from_secs(1790) && wait <= Duration::from_secs(1800),
        "{wait:?}"
    );
    // The status says so, and when.
    let status = client
        .get_verification_status(status_request(&third))
        .await
        .unwrap()
        .into_inner();
    let phone = &status.attributes[1];
    assert_eq!(phone.send_blocked_by().as_str_name(), "SMS_PREFIX_LIMIT");
    let next = phone.next_send_in.unwrap();
    assert!((1790..=1800).contains(&next.seconds), "{next:?}");
    // Another range is not affected.
    let other = sign_in(&sdk, "uk-other", DEMO_PASSWORD).await;
    send(&mut client, &other, "phone_number")
        .await
        .expect("another prefix");
    assert_eq!(stack.calls_of(SEND).await, 3);
}

#[tokio::test]
async fn the_daily_limit_without_redis_spends_nothing_of_the_users_limits() {
    let flags = [
        "--sms-daily-limit",
        "1",
        "--send-cooldown-secs",
        "60",
        "--user-sends-per-hour",
        "5",
    ];
    let stack = Stack::with(Seed::demo(), None, &flags).await;
    let mut client = stack.facade.client().await;
    let demo = stack.sign_in().await;
    send(&mut client, &demo, "phone_number")
        .await
        .expect("the day's one SMS");
    let gb = sign_in(&stack.sdk().await, "demo-gb", DEMO_PASSWORD).await;
    let refused = send(&mut client, &gb, "phone_number").await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert_eq!(reason(&refused), "SMS_DAILY_LIMIT");
    assert_eq!(
        refused.get_details_quota_failure().unwrap().violations[0].subject,
        "sms:day"
    );
    let gap = retry_after(&refused).abs_diff(until_midnight());
    assert!(gap < Duration::from_secs(5), "{gap:?}");
    // The refusal spent nothing of the user's: a full hourly quota, no
    // cooldown, and the status names the daily limit for the phone only.
    let status = client
        .get_verification_status(status_request(&gb))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.sends_left, Some(5));
    let (email, phone) = (&status.attributes[0], &status.attributes[1]);
    assert_eq!(
        email.send_blocked_by().as_str_name(),
        "ERROR_REASON_UNSPECIFIED"
    );
    assert_eq!(phone.send_blocked_by().as_str_name(), "SMS_DAILY_LIMIT");
    // Email goes, and only one SMS went.
    send(&mut client, &gb, "email")
        .await
        .expect("email is not the daily limit's");
    assert_eq!(stack.calls_of(SEND).await, 2);
}

/// Microseconds until the next UTC midnight, by this machine's clock.
fn until_midnight() -> Duration {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    Duration::from_secs(86_400) - Duration::from_secs(now.as_secs() % 86_400)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_redis_share_the_daily_limit_exactly() {
    let redis = RedisServer::start();
    let stack = Stack::with(Seed::demo(), None, &[]).await;
    let flags = ["--sms-daily-limit", "3", "--user-sends-per-hour", "0"];
    let replicas = [
        replica(&stack, &redis.url(), &flags).await,
        replica(&stack, &redis.url(), &flags).await,
    ];
    let sdk = stack.sdk().await;
    let mut tokens = vec![stack.sign_in().await];
    for user in ["demo-gb", "demo-fr", "demo-in"] {
        tokens.push(sign_in(&sdk, user, DEMO_PASSWORD).await);
    }
    // Eight SMS sends at once, four through each replica, by four users.
    let mut calls = Vec::new();
    for (i, replica) in replicas.iter().enumerate() {
        for token in &tokens {
            let mut client = Client::new(replica.channel().await);
            let token = token.clone();
            calls.push(tokio::spawn(async move {
                (i, send(&mut client, &token, "phone_number").await)
            }));
        }
    }
    let mut admitted = 0;
    for call in calls {
        match call.await.unwrap() {
            (_, Ok(())) => admitted += 1,
            (_, Err(status)) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert_eq!(reason(&status), "SMS_DAILY_LIMIT");
                // Until Redis' next UTC midnight (the same clock here).
                let wait = retry_after(&status);
                let expected = until_midnight();
                let gap = wait.abs_diff(expected);
                assert!(gap < Duration::from_secs(5), "{wait:?} vs {expected:?}");
            }
        }
    }
    assert_eq!(admitted, 3, "the daily limit is 3 across both replicas");
    assert_eq!(stack.calls_of(SEND).await, 3);
    // Email is not affected.
    let mut client = Client::new(replicas[1].channel().await);
    send(&mut client, &tokens[0], "email")
        .await
        .expect("email goes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_log_line_carries_a_phone_number() {
    let stack = Stack::with(seed_with_one_prefix(1), None, &[]).await;
    let args = [
        "--region",
        "us-east-1",
        "--cognito-endpoint",
        stack.url.as_str(),
        "--token-signature-check",
        "on",
        "--audit-log",
        "stderr",
        "--log-filter",
        "debug",
        "--sms-allow-country",
        "US",
        "--sms-prefix-sends-per-hour",
        "1",
    ];
    let running = Running::start(command(&args)).await;
    let mut client = Client::new(running.channel().await);
    let sdk = stack.sdk().await;
    let demo = stack.sign_in().await;
    let gb = sign_in(&sdk, "demo-gb", DEMO_PASSWORD).await;
    let uk = sign_in(&sdk, "uk-0", DEMO_PASSWORD).await;
    send(&mut client, &demo, "phone_number").await.expect("US");
    // Refused by its country, then status calls.
    let refused = send(&mut client, &gb, "phone_number").await.unwrap_err();
    assert_eq!(reason(&refused), "SMS_COUNTRY_NOT_ALLOWED");
    for token in [&demo, &gb, &uk] {
        client
            .get_verification_status(status_request(token))
            .await
            .expect("status");
    }
    let (_, log) = running.terminate().await;
    // The audit events name the country, never the number.
    assert!(log.contains("\"sms.country\":\"US\""), "{log}");
    assert!(log.contains("\"sms.country\":\"GB\""), "{log}");
    for secret in ["2065550100", "7700900123", "7700900000", "+1206", "+44"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
    for secret in ["demo@example.com", "gb@example.com"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}
