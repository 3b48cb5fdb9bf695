//! Command line and configuration: one clap struct per subcommand, every flag
//! with a `COGNITO_VERIFY_*` environment fallback. Nothing else in the crate
//! reads the environment (the AWS SDK's own variables, such as `AWS_REGION` and
//! `AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER`, are read by aws-config).

mod connections;
mod limits;
mod sms;
mod telemetry;
mod tls;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use connections::{ConnectionConfig, Listen};
pub use limits::{LimitFlags, RedisFailureMode, Switch, TokenFlags};
pub use sms::{SmsCountryMode, SmsFlags};
pub use telemetry::{AuditLog, TelemetryConfig, TracesExporter, TracesSampler};
pub use tls::TlsConfig;

/// `cognito-verify`: a gRPC facade for Amazon Cognito user-attribute verification.
#[derive(Debug, Parser)]
#[command(name = "cognito-verify", version, about, long_about = None)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the gRPC API, calling Amazon Cognito (or the endpoint given).
    Serve(Box<ServeConfig>),
    /// Run the gRPC API wired to an embedded Cognito-compatible backend, with
    /// a demo user: no AWS account needed.
    Dev(DevConfig),
    /// Run only the embedded Cognito-compatible backend (AWS JSON 1.1).
    Emulator(EmulatorConfig),
}

/// Options of the embedded backend, shared by `dev` and `emulator`.
#[derive(Debug, Clone, Args)]
pub struct BackendOptions {
    /// Seed file with pools, clients and users (JSON, or YAML for .yaml/.yml).
    /// Without it, a demo pool with the user `demo`.
    #[arg(long, env = "COGNITO_VERIFY_EMULATOR_SEED")]
    pub seed: Option<PathBuf>,

    /// Send this code instead of a random 6-digit one (scripted demos).
    #[arg(long, env = "COGNITO_VERIFY_EMULATOR_FIXED_CODE", value_parser = parse_fixed_code)]
    pub fixed_code: Option<String>,

    /// Lifetime of tokens issued by InitiateAuth, in seconds.
    #[arg(long, env = "COGNITO_VERIFY_EMULATOR_TOKEN_TTL_SECS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub token_ttl_secs: u64,

    /// Turn off the per-user hourly limits (5 code requests, 5 wrong codes):
    /// for load tests, which send far more.
    #[arg(long, env = "COGNITO_VERIFY_EMULATOR_NO_USER_LIMITS")]
    pub no_user_limits: bool,

    /// Answer every verification call with a fixed success, with no token or
    /// code work: isolates a client's own cost in benchmarks.
    #[arg(long, env = "COGNITO_VERIFY_EMULATOR_CONSTANT_RESPONSE")]
    pub constant_response: bool,
}

/// Configuration of `cognito-verify emulator`.
#[derive(Debug, Clone, Args)]
pub struct EmulatorConfig {
    /// Address of the backend's HTTP endpoint.
    #[arg(
        long,
        env = "COGNITO_VERIFY_EMULATOR_LISTEN",
        default_value = "127.0.0.1:9229"
    )]
    pub listen: SocketAddr,

    /// Backend options.
    #[command(flatten)]
    pub backend: BackendOptions,

    /// Logging.
    #[command(flatten)]
    pub log: LogConfig,
}

