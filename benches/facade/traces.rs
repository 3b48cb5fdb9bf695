//! What trace export costs: the facade in front of the constant backend,
//! with export off and with every span exported (sampler `always_on`) over
//! OTLP/gRPC to a collector in this process that counts and drops the
//! spans. Off and on alternate, and the medians are compared, because CPU
//! per request drifts on a shared machine.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use opentelemetry_proto::tonic::collector::trace::v1::{
    trace_service_server::{TraceService, TraceServiceServer},
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use serde::Serialize;

use crate::{
    load::{self, Rpc, Target},
    procs, Plan,
};

/// Counts exported spans.
struct Sink(Arc<AtomicU64>);

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans: usize = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.0.fetch_add(spans as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// The comparison.
#[derive(Debug, Serialize)]
pub struct TraceCost {
    pub concurrency: usize,
    pub off_cpu_us_per_request: Vec<f64>,
    pub on_cpu_us_per_request: Vec<f64>,
    pub off_median: f64,
    pub on_median: f64,
    /// on / off, medians.
    pub ratio: f64,
    pub spans_exported: u64,
    pub requests_on: u64,
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs the comparison against the constant backend at `constant_url`.
pub async fn cost(plan: &Plan, constant_url: &str, tokens: &[String]) -> TraceCost {
    let spans = Arc::new(AtomicU64::new(0));
    let incoming =
        tonic::transport::server::TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let collector = incoming.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Sink(Arc::clone(&spans))))
            .serve_with_incoming(incoming),
    );
    let endpoint = format!("http://{collector}");
    let (off, off_addr, _) = procs::facade(constant_url, &[]).await;
    let (on, on_addr, _) = procs::facade(
        constant_url,
        &[
            "--otlp-endpoint",
            &endpoint,
            "--otel-traces-sampler",
            "always_on",
        ],
    )
    .await;
    let concurrency: usize = if plan.quick { 16 } else { 64 };
    let connections = concurrency.div_ceil(100).max(1);
    let off_target = Target::Facade(load::grpc(&off_addr, connections).await);
    let on_target = Target::Facade(load::grpc(&on_addr, connections).await);
    for target in [&off_target, &on_target] {
        load::closed_loop(target, Rpc::Get, tokens, 8, Duration::from_millis(300)).await;
    }
    let (mut off_cpu, mut on_cpu, mut requests_on) = (Vec::new(), Vec::new(), 0);
    for _ in 0..if plan.quick { 1 } else { 3 } {
        for (proc, target, out) in [
            (&off, &off_target, &mut off_cpu),
            (&on, &on_target, &mut on_cpu),
        ] {
            let before = proc.cpu();
            let stats = load::closed_loop(target, Rpc::Get, tokens, concurrency, plan.run).await;
            out.push(crate::per_request(proc.cpu() - before, &stats));
            if std::ptr::eq(proc, &on) {
                requests_on += stats.requests;
            }
        }
    }
    // Let the batch processor deliver what it holds (5 s schedule).
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    let (off_median, on_median) = (median(&off_cpu), median(&on_cpu));
    TraceCost {
        concurrency,
        off_cpu_us_per_request: off_cpu,
        on_cpu_us_per_request: on_cpu,
        off_median,
        on_median,
        ratio: on_median / off_median.max(1e-9),
        spans_exported: spans.load(Ordering::Relaxed),
        requests_on,
    }
}
