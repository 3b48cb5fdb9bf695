//! The table on stdout, the targets, and the JSON result.

use serde_json::{json, Value};

use crate::{
    edge::Edge, flood::Flood, limits::LimitCost, load::Rpc, scenarios::Overload, traces::TraceCost,
    Plan, Run,
};

/// CPU per request of `r` over that of `floor`.
fn cpu_ratio(r: &Run, floor: &Run) -> f64 {
    r.facade_cpu_us_per_request.unwrap_or(0.0)
        / floor.facade_cpu_us_per_request.unwrap_or(0.0).max(1e-9)
}

pub struct Report<'a> {
    pub plan: &'a Plan,
    pub runs: &'a [Run],
    pub half: &'a [Value],
    pub idle_rss_kib: u64,
    pub overload: &'a Overload,
    pub floods: &'a [Flood],
    pub edge: &'a Edge,
    pub trace_cost: &'a TraceCost,
    pub limit_cost: &'a LimitCost,
    pub sms_cost: &'a crate::sms::SmsCost,
}

/// A target: its name, the figure, and whether it was met.
struct Target {
    name: String,
    figure: String,
    met: bool,
}

impl Report<'_> {
    fn peak(&self, scenario: &str, rpc: Rpc) -> f64 {
        self.runs
            .iter()
            .filter(|r| r.scenario == scenario && r.rpc == rpc)
            .map(|r| r.stats.throughput_rps)
            .fold(0.0, f64::max)
    }

    /// (facade-constant, floor) runs of the same RPC and concurrency.
    fn floor_pairs(&self) -> Vec<(&Run, &Run)> {
        self.runs
            .iter()
            .filter(|r| r.scenario == "facade-constant")
            .filter_map(|r| {
                let floor = self.runs.iter().find(|f| {
                    f.scenario == "floor" && f.rpc == r.rpc && f.concurrency == r.concurrency
                })?;
                Some((r, floor))
            })
            .collect()
    }

    fn targets(&self) -> Vec<Target> {
        let mut t = Vec::new();
        // The hot path against its floor: Get, 64 in flight (the full run).
        if let Some((r, f)) = self
            .floor_pairs()
            .into_iter()
            .find(|(r, _)| r.rpc == Rpc::Get && r.concurrency == 64)
        {
            let ratio = cpu_ratio(r, f);
            let cpu = r.facade_cpu_us_per_request.unwrap_or(f64::MAX);
            t.push(Target {
                name: "Get, 64 in flight: facade-constant CPU/req <= 1.6 x floor".into(),
                figure: format!(
                    "x{ratio:.2} ({cpu:.0} vs {:.0} us)",
                    f.facade_cpu_us_per_request.unwrap_or(0.0)
                ),
                met: ratio <= 1.6,
            });
            t.push(Target {
                name: "Get, 64 in flight: facade-constant CPU/req <= 110 us".into(),
                figure: format!("{cpu:.0} us"),
                met: cpu <= 110.0,
            });
        }
        for rpc in [Rpc::Get, Rpc::Verify] {
            let ratio = self.peak("facade", rpc) / self.peak("direct", rpc).max(1e-9);
            t.push(Target {
                name: format!("{rpc:?}: facade/direct peak throughput >= 0.80"),
                figure: format!("{ratio:.2}"),
                met: ratio >= 0.80,
            });
        }
        for h in self.half {
            let (p50, p99) = (
                h["added_p50_us"].as_i64().unwrap_or(0),
                h["added_p99_us"].as_i64().unwrap_or(0),
            );
            let rpc = h["rpc"].as_str().unwrap_or("?");
            t.push(Target {
                name: format!("{rpc}: added p50 at half saturation <= 150 us"),
                figure: format!("{p50} us"),
                met: p50 <= 150,
            });
            t.push(Target {
                name: format!("{rpc}: added p99 at half saturation <= 1 ms"),
                figure: format!("{p99} us"),
                met: p99 <= 1000,
            });
        }
        let mib = |kib: u64| kib as f64 / 1024.0;
        t.push(Target {
            name: "idle RSS <= 16 MiB".into(),
            figure: format!("{:.1} MiB", mib(self.idle_rss_kib)),
            met: self.idle_rss_kib <= 16 * 1024,
        });
        let peak = self.overload.in_flight_peak_rss_kib;
        t.push(Target {
            name: format!("RSS with {} in flight <= 100 MiB", self.overload.in_flight),
            figure: format!("{:.1} MiB", mib(peak)),
            met: peak <= 100 * 1024,
        });
        let c = self.trace_cost;
        t.push(Target {
            name: "trace export at full sampling: CPU per request <= 1.15 x off".into(),
            figure: format!(
                "x{:.2} ({:.0} vs {:.0} us)",
                c.ratio, c.on_median, c.off_median
            ),
            met: c.ratio <= 1.15,
        });
        let startup = self
            .overload
            .startup_ms
            .get(self.overload.startup_ms.len() / 2)
            .copied()
            .unwrap_or(u128::MAX);
        t.push(Target {
            name: "start to SERVING <= 200 ms (median)".into(),
            figure: format!("{startup} ms"),
            met: startup <= 200,
        });
        t
    }

    pub fn print(&self) {
        println!(
            "\ncognito-verify facade bench ({} mode, {} cores)\n",
            if self.plan.quick { "quick" } else { "full" },
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        println!(
            "{:<16} {:<7} {:>5} {:>9} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9}  outcomes",
            "scenario",
            "rpc",
            "conc",
            "req/s",
            "p50 us",
            "p90 us",
            "p99 us",
            "max us",
            "cpu us/rq",
            "peak RSS",
            "caller us"
        );
        for r in self.runs {
            let s = &r.stats;
            println!(
                "{:<16} {:<7} {:>5} {:>9.0} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9.0}  {:?}",
                r.scenario,
                format!("{:?}", r.rpc),
                r.concurrency,
                s.throughput_rps,
                s.p50_us,
                s.p90_us,
                s.p99_us,
                s.max_us,
                r.facade_cpu_us_per_request
                    .map_or("-".into(), |c| format!("{c:.0}")),
                r.facade_peak_rss_kib
                    .map_or("-".into(), |k| format!("{:.1}M", k as f64 / 1024.0)),
                r.caller_cpu_us_per_request,
                s.outcomes,
            );
        }
        println!("\nfacade / direct, same concurrency:");
        for r in self.runs.iter().filter(|r| r.scenario == "facade") {
            if let Some(d) = self.runs.iter().find(|d| {
                d.scenario == "direct" && d.rpc == r.rpc && d.concurrency == r.concurrency
            }) {
                println!(
                    "  {:<7} conc {:>4}: throughput x{:.2}, added p50 {:>6} us, added p99 {:>6} us",
                    format!("{:?}", r.rpc),
                    r.concurrency,
                    r.stats.throughput_rps / d.stats.throughput_rps.max(1e-9),
                    r.stats.p50_us as i64 - d.stats.p50_us as i64,
                    r.stats.p99_us as i64 - d.stats.p99_us as i64,
                );
            }
        }
        println!("\nfacade-constant / floor (the minimal forwarder), same concurrency:");
        for (r, f) in self.floor_pairs() {
            println!(
                "  {:<7} conc {:>4}: cpu {:>4.0} vs {:>4.0} us/rq (x{:.2}), throughput {:>6.0} vs {:>6.0} req/s (x{:.2})",
                format!("{:?}", r.rpc),
                r.concurrency,
                r.facade_cpu_us_per_request.unwrap_or(0.0),
                f.facade_cpu_us_per_request.unwrap_or(0.0),
                cpu_ratio(r, f),
                r.stats.throughput_rps,
                f.stats.throughput_rps,
                r.stats.throughput_rps / f.stats.throughput_rps.max(1e-9),
            );
        }
        println!("\nat half of the facade's saturation (open loop):");
        for h in self.half {
            println!(
                "  {:<7} {:>6.0} req/s: direct p50 {} us / p99 {} us, facade p50 {} us / p99 {} us",
                h["rpc"].as_str().unwrap_or("?"),
                h["rate_rps"].as_f64().unwrap_or(0.0),
                h["direct"]["p50_us"],
                h["direct"]["p99_us"],
                h["facade"]["p50_us"],
                h["facade"]["p99_us"],
            );
        }
        let o = self.overload;
        println!("\noverload:");
        println!(
            "  {} in flight (backend +2 s): {:?}, facade peak RSS {:.1} MiB",
            o.in_flight,
            o.in_flight_stats.outcomes,
            o.in_flight_peak_rss_kib as f64 / 1024.0
        );
        println!(
            "  512 callers, 32 admitted (backend +50 ms): {:.0} req/s {:?}, p99 by outcome {:?} us",
            o.shed_stats.throughput_rps, o.shed_stats.outcomes, o.shed_stats.p99_us_by_outcome
        );
        println!("  recovery at 8 callers: {:?}", o.recovery_stats.outcomes);
        println!(
            "  SIGTERM with 64 callers (backend +200 ms): {:?}, exit after {:?} ms",
            o.sigterm_stats.outcomes, o.sigterm_exit_ms
        );
        println!("  start to SERVING: {:?} ms", o.startup_ms);
        let c = self.trace_cost;
        println!(
            "\ntrace export (facade-constant, Get, {} callers): off {:?} us/req, on (always_on) {:?} us/req; median x{:.2}; {} spans exported for {} requests",
            c.concurrency,
            c.off_cpu_us_per_request.iter().map(|v| v.round()).collect::<Vec<_>>(),
            c.on_cpu_us_per_request.iter().map(|v| v.round()).collect::<Vec<_>>(),
            c.ratio,
            c.spans_exported,
            c.requests_on,
        );
        let m = self.sms_cost;
        println!(
            "\nSMS guard (facade, {:.0} calls/s each, open loop): email send p50 {} us p99 {} us; SMS send (GetUser + guard) p50 {} us p99 {} us: added p50 {} us, p99 {} us; GetVerificationStatus p50 {} us p99 {} us",
            m.rate_rps,
            m.email.p50_us,
            m.email.p99_us,
            m.sms.p50_us,
            m.sms.p99_us,
            m.added_p50_us,
            m.added_p99_us,
            m.status.p50_us,
            m.status.p99_us,
        );
        let l = self.limit_cost;
        println!(
            "\nlimits (facade-constant, Get, {} callers; every limit evaluated, none refusing):",
            l.concurrency
        );
        for d in &l.decisions {
            println!(
                "  one decision ({}, {} in a row): p50 {:.1} us, p99 {:.1} us",
                d.mode, d.count, d.p50_us, d.p99_us
            );
        }
        let off = l.runs.iter().find(|r| r.mode == "off");
        for r in &l.runs {
            let (add50, add99) = off.map_or((0, 0), |o| {
                (
                    r.paced.p50_us as i64 - o.paced.p50_us as i64,
                    r.paced.p99_us as i64 - o.paced.p99_us as i64,
                )
            });
            println!(
                "  {:<6} {:>6.0} req/s  cpu {:>4.0} us/rq  at {:.0} req/s: p50 {:>5} us  p99 {:>5} us  (added p50 {:>4} us, p99 {:>5} us)  {:?}",
                r.mode,
                r.stats.throughput_rps,
                r.facade_cpu_us_per_request,
                crate::limits::PACED_RPS,
                r.paced.p50_us,
                r.paced.p99_us,
                add50,
                add99,
                r.stats.outcomes,
            );
        }
        println!(
            "  {} distinct users through the local limits (RSS MiB by users so far: {}); {} not OK",
            l.distinct_users,
            l.distinct_users_rss_kib
                .iter()
                .map(|(n, kib)| format!("{n}: {:.1}", *kib as f64 / 1024.0))
                .collect::<Vec<_>>()
                .join(", "),
            l.distinct_users_refused,
        );
        if let Some(bytes) = l.redis_bytes_per_user {
            println!(
                "  Redis memory per distinct user (limits at their defaults): {bytes:.0} bytes"
            );
        }
        println!("\nconnection flood (default settings, connections held open):");
        for f in self.floods {
            println!(
                "  {:<9} {} opened: {} admitted, {} closed at once; RSS idle {:.1} MiB, holding {:.1} MiB, peak {:.1} MiB",
                if f.tls { "TLS" } else { "plaintext" },
                f.attempts,
                f.admitted,
                f.refused,
                f.idle_rss_kib as f64 / 1024.0,
                f.flood_rss_kib as f64 / 1024.0,
                f.peak_rss_kib as f64 / 1024.0,
            );
        }
        let e = self.edge;
        let mib = |kib: u64| kib as f64 / 1024.0;
        println!("\nedge floods (default settings):");
        println!(
            "  {} streams sending HEADERS only (1,100 with grpc-timeout 1S): real call answered: {} ({} ms)",
            e.stalled_streams, e.stalled_real_call_ok, e.stalled_real_call_ms
        );
        println!(
            "  300 streams x ~1 MB unfinished: peak RSS {:.1} MiB (idle {:.1}), real call answered: {}",
            mib(e.large_peak_rss_kib),
            mib(e.idle_rss_kib),
            e.large_real_call_ok
        );
        println!(
            "  300 streams x 60 KB held: peak RSS {:.1} MiB, real call answered: {}",
            mib(e.held_peak_rss_kib),
            e.held_real_call_ok
        );
        println!(
            "  ulimit -n 512, {} silent connections to the metrics port: gRPC answered: {}, health answered: {}, /metrics after: {}",
            e.admin_flood_connections,
            e.admin_flood_grpc_ok,
            e.admin_flood_health_ok,
            e.admin_flood_metrics_after_ok
        );
        println!("\ntargets:");
        for t in self.targets() {
            println!(
                "  [{}] {}: {}",
                if t.met { "met" } else { "MISSED" },
                t.name,
                t.figure
            );
        }
        println!("\nchecks:");
        for c in &o.checks {
            println!(
                "  [{}] {}: {}",
                if c.passed { "pass" } else { "FAIL" },
                c.name,
                c.detail
            );
        }
    }

    pub fn json(&self) -> Value {
        let targets: Vec<_> = self
            .targets()
            .into_iter()
            .map(|t| json!({"name": t.name, "figure": t.figure, "met": t.met}))
            .collect();
        json!({
            "mode": if self.plan.quick { "quick" } else { "full" },
            "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
            "runs": self.runs,
            "half_saturation": self.half,
            "idle_rss_kib": self.idle_rss_kib,
            "overload": self.overload,
            "connection_flood": self.floods,
            "edge_floods": self.edge,
            "trace_export": self.trace_cost,
            "limits": self.limit_cost,
            "sms_guard": self.sms_cost,
            "targets": targets,
        })
    }
}
