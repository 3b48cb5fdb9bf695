//! The floods of the edge tests: many streams holding unfinished messages,
//! and a scrape of the metrics port that waits for a free slot.

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use h2::SendStream;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
    task::JoinHandle,
};

use super::PATIENCE;
use crate::hostile::h2raw::{self, Conn, Outcome, SEND_PATH};

/// Connections of a message flood.
const CONNECTIONS: usize = 3;
/// Streams of a message flood (100 per connection: the server's bound).
const STREAMS: usize = 300;

/// Streams holding unfinished messages, until their outcomes are read.
pub struct Flood {
    _conns: Vec<Conn>,
    answers: Vec<JoinHandle<Outcome>>,
    _bodies: Vec<SendStream<Bytes>>,
}

/// [`STREAMS`] sends on [`CONNECTIONS`] connections, each declaring a
/// message of `declared` bytes and sending `sent` bytes of it (as the
/// server's flow control lets it), never the rest. Returns once every
/// stream has sent what it could and the server has read it.
pub async fn unfinished(addr: SocketAddr, declared: u32, sent: usize) -> Flood {
    let data = Bytes::from(vec![0; sent]);
    let mut conns = Vec::new();
    for _ in 0..CONNECTIONS {
        conns.push(Conn::open(addr).await);
    }
    let mut answers = Vec::new();
    let mut senders = Vec::new();
    for i in 0..STREAMS {
        let (answer, sender) = h2raw::unfinished(
            &mut conns[i % CONNECTIONS],
            SEND_PATH,
            declared,
            data.clone(),
        )
        .await;
        answers.push(answer);
        senders.push(sender);
    }
    let mut bodies = Vec::new();
    for sender in senders {
        let body = tokio::time::timeout(PATIENCE, sender)
            .await
            .expect("each stream sends what the server lets it")
            .unwrap();
        bodies.push(body);
    }
    for conn in &mut conns {
        conn.ping().await;
    }
    Flood {
        _conns: conns,
        answers,
        _bodies: bodies,
    }
}

impl Flood {
    /// Every stream's outcome, however long the server takes (within
    /// [`PATIENCE`]).
    pub async fn outcomes(self) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        for answer in self.answers {
            let outcome = tokio::time::timeout(PATIENCE, answer)
                .await
                .expect("the server ends every stream")
                .unwrap();
            outcomes.push(outcome);
        }
        outcomes
    }
}

/// `GET /metrics` on `admin`, tried until a connection slot is free and
/// the answer is a 200 (within [`PATIENCE`]); the body.
pub async fn scrape_when_free(admin: &str) -> String {
    let give_up = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Ok(Some(body)) = tokio::time::timeout(Duration::from_secs(5), scrape(admin)).await {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "/metrics never answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One scrape over HTTP/1.1: the body of a 200, or `None`.
async fn scrape(admin: &str) -> Option<String> {
    let mut tcp = TcpStream::connect(admin).await.ok()?;
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

/// A connection to `admin` that has been answered one scrape (HTTP/1.1,
/// kept alive) and asks nothing more.
pub async fn kept_alive_after_a_scrape(admin: &str) -> TcpStream {
    let mut tcp = TcpStream::connect(admin).await.unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nhost: admin\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0; 16 * 1024];
    // The exposition ends with its EOF marker or its last sample's newline;
    // read until the length the head announced has arrived.
    loop {
        let n = tokio::time::timeout(PATIENCE, tcp.read(&mut chunk))
            .await
            .expect("the scrape is answered")
            .unwrap();
        assert!(n > 0, "closed before the answer");
        answer.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&answer);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(str::to_owned)
            })
            .expect("a content-length")
            .trim()
            .parse()
            .unwrap();
        if body.len() >= length {
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            return tcp;
        }
    }
}

/// Waits (within [`PATIENCE`]) for the server to close `tcp`.
pub async fn closed_by_server(mut tcp: TcpStream) {
    let mut byte = [0; 1];
    let read = tokio::time::timeout(PATIENCE, tcp.read(&mut byte))
        .await
        .expect("the server closes an idle connection");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

/// The value of `series` in a scrape (0 when absent).
pub fn sample(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}
