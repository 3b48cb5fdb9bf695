//! Connection bounds and lifetimes, seen from the wire: a raw HTTP/2 client
//! reads the frames the server sends (GOAWAY, PING) and notices when the
//! server closes the connection.

use std::{net::SocketAddr, time::Duration};

use cognito_verify::proto::user_attribute_verification_service_client::UserAttributeVerificationServiceClient;
use serde_json::json;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};
use tonic::{transport::Channel, Status};

use crate::common::{send_request, Facade, Reply, ScriptedCognito, TOKEN};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const ACK: u8 = 0x1;

/// One HTTP/2 frame.
#[derive(Debug)]
struct Frame {
    kind: u8,
    flags: u8,
    payload: Vec<u8>,
}

/// A raw HTTP/2 client connection that sends no request.
struct RawH2 {
    tcp: TcpStream,
    /// Answer the server's SETTINGS and PINGs, as a live client does.
    polite: bool,
}

impl RawH2 {
    async fn connect(addr: SocketAddr, polite: bool) -> Self {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(PREFACE).await.unwrap();
        tcp.write_all(&frame_header(0, SETTINGS, 0)).await.unwrap();
        Self { tcp, polite }
    }

    /// The next frame, or `None` when the server closed the connection.
    async fn next(&mut self) -> Option<Frame> {
        let mut header = [0u8; 9];
        self.tcp.read_exact(&mut header).await.ok()?;
        let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        let mut payload = vec![0u8; len];
        self.tcp.read_exact(&mut payload).await.ok()?;
        let frame = Frame {
            kind: header[3],
            flags: header[4],
            payload,
        };
        if self.polite && frame.flags & ACK == 0 {
            match frame.kind {
                SETTINGS => {
                    let _ = self.tcp.write_all(&frame_header(0, SETTINGS, ACK)).await;
                }
                PING => {
                    let _ = self.tcp.write_all(&frame_header(8, PING, ACK)).await;
                    let _ = self.tcp.write_all(&frame.payload).await;
                }
                _ => {}
            }
        }
        Some(frame)
    }