/// Configuration of `cognito-verify dev`.
#[derive(Debug, Clone, Args)]
pub struct DevConfig {
    /// Address of the gRPC server.
    #[arg(
        long,
        env = "COGNITO_VERIFY_DEV_LISTEN",
        default_value = "127.0.0.1:50051"
    )]
    pub listen: SocketAddr,

    /// Address of the embedded backend's HTTP endpoint.
    #[arg(
        long,
        env = "COGNITO_VERIFY_DEV_EMULATOR_LISTEN",
        default_value = "127.0.0.1:9229"
    )]
    pub emulator_listen: SocketAddr,

    /// Lifetime of the demo user's access token printed at start, in seconds.
    #[arg(long, env = "COGNITO_VERIFY_DEV_TOKEN_TTL_SECS", default_value_t = 43_200, value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub demo_token_ttl_secs: u64,

    /// Countries the dev service sends SMS codes to (its
    /// `--sms-allow-country`): the demo user's number is in the US, the demo
    /// pool's other users' are not, so a code to theirs is refused.
    #[arg(
        long = "sms-allow-country",
        env = "COGNITO_VERIFY_DEV_SMS_ALLOW_COUNTRY",
        value_name = "COUNTRY",
        value_delimiter = ',',
        default_value = "US"
    )]
    pub sms_allow_country: Vec<String>,

    /// Backend options.
    #[command(flatten)]
    pub backend: BackendOptions,

    /// Logging.
    #[command(flatten)]
    pub log: LogConfig,
}

impl DevConfig {
    /// The facade's configuration in dev: `serve`'s defaults (and environment
    /// fallbacks), the embedded backend as endpoint, its `pools` as the user
    /// pools, no shutdown delay.
    pub fn serve_config(
        &self,
        endpoint: &str,
        pools: &[String],
    ) -> Result<ServeConfig, clap::Error> {
        let listen = self.listen.to_string();
        let pools = pools.join(",");
        let countries = self.sms_allow_country.join(",");
        let argv = [
            "cognito-verify",
            "serve",
            "--listen",
            &listen,
            "--region",
            "us-east-1",
            "--cognito-endpoint",
            endpoint,
            "--shutdown-delay-secs",
            "0",
            "--admin-listen",
            "off",
            "--user-pool",
            &pools,
            "--sms-allow-country",
            &countries,
        ];
        let Command::Serve(mut config) = Cli::try_parse_from(argv)?.command else {
            unreachable!("parsed a serve command line")
        };
        config.log = self.log.clone();
        // dev prints plaintext grpcurl commands: TLS settings from the
        // environment must not turn TLS on behind them.
        config.tls.tls_cert = None;
        config.tls.tls_key = None;
        config.tls.tls_client_ca = None;
        config.tls.allow_callers.clear();
        config.health_listen = Listen::Off;
        // The backend's own pools, whatever the environment says.
        config.token.any_user_pool = false;
        Ok(*config)
    }
}

