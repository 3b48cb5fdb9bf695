//! What the limits cost: the facade in front of the constant backend with
//! the limits off, decided locally, and decided on Redis (a `redis-server`
//! on loopback, started here), side by side at the same concurrency; and
//! the facade's RSS while a stream of distinct users passes through the
//! local limits (their state must stay bounded).
//!
//! Every limit is on but set so high that nothing is refused: the decisions
//! are measured, not the refusals. (The send cooldown is off: with the
//! bench's 256 users it would refuse.) Tokens are unsigned and the facade
//! does not check signatures, so each token is a distinct user key.

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use serde::Serialize;
use serde_json::json;

use crate::{
    load::{self, Rpc, Stats, Target},
    procs,
    scenarios::{check, Check},
    Plan,
};

/// Limits that apply to every call and refuse none.
const GENEROUS: [&str; 12] = [
    "--user-sends-per-hour",
    "100000000",
    "--user-verifies-per-hour",
    "100000000",
    "--caller-sends-per-minute",
    "100000000",
    "--get-code-limit-per-sec",
    "1000000",
    "--verify-limit-per-sec",
    "1000000",
    "--token-signature-check",
    "off",
];

/// One configuration's figures.
#[derive(Debug, Serialize)]
pub struct LimitRun {
    pub mode: &'static str,
    #[serde(flatten)]
    pub stats: Stats,
    pub facade_cpu_us_per_request: f64,
    /// The same calls at [`PACED_RPS`], open loop.
    pub paced: Stats,
}

/// The latency of single decisions.
#[derive(Debug, Serialize)]
pub struct Decisions {
    pub mode: &'static str,
    pub count: usize,
    pub p50_us: f64,
    pub p99_us: f64,
}

/// Times `count` decisions of a send (all four limits of a send on, none
/// refusing), one after the other, each for another user.
async fn time_decisions(mode: &'static str, redis: Option<&str>, count: usize) -> Decisions {
    use cognito_verify::{Call, FailureMode, Limits, LimitsConfig, Operation, RedisConfig};
    let config = LimitsConfig {
        send_cooldown: Duration::from_secs(60),
        user_sends_per_hour: 100_000_000,
        user_verifies_per_hour: 100_000_000,
        caller_sends_per_minute: 100_000_000,
        get_code_per_sec: 1_000_000,
        verify_per_sec: 1_000_000,
        status_per_sec: 1_000_000,
        sms_per_day: 0,
        sms_prefix_per_hour: 0,
        redis: redis.map(|url| RedisConfig {
            url: url.parse().expect("a Redis URL"),
            timeout: Duration::from_secs(1),
            failure_mode: FailureMode::Deny,
        }),
    };
    let limits = Limits::new(config).await.expect("limits");
    let mut took = Vec::with_capacity(count);
    for n in 0..count + 100 {
        let user = format!("decision-user-{mode}-{n}");
        let call = Call {
            operation: Operation::GetUserAttributeVerificationCode,
            user: &user,
            attribute: "email",
            caller: "bench",
        };
        let started = Instant::now();
        let result = limits.check(&call).await;
        let elapsed = started.elapsed();
        assert!(result.is_ok(), "{mode}: a decision refused: {result:?}");
        if n >= 100 {
            took.push(elapsed.as_secs_f64() * 1e6); // after a warm-up
        }
    }
    took.sort_by(f64::total_cmp);
    let at = |q: f64| took[((took.len() - 1) as f64 * q) as usize];
    Decisions {
        mode,
        count,
        p50_us: at(0.50),
        p99_us: at(0.99),
    }
}

/// The open-loop rate at which the latency of each mode is measured.
pub const PACED_RPS: f64 = 500.0;

/// The comparison and the distinct-users run.
#[derive(Debug, Serialize)]
pub struct LimitCost {
    pub concurrency: usize,
    pub runs: Vec<LimitRun>,
    /// One decision alone (the library called in-process, one at a time):
    /// p50 and p99 in µs, per mode.
    pub decisions: Vec<Decisions>,
    pub distinct_users: usize,
    /// (users so far, facade RSS KiB) along the distinct-users run.
    pub distinct_users_rss_kib: Vec<(usize, u64)>,
    pub distinct_users_refused: u64,
    /// Redis's `used_memory` growth per distinct user (limits at their
    /// defaults), when a `redis-server` ran.
    pub redis_bytes_per_user: Option<f64>,
}

