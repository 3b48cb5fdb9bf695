//! The processes under test: the real `cognito-verify` binary, started as the
//! facade and as the embedded backend, and what the kernel says about them
//! (CPU time, resident memory).

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use tonic::transport::Channel;
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

/// The `serve` flags every facade under test starts with, shared with the
/// test suite: a file of its harness, included by path because a bench
/// cannot import a module of a test binary.
#[path = "../../tests/suite/common/flags.rs"]
mod flags;

/// The binary built by this `cargo bench`.
pub const BIN: &str = env!("CARGO_BIN_EXE_cognito-verify");

/// A free loopback port (bound and released: a tiny race, fine for a bench).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// User + system CPU time of a process (`self` or a pid), from /proc in
/// 10 ms ticks (USER_HZ is 100 on Linux).
pub fn cpu_of(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after ')'.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// A child process that is killed when dropped.
pub struct Proc {
    pub child: Child,
    pub started: Instant,
}

impl Proc {
    /// The `cognito-verify` binary with `args`.
    pub fn spawn(args: &[&str]) -> Self {
        Self::spawn_program(std::path::Path::new(BIN), args)
    }

    /// Any program with `args`, its output discarded.
    pub fn spawn_program(program: &std::path::Path, args: &[&str]) -> Self {
        let started = Instant::now();
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the cognito-verify binary starts");
        Self { child, started }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User + system CPU time so far.
    pub fn cpu(&self) -> Duration {
        cpu_of(&self.pid().to_string())
    }

    /// (current, peak) resident set size in KiB.
    pub fn rss_kib(&self) -> (u64, u64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM");
    }

    /// Waits for the exit, at most `limit`; the exit code and the time taken.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<(i32, Duration)> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some((status.code().unwrap_or(-1), start.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls gRPC health until SERVING; the time from the process's start.
pub async fn wait_serving(proc: &mut Proc, addr: &str, args: &[&str]) -> Duration {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(channel) = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
        {
            let status = HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await;
            if status.is_ok_and(|s| s.into_inner().status() == ServingStatus::Serving) {
                return proc.started.elapsed();
            }
        }
        if let Some(status) = proc.child.try_wait().unwrap() {
            panic!("the facade on {addr} exited before serving ({status}); its flags: {args:?}");
        }
        assert!(Instant::now() < deadline, "{addr} never became SERVING");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Polls an HTTP URL until it answers.
pub async fn wait_http(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "{addr} never listened");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The embedded backend as its own process.
pub async fn backend(seed: &std::path::Path, constant: bool) -> (Proc, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let seed = seed.to_str().unwrap();
    let mut args = vec![
        "emulator",
        "--listen",
        &addr,
        "--seed",
        seed,
        "--fixed-code",
        "123456",
        "--no-user-limits",
        "--token-ttl-secs",
        "86400",
        "--log-filter",
        "warn",
    ];
    if constant {
        args.push("--constant-response");
    }
    let proc = Proc::spawn(&args);
    wait_http(&addr).await;
    (proc, format!("http://{addr}"))
}

/// The facade as its own process, with production defaults (info logs in
/// JSON, to a pipe nobody reads: /dev/null) except rate limits off.
pub async fn facade(backend_url: &str, extra: &[&str]) -> (Proc, String, Duration) {
    facade_with_open_file_limit(None, backend_url, extra).await
}

/// [`facade`], under `ulimit -n limit` when `limit` is set (a shell lowers
/// the limit and execs the binary).
pub async fn facade_with_open_file_limit(
    limit: Option<u32>,
    backend_url: &str,
    extra: &[&str],
) -> (Proc, String, Duration) {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut args = vec![
        "serve",
        "--listen",
        &addr,
        "--region",
        "us-east-1",
        "--cognito-endpoint",
        backend_url,
    ];
    // Defaults for flags `extra` does not set: those of every facade under
    // test (the bench calls far more often per user than the limits allow,
    // and its tokens are unsigned), production's JSON log, and the pool of
    // the bench's seed and its tokens.
    let defaults = [
        &flags::LOOSE[..],
        &flags::RPC_RATES_OFF,
        &[
            ("--log-format", "json"),
            ("--user-pool", "us-east-1_Bench0001"),
        ],
    ]
    .concat();
    args.extend(flags::unless_set(&defaults, extra));
    args.extend_from_slice(extra);
    let mut proc = match limit {
        None => Proc::spawn(&args),
        Some(limit) => {
            let script = format!("ulimit -n {limit} && exec \"$0\" \"$@\"");
            let mut shell = vec!["-c", &script, BIN];
            shell.extend_from_slice(&args);
            Proc::spawn_program(std::path::Path::new("/bin/sh"), &shell)
        }
    };
    // With TLS on the gRPC port, health is asked on the plaintext listener.
    let health = extra
        .windows(2)
        .find(|w| w[0] == "--health-listen")
        .map_or(addr.as_str(), |w| w[1]);
    let startup = wait_serving(&mut proc, health, &args).await;
    (proc, addr, startup)
}
