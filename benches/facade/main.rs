//! The facade's cost and its behaviour under overload, measured in one run:
//!
//! 1. **direct**: the AWS SDK calls the embedded backend (no facade);
//! 2. **facade**: gRPC → facade → SDK → the same backend;
//! 3. **facade-constant**: the facade in front of a backend that answers from
//!    a fixed response (no token or code work): the facade's own cost;
//! 4. **floor**: a minimal forwarder (`floor.rs`: tonic, one bare hyper call,
//!    nothing else) in front of the same constant backend: what "gRPC in,
//!    one HTTP call out" costs at least; the facade-constant / floor ratio of
//!    CPU per request is what the facade's own work adds.
//!
//! The facade and the backend run as their own processes (the release
//! binary); the load generator runs here. Then pass/fail checks: 1,000 RPCs in
//! flight, overload shedding and recovery, SIGTERM under load, start-up time,
//! a connection flood (plaintext and TLS) against the connection bound, and
//! the edge floods (`edge.rs`: streams that never send their message,
//! unfinished large messages, a descriptor flood on the metrics port), and
//! what the SMS guard adds to a code by SMS (`sms.rs`).
//!
//! `cargo bench --bench facade` (full, a few minutes) or
//! `cargo bench --bench facade -- --quick` (seconds; run by scripts/test).
//! Results: a table on stdout and JSON in `target/bench/facade.json`
//! (`--out PATH` to change).

#![forbid(unsafe_code)]

mod edge;
mod flood;
mod floor;
mod limits;
mod load;
mod procs;
mod scenarios;
mod sms;
mod traces;

/// The two requests as the tests build them: a file of the test suite's
/// harness, included by path because a bench cannot import a module of a
/// test binary.
#[path = "../../tests/suite/common/requests.rs"]
mod requests;

use std::{path::PathBuf, time::Duration};

use load::{Rpc, Stats, Target};
use serde::Serialize;
use serde_json::json;

/// Users in the seed: one per worker, so workers do not share a user's lock.
pub const USERS: usize = 256;

/// How much to run.
pub struct Plan {
    pub quick: bool,
    pub concurrency: Vec<usize>,
    pub run: Duration,
    pub in_flight: usize,
    pub overload: Duration,
    /// Connections opened by the connection flood (more than the default
    /// `--max-connections`).
    pub flood: usize,
}

impl Plan {
    fn from_args(args: &[String]) -> Self {
        if args.iter().any(|a| a == "--quick") {
            Self {
                quick: true,
                concurrency: vec![16],
                run: Duration::from_millis(800),
                in_flight: 1000,
                overload: Duration::from_secs(1),
                flood: 2_500,
            }
        } else {
            Self {
                quick: false,
                concurrency: vec![1, 16, 64, 256],
                run: Duration::from_secs(5),
                in_flight: 1000,
                overload: Duration::from_secs(5),
                flood: 5_000,
            }
        }
    }
}

/// One measured run.
#[derive(Debug, Serialize)]
struct Run {
    scenario: &'static str,
    rpc: Rpc,
    concurrency: usize,
    #[serde(flatten)]
    stats: Stats,
    /// Facade CPU time (user + system) per request, from /proc.
    facade_cpu_us_per_request: Option<f64>,
    /// The facade's peak RSS so far.
    facade_peak_rss_kib: Option<u64>,
    /// This process's CPU time per request: the caller's cost (the AWS SDK
    /// client for `direct`, the tonic client otherwise).
    caller_cpu_us_per_request: f64,
}

/// This process's CPU time (user + system).
fn own_cpu() -> Duration {
    procs::cpu_of("self")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // Started again as the floor's process?
    floor::serve_if_asked(&args);
    tokio::runtime::Runtime::new()
        .expect("a tokio runtime")
        .block_on(run(args));
}

