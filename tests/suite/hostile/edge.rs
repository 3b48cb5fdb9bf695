//! Attacks on the network edge (see main.rs), each reproduced first, then
//! what must hold while it runs (issue 16, rows 4, 5, 6 and reflection
//! behind the allowlist):
//!
//! - streams that send HEADERS and never a message must not take admission
//!   slots, and are ended at their deadline or read timeout;
//! - streams holding unfinished large messages must not grow memory past
//!   the pod's limit: too large is refused from the declared length, the
//!   rest is bounded by the request budget;
//! - silent connections to the metrics port must not take the descriptors
//!   of the gRPC and health ports;
//! - health and reflection streams end too when stalled, and reflection
//!   answers only listed callers.

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use cognito_verify::{
    metrics,
    proto::user_attribute_verification_service_client::UserAttributeVerificationServiceClient as Client,
};
use tokio::{net::TcpStream, time::Instant};
use tonic::{transport::Channel, Code};
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

use crate::{
    common::{
        binary::{self, Running},
        child, send_request, Facade, ScriptedCognito, TOKEN,
    },
    hostile::h2raw::{self, Conn, Outcome, Stream, SEND_PATH},
};

mod floods;
mod side;

/// Generous bound on anything the tests wait for: a loaded 2-core CI
/// machine is slow, and an outcome that never comes fails the test anyway.
const PATIENCE: Duration = Duration::from_secs(60);
/// The pods' memory limit.
const POD_MEMORY_LIMIT_KIB: u64 = 128 * 1024;

/// Row 4: 1,100 streams with `grpc-timeout: 1S` and 300 without, HEADERS
/// only, over 20 connections; then a real call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_without_a_message_hold_no_admission_slot_and_are_ended() {
    const WITH_DEADLINE: usize = 1_100;
    const WITHOUT: usize = 300;
    const CONNECTIONS: usize = 20;
    // Both bounds are 3 s: long enough to open every stream first, even on
    // a loaded machine (checked below, or the test would prove nothing).
    const BOUND: Duration = Duration::from_secs(3);
    let cognito = ScriptedCognito::start().await;
    let facade = Facade::start(&cognito.url, &["--request-read-timeout-secs", "3"]).await;
    let ended_before = streams_ended();

    let mut conns = Vec::new();
    for _ in 0..CONNECTIONS {
        conns.push(Conn::open(facade.addr).await);
    }
    let opened = Instant::now();
    let mut stalled: Vec<(bool, Stream)> = Vec::new();
    for i in 0..WITH_DEADLINE + WITHOUT {
        let with_deadline = i < WITH_DEADLINE;
        let headers: &[(&str, &str)] = if with_deadline {
            &[("grpc-timeout", "3S")]
        } else {
            &[]
        };
        let conn = &mut conns[i % CONNECTIONS];
        stalled.push((with_deadline, conn.stream(SEND_PATH, headers).await));
    }
    for conn in &mut conns {
        conn.ping().await;
    }

    // The server holds 1,400 streams waiting for their message: more than
    // --max-concurrent-rpcs (1,024). A real call is answered all the same.
    assert!(
        opened.elapsed() < BOUND && stalled.iter().all(|(_, s)| !s.answer.is_finished()),
        "the stalled streams were not all held when the real call was made"
    );
    let mut client = facade.client().await;
    let answered = tokio::time::timeout(
        PATIENCE,
        client.get_user_attribute_verification_code(send_request(TOKEN, "email")),
    )
    .await
    .expect("the real call is answered");
    assert!(answered.is_ok(), "the real call: {answered:?}");

    let mut said = BTreeMap::new();
    for (with_deadline, stream) in &mut stalled {
        let outcome = outcome(stream).await;
        let expected = if *with_deadline {
            "DEADLINE_EXCEEDED"
        } else {
            "REQUEST_READ_TIMEOUT"
        };
        assert_eq!(
            outcome.said(),
            (Code::DeadlineExceeded, Some(expected)),
            "{outcome:?}"
        );
        // Neither bound can end a stream early...
        let after = outcome.at - opened;
        assert!(after >= BOUND, "ended after {after:?}");
        // ...and a read timeout of 3 s ends them all, even here and loaded.
        assert!(after < PATIENCE / 2, "ended after {after:?}");
        *said.entry(expected).or_insert(0) += 1;
    }
    assert_eq!(said["DEADLINE_EXCEEDED"], WITH_DEADLINE);
    assert_eq!(said["REQUEST_READ_TIMEOUT"], WITHOUT);
    let ended = streams_ended();
    assert!(
        ended.0 - ended_before.0 >= WITH_DEADLINE as u64,
        "{ended:?}"
    );
    assert!(ended.1 - ended_before.1 >= WITHOUT as u64, "{ended:?}");
    facade.shutdown().await;
}

