//! The real binary as a child process: a clean environment, a JSON log
//! collected line by line, the gRPC address it logs, SIGTERM and the exit code.

use std::{
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};
use tonic::transport::Channel;

use super::flags;

pub const BIN: &str = env!("CARGO_BIN_EXE_cognito-verify");

/// The binary with a clean environment and a JSON log, `args` and the
/// tests' defaults for the flags `args` does not set: [`flags::LOOSE`] and
/// [`super::TEST_DEFAULTS`], but the per-replica RPC rates as shipped (see
/// [`flags::RPC_RATES_OFF`]).
pub fn command(args: &[&str]) -> Command {
    let defaults = [&flags::LOOSE[..], &super::TEST_DEFAULTS].concat();
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .arg("serve")
        // JSON: `Running` reads the address from the log.
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(flags::unless_set(&defaults, args))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// A running binary, its collected log lines and its gRPC address.
pub struct Running {
    pub child: Child,
    pub log: Arc<Mutex<Vec<String>>>,
    pub addr: String,
}

impl Running {
    pub async fn start(mut cmd: Command) -> Self {
        let mut child = cmd.spawn().expect("binary starts");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(Mutex::new(Vec::new()));
        let addr = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                log.lock().unwrap().push(line.clone());
                let v: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
                if v["fields"]["message"] == "listening" {
                    return v["fields"]["address"].as_str().unwrap().to_owned();
                }
            }
            panic!("exited before listening: {:?}", log.lock().unwrap());
        })
        .await
        .expect("listening in time");
        let sink = Arc::clone(&log);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        Self { child, log, addr }
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// SIGTERM, then the exit code.
    pub async fn terminate(mut self) -> (i32, String) {
        let pid = self.child.id().unwrap().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
        assert!(killed.success());
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("exits within the drain timeout")
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await; // let the reader take the last lines
        let log = self.log.lock().unwrap().join("\n");
        (status.code().expect("exited, not killed"), log)
    }
}

/// Runs the binary to completion; returns its exit code and stderr.
pub async fn run_to_exit(cmd: &mut Command) -> (i32, String) {
    let out = tokio::time::timeout(Duration::from_secs(10), cmd.output())
        .await
        .unwrap()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}
