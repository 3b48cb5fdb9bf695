//! Shared test harness: a scripted, wire-level Cognito endpoint and the
//! facade started in-process on `127.0.0.1:0`, reached over real gRPC.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{body::Bytes, extract::State, http::HeaderMap, response::Response, Router};
use clap::Parser as _;
use cognito_verify::{
    config::Cli, config::Command, config::ServeConfig,
    proto::user_attribute_verification_service_client::UserAttributeVerificationServiceClient,
    proto::GetUserAttributeVerificationCodeRequest, server, Cognito,
};
use hyper_util::{client::legacy::connect::HttpConnector, rt::TokioExecutor};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::transport::Channel;

pub mod binary;
pub mod certs;
pub mod child;
pub mod flags;
pub mod redis;
pub mod requests;
pub mod stack;

pub use requests::{send_request, status_request, verify_request};

/// A send of a code for `email` with `token` and `request_id`: repeats of
/// it within the idempotency window make one call to Cognito. (Not in
/// [`requests`], which the bench shares: it never sends with an id.)
pub fn send_request_with_id(
    token: &str,
    request_id: &str,
) -> GetUserAttributeVerificationCodeRequest {
    GetUserAttributeVerificationCodeRequest {
        request_id: request_id.to_owned(),
        ..send_request(token, "email")
    }
}