async fn run(args: Vec<String>) {
    let plan = Plan::from_args(&args);
    let out = args
        .windows(2)
        .find(|w| w[0] == "--out")
        .map(|w| PathBuf::from(&w[1]))
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench/facade.json")
        });

    let dir = std::env::temp_dir().join(format!("cognito-verify-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let seed = dir.join("seed.json");
    std::fs::write(&seed, seed_json().to_string()).unwrap();

    let (backend_proc, backend_url) = procs::backend(&seed, false).await;
    let tokens = scenarios::sign_in_all(&backend_url).await;
    let (facade, facade_addr, _) = procs::facade(&backend_url, &[]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle_rss_kib = facade.rss_kib().0;

    let direct = Target::Direct(load::sdk(&backend_url).await);
    let (constant_backend_proc, constant_url) = procs::backend(&seed, true).await;
    let (constant_facade, constant_addr, _) = procs::facade(&constant_url, &[]).await;
    let (floor_proc, floor_addr) = floor::start(&constant_url).await;

    // Warm up connections and code paths.
    let warm = Target::Facade(load::grpc(&facade_addr, 1).await);
    let warm_constant = Target::Facade(load::grpc(&constant_addr, 1).await);
    let warm_floor = Target::Facade(load::grpc(&floor_addr, 1).await);
    for rpc in [Rpc::Get, Rpc::Verify] {
        load::closed_loop(&warm, rpc, &tokens, 8, Duration::from_millis(300)).await;
        load::closed_loop(&warm_constant, rpc, &tokens, 8, Duration::from_millis(300)).await;
        load::closed_loop(&warm_floor, rpc, &tokens, 8, Duration::from_millis(300)).await;
        load::closed_loop(&direct, rpc, &tokens, 8, Duration::from_millis(300)).await;
    }

    let mut runs = Vec::new();
    for rpc in [Rpc::Get, Rpc::Verify] {
        for &c in &plan.concurrency {
            let connections = c.div_ceil(100).max(1);
            let own = own_cpu();
            let stats = load::closed_loop(&direct, rpc, &tokens, c, plan.run).await;
            let caller_cpu_us_per_request = per_request(own_cpu() - own, &stats);
            runs.push(Run {
                scenario: "direct",
                rpc,
                concurrency: c,
                stats,
                facade_cpu_us_per_request: None,
                facade_peak_rss_kib: None,
                caller_cpu_us_per_request,
            });
            for (scenario, proc, addr) in [
                ("facade", &facade, &facade_addr),
                ("facade-constant", &constant_facade, &constant_addr),
                ("floor", &floor_proc, &floor_addr),
            ] {
                let target = Target::Facade(load::grpc(addr, connections).await);
                let (cpu, own) = (proc.cpu(), own_cpu());
                let stats = load::closed_loop(&target, rpc, &tokens, c, plan.run).await;
                let caller_cpu_us_per_request = per_request(own_cpu() - own, &stats);
                let cpu_us = per_request(proc.cpu() - cpu, &stats);
                runs.push(Run {
                    caller_cpu_us_per_request,
                    scenario,
                    rpc,
                    concurrency: c,
                    stats,
                    facade_cpu_us_per_request: Some(cpu_us),
                    facade_peak_rss_kib: Some(proc.rss_kib().1),
                });
            }
        }
    }

    // Added latency at half of the facade's saturation throughput.
    let mut half = Vec::new();
    for rpc in [Rpc::Get, Rpc::Verify] {
        let saturation = runs
            .iter()
            .filter(|r| r.scenario == "facade" && r.rpc == rpc)
            .map(|r| r.stats.throughput_rps)
            .fold(0.0, f64::max);
        let rate = (saturation / 2.0).max(1.0);
        let connections = 2;
        let d = load::open_loop(&direct, rpc, &tokens, rate, plan.run).await;
        let f = load::open_loop(
            &Target::Facade(load::grpc(&facade_addr, connections).await),
            rpc,
            &tokens,
            rate,
            plan.run,
        )
        .await;
        half.push(json!({
            "rpc": rpc, "rate_rps": rate,
            "direct": d, "facade": f,
            "added_p50_us": f.p50_us as i64 - d.p50_us as i64,
            "added_p99_us": f.p99_us as i64 - d.p99_us as i64,
        }));
    }
    drop(facade);
    drop(constant_facade);
    drop(floor_proc);
    let trace_cost = traces::cost(&plan, &constant_url, &tokens).await;
    let limit_cost = limits::cost(&plan, &constant_url).await;
    let sms_cost = sms::cost(&plan, &backend_url, &tokens).await;

    let mut overload = scenarios::overload(&plan, &backend_url, &tokens).await;
    let (floods, flood_checks) = flood::run(&backend_url, &tokens[0], plan.flood).await;
    overload.checks.extend(flood_checks);
    let (edge, edge_checks) = edge::run(&backend_url, &tokens[0]).await;
    overload.checks.extend(edge_checks);
    overload.checks.extend(limits::checks(&limit_cost));
    overload.checks.extend(sms::checks(&sms_cost));

    let report = report::Report {
        plan: &plan,
        runs: &runs,
        half: &half,
        idle_rss_kib,
        overload: &overload,
        floods: &floods,
        edge: &edge,
        trace_cost: &trace_cost,
        limit_cost: &limit_cost,
        sms_cost: &sms_cost,
    };
    report.print();
    let json = report.json();
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(&out, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    println!("\nJSON: {}", out.display());
    let _ = std::fs::remove_dir_all(&dir);
    // `exit` skips destructors: stop the backends first.
    drop(backend_proc);
    drop(constant_backend_proc);

    let failed: Vec<_> = overload.checks.iter().filter(|c| !c.passed).collect();
    if failed.is_empty() {
        println!("bench: {} passed, 0 failed", overload.checks.len());
    } else {
        println!(
            "bench: {} passed, {} failed",
            overload.checks.len() - failed.len(),
            failed.len()
        );
        std::process::exit(1);
    }
}

/// CPU time per request, in microseconds.
pub fn per_request(cpu: Duration, stats: &Stats) -> f64 {
    cpu.as_secs_f64() * 1e6 / stats.requests.max(1) as f64
}

/// `USERS` users, each with an email address and a US phone number.
fn seed_json() -> serde_json::Value {
    let users: Vec<_> = (0..USERS)
        .map(|i| json!({"Username": format!("u{i}"), "Password": format!("Bench-Passw0rd-{i}"),
                        "Attributes": {"email": format!("u{i}@example.com"), "email_verified": "false",
                                       "phone_number": format!("+1206555{i:04}")}}))
        .collect();
    json!({"Pools": [{"Id": "us-east-1_Bench0001", "AutoVerifiedAttributes": ["email"],
                       "Clients": [{"ClientId": scenarios::CLIENT}], "Users": users}]})
}

mod report;