/// A fixed code must be one Cognito accepts: 1 to 2048 characters, no whitespace.
fn parse_fixed_code(value: &str) -> Result<String, String> {
    crate::domain::VerificationCode::parse(value.to_owned())
        .map(|_| value.to_owned())
        .map_err(|v| format!("the code {}", v.description))
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Logging options, shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct LogConfig {
    /// Log format.
    #[arg(long, env = "COGNITO_VERIFY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter, in `RUST_LOG` syntax (e.g. `info,cognito_verify=debug`).
    #[arg(long, env = "COGNITO_VERIFY_LOG", default_value = "info")]
    pub log_filter: String,
}

/// Configuration of `cognito-verify serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address the gRPC server listens on (port 0 picks a free port).
    #[arg(long, env = "COGNITO_VERIFY_LISTEN", default_value = "0.0.0.0:50051")]
    pub listen: SocketAddr,

    /// AWS region of the user pool. Falls back to `AWS_REGION` /
    /// `AWS_DEFAULT_REGION`; one of them is required.
    #[arg(long, env = "COGNITO_VERIFY_REGION")]
    pub region: Option<String>,

    /// Cognito endpoint URL override (e.g. `http://127.0.0.1:9229`). Without
    /// it the SDK's `AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER`, then the
    /// regional AWS endpoint, is used.
    #[arg(long, env = "COGNITO_VERIFY_COGNITO_ENDPOINT", value_parser = parse_endpoint)]
    pub cognito_endpoint: Option<String>,

    /// Time allowed to open a connection to Cognito, in milliseconds.
    #[arg(long, env = "COGNITO_VERIFY_COGNITO_CONNECT_TIMEOUT_MS", default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub cognito_connect_timeout_ms: u64,

    /// Time allowed for one Cognito call, in milliseconds. A caller's shorter
    /// gRPC deadline takes precedence.
    #[arg(long, env = "COGNITO_VERIFY_COGNITO_CALL_TIMEOUT_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub cognito_call_timeout_ms: u64,

    /// Retry delay advised (google.rpc.RetryInfo) when Cognito answers
    /// TooManyRequestsException, in milliseconds.
    #[arg(
        long,
        env = "COGNITO_VERIFY_THROTTLED_RETRY_DELAY_MS",
        default_value_t = 1_000
    )]
    pub throttled_retry_delay_ms: u64,

    /// The local token check.
    #[command(flatten)]
    pub token: TokenFlags,

    /// The limits and the idempotency window.
    #[command(flatten)]
    pub limits: LimitFlags,

    /// The SMS guard.
    #[command(flatten)]
    pub sms: SmsFlags,

    /// Verification RPCs handled at once; excess is shed with RESOURCE_EXHAUSTED.
    #[arg(long, env = "COGNITO_VERIFY_MAX_CONCURRENT_RPCS", default_value_t = 1_024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_rpcs: u32,

    /// Largest accepted gRPC request message, in bytes: an access token and
    /// `client_metadata` fit in the default with room to spare. A larger
    /// message is refused (RESOURCE_EXHAUSTED, `MESSAGE_TOO_LARGE`) before
    /// it is buffered.
    #[arg(long, env = "COGNITO_VERIFY_MAX_MESSAGE_BYTES", default_value_t = 65_536, value_parser = clap::value_parser!(u32).range(1024..=4_194_304))]
    pub max_message_bytes: u32,

    /// On SIGTERM/SIGINT, seconds to keep serving while health reports
    /// NOT_SERVING, so load balancers stop sending new calls.
    #[arg(long, env = "COGNITO_VERIFY_SHUTDOWN_DELAY_SECS", default_value_t = 5)]
    pub shutdown_delay_secs: u64,

    /// After the shutdown delay, seconds allowed for in-flight RPCs to finish.
    #[arg(long, env = "COGNITO_VERIFY_DRAIN_TIMEOUT_SECS", default_value_t = 20)]
    pub drain_timeout_secs: u64,

    /// Transport security on the gRPC port.
    #[command(flatten)]
    pub tls: TlsConfig,

    /// Connection bounds and lifetimes.
    #[command(flatten)]
    pub connections: ConnectionConfig,

    /// A plaintext listener serving only `grpc.health.v1.Health` (for kubelet
    /// gRPC probes, which cannot speak TLS), or `off`.
    #[arg(long, env = "COGNITO_VERIFY_HEALTH_LISTEN", default_value = "off")]
    pub health_listen: Listen,

    /// Metrics, traces and the audit trail.
    #[command(flatten)]
    pub telemetry: TelemetryConfig,

    /// Logging.
    #[command(flatten)]
    pub log: LogConfig,
}

impl ServeConfig {
    /// The connect timeout towards Cognito.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.cognito_connect_timeout_ms)
    }

    /// The per-call timeout towards Cognito.
    pub fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.cognito_call_timeout_ms)
    }

    /// The retry delay advised for TooManyRequestsException.
    pub fn throttled_retry_delay(&self) -> Duration {
        Duration::from_millis(self.throttled_retry_delay_ms)
    }

    /// How long health reports NOT_SERVING before the listener closes.
    pub fn shutdown_delay(&self) -> Duration {
        Duration::from_secs(self.shutdown_delay_secs)
    }

    /// How long in-flight RPCs may take to finish once the listener closed.
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_secs(self.drain_timeout_secs)
    }
}