    /// Reads until a frame of `kind` arrives (within `limit`); `None` if the
    /// connection closed first.
    async fn until(&mut self, kind: u8, limit: Duration) -> Option<Frame> {
        tokio::time::timeout(limit, async {
            loop {
                match self.next().await {
                    Some(frame) if frame.kind == kind => return Some(frame),
                    Some(_) => {}
                    None => return None,
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no frame of type {kind} within {limit:?}"))
    }

    /// Reads frames until the server closes the connection (within `limit`).
    async fn until_closed(&mut self, limit: Duration) -> Vec<Frame> {
        tokio::time::timeout(limit, async {
            let mut frames = Vec::new();
            while let Some(frame) = self.next().await {
                frames.push(frame);
            }
            frames
        })
        .await
        .unwrap_or_else(|_| panic!("the connection is still open after {limit:?}"))
    }
}

fn frame_header(len: u32, kind: u8, flags: u8) -> [u8; 9] {
    let l = len.to_be_bytes();
    [l[1], l[2], l[3], kind, flags, 0, 0, 0, 0]
}

/// A GOAWAY's error code (0 = NO_ERROR: a graceful close).
fn goaway_code(frame: &Frame) -> u32 {
    u32::from_be_bytes(frame.payload[4..8].try_into().unwrap())
}

async fn send(channel: Channel) -> Result<(), Status> {
    UserAttributeVerificationServiceClient::new(channel)
        .get_user_attribute_verification_code(send_request(TOKEN, "email"))
        .await
        .map(drop)
}

#[tokio::test]
async fn an_idle_connection_gets_a_goaway_then_is_closed() {
    let cognito = ScriptedCognito::start().await;
    let facade = Facade::start(
        &cognito.url,
        &["--idle-timeout-secs", "1", "--keepalive-interval-secs", "0"],
    )
    .await;
    let connected = std::time::Instant::now();
    let mut raw = RawH2::connect(facade.addr, true).await;
    let goaway = raw
        .until(GOAWAY, Duration::from_secs(5))
        .await
        .expect("a GOAWAY before the close");
    assert_eq!(goaway_code(&goaway), 0, "a graceful GOAWAY");
    assert!(
        connected.elapsed() >= Duration::from_millis(900),
        "GOAWAY before the idle timeout: {:?}",
        connected.elapsed()
    );
    raw.until_closed(Duration::from_secs(5)).await;
    facade.shutdown().await;
}

#[tokio::test]
async fn an_rpc_in_flight_keeps_its_connection_from_idling() {
    let cognito = ScriptedCognito::start().await;
    // No grace: a GOAWAY for idleness during the call would cut it.
    let facade = Facade::start(
        &cognito.url,
        &[
            "--idle-timeout-secs",
            "1",
            "--max-connection-age-grace-secs",
            "0",
        ],
    )
    .await;
    cognito.push(Reply::ok(json!({})).after(Duration::from_millis(2_500)));
    send(facade.channel().await)
        .await
        .expect("a call longer than the idle timeout");
    facade.shutdown().await;
}

#[tokio::test]
async fn an_open_stream_keeps_its_connection_from_idling() {
    use tonic_health::pb::{
        health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
    };
    let cognito = ScriptedCognito::start().await;
    let facade = Facade::start(
        &cognito.url,
        &[
            "--idle-timeout-secs",
            "1",
            "--max-connection-age-grace-secs",
            "0",
        ],
    )
    .await;
    // A health Watch, as gRPC client-side health checking keeps open.
    let mut watch = HealthClient::new(facade.channel().await)
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status(), ServingStatus::Serving);
    // Three idle timeouts later the stream is still open: no message, no error.
    let quiet = tokio::time::timeout(Duration::from_secs(3), watch.message()).await;
    assert!(quiet.is_err(), "the stream ended: {quiet:?}");
    drop(watch);
    facade.shutdown().await;
}

#[tokio::test]
async fn an_old_connection_gets_a_goaway_and_its_calls_get_the_grace() {
    let cognito = ScriptedCognito::start().await;
    let facade = Facade::start(
        &cognito.url,
        &[
            "--max-connection-age-secs",
            "1",
            "--max-connection-age-grace-secs",
            "2",
            "--idle-timeout-secs",
            "0",
        ],
    )
    .await;

    let mut raw = RawH2::connect(facade.addr, true).await;
    let goaway = raw
        .until(GOAWAY, Duration::from_secs(3))
        .await
        .expect("a GOAWAY at the maximum age");
    assert_eq!(goaway_code(&goaway), 0);

    // A call that ends within the grace finishes; one that outlasts it is cut.
    cognito.push(Reply::ok(json!({})).after(Duration::from_millis(1_600)));
    send(facade.channel().await)
        .await
        .expect("a call that ends within age + grace");
    cognito.push(Reply::ok(json!({})).after(Duration::from_secs(6)));
    let cut = send(facade.channel().await)
        .await
        .expect_err("a call that outlasts age + grace");
    assert!(
        matches!(
            cut.code(),
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Internal
        ),
        "{cut:?}"
    );
    facade.shutdown().await;
}

#[tokio::test]
async fn keepalive_pings_close_a_peer_that_does_not_answer() {
    let cognito = ScriptedCognito::start().await;
    let facade = Facade::start(
        &cognito.url,
        &[
            "--keepalive-interval-secs",
            "1",
            "--keepalive-timeout-secs",
            "1",
            "--idle-timeout-secs",
            "0",
        ],
    )
    .await;

    let mut dead = RawH2::connect(facade.addr, false).await;
    dead.until(PING, Duration::from_secs(5))
        .await
        .expect("a keepalive PING");
    dead.until_closed(Duration::from_secs(5)).await;

    // A peer that answers stays connected across several intervals.
    let mut live = RawH2::connect(facade.addr, true).await;
    let stayed = tokio::time::timeout(Duration::from_millis(3_500), async {
        while let Some(frame) = live.next().await {
            assert_ne!(frame.kind, GOAWAY, "a live peer got a GOAWAY");
        }
    })
    .await;
    assert!(stayed.is_err(), "a peer answering PINGs was disconnected");
    facade.shutdown().await;
}

#[tokio::test]
async fn a_connection_without_the_http2_preface_is_dropped_after_the_handshake_timeout() {
    let cognito = ScriptedCognito::start().await;
    let facade = Facade::start(&cognito.url, &["--handshake-timeout-secs", "1"]).await;
    let connected = std::time::Instant::now();
    let mut silent = TcpStream::connect(facade.addr).await.unwrap();
    let mut partial = TcpStream::connect(facade.addr).await.unwrap();
    partial.write_all(&PREFACE[..10]).await.unwrap();
    for stream in [&mut silent, &mut partial] {
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            let mut buf = [0u8; 256];
            // The server's SETTINGS may arrive first; then the close.
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "still open after the handshake timeout");
        assert!(
            connected.elapsed() >= Duration::from_millis(900),
            "closed before the handshake timeout: {:?}",
            connected.elapsed()
        );
    }
    send(facade.channel().await).await.unwrap();
    facade.shutdown().await;
}

#[tokio::test]
async fn connections_over_the_bound_are_closed_at_once_and_the_others_are_served() {
    let cognito = ScriptedCognito::start().await;
    let facade = Facade::start(&cognito.url, &["--max-connections", "3"]).await;
    let client = facade.channel().await;
    send(client.clone()).await.unwrap();
    let held = RawH2::connect(facade.addr, true).await;
    let mut other = RawH2::connect(facade.addr, true).await;
    other.until(SETTINGS, Duration::from_secs(5)).await.unwrap();

    let mut over = RawH2::connect(facade.addr, true).await;
    let frames = over.until_closed(Duration::from_secs(2)).await;
    assert!(frames.is_empty(), "served over the bound: {frames:?}");
    send(client.clone())
        .await
        .expect("an open connection is still served");

    // A freed slot is usable again.
    drop(held);
    let mut admitted = false;
    for _ in 0..100 {
        let mut again = RawH2::connect(facade.addr, true).await;
        if tokio::time::timeout(Duration::from_secs(1), again.next())
            .await
            .is_ok_and(|f| f.is_some_and(|f| f.kind == SETTINGS))
        {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(admitted, "a freed slot was not reused");
    send(client).await.unwrap();
    // Raw connections that stop reading would hold the drain until its timeout.
    drop((other, over));
    facade.shutdown().await;
}

#[tokio::test]
async fn shutdown_sends_a_goaway_and_the_drain_timeout_closes_what_is_left() {
    let cognito = ScriptedCognito::start().await;
    let mut facade = Facade::start(&cognito.url, &["--drain-timeout-secs", "1"]).await;
    let mut raw = RawH2::connect(facade.addr, true).await;
    raw.until(SETTINGS, Duration::from_secs(5)).await.unwrap();
    // A call that outlasts the drain timeout.
    cognito.push(Reply::ok(json!({})).after(Duration::from_secs(30)));
    let slow = tokio::spawn(send(facade.channel().await));
    while cognito.requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let begun = std::time::Instant::now();
    facade.begin_shutdown();
    let goaway = raw
        .until(GOAWAY, Duration::from_secs(5))
        .await
        .expect("a GOAWAY when the server drains");
    assert_eq!(goaway_code(&goaway), 0);
    // The raw connection never closes by itself and the call never ends:
    // both are cut when the drain timeout is over.
    facade.shutdown().await;
    assert!(
        begun.elapsed() < Duration::from_secs(5),
        "{:?}",
        begun.elapsed()
    );
    let cut = slow.await.unwrap().expect_err("cut at the drain timeout");
    assert!(
        matches!(
            cut.code(),
            tonic::Code::Unavailable
                | tonic::Code::Unknown
                | tonic::Code::Internal
                | tonic::Code::Cancelled
        ),
        "{cut:?}"
    );
    raw.until_closed(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn connections_over_the_per_address_bound_are_closed_at_once() {
    let cognito = ScriptedCognito::start().await;
    let facade = Facade::start(&cognito.url, &["--max-connections-per-ip", "2"]).await;
    let mut first = RawH2::connect(facade.addr, true).await;
    let mut second = RawH2::connect(facade.addr, true).await;
    for raw in [&mut first, &mut second] {
        raw.until(SETTINGS, Duration::from_secs(5)).await.unwrap();
    }
    let mut third = RawH2::connect(facade.addr, true).await;
    let frames = third.until_closed(Duration::from_secs(2)).await;
    assert!(frames.is_empty(), "served over the bound: {frames:?}");
    drop(first);
    let mut admitted = false;
    for _ in 0..100 {
        let mut again = RawH2::connect(facade.addr, true).await;
        if tokio::time::timeout(Duration::from_secs(1), again.next())
            .await
            .is_ok_and(|f| f.is_some_and(|f| f.kind == SETTINGS))
        {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(admitted, "a freed per-address slot was not reused");
    drop((second, third));
    facade.shutdown().await;
}
