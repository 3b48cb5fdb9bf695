//! The limits shared through a real Redis: each test starts its own
//! `redis-server` on a free port (installed by `scripts/install-tools`; the
//! tests fail, never skip, without it), builds `Limits` replicas on it, and
//! kills and restarts it to see the failure modes and the recovery.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use cognito_verify::{
    Call, FailureMode, Limit, Limits, LimitsConfig, Operation, RedisConfig, Refusal,
};

use crate::common::{
    certs::TempDir,
    redis::{free_port, RedisServer},
};

const SEND: Operation = Operation::GetUserAttributeVerificationCode;

/// The default limits, shared through `url`.
fn shared(url: &str, failure_mode: FailureMode, timeout: Duration) -> LimitsConfig {
    LimitsConfig {
        redis: Some(RedisConfig {
            url: url.parse().expect("valid Redis URL"),
            timeout,
            failure_mode,
        }),
        ..LimitsConfig::default()
    }
}

fn send<'a>(user: &'a str, attribute: &'a str) -> Call<'a> {
    Call {
        operation: SEND,
        user,
        attribute,
        caller: "caller-1",
    }
}

/// The wait of a refusal by `limit`, or a panic naming what came instead.
fn wait_of(result: Result<(), Refusal>, limit: Limit) -> Duration {
    match result {
        Err(Refusal::Limited { limit: l, wait }) if l == limit => wait,
        other => panic!("expected a refusal by {limit:?}, got {other:?}"),
    }
}

fn assert_near(wait: Duration, expected: Duration) {
    let slack = Duration::from_secs(2);
    assert!(
        wait <= expected && wait + slack >= expected,
        "wait {wait:?}, expected {expected:?}"
    );
}

