//! What the SMS guard adds to a code by SMS: the facade in front of the
//! embedded backend, every guard setting on (a country list, the daily and
//! prefix limits, all admitting), sends for `email` (no guard) and for
//! `phone_number` (GetUser for the number, the country, one decision of
//! the two SMS limits, then the send) at the same paced rate, open loop;
//! and GetVerificationStatus (GetUser and a read of the limits) beside them.

use serde::Serialize;

use crate::{
    load::{self, Rpc, Stats, Target},
    procs,
    scenarios::{check, Check},
    Plan,
};

/// The guard on, admitting every bench call (its users' numbers are all
/// in one prefix).
const GUARD: [&str; 6] = [
    "--sms-allow-country",
    "US",
    "--sms-daily-limit",
    "100000000",
    "--sms-prefix-sends-per-hour",
    "100000000",
];

/// Calls per second: well under saturation, so the latency is the calls'
/// own, not queueing.
const PACED_RPS: f64 = 50.0;

/// How long each kind of call runs at least, quick or not: a few hundred
/// calls each, so that the difference of two medians is not noise.
const RUN_EACH: std::time::Duration = std::time::Duration::from_secs(6);

/// The three paced runs and what the guard adds.
#[derive(Debug, Serialize)]
pub struct SmsCost {
    pub rate_rps: f64,
    pub email: Stats,
    pub sms: Stats,
    pub status: Stats,
    /// `sms` minus `email`, median and 99th percentile, µs.
    pub added_p50_us: i64,
    pub added_p99_us: i64,
}

pub async fn cost(plan: &Plan, backend_url: &str, tokens: &[String]) -> SmsCost {
    let (_facade, addr, _) = procs::facade(backend_url, &GUARD).await;
    let target = Target::Facade(load::grpc(&addr, 2).await);
    for rpc in [Rpc::Get, Rpc::GetSms, Rpc::Status] {
        load::closed_loop(
            &target,
            rpc,
            tokens,
            4,
            std::time::Duration::from_millis(300),
        )
        .await;
    }
    let run = |rpc| load::open_loop(&target, rpc, tokens, PACED_RPS, plan.run.max(RUN_EACH));
    let email = run(Rpc::Get).await;
    let sms = run(Rpc::GetSms).await;
    let status = run(Rpc::Status).await;
    SmsCost {
        rate_rps: PACED_RPS,
        added_p50_us: sms.p50_us as i64 - email.p50_us as i64,
        added_p99_us: sms.p99_us as i64 - email.p99_us as i64,
        email,
        sms,
        status,
    }
}

/// Every call answered OK: a refusal would mean the guard measured its
/// refusals, not its cost.
pub fn checks(cost: &SmsCost) -> Vec<Check> {
    let mut checks = Vec::new();
    for (what, stats) in [
        ("email", &cost.email),
        ("sms", &cost.sms),
        ("status", &cost.status),
    ] {
        let ok = stats.outcomes.get("ok").copied().unwrap_or(0);
        check(
            &mut checks,
            &format!("sms guard: every paced {what} call answered OK"),
            ok > 0 && ok == stats.requests,
            format!("{} calls, outcomes {:?}", stats.requests, stats.outcomes),
        );
    }
    checks
}
