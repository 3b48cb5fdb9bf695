//! The caller's gRPC deadline (`grpc-timeout`): read from the headers, and
//! turned into a time budget for the Cognito call, which gets
//! `min(configured timeout, remaining deadline)`.
//!
//! tonic enforces `grpc-timeout` only inside its own `transport::Server`,
//! which this service does not use (see `transport`): the deadline is
//! enforced by `middleware::intake` (verification RPCs, while the message is
//! read and until the answer) and `middleware::side` (health, reflection).
//! The intake passes the service the time that is *left* (it rewrites
//! `grpc-timeout` once the message has arrived), so both count from the
//! same instant. The budget keeps a small margin under the caller's
//! deadline so that the service's own DEADLINE_EXCEEDED, with the details
//! of what timed out, is answered before the intake's.

use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use tokio::time::Instant;
use tonic::metadata::MetadataMap;

/// The header that carries the caller's deadline.
pub const GRPC_TIMEOUT: &str = "grpc-timeout";

/// Time kept back from the caller's deadline for answering.
pub const MARGIN: Duration = Duration::from_millis(10);

/// When the caller stops waiting, if it said.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    /// Reads `grpc-timeout` from call metadata; a missing or malformed header
    /// means no deadline (tonic applies the same rule).
    pub fn from_metadata(metadata: &MetadataMap) -> Self {
        Self::from_headers(metadata.as_ref())
    }

    /// Reads `grpc-timeout` from request headers (same rule).
    pub fn from_headers(headers: &HeaderMap) -> Self {
        Self(timeout(headers).map(|t| Instant::now() + t))
    }

    /// The time the Cognito call may take, or `None` when the caller's
    /// deadline leaves no useful time (Cognito must then not be called).
    pub fn budget(&self, configured: Duration) -> Option<Duration> {
        let Some(at) = self.0 else {
            return Some(configured);
        };
        let remaining = at
            .saturating_duration_since(Instant::now())
            .checked_sub(MARGIN)?;
        (!remaining.is_zero()).then(|| remaining.min(configured))
    }
}

/// The caller's timeout from request headers; a missing or malformed header
/// means none.
pub fn timeout(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(GRPC_TIMEOUT)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout)
}

/// `remaining` in the gRPC wire format, rounded down to the finest unit that
/// fits in 8 digits (so a deadline passed on never grows).
pub fn encode_grpc_timeout(remaining: Duration) -> HeaderValue {
    const MAX: u128 = 99_999_999;
    let (n, unit) = [
        (remaining.as_nanos(), "n"),
        (remaining.as_micros(), "u"),
        (remaining.as_millis(), "m"),
        (u128::from(remaining.as_secs()), "S"),
        (u128::from(remaining.as_secs() / 60), "M"),
    ]
    .into_iter()
    .find(|(n, _)| *n <= MAX)
    .unwrap_or((u128::from(remaining.as_secs() / 3600).min(MAX), "H"));
    HeaderValue::try_from(format!("{n}{unit}")).expect("digits and a letter")
}

/// Parses the gRPC wire format: 1 to 8 digits and a unit (H M S m u n).
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse_grpc_timeout("9n"), Some(Duration::from_nanos(9)));
        for bad in ["", "S", "123456789S", "5s", "-5S", "5"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad}");
        }
    }

    #[test]
    fn encodes_what_parses_back_never_longer() {
        for (d, wire) in [
            (Duration::from_millis(1500), "1500000u"),
            (Duration::from_nanos(7), "7n"),
            (Duration::from_secs(200), "200000m"),
            (Duration::from_secs(3 * 86_400), "259200S"),
            (Duration::from_secs(10_000 * 86_400), "14400000M"),
            (Duration::MAX, "99999999H"),
        ] {
            let encoded = encode_grpc_timeout(d);
            assert_eq!(encoded, wire);
            let back = parse_grpc_timeout(encoded.to_str().unwrap()).unwrap();
            assert!(back <= d, "{d:?} became {back:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn budget_is_min_of_configured_and_remaining() {
        let mut md = MetadataMap::new();
        md.insert("grpc-timeout", "300m".parse().unwrap());
        let d = Deadline::from_metadata(&md);
        assert_eq!(
            d.budget(Duration::from_secs(5)),
            Some(Duration::from_millis(290))
        );
        assert_eq!(
            d.budget(Duration::from_millis(100)),
            Some(Duration::from_millis(100))
        );
        tokio::time::advance(Duration::from_millis(295)).await;
        assert_eq!(d.budget(Duration::from_secs(5)), None);
        let none = Deadline::from_metadata(&MetadataMap::new());
        assert_eq!(
            none.budget(Duration::from_secs(5)),
            Some(Duration::from_secs(5))
        );
    }
}