/// Calls `probe` every 50 ms until it returns true, for at most `limit`.
async fn eventually(limit: Duration, mut probe: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !probe().await {
        assert!(Instant::now() < deadline, "not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn two_replicas_share_one_users_quota_and_cooldown() {
    let redis = RedisServer::start();
    // Deny mode: a decision that did not come from Redis fails the test.
    let config = shared(&redis.url(), FailureMode::Deny, Duration::from_secs(1));
    let a = Limits::new(config.clone()).await.unwrap();
    let b = Limits::new(config).await.unwrap();

    // Ten sends of one user, alternating replicas, each for another
    // attribute (so the cooldown does not refuse): exactly 5 are admitted.
    let mut admitted = 0;
    for i in 0..10 {
        let replica = if i % 2 == 0 { &a } else { &b };
        let attribute = format!("attribute-{i}");
        match replica.check(&send("alice", &attribute)).await {
            Ok(()) => admitted += 1,
            refused => {
                let wait = wait_of(refused, Limit::UserSendQuota);
                assert_near(wait, Duration::from_secs(720));
            }
        }
    }
    assert_eq!(admitted, 5);

    // One code per attribute per cooldown, across replicas.
    assert_eq!(a.check(&send("bob", "email")).await, Ok(()));
    let wait = wait_of(b.check(&send("bob", "email")).await, Limit::SendCooldown);
    assert_near(wait, Duration::from_secs(60));
    assert_eq!(a.fallbacks() + b.fallbacks(), 0);
}

#[tokio::test]
async fn redis_consumes_all_or_nothing_and_names_the_longest_wait() {
    let redis = RedisServer::start();
    let config = LimitsConfig {
        user_sends_per_hour: 2,
        caller_sends_per_minute: 2,
        ..shared(&redis.url(), FailureMode::Deny, Duration::from_secs(1))
    };
    let a = Limits::new(config.clone()).await.unwrap();
    let b = Limits::new(config).await.unwrap();
    assert_eq!(a.check(&send("carol", "email")).await, Ok(()));
    // Twenty refusals by the cooldown consume neither carol's quota nor
    // the caller's rate (2 per minute: one is left).
    for _ in 0..20 {
        wait_of(b.check(&send("carol", "email")).await, Limit::SendCooldown);
    }
    assert_eq!(b.check(&send("carol", "phone_number")).await, Ok(()));
    // Now the cooldown (60 s), carol's quota (2/h: 1800 s) and the caller
    // (2/min: 30 s) all refuse: the longest wait is named.
    let wait = wait_of(a.check(&send("carol", "email")).await, Limit::UserSendQuota);
    assert_near(wait, Duration::from_secs(1800));
    let wait = wait_of(a.check(&send("dan", "email")).await, Limit::CallerRate);
    assert_near(wait, Duration::from_secs(30));
}

#[tokio::test]
async fn keys_hold_no_user_data_and_expire() {
    let redis = RedisServer::start();
    let config = shared(&redis.url(), FailureMode::Deny, Duration::from_secs(1));
    let limits = Limits::new(config).await.unwrap();
    let call = Call {
        operation: SEND,
        user: "pool-1|olivia-subject-0000",
        attribute: "phone_number",
        caller: "spiffe://caller.example/secret-service",
    };
    assert_eq!(limits.check(&call).await, Ok(()));

    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    // The cooldown and the user's quota (the RPC's key may have expired:
    // it lives 40 ms).
    let keyed: Vec<&String> = keys.iter().filter(|k| !k.contains(":rpc:")).collect();
    assert_eq!(keyed.len(), 2, "{keys:?}");
    for key in &keys {
        assert!(key.starts_with("cognito-verify:limits:"), "{key}");
        assert!(key.len() <= 80, "{key}");
        for secret in ["olivia", "pool-1", "phone", "spiffe", "secret"] {
            assert!(!key.contains(secret), "{key} contains {secret}");
        }
    }
    for key in keyed {
        let ttl_ms: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let max = if key.contains(":cooldown:") {
            60_000
        } else {
            720_000
        };
        assert!(ttl_ms > max - 5_000 && ttl_ms <= max, "{key}: {ttl_ms} ms");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rpc_rate_holds_across_replicas() {
    let redis = RedisServer::start();
    let per_sec = 50;
    let config = LimitsConfig {
        send_cooldown: Duration::ZERO,
        user_sends_per_hour: 0,
        get_code_per_sec: per_sec,
        ..shared(&redis.url(), FailureMode::Deny, Duration::from_secs(1))
    };
    let replicas = [
        Limits::new(config.clone()).await.unwrap(),
        Limits::new(config).await.unwrap(),
    ];
    // Use up the burst first, so what follows is the sustained rate.
    while replicas[0].check(&send("warm-up", "email")).await.is_ok() {}

    let started = Instant::now();
    let run = Duration::from_secs(2);
    let tasks = replicas.map(|limits| {
        tokio::spawn(async move {
            let mut admitted = 0_u32;
            while started.elapsed() < run {
                match limits.check(&send("user", "email")).await {
                    Ok(()) => admitted += 1,
                    refused => {
                        wait_of(refused, Limit::RpcRate(SEND));
                    }
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            admitted
        })
    });
    let mut admitted = 0;
    for task in tasks {
        admitted += task.await.unwrap();
    }
    crate::common::assert_rate_within_ten_percent(admitted, per_sec, started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_failing_falls_back_or_refuses_and_its_return_is_picked_up() {
    let mut redis = RedisServer::start();
    let timeout = Duration::from_millis(100);
    let local = Limits::new(shared(&redis.url(), FailureMode::Local, timeout))
        .await
        .unwrap();
    let deny = Limits::new(shared(&redis.url(), FailureMode::Deny, timeout))
        .await
        .unwrap();
    assert_eq!(local.check(&send("kim", "email")).await, Ok(()));
    wait_of(deny.check(&send("kim", "email")).await, Limit::SendCooldown);

    redis.kill();
    // Within the timeout (and a little scheduling slack), every decision.
    let bound = timeout + Duration::from_millis(100);
    for i in 0..5 {
        let before = local.fallbacks();
        let started = Instant::now();
        // Local: decided by this replica, which remembers kim's code.
        let result = local.check(&send("kim", "email")).await;
        assert!(
            started.elapsed() <= bound,
            "local took {:?}",
            started.elapsed()
        );
        wait_of(result, Limit::SendCooldown);
        assert_eq!(local.fallbacks(), before + 1);
        let user = format!("lee-{i}");
        assert_eq!(local.check(&send(&user, "email")).await, Ok(()));
        assert_eq!(local.fallbacks(), before + 2);
        // Deny: refused, as fast.
        let started = Instant::now();
        assert_eq!(
            deny.check(&send(&user, "email")).await,
            Err(Refusal::Unavailable)
        );
        assert!(
            started.elapsed() <= bound,
            "deny took {:?}",
            started.elapsed()
        );
    }
    assert_eq!(deny.fallbacks(), 0);

    // Back on the same port (empty: no persistence): both replicas return
    // to Redis by themselves, without being rebuilt.
    redis.restart();
    let mut probe = 0;
    eventually(Duration::from_secs(15), async || {
        probe += 1;
        deny.check(&send(&format!("probe-{probe}"), "email"))
            .await
            .is_ok()
    })
    .await;
    eventually(Duration::from_secs(15), async || {
        probe += 1;
        let before = local.fallbacks();
        let result = local.check(&send(&format!("probe-{probe}"), "email")).await;
        result.is_ok() && local.fallbacks() == before
    })
    .await;
    // Shared state again: deny mode has no local state, so this refusal
    // can only come from Redis.
    assert_eq!(local.check(&send("nia", "email")).await, Ok(()));
    wait_of(deny.check(&send("nia", "email")).await, Limit::SendCooldown);
}

#[tokio::test]
async fn redis_down_at_start_is_no_error() {
    let mut redis = RedisServer::not_started();
    let config = shared(&redis.url(), FailureMode::Local, Duration::from_millis(50));
    let limits = Limits::new(config.clone())
        .await
        .expect("not a config error");
    assert_eq!(limits.check(&send("oz", "email")).await, Ok(()));
    assert_eq!(limits.fallbacks(), 1);

    redis.restart();
    let other = Limits::new(config).await.unwrap();
    let mut probe = 0;
    eventually(Duration::from_secs(15), async || {
        probe += 1;
        let before = limits.fallbacks();
        let ok = limits
            .check(&send(&format!("probe-{probe}"), "email"))
            .await
            .is_ok();
        ok && limits.fallbacks() == before
    })
    .await;
    eventually(Duration::from_secs(15), async || {
        probe += 1;
        let before = other.fallbacks();
        let ok = other
            .check(&send(&format!("probe-{probe}"), "email"))
            .await
            .is_ok();
        ok && other.fallbacks() == before
    })
    .await;
    // Shared: one replica's send is the other's cooldown.
    assert_eq!(limits.check(&send("pat", "email")).await, Ok(()));
    let before = other.fallbacks();
    wait_of(
        other.check(&send("pat", "email")).await,
        Limit::SendCooldown,
    );
    assert_eq!(other.fallbacks(), before, "decided by Redis");
}

/// Everything this crate logs, from the first call on. A global subscriber,
/// not a scoped one: with a single scoped subscriber, `tracing` caches a
/// callsite's interest from whichever thread hits it first, and another
/// test's thread (with no subscriber) would switch the warning off for this
/// one. The only one in the test binary, so it keeps the library's events
/// alone: the Redis client logs nothing, and the other tests' HTTP/2 and
/// SDK chatter at debug would cost them time and this buffer memory.
fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_env_filter(tracing_subscriber::EnvFilter::new("cognito_verify=debug"))
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        logs
    })
}

/// A log written to memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn a_password_never_shows() {
    const SECRET: &str = "s3cret-Pa55word";
    let redis = RedisServer::start_with(&["--requirepass", "the-right-one"]);
    let logs = logs();

    let wrong = format!("redis://default:{SECRET}@127.0.0.1:{}", redis.port);
    let absent = format!("redis://:{SECRET}@127.0.0.1:{}", free_port());
    let mut texts = Vec::new();
    // Long enough for the client's connection retries to end in the error.
    let timeout = Duration::from_secs(5);
    for url in [&wrong, &absent] {
        let config = shared(url, FailureMode::Local, timeout);
        let limits = Limits::new(config.clone()).await.unwrap();
        // Redis refuses the password, or nothing listens: decided locally.
        assert_eq!(limits.check(&send("quinn", "email")).await, Ok(()));
        assert_eq!(limits.fallbacks(), 1);
        texts.push(format!("{limits:?}"));
        texts.push(format!("{config:?}"));
        let url = config.redis.as_ref().unwrap().url.clone();
        texts.push(format!("{url} {url:?}"));
    }
    for bad in [
        format!("http://u:{SECRET}@cache"),
        format!("redis://u:{SECRET}@cache/not-a-db"),
        format!("redis://u:{SECRET}@cache:99999"),
        format!("rediss://u:{SECRET}@cache/#not-insecure"),
    ] {
        texts.push(bad.parse::<cognito_verify::RedisUrl>().unwrap_err());
    }
    let logged = logs.text();
    // The failures were logged (with the scrubbed URL), so this looks at
    // real error text, not at nothing.
    assert!(logged.contains("limits' Redis failed"), "{logged}");
    assert!(logged.contains("default:***@127.0.0.1"), "{logged}");
    assert!(logged.to_lowercase().contains("authentication"), "{logged}");
    texts.push(logged);
    for text in texts {
        assert!(!text.contains(SECRET), "password shown in: {text}");
    }

    // The right password works: decided by Redis.
    let right = format!("redis://:the-right-one@127.0.0.1:{}", redis.port);
    let config = shared(&right, FailureMode::Deny, Duration::from_secs(1));
    let limits = Limits::new(config).await.unwrap();
    assert_eq!(limits.check(&send("quinn", "email")).await, Ok(()));
    wait_of(
        limits.check(&send("quinn", "email")).await,
        Limit::SendCooldown,
    );
}

/// A CA, and a server certificate it signed for `localhost`, in `dir`:
/// (CA, server certificate, server key) paths.
fn tls_files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let files = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&files.0, ca.pem()).unwrap();
    std::fs::write(&files.1, cert.pem()).unwrap();
    std::fs::write(&files.2, key.serialize_pem()).unwrap();
    files
}

/// `rediss://` is TLS (rustls) with the server's certificate verified
/// against the system's roots. Those roots come from `SSL_CERT_FILE` when it
/// is set, so the checks run in child processes of this test binary (one
/// trusting the test CA, one not), rather than changing this process's
/// environment under the other tests.
#[test]
fn rediss_verifies_the_server_certificate() {
    let dir = TempDir::new();
    let (ca, cert, key) = tls_files(dir.path());
    let redis = RedisServer::start_tls(&cert, &key);
    let url = format!("rediss://localhost:{}", redis.port);
    // The child's name in this test binary: its module path without the
    // crate's name.
    let child = format!(
        "{}::rediss_child",
        module_path!().split_once("::").unwrap().1
    );
    for (trusted, expect) in [(&ca, "shared"), (&cert, "refused")] {
        // `cert` as the only root: not a CA, so nothing verifies.
        let output = Command::new(std::env::current_exe().unwrap())
            .args([child.as_str(), "--exact", "--ignored", "--nocapture"])
            .env("SSL_CERT_FILE", trusted)
            .env("LIMITS_REDIS_TEST_URL", &url)
            .env("LIMITS_REDIS_TEST_EXPECT", expect)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{expect}: {text}");
        assert!(text.contains("1 passed"), "{expect}: {text}");
    }
}

/// The child of `rediss_verifies_the_server_certificate`; passes trivially
/// when run otherwise.
#[tokio::test]
#[ignore = "a helper run by rediss_verifies_the_server_certificate"]
async fn rediss_child() {
    let (Ok(url), Ok(expect)) = (
        std::env::var("LIMITS_REDIS_TEST_URL"),
        std::env::var("LIMITS_REDIS_TEST_EXPECT"),
    ) else {
        return;
    };
    let config = shared(&url, FailureMode::Deny, Duration::from_secs(3));
    let a = Limits::new(config.clone()).await.unwrap();
    if expect == "refused" {
        // An unverified server is no Redis to trust: deny mode refuses.
        assert_eq!(
            a.check(&send("ray", "email")).await,
            Err(Refusal::Unavailable)
        );
        return;
    }
    let b = Limits::new(config).await.unwrap();
    assert_eq!(a.check(&send("ray", "email")).await, Ok(()));
    wait_of(b.check(&send("ray", "email")).await, Limit::SendCooldown);
}
