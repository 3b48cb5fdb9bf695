//! What the hostile tests need of the binary as a child process beyond
//! `binary`: a lower open-file limit, its memory as the kernel counts it,
//! and the addresses of its other listeners from its log.

use std::{process::Stdio, time::Duration};

use tokio::process::Command;

use super::binary::Running;

/// `command` (from `binary::command`) run under `ulimit -n limit`: a shell
/// lowers the limit (soft and hard) and execs the binary with the same
/// arguments and environment.
pub fn under_open_file_limit(limit: u32, command: &Command) -> Command {
    let std = command.as_std();
    let mut cmd = Command::new("/bin/sh");
    cmd.env_clear()
        .arg("-c")
        .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
        .arg(std.get_program())
        .args(std.get_args())
        .envs(
            std.get_envs()
                .filter_map(|(name, value)| value.map(|value| (name, value))),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// (VmRSS, VmHWM) of a process in KiB: its resident memory now and at its
/// peak.
pub fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
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

/// The `address` of the first log line whose message starts with
/// `message`, waiting up to 10 s for it.
pub async fn logged_address(running: &Running, message: &str) -> String {
    for _ in 0..500 {
        let found = running.log.lock().unwrap().iter().find_map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            v["fields"]["message"]
                .as_str()?
                .starts_with(message)
                .then(|| v["fields"]["address"].as_str().map(str::to_owned))
                .flatten()
        });
        if let Some(address) = found {
            return address;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no {message:?} line in the log");
}

/// The log lines (messages) that start with `message`.
pub fn logged(running: &Running, message: &str) -> Vec<String> {
    running
        .log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(message))
        })
        .map(|v| v.to_string())
        .collect()
}
