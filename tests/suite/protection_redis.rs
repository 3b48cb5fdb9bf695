//! The protection shared across replicas, end to end: the embedded backend,
//! one real `redis-server`, and two facade **processes** (the release
//! binary, as deployed) sharing it. What reached the backend is counted
//! there. The limits' own behaviour on Redis is in `limits_redis.rs`.

use std::time::{Duration, Instant};

use cognito_emulator::store::Seed;

use cognito_verify::{
    proto::user_attribute_verification_service_client::UserAttributeVerificationServiceClient as Client,
    proto::GetUserAttributeVerificationCodeResponse,
};
use serde_json::json;
use tonic::{transport::Channel, Code, Status};
use tonic_types::StatusExt as _;

use crate::common::{
    binary::{command, Running},
    flags::unless_set,
    redis::RedisServer,
    send_request_with_id,
    stack::Stack,
    verify_request,
};

const SEND: &str = "GetUserAttributeVerificationCode";
const VERIFY: &str = "VerifyUserAttribute";

async fn send(
    client: &mut Client<Channel>,
    token: &str,
    request_id: &str,
) -> Result<GetUserAttributeVerificationCodeResponse, Status> {
    client
        .get_user_attribute_verification_code(send_request_with_id(token, request_id))
        .await
        .map(tonic::Response::into_inner)
}

fn reason(status: &Status) -> String {
    status.get_details_error_info().expect("ErrorInfo").reason
}

/// A facade process on the stack's backend, deciding its limits on `redis`,
/// with the signature check on and `flags` (which override the tests'
/// defaults of `common::binary`, and [`ON_REDIS`]).
pub(crate) async fn replica(stack: &Stack, redis: &str, flags: &[&str]) -> Running {
    let mut args = vec![
        "--region",
        "us-east-1",
        "--cognito-endpoint",
        &stack.url,
        "--token-signature-check",
        "on",
        "--limits-redis-url",
        redis,
    ];
    args.extend(unless_set(&ON_REDIS, flags));
    args.extend_from_slice(flags);
    Running::start(command(&args)).await
}

/// Every decision on Redis, as these tests count on: a decision may take a
/// second (production's 50 ms is missed now and then on a busy test
/// machine, and a replica that then decides alone admits from a full burst
/// of its own: more than the shared limit), and one that fails anyway is
/// refused as `LIMITS_UNAVAILABLE`, never admitted unseen. The test of the
/// failure modes sets both itself.
const ON_REDIS: [(&str, &str); 2] = [
    ("--limits-redis-timeout-ms", "1000"),
    ("--limits-redis-failure-mode", "deny"),
];

