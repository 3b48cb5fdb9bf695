//! The `cognito-verify` binary: parse the command line, set up logging, bind,
//! serve until SIGTERM or SIGINT.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{error::ErrorKind, Parser};
use cognito_verify::{
    cognito::Cognito,
    config::{Cli, Command, ServeConfig},
    dev, server, telemetry,
};
use tokio::net::TcpListener;

/// Exit code for invalid configuration (BSD `EX_USAGE`).
const EX_USAGE: u8 = 64;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            return usage_error(
                e.render()
                    .to_string()
                    .lines()
                    .next()
                    .unwrap_or("invalid arguments"),
            )
        }
    };
    match cli.command {
        Command::Serve(config) => serve(config).await,
        Command::Dev(config) => {
            if let Err(e) = telemetry::init(&config.log) {
                return usage_error(&e);
            }
            let seed = match dev::load_seed(&config.backend) {
                Ok(seed) => seed,
                Err(e) => return usage_error(&e),
            };
            exit(dev::run_dev(config, seed, shutdown_signal()).await)
        }
        Command::Emulator(config) => {
            if let Err(e) = telemetry::init(&config.log) {
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
    if let Err(e) = telemetry::init(&config.log) {
        return usage_error(&e);
    }
    let cognito = match Cognito::from_config(&config).await {
        Ok(c) => c,
        Err(e) => return usage_error(&e.to_string()),
    };
    let listener = match TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(address = %config.listen, error = %e, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    match server::run(listener, &config, cognito, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
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
