//! The edge floods of issue 16, against the release binary with its
//! defaults: the facade's peak RSS while streams hold unfinished messages
//! (row 5), and whether a real call is answered while streams never send
//! their message (row 4) and while silent connections flood the metrics
//! port of a process limited to 512 open files (row 6). Each flood runs
//! against a fresh facade and stops once measured (it does not wait for
//! the server to end the streams), so quick mode pays a few seconds.

use std::{future::Future, net::SocketAddr, time::Duration};

use bytes::Bytes;
use cognito_verify::proto::user_attribute_verification_service_client::UserAttributeVerificationServiceClient as Grpc;
use serde::Serialize;
use tokio::{net::TcpStream, time::Instant};
use tonic::transport::Channel;
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

use crate::{
    procs::{self, Proc},
    requests::send_request,
    scenarios::{check, Check},
};

#[path = "../../tests/suite/hostile/h2raw.rs"]
#[allow(dead_code)]
mod h2raw;

/// The pods' memory limit.
const POD_MEMORY_LIMIT_KIB: u64 = 128 * 1024;
/// Longest wait for one answer before it counts as not answered.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// What the edge floods measured.
#[derive(Debug, Serialize)]
pub struct Edge {
    /// Row 4: streams that sent HEADERS only (1,100 with `grpc-timeout: 1S`,
    /// 300 without), on 20 connections.
    pub stalled_streams: usize,
    /// Whether a real call was answered OK while they were open, and how
    /// long it took.
    pub stalled_real_call_ok: bool,
    pub stalled_real_call_ms: u128,
    /// Row 5: 300 streams on 3 connections, each sending ~1 MB of an
    /// unfinished message; then 300 holding 59 KB of a 60 KB one.
    pub large_peak_rss_kib: u64,
    pub held_peak_rss_kib: u64,
    pub idle_rss_kib: u64,
    pub large_real_call_ok: bool,
    pub held_real_call_ok: bool,
    /// Row 6: `ulimit -n 512`, 600 silent connections to the metrics port.
    pub admin_flood_connections: usize,
    pub admin_flood_grpc_ok: bool,
    pub admin_flood_health_ok: bool,
    pub admin_flood_metrics_after_ok: bool,
}

/// Runs the three floods; their figures and checks.
pub async fn run(backend_url: &str, token: &str) -> (Edge, Vec<Check>) {
    let (stalled_streams, stalled_real_call_ok, stalled_real_call_ms) =
        stalled(backend_url, token).await;
    let (
        idle_rss_kib,
        large_peak_rss_kib,
        large_real_call_ok,
        held_peak_rss_kib,
        held_real_call_ok,
    ) = large(backend_url, token).await;
    let (admin_flood_grpc_ok, admin_flood_health_ok, admin_flood_metrics_after_ok) =
        admin_flood(backend_url, token).await;
    let edge = Edge {
        stalled_streams,
        stalled_real_call_ok,
        stalled_real_call_ms,
        large_peak_rss_kib,
        held_peak_rss_kib,
        idle_rss_kib,
        large_real_call_ok,
        held_real_call_ok,
        admin_flood_connections: 600,
        admin_flood_grpc_ok,
        admin_flood_health_ok,
        admin_flood_metrics_after_ok,
    };
    let mut checks = Vec::new();
    check(
        &mut checks,
        "edge: a real call is answered while 1,400 streams wait for their message",
        stalled_real_call_ok,
        format!("answered in {stalled_real_call_ms} ms"),
    );
    let mib = |kib: u64| kib as f64 / 1024.0;
    check(
        &mut checks,
        "edge: unfinished large messages keep RSS under 128 MiB, calls answered",
        large_peak_rss_kib.max(held_peak_rss_kib) < POD_MEMORY_LIMIT_KIB
            && large_real_call_ok
            && held_real_call_ok,
        format!(
            "idle {:.1} MiB, peak {:.1} MiB (1 MB messages), {:.1} MiB (60 KB messages held)",
            mib(idle_rss_kib),
            mib(large_peak_rss_kib),
            mib(held_peak_rss_kib)
        ),
    );
    check(
        &mut checks,
        "edge: gRPC and health answer during a metrics-port flood (ulimit -n 512)",
        admin_flood_grpc_ok && admin_flood_health_ok && admin_flood_metrics_after_ok,
        format!(
            "gRPC {admin_flood_grpc_ok}, health {admin_flood_health_ok}, /metrics after {admin_flood_metrics_after_ok}"
        ),
    );
    (edge, checks)
}

/// Row 4: the streams, then one real call; (streams, answered, ms).
async fn stalled(backend_url: &str, token: &str) -> (usize, bool, u128) {
    const WITH_DEADLINE: usize = 1_100;
    const STREAMS: usize = 1_400;
    let (proc, addr, _) = procs::facade(backend_url, &[]).await;
    let addr: SocketAddr = addr.parse().unwrap();
    let mut conns = Vec::new();
    for _ in 0..20 {
        conns.push(h2raw::Conn::open(addr).await);
    }
    let mut streams = Vec::new();
    for i in 0..STREAMS {
        let headers: &[(&str, &str)] = if i < WITH_DEADLINE {
            &[("grpc-timeout", "1S")]
        } else {
            &[]
        };
        let conn = &mut conns[i % 20];
        streams.push(conn.stream(h2raw::SEND_PATH, headers).await);
    }
    for conn in &mut conns {
        conn.ping().await;
    }
    let started = Instant::now();
    let ok = call(&addr.to_string(), token).await;
    let ms = started.elapsed().as_millis();
    drop((streams, conns, proc));
    (STREAMS, ok, ms)
}