/// Row 5: 300 streams on 3 connections, each trying to deliver ~1 MB of an
/// unfinished message; then 300 holding messages under the bound; the
/// binary's peak RSS stays under the pod limit and real calls are answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_large_messages_stay_within_the_memory_limit() {
    let cognito = ScriptedCognito::start().await;
    let running = Running::start(binary::command(&[
        "--region",
        "us-east-1",
        "--cognito-endpoint",
        &cognito.url,
    ]))
    .await;
    let pid = running.child.id().unwrap();
    let addr: SocketAddr = running.addr.parse().unwrap();

    // ~1 MB each, all but the last byte: declared over --max-message-bytes
    // (64 KiB), so each is refused from its prefix, and the client's
    // sending stops when its stream is answered and reset. (Before, each
    // was buffered whole: 320 MiB.)
    let flood = floods::unfinished(addr, 1_000_000, 999_999).await;
    let (_, peak) = child::memory_kib(pid);
    assert!(peak < POD_MEMORY_LIMIT_KIB, "peak RSS {peak} KiB");
    real_call(&running).await;
    for outcome in flood.outcomes().await {
        assert_eq!(
            outcome.said(),
            (Code::ResourceExhausted, Some("MESSAGE_TOO_LARGE")),
            "{outcome:?}"
        );
        assert!(!outcome.retry_info, "the same message fails again");
    }

    // 60 KB each, 59 KB sent: under the bound, so each is held until its
    // read timeout if it fits the request budget: three connections of
    // 100 such streams ask for more than their share (an eighth of the
    // 16 MiB budget each), and the rest is refused at once.
    let flood = floods::unfinished(addr, 60_000, 59_000).await;
    real_call(&running).await;
    let (refused, held): (Vec<_>, Vec<_>) = flood
        .outcomes()
        .await
        .into_iter()
        .partition(|o| o.code == Code::ResourceExhausted);
    for outcome in &refused {
        assert_eq!(outcome.reason.as_deref(), Some("OVERLOADED"), "{outcome:?}");
        assert!(outcome.retry_info, "a budget refusal is worth a retry");
    }
    for outcome in &held {
        assert_eq!(
            outcome.said(),
            (Code::DeadlineExceeded, Some("REQUEST_READ_TIMEOUT")),
            "{outcome:?}"
        );
    }
    // How many are held depends on how fast they arrive (a stream held for
    // over a second gives its bytes up to newer ones); that some are held
    // and some refused, and memory stays bounded, does not.
    assert!(
        !held.is_empty() && !refused.is_empty(),
        "{} held, {} refused",
        held.len(),
        refused.len()
    );
    let (_, peak) = child::memory_kib(pid);
    assert!(peak < POD_MEMORY_LIMIT_KIB, "peak RSS {peak} KiB");

    // A prefix declaring one byte over the bound, and nothing more: the
    // answer comes without the message.
    let mut conn = Conn::open(addr).await;
    let mut stream = conn.stream(SEND_PATH, &[]).await;
    h2raw::send(&mut stream.body, h2raw::prefix(65_537))
        .await
        .unwrap();
    assert_eq!(
        outcome(&mut stream).await.said(),
        (Code::ResourceExhausted, Some("MESSAGE_TOO_LARGE"))
    );
    running.terminate().await;
}

/// Row 6: the binary limited to 512 open files; 600 silent connections to
/// the metrics port. The gRPC and health ports keep answering, and
/// `/metrics` answers once the flood is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_descriptor_flood_on_the_metrics_port_leaves_the_other_ports_serving() {
    let cognito = ScriptedCognito::start().await;
    let command = binary::command(&[
        "--region",
        "us-east-1",
        "--cognito-endpoint",
        &cognito.url,
        "--admin-listen",
        "127.0.0.1:0",
        "--health-listen",
        "127.0.0.1:0",
    ]);
    let running = Running::start(child::under_open_file_limit(512, &command)).await;
    let admin = child::logged_address(&running, "admin listening").await;
    let health = child::logged_address(&running, "health listening").await;
    assert_eq!(
        child::logged(&running, "the open-file limit is lower").len(),
        1,
        "one warning that the caps were lowered"
    );

    let mut flood = Vec::new();
    for _ in 0..600 {
        flood.push(TcpStream::connect(&admin).await.expect("connects"));
    }
    // Every silent connection has been accepted or refused by now: a
    // connection made after them is served after them.
    let _last = TcpStream::connect(&admin).await.unwrap();

    real_call(&running).await;
    assert_eq!(
        serving(&format!("http://{health}")).await,
        ServingStatus::Serving
    );
    assert_eq!(
        serving(&format!("http://{}", running.addr)).await,
        ServingStatus::Serving
    );

    drop(flood);
    drop(_last);
    let scraped = floods::scrape_when_free(&admin).await;
    let refused = floods::sample(
        &scraped,
        "cognito_verify_listener_connections_refused_total{listener=\"admin\"}",
    );
    assert!(refused >= 500.0, "{refused} admin connections refused");

    // Held connections do not stay: one that is answered and then kept
    // alive without asking again, and one that never asks, are both closed
    // by the server (the header read timeout, 5 s).
    let idle = floods::kept_alive_after_a_scrape(&admin).await;
    let silent = TcpStream::connect(&admin).await.unwrap();
    let started = Instant::now();
    for connection in [idle, silent] {
        floods::closed_by_server(connection).await;
    }
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "closed by its timeout, not at once"
    );
    running.terminate().await;
}