/// Accepts an absolute `http://` or `https://` URL with a host.
pub(crate) fn parse_endpoint(value: &str) -> Result<String, String> {
    let uri: http::Uri = value
        .parse()
        .map_err(|e| format!("not a URL ({e}): expected e.g. http://127.0.0.1:9229"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(_)) => Ok(value.trim_end_matches('/').to_owned()),
        _ => Err("expected an http:// or https:// URL with a host".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> Result<ServeConfig, clap::Error> {
        let mut argv = vec!["cognito-verify", "serve"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Serve(config) => Ok(*config),
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn defaults_are_documented_values() {
        let c = serve(&[]).unwrap();
        assert_eq!(c.listen, "0.0.0.0:50051".parse().unwrap());
        assert_eq!(c.call_timeout(), Duration::from_secs(5));
        assert_eq!(c.limits.get_code_limit_per_sec, 25);
        assert_eq!(c.limits.verify_limit_per_sec, 25);
        assert_eq!(c.max_message_bytes, 65_536);
        assert_eq!(c.log.log_format, LogFormat::Text);
    }

    #[test]
    fn endpoint_must_be_http_url() {
        assert!(serve(&["--cognito-endpoint", "ftp://x"]).is_err());
        assert!(serve(&["--cognito-endpoint", "not a url"]).is_err());
        let c = serve(&["--cognito-endpoint", "http://127.0.0.1:9229/"]).unwrap();
        assert_eq!(c.cognito_endpoint.as_deref(), Some("http://127.0.0.1:9229"));
    }

    #[test]
    fn dev_builds_a_serve_config_for_the_backend() {
        let Command::Dev(dev) =
            Cli::try_parse_from(["cognito-verify", "dev", "--listen", "127.0.0.1:0"])
                .unwrap()
                .command
        else {
            panic!("not dev")
        };
        assert_eq!(dev.emulator_listen, "127.0.0.1:9229".parse().unwrap());
        let serve = dev
            .serve_config("http://127.0.0.1:9229", &["us-east-1_DevPool01".to_owned()])
            .unwrap();
        assert_eq!(serve.token.user_pools, ["us-east-1_DevPool01"]);
        assert_eq!(
            serve.cognito_endpoint.as_deref(),
            Some("http://127.0.0.1:9229")
        );
        assert_eq!(serve.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(serve.shutdown_delay_secs, 0);
        assert!(
            Cli::try_parse_from(["cognito-verify", "emulator", "--fixed-code", "1 2"]).is_err()
        );
    }

    #[test]
    fn an_empty_allowlist_entry_is_no_entry() {
        let c = serve(&["--allow-caller", "", "--allow-caller", " spiffe://a/b "]).unwrap();
        assert_eq!(c.tls.allowed_callers(), ["spiffe://a/b"]);
        assert!(
            c.tls.validate().is_err(),
            "an allowlist without a client CA"
        );
        assert!(serve(&["--allow-caller", ""])
            .unwrap()
            .tls
            .validate()
            .is_ok());
        assert!(serve(&["--allow-caller", " , "])
            .unwrap()
            .tls
            .validate()
            .is_err());
        let pem = serve(&[
            "--tls-key=-----BEGIN PRIVATE KEY-----\nMIG",
            "--tls-cert",
            "c",
        ]);
        let e = pem.unwrap().tls.validate().unwrap_err();
        assert!(!e.contains("MIG") && e.contains("--tls-key"), "{e}");
        assert_eq!(
            serve(&["--health-listen", "off"]).unwrap().health_listen,
            Listen::Off
        );
        assert!(serve(&["--health-listen", "8081"]).is_err());
    }

    #[test]
    fn zero_timeouts_are_rejected() {
        assert!(serve(&["--cognito-call-timeout-ms", "0"]).is_err());
        assert!(serve(&["--max-concurrent-rpcs", "0"]).is_err());
        assert!(serve(&["--listen", "nowhere"]).is_err());
    }
}
