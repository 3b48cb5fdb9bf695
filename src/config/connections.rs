//! `serve`'s connection settings: the bound on open connections and their
//! lifetimes, how long a request may take to arrive and how many request
//! bytes the replica buffers at once; and [`Listen`], an address or `off`.
//! They live together because they bound the same thing: what a peer can
//! make this process hold (descriptors, memory, time) before it has sent a
//! complete request.

use std::{net::SocketAddr, time::Duration};

use clap::Args;

/// Bounds and lifetimes of the connections of the gRPC port, and of the
/// requests on them.
#[derive(Debug, Clone, Args)]
pub struct ConnectionConfig {
    /// Open connections at most; beyond it a new connection is closed at once.
    #[arg(long, env = "COGNITO_VERIFY_MAX_CONNECTIONS", default_value_t = 2_048, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Open connections from one source address at most; beyond it that
    /// address's new connections are closed at once. 0 = no such bound (keep
    /// it off behind a proxy or sidecar, where every client shares one
    /// address).
    #[arg(
        long,
        env = "COGNITO_VERIFY_MAX_CONNECTIONS_PER_IP",
        default_value_t = 0
    )]
    pub max_connections_per_ip: u32,

    /// A connection older than this (±10 % jitter) gets a GOAWAY, so that
    /// callers reconnect and new replicas get traffic; 0 = never.
    #[arg(long, env = "COGNITO_VERIFY_MAX_CONNECTION_AGE_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(0..=604_800))]
    pub max_connection_age_secs: u64,

    /// After a GOAWAY for age or idleness, time for the RPCs in flight to
    /// finish before the connection is closed, in seconds.
    #[arg(long, env = "COGNITO_VERIFY_MAX_CONNECTION_AGE_GRACE_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=3_600))]
    pub max_connection_age_grace_secs: u64,

    /// A connection with no RPC for this long gets a GOAWAY, in seconds; 0 = never.
    #[arg(long, env = "COGNITO_VERIFY_IDLE_TIMEOUT_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub idle_timeout_secs: u64,

    /// HTTP/2 PING interval on a quiet connection, to find dead peers, in
    /// seconds; 0 = no pings.
    #[arg(long, env = "COGNITO_VERIFY_KEEPALIVE_INTERVAL_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=3_600))]
    pub keepalive_interval_secs: u64,

    /// A PING not answered within this many seconds closes the connection.
    #[arg(long, env = "COGNITO_VERIFY_KEEPALIVE_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub keepalive_timeout_secs: u64,

    /// Time for a new connection to complete the TLS handshake and the HTTP/2
    /// preface, in seconds; slower connections are dropped.
    #[arg(long, env = "COGNITO_VERIFY_HANDSHAKE_TIMEOUT_SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub handshake_timeout_secs: u64,

    /// Time for a request's message to arrive in full once its headers
    /// have, in seconds; a slower request is ended (DEADLINE_EXCEEDED,
    /// `REQUEST_READ_TIMEOUT`). On the streams of health and reflection, the
    /// longest wait between two frames of the request.
    #[arg(long, env = "COGNITO_VERIFY_REQUEST_READ_TIMEOUT_SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub request_read_timeout_secs: u64,

    /// Request bytes (headers and messages) the replica holds at once for
    /// verification RPCs, in bytes: a message that does not fit is refused
    /// (RESOURCE_EXHAUSTED, `OVERLOADED`) before it is buffered. One
    /// connection may hold an eighth of it (at least one largest request).
    /// Must hold one largest message (`--max-message-bytes`) and its
    /// headers. The default keeps a replica far under a 128 MiB memory limit
    /// (idle RSS is ~15 MiB, a buffered byte costs about two once decoded)
    /// while holding thousands of typical requests (~2 KiB) at once.
    #[arg(long, env = "COGNITO_VERIFY_MAX_BUFFERED_REQUEST_BYTES", default_value_t = 16 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(65_536..=1 << 30))]
    pub max_buffered_request_bytes: u64,
}

/// A listen address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// No listener.
    Off,
    /// Listen here (port 0 picks a free port).
    At(SocketAddr),
}

impl Listen {
    /// The address, when on.
    pub fn addr(self) -> Option<SocketAddr> {
        match self {
            Self::Off => None,
            Self::At(addr) => Some(addr),
        }
    }
}

impl std::str::FromStr for Listen {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        if value.eq_ignore_ascii_case("off") {
            return Ok(Self::Off);
        }
        value
            .parse()
            .map(Self::At)
            .map_err(|_| format!("expected an address such as 0.0.0.0:8081, or `off`: {value:?}"))
    }
}

impl ConnectionConfig {
    /// `0` → `None`, else the duration in seconds.
    fn secs(value: u64) -> Option<Duration> {
        (value > 0).then(|| Duration::from_secs(value))
    }

    /// The maximum connection age, if any.
    pub fn max_age(&self) -> Option<Duration> {
        Self::secs(self.max_connection_age_secs)
    }

    /// The grace after a GOAWAY for age or idleness.
    pub fn age_grace(&self) -> Duration {
        Duration::from_secs(self.max_connection_age_grace_secs)
    }

    /// The idle timeout, if any.
    pub fn idle_timeout(&self) -> Option<Duration> {
        Self::secs(self.idle_timeout_secs)
    }

    /// The keepalive PING interval, if any.
    pub fn keepalive_interval(&self) -> Option<Duration> {
        Self::secs(self.keepalive_interval_secs)
    }

    /// How long a PING may go unanswered.
    pub fn keepalive_timeout(&self) -> Duration {
        Duration::from_secs(self.keepalive_timeout_secs)
    }

    /// The handshake deadline of a new connection.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.handshake_timeout_secs)
    }

    /// How long a request's message may take to arrive.
    pub fn request_read_timeout(&self) -> Duration {
        Duration::from_secs(self.request_read_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Flags {
        #[command(flatten)]
        connections: ConnectionConfig,
    }

    fn parse(args: &[&str]) -> Result<ConnectionConfig, clap::Error> {
        let argv = std::iter::once("test").chain(args.iter().copied());
        Flags::try_parse_from(argv).map(|f| f.connections)
    }

    #[test]
    fn request_bounds_default_to_the_documented_values() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.request_read_timeout(), Duration::from_secs(5));
        assert_eq!(c.max_buffered_request_bytes, 16 * 1024 * 1024);
        assert_eq!(c.max_connections, 2_048);
    }

    #[test]
    fn request_bounds_parse_within_their_ranges() {
        let c = parse(&[
            "--request-read-timeout-secs",
            "1",
            "--max-buffered-request-bytes",
            "8388608",
        ])
        .unwrap();
        assert_eq!(c.request_read_timeout(), Duration::from_secs(1));
        assert_eq!(c.max_buffered_request_bytes, 8 * 1024 * 1024);
        for bad in [
            ["--request-read-timeout-secs", "0"],
            ["--request-read-timeout-secs", "301"],
            ["--max-buffered-request-bytes", "65535"],
            ["--max-buffered-request-bytes", "2147483648"],
            ["--max-buffered-request-bytes", "16MiB"],
        ] {
            assert!(parse(&bad).is_err(), "{bad:?}");
        }
        assert!(parse(&["--max-buffered-request-bytes", "65536"]).is_ok());
    }
}