/// Row 5: (idle RSS, peak with ~1 MB messages, answered, peak with 60 KB
/// messages held, answered).
async fn large(backend_url: &str, token: &str) -> (u64, u64, bool, u64, bool) {
    let (proc, addr, _) = procs::facade(backend_url, &[]).await;
    let idle = proc.rss_kib().0;
    let large = flood(&addr, 1_000_000, 999_999).await;
    let large_peak = proc.rss_kib().1;
    let large_ok = call(&addr, token).await;
    drop(large);
    let held = flood(&addr, 60_000, 59_000).await;
    let held_ok = call(&addr, token).await;
    let held_peak = proc.rss_kib().1;
    drop((held, proc));
    (idle, large_peak, large_ok, held_peak, held_ok)
}

/// Streams holding their messages, open until dropped.
struct Flood {
    _conns: Vec<h2raw::Conn>,
    _answers: Vec<tokio::task::JoinHandle<h2raw::Outcome>>,
    _bodies: Vec<h2::SendStream<Bytes>>,
}

/// 300 streams on 3 connections, each declaring `declared` bytes and
/// sending `sent` of them as the server lets it; kept open until dropped.
async fn flood(addr: &str, declared: u32, sent: usize) -> Flood {
    let addr: SocketAddr = addr.parse().unwrap();
    let data = Bytes::from(vec![0; sent]);
    let mut conns = Vec::new();
    for _ in 0..3 {
        conns.push(h2raw::Conn::open(addr).await);
    }
    let mut senders = Vec::new();
    let mut answers = Vec::new();
    for i in 0..300 {
        let (answer, sender) =
            h2raw::unfinished(&mut conns[i % 3], h2raw::SEND_PATH, declared, data.clone()).await;
        answers.push(answer);
        senders.push(sender);
    }
    let mut bodies = Vec::new();
    for sender in senders {
        if let Ok(Ok(body)) = tokio::time::timeout(ANSWER_WITHIN, sender).await {
            bodies.push(body);
        }
    }
    for conn in &mut conns {
        conn.ping().await;
    }
    Flood {
        _conns: conns,
        _answers: answers,
        _bodies: bodies,
    }
}

/// Row 6: (gRPC answered, health answered during the flood, /metrics
/// answered after it).
async fn admin_flood(backend_url: &str, token: &str) -> (bool, bool, bool) {
    let admin = format!("127.0.0.1:{}", procs::free_port());
    let health = format!("127.0.0.1:{}", procs::free_port());
    let (proc, addr, _): (Proc, String, Duration) = procs::facade_with_open_file_limit(
        Some(512),
        backend_url,
        &["--admin-listen", &admin, "--health-listen", &health],
    )
    .await;
    let mut flood = Vec::new();
    for _ in 0..600 {
        if let Ok(tcp) = TcpStream::connect(&admin).await {
            flood.push(tcp);
        }
    }
    let grpc_ok = call(&addr, token).await;
    let health_ok = within(async {
        let channel = Channel::from_shared(format!("http://{health}"))
            .ok()?
            .connect()
            .await
            .ok()?;
        let answer = HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await
            .ok()?;
        Some(answer.into_inner().status() == ServingStatus::Serving)
    })
    .await;
    drop(flood);
    let mut metrics_ok = false;
    let give_up = Instant::now() + ANSWER_WITHIN;
    while !metrics_ok && Instant::now() < give_up {
        metrics_ok = within(scrape(&admin)).await;
        if !metrics_ok {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    drop(proc);
    (grpc_ok, health_ok, metrics_ok)
}

/// One send for the bench's first user, on a fresh connection; whether it
/// was answered OK within [`ANSWER_WITHIN`].
async fn call(addr: &str, token: &str) -> bool {
    within(async {
        let channel = Channel::from_shared(format!("http://{addr}"))
            .ok()?
            .connect()
            .await
            .ok()?;
        let answer = Grpc::new(channel)
            .get_user_attribute_verification_code(send_request(token, "email"))
            .await;
        Some(answer.is_ok())
    })
    .await
}

/// `GET /metrics` answered 200.
async fn scrape(admin: &str) -> Option<bool> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut tcp = TcpStream::connect(admin).await.ok()?;
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.ok()?;
    Some(answer.starts_with(b"HTTP/1.1 200"))
}

/// `Some(true)` from `f` within [`ANSWER_WITHIN`].
async fn within(f: impl Future<Output = Option<bool>>) -> bool {
    matches!(tokio::time::timeout(ANSWER_WITHIN, f).await, Ok(Some(true)))
}