async fn client(replica: &Running) -> Client<Channel> {
    Client::new(replica.channel().await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_admit_exactly_one_users_cap_between_them() {
    let redis = RedisServer::start();
    let stack = Stack::with(Seed::demo(), None, &[]).await;
    let flags = ["--user-sends-per-hour", "3", "--send-cooldown-secs", "0"];
    let replicas = [
        replica(&stack, &redis.url(), &flags).await,
        replica(&stack, &redis.url(), &flags).await,
    ];
    let token = stack.sign_in().await;

    // Twelve sends at once, six through each replica.
    let mut calls = Vec::new();
    for replica in &replicas {
        for _ in 0..6 {
            let mut client = client(replica).await;
            let token = token.clone();
            calls.push(tokio::spawn(
                async move { send(&mut client, &token, "").await },
            ));
        }
    }
    let mut admitted = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(_) => admitted += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert_eq!(reason(&status), "USER_SEND_QUOTA");
                let wait = status
                    .get_details_retry_info()
                    .unwrap()
                    .retry_delay
                    .unwrap();
                // The hour's first slot comes back after 20 minutes.
                assert!(
                    wait > Duration::from_secs(19 * 60) && wait <= Duration::from_secs(1200),
                    "{wait:?}"
                );
            }
        }
    }
    assert_eq!(admitted, 3, "the cap is 3 per user across both replicas");
    assert_eq!(stack.calls_of(SEND).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rpc_rate_holds_across_replica_processes() {
    let redis = RedisServer::start();
    let stack = Stack::with(Seed::demo(), None, &[]).await;
    let per_sec = 20;
    let rate = per_sec.to_string();
    let flags = ["--verify-limit-per-sec", rate.as_str()];
    let replicas = [
        replica(&stack, &redis.url(), &flags).await,
        replica(&stack, &redis.url(), &flags).await,
    ];
    let token = stack.sign_in().await;
    let verify = move |mut client: Client<Channel>, token: String| async move {
        let outcome = client
            .verify_user_attribute(verify_request(&token, "email", "000000"))
            .await;
        match outcome {
            // Admitted: whatever Cognito then answered (a wrong code, then
            // its own attempt limit, here).
            Ok(_) => true,
            Err(status) => {
                let reason = reason(&status);
                assert_ne!(reason, "LIMITS_UNAVAILABLE", "decided without Redis");
                reason != "RATE_LIMITED"
            }
        }
    };

    // Use up the burst through one replica, so what follows is the rate.
    let first = client(&replicas[0]).await;
    while verify(first.clone(), token.clone()).await {}

    let started = Instant::now();
    let run = Duration::from_secs(3);
    let mut workers = Vec::new();
    for replica in &replicas {
        for _ in 0..4 {
            let client = client(replica).await;
            let token = token.clone();
            workers.push(tokio::spawn(async move {
                let mut admitted = 0_u32;
                while started.elapsed() < run {
                    if verify(client.clone(), token.clone()).await {
                        admitted += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                admitted
            }));
        }
    }
    let mut admitted = 0;
    for worker in workers {
        admitted += worker.await.unwrap();
    }
    crate::common::assert_rate_within_ten_percent(admitted, per_sec, started.elapsed());
    assert!(stack.calls_of(VERIFY).await >= u64::from(admitted));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_gives_the_failure_mode_and_its_return_is_picked_up() {
    let mut redis = RedisServer::start();
    let stack = Stack::with(Seed::demo(), None, &[]).await;
    let common = [
        "--send-cooldown-secs",
        "0",
        "--user-sends-per-hour",
        "2",
        "--limits-redis-timeout-ms",
        "100",
    ];
    let with_mode = |mode: &'static str| {
        let mut flags = common.to_vec();
        flags.extend(["--limits-redis-failure-mode", mode]);
        flags
    };
    let local = replica(&stack, &redis.url(), &with_mode("local")).await;
    let deny = replica(&stack, &redis.url(), &with_mode("deny")).await;
    let token = stack.sign_in().await;
    let (mut local_client, mut deny_client) = (client(&local).await, client(&deny).await);

    send(&mut local_client, &token, "").await.unwrap();
    send(&mut deny_client, &token, "").await.unwrap();
    let status = send(&mut local_client, &token, "").await.unwrap_err();
    assert_eq!(reason(&status), "USER_SEND_QUOTA", "shared: 2 of 2 used");

    redis.kill();
    // Deny: refused, nothing sent, with the advice to retry.
    let before = stack.calls_of(SEND).await;
    let status = send(&mut deny_client, &token, "").await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(reason(&status), "LIMITS_UNAVAILABLE");
    assert!(status.get_details_retry_info().is_some());
    // Local: this replica's own limits decide. It has seen one of the
    // user's two sends (its own, not the other replica's): one more, then
    // the cap holds.
    send(&mut local_client, &token, "").await.unwrap();
    let status = send(&mut local_client, &token, "").await.unwrap_err();
    assert_eq!(reason(&status), "USER_SEND_QUOTA", "{status:?}");
    assert_eq!(stack.calls_of(SEND).await, before + 1);
    let warned = local
        .log
        .lock()
        .unwrap()
        .iter()
        .any(|line| line.contains("\"WARN\"") && line.contains("the limits' Redis failed"));
    assert!(
        warned,
        "the fallback is logged: {:?}",
        local.log.lock().unwrap()
    );

    // Back, empty (no persistence): both replicas use it again by themselves.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match send(&mut deny_client, &token, "").await {
            Ok(_) => break,
            Err(status) => {
                assert_eq!(reason(&status), "LIMITS_UNAVAILABLE", "{status:?}");
                assert!(Instant::now() < deadline, "Redis's return not picked up");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    // Shared again: the deny replica's send is the first of two in Redis,
    // so one more is admitted across both, then none.
    send(&mut local_client, &token, "").await.unwrap();
    let status = send(&mut local_client, &token, "").await.unwrap_err();
    assert_eq!(reason(&status), "USER_SEND_QUOTA");
    let status = send(&mut deny_client, &token, "").await.unwrap_err();
    assert_eq!(reason(&status), "USER_SEND_QUOTA");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_across_replicas_make_one_cognito_call() {
    let redis = RedisServer::start();
    let stack = Stack::with(Seed::demo(), None, &[]).await;
    let flags = ["--send-cooldown-secs", "60"];
    let replicas = [
        replica(&stack, &redis.url(), &flags).await,
        replica(&stack, &redis.url(), &flags).await,
    ];
    let token = stack.sign_in().await;
    // The first call to reach Cognito takes a while, so the others arrive
    // while it is in flight.
    stack
        .inject(json!({"operation": SEND, "latencyMs": 700}))
        .await;
    let request_id = "0b6f3d8e-5c1a-4e7b-9a2d-3f4e5a6b7c8d";
    let mut calls = Vec::new();
    for replica in &replicas {
        for _ in 0..4 {
            let mut client = client(replica).await;
            let token = token.clone();
            calls.push(tokio::spawn(async move {
                send(&mut client, &token, request_id).await
            }));
        }
    }
    let mut answers = Vec::new();
    for call in calls {
        answers.push(
            call.await
                .unwrap()
                .expect("every duplicate gets the answer"),
        );
    }
    assert!(answers[0].code_delivery_details.is_some());
    assert!(
        answers.iter().all(|a| *a == answers[0]),
        "identical answers: {answers:?}"
    );
    assert_eq!(stack.calls_of(SEND).await, 1);

    // A later repeat on either replica: the same answer, still one call,
    // and no cooldown (a repeat is not a send).
    for replica in &replicas {
        let again = send(&mut client(replica).await, &token, request_id)
            .await
            .unwrap();
        assert_eq!(again, answers[0]);
    }
    assert_eq!(stack.calls_of(SEND).await, 1);
    // Another request id is another send: refused by the shared cooldown.
    let status = send(
        &mut client(&replicas[1]).await,
        &token,
        "7d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    )
    .await
    .unwrap_err();
    assert_eq!(reason(&status), "SEND_COOLDOWN");
}