/// One scripted HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    /// A 200 with a JSON body, as Cognito sends it.
    pub fn ok(body: serde_json::Value) -> Self {
        Self {
            status: 200,
            headers: vec![
                ("content-type".into(), "application/x-amz-json-1.1".into()),
                ("x-amzn-requestid".into(), "req-ok-1".into()),
            ],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    /// GetUser's answer for a user with a US phone number: what a code for
    /// `phone_number` asks first (the SMS guard needs the number).
    pub fn user_with_phone() -> Self {
        Self::ok(serde_json::json!({"Username": "u", "UserAttributes": [
            {"Name": "phone_number", "Value": "+12065550100"},
            {"Name": "phone_number_verified", "Value": "false"}]}))
    }

    /// An error exactly as the real service sends it: HTTP 400 (500 for
    /// InternalErrorException), `x-amzn-ErrorType: <Type>:`, a request id and
    /// `{"__type","message"}`.
    pub fn error(error_type: &str, message: &str) -> Self {
        let status = if error_type == "InternalErrorException" {
            500
        } else {
            400
        };
        Self {
            status,
            headers: vec![
                ("content-type".into(), "application/x-amz-json-1.1".into()),
                ("x-amzn-errortype".into(), format!("{error_type}:")),
                ("x-amzn-errormessage".into(), message.into()),
                ("x-amzn-requestid".into(), format!("req-{error_type}")),
            ],
            body: serde_json::json!({"__type": error_type, "message": message}).to_string(),
            delay: Duration::ZERO,
        }
    }

    /// A raw answer.
    pub fn raw(status: u16, headers: &[(&str, &str)], body: &str) -> Self {
        Self {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    /// The same answer, sent after `delay`.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A request the endpoint received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub headers: HeaderMap,
    pub body: String,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("request body is JSON")
    }
}

#[derive(Default)]
struct Script {
    replies: VecDeque<Reply>,
    requests: Vec<Recorded>,
}

/// An HTTP server on `127.0.0.1:0` that answers each request with the next
/// scripted reply (a default success when none is left) and records requests.
#[derive(Clone)]
pub struct ScriptedCognito {
    pub url: String,
    script: Arc<Mutex<Script>>,
}

impl ScriptedCognito {
    pub async fn start() -> Self {
        let script = Arc::new(Mutex::new(Script::default()));
        let app = Router::new()
            .fallback(answer)
            .with_state(Arc::clone(&script));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, script }
    }

    /// Queues replies, answered in order.
    pub fn push(&self, reply: Reply) {
        self.script.lock().unwrap().replies.push_back(reply);
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.script.lock().unwrap().requests.clone()
    }
}

async fn answer(
    State(script): State<Arc<Mutex<Script>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reply = {
        let mut s = script.lock().unwrap();
        s.requests.push(Recorded {
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        s.replies
            .pop_front()
            .unwrap_or_else(|| Reply::ok(serde_json::json!({})))
    };
    tokio::time::sleep(reply.delay).await;
    let mut response = Response::builder().status(reply.status);
    for (k, v) in &reply.headers {
        response = response.header(k, v);
    }
    response.body(reply.body.into()).unwrap()
}

/// A port on which nothing listens.
pub async fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// Parses `serve` flags as the binary would. Tests default to
/// [`flags::LOOSE`] and [`flags::RPC_RATES_OFF`] (no limits, no signature
/// check: the scripted endpoint serves no keys, no admin listener) and
/// [`TEST_DEFAULTS`] unless `extra` sets them.
pub fn serve_config(endpoint: &str, extra: &[&str]) -> ServeConfig {
    let mut argv = vec![
        "cognito-verify",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--region",
        "us-east-1",
        "--cognito-endpoint",
        endpoint,
    ];
    let defaults = [&flags::LOOSE[..], &flags::RPC_RATES_OFF, &TEST_DEFAULTS].concat();
    argv.extend(flags::unless_set(&defaults, extra));
    argv.extend_from_slice(extra);
    match Cli::try_parse_from(argv)
        .expect("valid test config")
        .command
    {
        Command::Serve(config) => *config,
        other => panic!("not serve: {other:?}"),
    }
}

/// What every test's facade starts with besides [`flags::LOOSE`], in-process
/// or as a child process, unless the test sets it.
pub const TEST_DEFAULTS: [(&str, &str); 2] = [
    // No wait between NOT_SERVING and closing the listener.
    ("--shutdown-delay-secs", "0"),
    // The pool of [`TOKEN`] (and of the tests' emulator seeds).
    ("--user-pool", TEST_POOLS),
];

/// The user pools the tests' facades accept unless a test says otherwise:
/// the pool of [`TOKEN`], the embedded backend's demo pool, and the pool of
/// the telemetry tests' tokens.
pub const TEST_POOLS: &str = "us-east-1_Test0001,us-east-1_DevPool01,eu-west-1_Telemetry";

/// The transport of [`Facade::deadline_client`].
pub type DeadlineTransport = hyper_util::client::legacy::Client<HttpConnector, tonic::body::Body>;

/// The facade running in-process.
pub struct Facade {
    pub addr: SocketAddr,
    /// The plaintext health listener, with `--health-listen`.
    pub health: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), server::ServeError>>,
}

impl Facade {
    /// Starts the facade against `endpoint` with extra `serve` flags.
    pub async fn start(endpoint: &str, extra: &[&str]) -> Self {
        let config = serve_config(endpoint, extra);
        let cognito = Cognito::from_config(&config).await.expect("client builds");
        let bound = server::Bound::bind(&config).await.expect("binds");
        let addr = bound.grpc_addr().unwrap();
        let health = bound.health_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server::run(bound, &config, cognito, async {
                let _ = stopped.await;
            })
            .await
        });
        Self {
            addr,
            health,
            stop: Some(stop),
            task,
        }
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub async fn client(&self) -> UserAttributeVerificationServiceClient<Channel> {
        UserAttributeVerificationServiceClient::new(self.channel().await)
    }

    /// A client that sends a call's deadline (`grpc-timeout`) and leaves it
    /// to the service, for tests of what the service answers at a deadline.
    /// A tonic `Channel` enforces the deadline too, with a timer started
    /// before the request is even written: when the machine is busy, that
    /// timer can fire before the service's answer (kept 10 ms under the
    /// deadline) is read, and the test sees a CANCELLED that says nothing
    /// about the service. This one is hyper's HTTP/2 client under the same
    /// generated client, which has no timer of its own.
    pub fn deadline_client(&self) -> UserAttributeVerificationServiceClient<DeadlineTransport> {
        let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http();
        let origin = format!("http://{}", self.addr).parse().unwrap();
        UserAttributeVerificationServiceClient::with_origin(http, origin)
    }

    /// Starts the graceful shutdown without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Shuts down and waits for `run` to return.
    pub async fn shutdown(mut self) {
        self.begin_shutdown();
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("server stops in time")
            .unwrap()
            .unwrap();
    }
}

/// An access token shaped like Cognito's (pool `us-east-1_Test0001`, scope
/// and `token_use` right, `exp` in 2100), unsigned: the scripted endpoint
/// checks nothing, and the facades of these tests do not check signatures.
pub const TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3Qta2V5In0.eyJzdWIiOiIxMTExMTExMS0yMjIyLTQzMzMtODQ0NC01NTU1NTU1NTU1NTUiLCJpc3MiOiJodHRwczovL2NvZ25pdG8taWRwLnVzLWVhc3QtMS5hbWF6b25hd3MuY29tL3VzLWVhc3QtMV9UZXN0MDAwMSIsImNsaWVudF9pZCI6InRlc3RjbGllbnQwMDAwMDAwMDAwMDAwMDAxIiwidG9rZW5fdXNlIjoiYWNjZXNzIiwic2NvcGUiOiJhd3MuY29nbml0by5zaWduaW4udXNlci5hZG1pbiIsImV4cCI6NDEwMjQ0NDgwMCwiaWF0IjoxNzAwMDAwMDAwLCJ1c2VybmFtZSI6InRlc3QifQ.c2lnbmF0dXJl";

/// Asserts that `admitted` calls in `elapsed` are `per_sec` within ±10 %:
/// a rate that must hold across replicas.
pub fn assert_rate_within_ten_percent(admitted: u32, per_sec: u32, elapsed: Duration) {
    let expected = f64::from(per_sec) * elapsed.as_secs_f64();
    let off = (f64::from(admitted) - expected).abs() / expected;
    assert!(
        off <= 0.10,
        "{admitted} admitted across both replicas in {elapsed:?}, expected {expected:.0} ± 10 %"
    );
}
