//! A raw HTTP/2 client (the `h2` crate) for what no well-behaved gRPC
//! client sends: streams that stop after their HEADERS or halfway through
//! a message, messages that declare more than they carry. Each stream's
//! answer is awaited in its own task, so a test can hold hundreds of
//! streams open and read every outcome afterwards.

use std::{future::poll_fn, net::SocketAddr, time::Duration};

use bytes::Bytes;
use h2::{client::SendRequest, Ping, PingPong, SendStream};
use tokio::{net::TcpStream, task::JoinHandle, time::Instant};
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

/// The path of the send RPC.
pub const SEND_PATH: &str =
    "/cognito.verify.v1.UserAttributeVerificationService/GetUserAttributeVerificationCode";

/// One HTTP/2 connection.
pub struct Conn {
    addr: SocketAddr,
    client: SendRequest<Bytes>,
    ping: PingPong,
    _task: JoinHandle<()>,
}

/// How a stream ended, as the server said it.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The gRPC status (`Unknown` when the stream was reset without one).
    pub code: Code,
    /// `ErrorInfo.reason`, if any.
    pub reason: Option<String>,
    /// Whether the status carried `RetryInfo`.
    pub retry_info: bool,
    /// When the answer arrived.
    pub at: Instant,
    /// The reset or error instead of an answer, if any (read through
    /// `Debug`, in assertion messages).
    #[allow(dead_code)]
    pub error: Option<String>,
}

impl Outcome {
    fn of(status: &Status) -> Self {
        let details = status.get_error_details();
        Self {
            code: status.code(),
            reason: details.error_info().map(|i| i.reason.clone()),
            retry_info: details.retry_info().is_some(),
            at: Instant::now(),
            error: None,
        }
    }

    fn failed(error: h2::Error) -> Self {
        Self {
            code: Code::Unknown,
            reason: None,
            retry_info: false,
            at: Instant::now(),
            error: Some(error.to_string()),
        }
    }

    /// `(code, reason)`, for assertions.
    pub fn said(&self) -> (Code, Option<&str>) {
        (self.code, self.reason.as_deref())
    }
}

/// A stream: its request body, and the task awaiting its answer.
pub struct Stream {
    pub body: SendStream<Bytes>,
    pub answer: JoinHandle<Outcome>,
}

impl Conn {
    /// Connects and completes the HTTP/2 handshake.
    pub async fn open(addr: SocketAddr) -> Self {
        let tcp = TcpStream::connect(addr).await.expect("connects");
        let _ = tcp.set_nodelay(true);
        let (client, mut connection) = h2::client::Builder::new()
            .max_concurrent_reset_streams(1_000)
            .handshake::<_, Bytes>(tcp)
            .await
            .expect("HTTP/2 handshake");
        let ping = connection.ping_pong().expect("ping_pong is taken once");
        let task = tokio::spawn(async move {
            let _ = connection.await;
        });
        Self {
            addr,
            client,
            ping,
            _task: task,
        }
    }

    /// Opens a stream on `path` with `headers` and sends its HEADERS only.
    pub async fn stream(&mut self, path: &str, headers: &[(&str, &str)]) -> Stream {
        let mut request = http::Request::post(format!("http://{}{path}", self.addr))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let client = self.client.clone().ready().await.expect("stream capacity");
        self.client = client;
        let (response, body) = self
            .client
            .send_request(request.body(()).unwrap(), false)
            .expect("stream opens");
        let answer = tokio::spawn(async move {
            let response = match response.await {
                Ok(response) => response,
                Err(e) => return Outcome::failed(e),
            };
            if let Some(status) = Status::from_header_map(response.headers()) {
                return Outcome::of(&status);
            }
            let mut body = response.into_body();
            while let Some(data) = body.data().await {
                if let Err(e) = data {
                    return Outcome::failed(e);
                }
            }
            match body.trailers().await {
                Ok(Some(trailers)) => Status::from_header_map(&trailers).map_or_else(
                    || Outcome::of(&Status::unknown("no grpc-status")),
                    |s| Outcome::of(&s),
                ),
                Ok(None) => Outcome::of(&Status::unknown("no trailers")),
                Err(e) => Outcome::failed(e),
            }
        });
        Stream { body, answer }
    }

    /// One PING round trip: once it is back, the server has read every
    /// frame sent on this connection before it.
    pub async fn ping(&mut self) {
        tokio::time::timeout(Duration::from_secs(30), self.ping.ping(Ping::opaque()))
            .await
            .expect("PING answered in time")
            .expect("PING answered");
    }
}

/// The 5-byte gRPC prefix of an uncompressed message of `len` bytes.
pub fn prefix(len: u32) -> Bytes {
    let mut p = vec![0];
    p.extend_from_slice(&len.to_be_bytes());
    Bytes::from(p)
}

/// Sends `data` as the peer's flow control allows, without ending the
/// stream. `Ok` once all of it is handed to the connection; `Err` when the
/// server reset or closed the stream first.
pub async fn send(body: &mut SendStream<Bytes>, mut data: Bytes) -> Result<(), h2::Error> {
    while !data.is_empty() {
        body.reserve_capacity(data.len());
        let granted = match poll_fn(|cx| body.poll_capacity(cx)).await {
            Some(granted) => granted?,
            None => return Err(h2::Error::from(h2::Reason::STREAM_CLOSED)),
        };
        if granted == 0 {
            continue;
        }
        body.send_data(data.split_to(granted.min(data.len())), false)?;
    }
    Ok(())
}

/// Opens a stream to `path` on `conn` that declares a message of `declared`
/// bytes, sends `data` of it (as far as the server lets it) and never ends:
/// the answer, and the task that hands back the still-open body once it has
/// sent what it could.
pub async fn unfinished(
    conn: &mut Conn,
    path: &str,
    declared: u32,
    data: Bytes,
) -> (JoinHandle<Outcome>, JoinHandle<SendStream<Bytes>>) {
    let Stream { mut body, answer } = conn.stream(path, &[]).await;
    let sender = tokio::spawn(async move {
        // Until the server answers and resets the stream, if it does.
        if send(&mut body, prefix(declared)).await.is_ok() {
            let _ = send(&mut body, data).await;
        }
        body
    });
    (answer, sender)
}
