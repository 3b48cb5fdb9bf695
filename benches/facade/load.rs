//! Load generation: closed-loop workers (a fixed number of callers, each
//! calling again as soon as it has an answer) and an open-loop constant rate
//! (latency measured from the intended start, so a slow server cannot hide
//! its queueing), against the facade over gRPC or the backend over the SDK.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use aws_sdk_cognitoidentityprovider::{error::ProvideErrorMetadata, Client as Sdk};
use cognito_verify::proto::user_attribute_verification_service_client::UserAttributeVerificationServiceClient as Grpc;
use serde::Serialize;
use tonic::transport::Channel;

use crate::requests::{send_request, status_request, verify_request};

/// What is called.
#[derive(Clone)]
pub enum Target {
    /// The backend through the AWS SDK: no facade.
    Direct(Sdk),
    /// The facade over gRPC; several connections (HTTP/2 caps streams per
    /// connection).
    Facade(Vec<Grpc<Channel>>),
}

/// The RPC under load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Rpc {
    /// GetUserAttributeVerificationCode.
    Get,
    /// VerifyUserAttribute: even calls send the right code (a success the
    /// first time, then ExpiredCode: codes are single use), odd calls a wrong
    /// one (CodeMismatch).
    Verify,
    /// GetUserAttributeVerificationCode for `phone_number`: through the
    /// facade, the SMS guard's GetUser first.
    GetSms,
    /// GetVerificationStatus (directly: GetUser).
    Status,
}

/// The SDK client used for the direct scenario, configured as the facade
/// configures its own (one attempt, no credentials, same timeouts).
pub async fn sdk(url: &str) -> Sdk {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(cognito_verify::https_client())
        .region(aws_config::Region::new("us-east-1"))
        .no_credentials()
        .endpoint_url(url)
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_timeout(Duration::from_secs(5))
                .build(),
        )
        .load()
        .await;
    Sdk::new(&config)
}

/// gRPC clients over `connections` HTTP/2 connections to `addr`.
pub async fn grpc(addr: &str, connections: usize) -> Vec<Grpc<Channel>> {
    let mut clients = Vec::new();
    for _ in 0..connections {
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        clients.push(Grpc::new(channel));
    }
    clients
}

/// One call; `Ok` or the error's code (Cognito type or gRPC code).
pub async fn call(
    target: &Target,
    worker: usize,
    rpc: Rpc,
    token: &str,
    n: u64,
) -> Result<(), String> {
    let code = if n % 2 == 0 { "123456" } else { "000000" };
    match target {
        Target::Direct(sdk) => {
            let result = match rpc {
                Rpc::Get => sdk
                    .get_user_attribute_verification_code()
                    .access_token(token)
                    .attribute_name("email")
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| e.code().unwrap_or("transport").to_owned()),
                Rpc::Verify => sdk
                    .verify_user_attribute()
                    .access_token(token)
                    .attribute_name("email")
                    .code(code)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| e.code().unwrap_or("transport").to_owned()),
                Rpc::GetSms => sdk
                    .get_user_attribute_verification_code()
                    .access_token(token)
                    .attribute_name("phone_number")
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| e.code().unwrap_or("transport").to_owned()),
                Rpc::Status => sdk
                    .get_user()
                    .access_token(token)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| e.code().unwrap_or("transport").to_owned()),
            };
            result
        }
        Target::Facade(clients) => {
            let mut client = clients[worker % clients.len()].clone();
            let result = match rpc {
                Rpc::Get => client
                    .get_user_attribute_verification_code(send_request(token, "email"))
                    .await
                    .map(drop),
                Rpc::Verify => client
                    .verify_user_attribute(verify_request(token, "email", code))
                    .await
                    .map(drop),
                Rpc::GetSms => client
                    .get_user_attribute_verification_code(send_request(token, "phone_number"))
                    .await
                    .map(drop),
                Rpc::Status => client
                    .get_verification_status(status_request(token))
                    .await
                    .map(drop),
            };
            result.map_err(|s| format!("{:?}", s.code()))
        }
    }
}

/// The outcome of one run.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Stats {
    pub requests: u64,
    pub elapsed_secs: f64,
    pub throughput_rps: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// Answers by outcome: `ok`, or an error code.
    pub outcomes: BTreeMap<String, u64>,
    /// p99 latency of each outcome.
    pub p99_us_by_outcome: BTreeMap<String, u64>,
}

/// Collected latencies and outcomes.
#[derive(Default)]
pub struct Recorder {
    by_outcome: Mutex<BTreeMap<String, Vec<u32>>>,
}

