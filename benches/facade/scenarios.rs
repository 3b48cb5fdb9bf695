//! Set-up (tokens) and the pass/fail checks under overload.

use std::{
    sync::{atomic::AtomicBool, Arc},
    time::{Duration, Instant},
};

use aws_sdk_cognitoidentityprovider::types::AuthFlowType;
use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client as HttpClient, rt::TokioExecutor};
use serde::Serialize;
use serde_json::{json, Value};

use crate::{
    load::{self, Rpc, Stats, Target},
    procs, Plan, USERS,
};

/// The seed's app client.
pub const CLIENT: &str = "benchclient00000000000001";

/// An access token per seeded user (USER_PASSWORD_AUTH through the SDK).
pub async fn sign_in_all(backend_url: &str) -> Vec<String> {
    let sdk = load::sdk(backend_url).await;
    let mut tokens = Vec::with_capacity(USERS);
    for i in 0..USERS {
        let out = sdk
            .initiate_auth()
            .auth_flow(AuthFlowType::UserPasswordAuth)
            .client_id(CLIENT)
            .auth_parameters("USERNAME", format!("u{i}"))
            .auth_parameters("PASSWORD", format!("Bench-Passw0rd-{i}"))
            .send()
            .await
            .expect("bench user signs in");
        tokens.push(
            out.authentication_result()
                .unwrap()
                .access_token()
                .unwrap()
                .to_owned(),
        );
    }
    tokens
}

