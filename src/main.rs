//! The `cognito-verify` binary: parse the command line, set up logging, bind,
//! serve until SIGTERM or SIGINT.

#![forbid(unsafe_code)]

use std::{process::ExitCode, time::Duration};

use clap::{error::ErrorKind, Parser};
use cognito_verify::{
    config::{AuditLog, Cli, Command, ServeConfig},
    dev, init_telemetry, server, set_audit_on, Cognito,
};

/// Exit code for invalid configuration (BSD `EX_USAGE`).
const EX_USAGE: u8 = 64;

/// Time to flush the spans still queued, after the drain (Kubernetes'
/// grace period must cover shutdown delay + drain + this).
const TRACE_FLUSH_LIMIT: Duration = Duration::from_secs(5);

/// mimalloc: 13 % fewer instructions per request than glibc's malloc
/// (scripts/instructions), with arena memory committed on use
/// (.cargo/config.toml) so that idle RSS stays low (docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => return usage_error(&one_line(&e.render().to_string())),
    };
    match cli.command {
        Command::Serve(config) => serve(*config).await,
        Command::Dev(config) => {
            let telemetry = match init_telemetry(&config.log, AuditLog::Stderr, None) {
                Ok(t) => t,
                Err(e) => return usage_error(&e),
            };
            set_audit_on(true);
            let seed = match dev::load_seed(&config.backend) {
                Ok(seed) => seed,
                Err(e) => return usage_error(&e),
            };
            let result = dev::run_dev(config, seed, shutdown_signal()).await;
            telemetry.shutdown(TRACE_FLUSH_LIMIT).await;
            exit(result)
        }
        Command::Emulator(config) => {
            if let Err(e) = init_telemetry(&config.log, AuditLog::Off, None) {
                return usage_error(&e);
            }
            let seed = match dev::load_seed(&config.backend) {
                Ok(seed) => seed,
                Err(e) => return usage_error(&e),
            };
            exit(dev::run_emulator(config, seed, shutdown_signal()).await)
        }
    }
}

/// Exit 0, or log the failure and exit 1.
fn exit(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "stopped");
            eprintln!("cognito-verify: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: ServeConfig) -> ExitCode {
    let audit_log = config.telemetry.audit_log;
    let telemetry = match init_telemetry(&config.log, audit_log, Some(&config.telemetry)) {
        Ok(t) => t,
        Err(e) => return usage_error(&e),
    };
    set_audit_on(audit_log != AuditLog::Off);
    let cognito = match Cognito::from_config(&config).await {
        Ok(c) => c,
        Err(e) => return usage_error(&e.to_string()),
    };
    let bound = match server::Bound::bind(&config).await {
        Ok(bound) => bound,
        Err(e @ (server::StartError::Tls(_) | server::StartError::Config(_))) => {
            return usage_error(&e.to_string())
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            eprintln!("cognito-verify: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = server::run(bound, &config, cognito, shutdown_signal()).await;
    telemetry.shutdown(TRACE_FLUSH_LIMIT).await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}

/// clap's message up to its usage and tips, on one line: "the following
/// required arguments were not provided:" names them on the next lines. A
/// PEM block in it (a key pasted where a path belongs) is cut out.
fn one_line(rendered: &str) -> String {
    let rendered = redact_pem(rendered);
    let message: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("tip:"))
        .filter(|l| !l.is_empty())
        .collect();
    if message.is_empty() {
        "invalid arguments".to_owned()
    } else {
        message.join(" ")
    }
}

/// `rendered` with every PEM block (`-----BEGIN` to the end of its
/// `-----END ...-----` line, or to the end) replaced.
fn redact_pem(rendered: &str) -> String {
    let mut out = String::with_capacity(rendered.len());
    let mut rest = rendered;
    while let Some(start) = rest.find("-----BEGIN") {
        out.push_str(&rest[..start]);
        out.push_str("<PEM content>");
        let block = &rest[start..];
        rest = match block.find("-----END") {
            Some(end) => {
                let after = &block[end + "-----END".len()..];
                after.find("-----").map_or("", |close| &after[close + 5..])
            }
            None => "",
        };
    }
    out.push_str(rest);
    out
}

/// One clear line on stderr, exit code 64.
fn usage_error(message: &str) -> ExitCode {
    let message = message.strip_prefix("error: ").unwrap_or(message);
    eprintln!("cognito-verify: {message}");
    ExitCode::from(EX_USAGE)
}

/// Completes on SIGTERM (Kubernetes) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