/// Stalled streams with large header lists on 12 connections fill the
/// request budget (each connection stays within its share); once they have
/// waited over a second, a real call takes their bytes and is answered,
/// though their read timeout is far away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_streams_cannot_hold_the_request_budget_against_real_calls() {
    const CONNECTIONS: usize = 12;
    const STREAMS: usize = 100;
    let cognito = ScriptedCognito::start().await;
    let facade = Facade::start(
        &cognito.url,
        &[
            "--request-read-timeout-secs",
            "60",
            "--drain-timeout-secs",
            "1",
        ],
    )
    .await;
    let pad = "x".repeat(15 * 1024);
    let mut conns = Vec::new();
    for _ in 0..CONNECTIONS {
        conns.push(Conn::open(facade.addr).await);
    }
    let mut stalled = Vec::new();
    for i in 0..CONNECTIONS * STREAMS {
        let conn = &mut conns[i % CONNECTIONS];
        stalled.push(conn.stream(SEND_PATH, &[("x-pad", &pad)]).await);
    }
    // Small ones fill what is left.
    let mut last = Conn::open(facade.addr).await;
    let small = "x".repeat(1024);
    for _ in 0..STREAMS {
        stalled.push(last.stream(SEND_PATH, &[("x-pad", &small)]).await);
    }
    conns.push(last);
    for conn in &mut conns {
        conn.ping().await;
    }
    // 1,200 x 15 KiB is more than the budget (16 MiB). Past the preemption
    // age of what it holds, a real call gets in.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let mut client = facade.client().await;
    let answered = tokio::time::timeout(
        PATIENCE,
        client.get_user_attribute_verification_code(send_request(TOKEN, "email")),
    )
    .await
    .expect("the real call is answered");
    assert!(answered.is_ok(), "the real call: {answered:?}");
    // What was refused, or gave its bytes up, was told so with a retry
    // (nothing was sent); the others are still held. (Refusals are
    // answered after a short wait for the rest of the request.)
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut overloaded = 0;
    for stream in &mut stalled {
        if stream.answer.is_finished() {
            let outcome = outcome(stream).await;
            assert_eq!(
                outcome.said(),
                (Code::ResourceExhausted, Some("OVERLOADED"))
            );
            assert!(outcome.retry_info);
            overloaded += 1;
        }
    }
    assert!(
        overloaded > 0,
        "the stalled streams never filled the budget"
    );
    assert!(overloaded < stalled.len(), "no stream was held");
    facade.shutdown().await;
}

/// The real call (a send), answered OK.
async fn real_call(running: &Running) {
    let mut client = Client::new(running.channel().await);
    let answered = tokio::time::timeout(
        PATIENCE,
        client.get_user_attribute_verification_code(send_request(TOKEN, "email")),
    )
    .await
    .expect("the real call is answered");
    assert!(answered.is_ok(), "the real call: {answered:?}");
}

/// Health's answer on `url` (plaintext).
async fn serving(url: &str) -> ServingStatus {
    let channel = Channel::from_shared(url.to_owned())
        .unwrap()
        .connect_timeout(PATIENCE)
        .timeout(PATIENCE)
        .connect()
        .await
        .expect("the health port accepts");
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health answers");
    answer.into_inner().status()
}

/// A stalled stream's outcome, however long the server takes (within
/// [`PATIENCE`]).
async fn outcome(stream: &mut Stream) -> Outcome {
    tokio::time::timeout(PATIENCE, &mut stream.answer)
        .await
        .expect("the server ends the stream")
        .unwrap()
}

/// `cognito_verify_streams_ended_total` (deadline, read_timeout) in this
/// process (in-process facades share it).
fn streams_ended() -> (u64, u64) {
    let text = metrics().encode(false).unwrap();
    let value = |reason: &str| {
        let series = format!("cognito_verify_streams_ended_total{{reason=\"{reason}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0) as u64
    };
    (value("deadline"), value("read_timeout"))
}