/// The `q` quantile of sorted latencies.
fn quantile(sorted: &[u32], q: f64) -> u64 {
    let i = ((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(i).copied().unwrap_or(0) as u64
}

impl Recorder {
    pub fn record(&self, latency: Duration, outcome: Result<(), String>) {
        let us = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        let key = outcome.err().unwrap_or_else(|| "ok".to_owned());
        self.by_outcome
            .lock()
            .unwrap()
            .entry(key)
            .or_default()
            .push(us);
    }

    pub fn stats(&self, elapsed: Duration) -> Stats {
        let mut by_outcome = std::mem::take(&mut *self.by_outcome.lock().unwrap());
        let mut l: Vec<u32> = by_outcome.values().flatten().copied().collect();
        l.sort_unstable();
        let at = |q: f64| quantile(&l, q);
        let mut outcomes = BTreeMap::new();
        let mut p99_us_by_outcome = BTreeMap::new();
        for (k, v) in &mut by_outcome {
            v.sort_unstable();
            outcomes.insert(k.clone(), v.len() as u64);
            p99_us_by_outcome.insert(k.clone(), quantile(v, 0.99));
        }
        Stats {
            requests: l.len() as u64,
            elapsed_secs: elapsed.as_secs_f64(),
            throughput_rps: l.len() as f64 / elapsed.as_secs_f64(),
            p50_us: at(0.50),
            p90_us: at(0.90),
            p99_us: at(0.99),
            max_us: l.last().copied().unwrap_or(0) as u64,
            outcomes,
            p99_us_by_outcome,
        }
    }
}

/// `concurrency` workers calling back to back for `duration`.
pub async fn closed_loop(
    target: &Target,
    rpc: Rpc,
    tokens: &[String],
    concurrency: usize,
    duration: Duration,
) -> Stats {
    let recorder = Arc::new(Recorder::default());
    let start = Instant::now();
    let end = start + duration;
    let counter = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let (target, recorder, counter) =
                (target.clone(), Arc::clone(&recorder), Arc::clone(&counter));
            let token = tokens[w % tokens.len()].clone();
            tokio::spawn(async move {
                while Instant::now() < end {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let t = Instant::now();
                    let outcome = call(&target, w, rpc, &token, n).await;
                    recorder.record(t.elapsed(), outcome);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    recorder.stats(start.elapsed())
}

/// `n` calls at once, each made once; returns when all are answered.
pub async fn closed_loop_once(target: &Target, rpc: Rpc, tokens: &[String], n: usize) -> Stats {
    let recorder = Arc::new(Recorder::default());
    let start = Instant::now();
    let calls: Vec<_> = (0..n)
        .map(|w| {
            let (target, recorder) = (target.clone(), Arc::clone(&recorder));
            let token = tokens[w % tokens.len()].clone();
            tokio::spawn(async move {
                let t = Instant::now();
                let outcome = call(&target, w, rpc, &token, w as u64).await;
                recorder.record(t.elapsed(), outcome);
            })
        })
        .collect();
    for c in calls {
        c.await.unwrap();
    }
    recorder.stats(start.elapsed())
}

/// `rate` calls per second for `duration`, whatever the answers' pace;
/// latency counts from each call's scheduled start.
pub async fn open_loop(
    target: &Target,
    rpc: Rpc,
    tokens: &[String],
    rate: f64,
    duration: Duration,
) -> Stats {
    let recorder = Arc::new(Recorder::default());
    let period = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let start = Instant::now();
    let total = (duration.as_secs_f64() * rate) as u64;
    let mut tasks = Vec::with_capacity(total as usize);
    for n in 0..total {
        let scheduled = start + period.mul_f64(n as f64);
        tokio::time::sleep_until(scheduled.into()).await;
        let (target, recorder) = (target.clone(), Arc::clone(&recorder));
        let worker = n as usize % tokens.len();
        let token = tokens[worker].clone();
        tasks.push(tokio::spawn(async move {
            let outcome = call(&target, worker, rpc, &token, n).await;
            recorder.record(scheduled.elapsed(), outcome);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    recorder.stats(start.elapsed())
}

/// Closed-loop workers that stop starting calls when `stop` is set; returns
/// when every started call has its answer.
pub async fn until_stopped(
    target: &Target,
    rpc: Rpc,
    tokens: &[String],
    concurrency: usize,
    stop: Arc<AtomicBool>,
) -> Stats {
    let recorder = Arc::new(Recorder::default());
    let start = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let (target, recorder, stop) =
                (target.clone(), Arc::clone(&recorder), Arc::clone(&stop));
            let token = tokens[w % tokens.len()].clone();
            tokio::spawn(async move {
                let mut n = w as u64 * 2; // even: right code for Verify
                while !stop.load(Ordering::SeqCst) {
                    let t = Instant::now();
                    let outcome = call(&target, w, rpc, &token, n).await;
                    recorder.record(t.elapsed(), outcome);
                    n += 2;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    recorder.stats(start.elapsed())
}
