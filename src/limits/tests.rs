//! `Limits` decided locally, on a clock the tests move (the Redis side is in
//! `tests/suite/limits_redis.rs`, against a real `redis-server`).

use std::sync::atomic::AtomicI64;

use super::*;
use crate::rpc::Operation;

const SEC: i64 = 1_000_000;
const START: i64 = 1_750_000_000 * SEC;
const SEND: Operation = Operation::GetUserAttributeVerificationCode;
const VERIFY: Operation = Operation::VerifyUserAttribute;

/// Limits on a clock that starts at `START` and moves only when told.
fn limits(config: LimitsConfig) -> (Limits, Arc<AtomicI64>) {
    let now = Arc::new(AtomicI64::new(START));
    let clock = Arc::clone(&now);
    let limits = Limits::with_clock(config, Box::new(move || clock.load(Ordering::SeqCst)))
        .expect("valid config");
    (limits, now)
}

fn send<'a>(user: &'a str, attribute: &'a str) -> Call<'a> {
    Call {
        operation: SEND,
        user,
        attribute,
        caller: "caller-a",
    }
}

fn limited(limit: Limit, wait_secs: u64) -> Result<(), Refusal> {
    Err(Refusal::Limited {
        limit,
        wait: Duration::from_secs(wait_secs),
    })
}

#[tokio::test]
async fn cooldown_then_hourly_quota() {
    let (limits, now) = limits(LimitsConfig::default());
    assert_eq!(limits.check(&send("alice", "email")).await, Ok(()));
    // Same attribute within the cooldown: refused, with the exact wait.
    now.fetch_add(20 * SEC, Ordering::SeqCst);
    assert_eq!(
        limits.check(&send("alice", "email")).await,
        limited(Limit::SendCooldown, 40)
    );
    // Another attribute is another cooldown, but the same hourly quota.
    for attribute in ["phone_number", "a", "b", "c"] {
        assert_eq!(limits.check(&send("alice", attribute)).await, Ok(()));
    }
    // Five codes sent at 0 s and 20 s: the sixth waits until the TAT is an
    // hour ahead no more: 0 + 5 × 720 s… minus the 20 s passed.
    assert_eq!(
        limits.check(&send("alice", "d")).await,
        limited(Limit::UserSendQuota, 720 - 20)
    );
    // Another user is not affected.
    assert_eq!(limits.check(&send("bob", "email")).await, Ok(()));
}

#[tokio::test]
async fn a_refusal_consumes_from_no_other_limit() {
    let config = LimitsConfig {
        caller_sends_per_minute: 3,
        ..LimitsConfig::default()
    };
    let (limits, now) = limits(config);
    assert_eq!(limits.check(&send("carol", "email")).await, Ok(()));
    // The cooldown refuses this a hundred times: neither the user's quota
    // nor the caller's rate nor the RPC rate may move.
    for _ in 0..100 {
        assert!(limits.check(&send("carol", "email")).await.is_err());
    }
    now.fetch_add(SEC, Ordering::SeqCst);
    // The caller still has 2 of its 3 per minute.
    assert_eq!(limits.check(&send("dave", "email")).await, Ok(()));
    assert_eq!(limits.check(&send("erin", "email")).await, Ok(()));
    assert_eq!(
        limits.check(&send("frank", "email")).await,
        limited(Limit::CallerRate, 20 - 1)
    );
}

#[tokio::test]
async fn the_longest_wait_is_reported() {
    let config = LimitsConfig {
        user_sends_per_hour: 1,
        ..LimitsConfig::default()
    };
    let (limits, now) = limits(config);
    assert_eq!(limits.check(&send("gina", "email")).await, Ok(()));
    now.fetch_add(10 * SEC, Ordering::SeqCst);
    // Both the cooldown (50 s left) and the quota (3590 s) refuse: the
    // quota's wait is the one that admits the call.
    assert_eq!(
        limits.check(&send("gina", "email")).await,
        limited(Limit::UserSendQuota, 3590)
    );
    now.fetch_add(3590 * SEC, Ordering::SeqCst);
    assert_eq!(limits.check(&send("gina", "email")).await, Ok(()));
}

#[tokio::test]
async fn verify_attempts_and_the_rpc_rate() {
    let (limits, now) = limits(LimitsConfig::default());
    fn verify(user: &str) -> Call<'_> {
        Call {
            operation: VERIFY,
            user,
            attribute: "email",
            caller: "c",
        }
    }
    for _ in 0..15 {
        assert_eq!(limits.check(&verify("hal")).await, Ok(()));
    }
    assert_eq!(
        limits.check(&verify("hal")).await,
        limited(Limit::UserVerifyQuota, 240)
    );
    // 15 admitted + 10 more users: the RPC's burst of 25 is used up.
    for user in 0..10 {
        let user = format!("u{user}");
        assert_eq!(limits.check(&verify(&user)).await, Ok(()));
    }
    assert_eq!(
        limits.check(&verify("ivy")).await,
        Err(Refusal::Limited {
            limit: Limit::RpcRate(VERIFY),
            wait: Duration::from_millis(40),
        })
    );
    now.fetch_add(40_000, Ordering::SeqCst);
    assert_eq!(limits.check(&verify("ivy")).await, Ok(()));
    // The other RPC has its own rate.
    assert_eq!(limits.check(&send("ivy", "email")).await, Ok(()));
}

#[tokio::test]
async fn a_stream_of_distinct_users_keeps_memory_flat() {
    let (limits, now) = limits(LimitsConfig::default());
    let mut admitted = 0;
    // 100,000 distinct users in 4 s of clock (one every 40 µs).
    for user in 0..100_000 {
        now.fetch_add(40, Ordering::SeqCst);
        let user = format!("user-{user}");
        if limits.check(&send(&user, "email")).await.is_ok() {
            admitted += 1;
        }
    }
    // The RPC rate admitted its burst and 25/s (the 125th would be due at
    // 4 s exactly); refusals stored nothing, so the map holds 2 entries per
    // admitted call (cooldown, user) and the RPC's.
    assert_eq!(admitted, 25 + 4 * 25 - 1);
    assert_eq!(limits.0.local.len(), 2 * admitted + 1);
}

#[tokio::test]
async fn limits_that_are_off_admit_everything() {
    let (limits, _) = limits(LimitsConfig::off());
    for _ in 0..1000 {
        assert_eq!(limits.check(&send("jo", "email")).await, Ok(()));
    }
    assert_eq!(limits.0.local.len(), 0);
}

#[tokio::test]
async fn redis_configuration_errors_and_debug() {
    let url: RedisUrl = "redis://app:hunter2-secret@127.0.0.1:1".parse().unwrap();
    let mut redis = RedisConfig::new(url);
    redis.timeout = Duration::ZERO;
    let config = LimitsConfig {
        redis: Some(redis.clone()),
        ..LimitsConfig::default()
    };
    let err = Limits::new(config.clone()).await.unwrap_err();
    assert!(err.contains("timeout"), "{err}");
    redis.timeout = Duration::from_millis(50);
    let limits = Limits::new(LimitsConfig {
        redis: Some(redis),
        ..config
    })
    .await
    .expect("Redis being down is no configuration error");
    let debug = format!("{limits:?}");
    assert!(debug.contains("app:***@127.0.0.1:1"), "{debug}");
    assert!(!debug.contains("hunter2"), "{debug}");
}