/// Sends a JSON request to the backend's controls.
async fn control(url: &str, method: &str, path: &str, body: Value) {
    let client = HttpClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = http::Request::builder()
        .method(method)
        .uri(format!("{url}{path}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status();
    let _ = response.into_body().collect().await;
    assert!(status.is_success(), "{method} {path}: {status}");
}

/// One pass/fail check.
#[derive(Debug, Serialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

pub fn check(checks: &mut Vec<Check>, name: &str, passed: bool, detail: String) {
    checks.push(Check {
        name: name.to_owned(),
        passed,
        detail,
    });
}

/// What the overload scenarios measured.
#[derive(Debug, Serialize)]
pub struct Overload {
    pub in_flight: usize,
    pub in_flight_peak_rss_kib: u64,
    pub in_flight_stats: Stats,
    pub shed_stats: Stats,
    pub recovery_stats: Stats,
    pub sigterm_stats: Stats,
    pub sigterm_exit_ms: Option<u128>,
    pub startup_ms: Vec<u128>,
    pub checks: Vec<Check>,
}

pub async fn overload(plan: &Plan, backend_url: &str, tokens: &[String]) -> Overload {
    let mut checks = Vec::new();

    // 1. `in_flight` RPCs at once against a slow backend.
    let (facade, addr, _) = procs::facade(backend_url, &[]).await;
    let n = plan.in_flight;
    control(
        backend_url,
        "POST",
        "/_emulator/faults",
        json!({"operation": "GetUserAttributeVerificationCode", "count": n, "latencyMs": 2000}),
    )
    .await;
    let target = Target::Facade(load::grpc(&addr, n.div_ceil(100)).await);
    let in_flight_stats = load::closed_loop_once(&target, Rpc::Get, tokens, n).await;
    // VmHWM: the kernel's record of the fresh process's peak RSS.
    let in_flight_peak_rss_kib = facade.rss_kib().1;
    let ok = in_flight_stats.outcomes.get("ok").copied().unwrap_or(0);
    check(
        &mut checks,
        "in-flight: every RPC answered OK",
        ok == n as u64,
        format!("{ok} of {n} OK: {:?}", in_flight_stats.outcomes),
    );
    check(
        &mut checks,
        "in-flight: facade RSS <= 100 MiB",
        in_flight_peak_rss_kib <= 100 * 1024,
        format!(
            "peak {:.1} MiB with {n} in flight",
            in_flight_peak_rss_kib as f64 / 1024.0
        ),
    );
    drop(facade);
    control(backend_url, "DELETE", "/_emulator/faults", json!({})).await;

    // 2. Offered load far above capacity: 32 admitted at once, 512 callers.
    let (facade, addr, _) = procs::facade(backend_url, &["--max-concurrent-rpcs", "32"]).await;
    control(backend_url, "POST", "/_emulator/faults", json!({"operation": "GetUserAttributeVerificationCode", "count": 100_000_000, "latencyMs": 50})).await;
    let target = Target::Facade(load::grpc(&addr, 6).await);
    let shed_stats = load::closed_loop(&target, Rpc::Get, tokens, 512, plan.overload).await;
    control(backend_url, "DELETE", "/_emulator/faults", json!({})).await;
    let shed = shed_stats
        .outcomes
        .get("ResourceExhausted")
        .copied()
        .unwrap_or(0);
    let admitted = shed_stats.outcomes.get("ok").copied().unwrap_or(0);
    let others: u64 = shed_stats
        .outcomes
        .iter()
        .filter(|(k, _)| *k != "ok" && *k != "ResourceExhausted")
        .map(|(_, v)| v)
        .sum();
    let shed_p99 = shed_stats
        .p99_us_by_outcome
        .get("ResourceExhausted")
        .copied()
        .unwrap_or(0);
    let admitted_p99 = shed_stats
        .p99_us_by_outcome
        .get("ok")
        .copied()
        .unwrap_or(u64::MAX);
    check(
        &mut checks,
        "overload: excess shed with RESOURCE_EXHAUSTED",
        shed > 0 && admitted > 0,
        format!("{admitted} admitted, {shed} shed"),
    );
    check(
        &mut checks,
        "overload: no timeouts or other errors",
        others == 0,
        format!("{:?}", shed_stats.outcomes),
    );
    check(
        &mut checks,
        "overload: shed answers p99 <= 100 ms",
        shed_p99 <= 100_000,
        format!("p99 {} us", shed_p99),
    );
    check(
        &mut checks,
        "overload: admitted p99 <= 1 s (backend 50 ms)",
        admitted_p99 <= 1_000_000,
        format!("p99 {} us", admitted_p99),
    );
    let recovery_stats =
        load::closed_loop(&target, Rpc::Get, tokens, 8, Duration::from_millis(500)).await;
    let all_ok = recovery_stats.outcomes.keys().all(|k| k == "ok") && recovery_stats.requests > 0;
    check(
        &mut checks,
        "overload: recovers when load drops",
        all_ok,
        format!("{:?}", recovery_stats.outcomes),
    );
    drop(facade);

    // 3. SIGTERM under steady load: in-flight RPCs finish, the process exits
    //    within the drain timeout. Callers stop starting calls when the pod is
    //    told to stop, as endpoints would.
    let (mut facade, addr, _) = procs::facade(
        backend_url,
        &["--shutdown-delay-secs", "0", "--drain-timeout-secs", "5"],
    )
    .await;
    control(backend_url, "POST", "/_emulator/faults", json!({"operation": "GetUserAttributeVerificationCode", "count": 100_000_000, "latencyMs": 200})).await;
    let target = Target::Facade(load::grpc(&addr, 2).await);
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (target, tokens, stop) = (target.clone(), tokens.to_vec(), Arc::clone(&stop));
        tokio::spawn(async move { load::until_stopped(&target, Rpc::Get, &tokens, 64, stop).await })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(20)).await; // calls that passed the check are sent
    let signalled = Instant::now();
    facade.terminate();
    let sigterm_stats = load.await.unwrap();
    let exit = facade
        .wait_exit(Duration::from_secs(10))
        .map(|(code, _)| (code, signalled.elapsed()));
    control(backend_url, "DELETE", "/_emulator/faults", json!({})).await;
    let failed: u64 = sigterm_stats
        .outcomes
        .iter()
        .filter(|(k, _)| *k != "ok")
        .map(|(_, v)| v)
        .sum();
    check(
        &mut checks,
        "sigterm: 0 failed in-flight RPCs",
        failed == 0 && sigterm_stats.requests > 0,
        format!("{:?}", sigterm_stats.outcomes),
    );
    check(
        &mut checks,
        "sigterm: exit 0 within the drain timeout",
        matches!(exit, Some((0, t)) if t <= Duration::from_secs(5)),
        format!("{exit:?}"),
    );

    // 4. Start-up: process start to health SERVING.
    let mut startup_ms = Vec::new();
    for _ in 0..if plan.quick { 1 } else { 5 } {
        let (_, _, startup) = procs::facade(backend_url, &[]).await;
        startup_ms.push(startup.as_millis());
    }
    startup_ms.sort_unstable();

    Overload {
        in_flight: n,
        in_flight_peak_rss_kib,
        in_flight_stats,
        shed_stats,
        recovery_stats,
        sigterm_stats,
        sigterm_exit_ms: exit.map(|(_, t)| t.as_millis()),
        startup_ms,
        checks,
    }
}