/// An unsigned access token shaped like Cognito's, for user `n`.
fn token(n: usize) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "kid": "bench"}).to_string());
    let claims = json!({
        "sub": format!("bench-user-{n}"),
        "iss": "http://127.0.0.1/us-east-1_Bench0001",
        "token_use": "access",
        "scope": "aws.cognito.signin.user.admin",
        "exp": 4_102_444_800_u64,
        "client_id": "benchclient00000000000001",
    });
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.c2lnbmF0dXJl")
}

/// A `redis-server` on a free loopback port, if one is installed.
struct Redis(Child, u16);

impl Redis {
    fn start() -> Option<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--bind", "127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(5) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Self(child, port))
    }
}

impl Redis {
    /// `used_memory` from `INFO memory`, bytes.
    fn used_memory(&self) -> u64 {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.1)).unwrap();
        stream.write_all(b"INFO memory\r\n").unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut reply = Vec::new();
        let mut buf = [0; 4096];
        while !String::from_utf8_lossy(&reply).contains("used_memory:") || !reply.ends_with(b"\r\n")
        {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "Redis closed the connection");
            reply.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&reply);
        text.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("used_memory in INFO")
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the comparison against the constant backend at `constant_url`.
pub async fn cost(plan: &Plan, constant_url: &str) -> LimitCost {
    let concurrency: usize = if plan.quick { 16 } else { 64 };
    let tokens: Vec<String> = (0..crate::USERS).map(token).collect();
    let redis = Redis::start();
    if redis.is_none() {
        println!("limits: redis-server is not installed: the Redis run is skipped");
    }
    let redis_url = redis.as_ref().map(|r| format!("redis://127.0.0.1:{}", r.1));

    // The facade's bench defaults: every limit off.
    let off: Vec<&str> = Vec::new();
    let local: Vec<&str> = GENEROUS.to_vec();
    let mut shared: Vec<&str> = GENEROUS.to_vec();
    if let Some(url) = &redis_url {
        shared.extend_from_slice(&["--limits-redis-url", url]);
    }
    let mut modes: Vec<(&'static str, Vec<&str>)> = vec![("off", off), ("local", local)];
    if redis_url.is_some() {
        modes.push(("redis", shared));
    }

    let count = if plan.quick { 2_000 } else { 20_000 };
    let mut decisions = vec![time_decisions("local", None, count).await];
    if let Some(url) = &redis_url {
        decisions.push(time_decisions("redis", Some(url), count).await);
    }

    let mut runs = Vec::new();
    for (mode, flags) in &modes {
        let (proc, addr, _) = procs::facade(constant_url, flags).await;
        let target = Target::Facade(load::grpc(&addr, concurrency.div_ceil(100).max(1)).await);
        load::closed_loop(&target, Rpc::Get, &tokens, 8, Duration::from_millis(300)).await;
        let before = proc.cpu();
        let stats = load::closed_loop(&target, Rpc::Get, &tokens, concurrency, plan.run).await;
        let facade_cpu_us_per_request = crate::per_request(proc.cpu() - before, &stats);
        // Latency at a fixed, modest rate: what a decision adds to a call,
        // not queueing at saturation.
        let paced = load::open_loop(&target, Rpc::Get, &tokens, PACED_RPS, plan.run).await;
        runs.push(LimitRun {
            mode,
            facade_cpu_us_per_request,
            stats,
            paced,
        });
    }

    // A stream of distinct users through the local limits, at their
    // defaults (each user's state then lives for up to an hour), 64 in
    // flight so the connection's buffers stay small and what grows is the
    // limits' state. RSS is sampled along the way.
    let distinct_users = if plan.quick { 20_000 } else { 100_000 };
    let defaults = [
        "--send-cooldown-secs",
        "60",
        "--user-sends-per-hour",
        "5",
        "--user-verifies-per-hour",
        "15",
        "--get-code-limit-per-sec",
        "1000000",
        "--token-signature-check",
        "off",
    ];
    let (proc, addr, _) = procs::facade(constant_url, &defaults).await;
    let (distinct_rss_kib, refused) =
        distinct_users_run(&addr, distinct_users, || proc.rss_kib().0).await;

    // The same stream decided on Redis: what Redis holds per user.
    let mut redis_bytes_per_user = None;
    if let (Some(redis), Some(url)) = (&redis, &redis_url) {
        let mut flags = defaults.to_vec();
        flags.extend_from_slice(&["--limits-redis-url", url]);
        let (_proc, addr, _) = procs::facade(constant_url, &flags).await;
        let before = redis.used_memory();
        let users = distinct_users / 4;
        distinct_users_run(&addr, users, || 0).await;
        redis_bytes_per_user = Some((redis.used_memory() - before) as f64 / users as f64);
    }
    LimitCost {
        concurrency,
        runs,
        decisions,
        distinct_users,
        distinct_users_rss_kib: distinct_rss_kib,
        distinct_users_refused: refused,
        redis_bytes_per_user,
    }
}

/// What the limits' runs must show: every decision made (nothing refused
/// by a limit that should not refuse), and the local state bounded.
pub fn checks(cost: &LimitCost) -> Vec<Check> {
    let mut checks = Vec::new();
    for run in &cost.runs {
        let ok = run.stats.outcomes.get("ok").copied().unwrap_or(0);
        check(
            &mut checks,
            &format!("limits ({}): every call admitted", run.mode),
            ok == run.stats.requests,
            format!("{:?}", run.stats.outcomes),
        );
    }
    let first = cost.distinct_users_rss_kib.first().map_or(0, |s| s.1);
    let last = cost.distinct_users_rss_kib.last().map_or(0, |s| s.1);
    let per_user = (last.saturating_sub(first) * 1024) as f64 / cost.distinct_users as f64;
    check(
        &mut checks,
        "limits: distinct users all admitted",
        cost.distinct_users_refused == 0,
        format!("{} not OK", cost.distinct_users_refused),
    );
    // Two entries per user (cooldown, hourly sends) of a few dozen bytes
    // each; the bound is the local store's hard cap (~40 MiB).
    check(
        &mut checks,
        "limits: local state <= 512 bytes per distinct user",
        per_user <= 512.0,
        format!(
            "{per_user:.0} bytes of RSS per user over {} users",
            cost.distinct_users
        ),
    );
    checks
}

/// Sends one code for each of `users` distinct users through the facade at
/// `addr`, 64 at a time; `rss` sampled before and after every quarter, and
/// the calls not answered OK.
async fn distinct_users_run(
    addr: &str,
    users: usize,
    rss: impl Fn() -> u64,
) -> (Vec<(usize, u64)>, u64) {
    let target = Target::Facade(load::grpc(addr, 1).await);
    let warm: Vec<String> = (0..64).map(|n| token(WARM_BASE + n)).collect();
    load::closed_loop_once(&target, Rpc::Get, &warm, warm.len()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut samples = vec![(0, rss())];
    let mut refused = 0;
    let quarter = users.div_ceil(4);
    for start in (0..users).step_by(64) {
        let end = (start + 64).min(users);
        let tokens: Vec<String> = (start..end).map(|n| token(USER_BASE + n)).collect();
        let stats = load::closed_loop_once(&target, Rpc::Get, &tokens, tokens.len()).await;
        refused += stats.requests - stats.outcomes.get("ok").copied().unwrap_or(0);
        if end % quarter < 64 || end == users {
            samples.push((end, rss()));
        }
    }
    samples.dedup_by_key(|s| s.0);
    (samples, refused)
}

/// Users of the warm-up are numbered from here.
const WARM_BASE: usize = 500_000;

/// Users of the distinct-users run are numbered from here, apart from the
/// load's.
const USER_BASE: usize = 1_000_000;
