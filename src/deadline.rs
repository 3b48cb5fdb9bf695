//! The caller's gRPC deadline (`grpc-timeout`) as a time budget for the
//! Cognito call: the call gets `min(configured timeout, remaining deadline)`.
//!
//! tonic also enforces `grpc-timeout` itself, answering CANCELLED when it
//! fires. The budget keeps a small margin under the caller's deadline so that
//! our own DEADLINE_EXCEEDED, with its details, reaches the caller first.

use std::time::Duration;

use tokio::time::Instant;
use tonic::metadata::MetadataMap;

/// Time kept back from the caller's deadline for answering.
pub const MARGIN: Duration = Duration::from_millis(10);

/// When the caller stops waiting, if it said.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    /// Reads `grpc-timeout` from call metadata; a missing or malformed header
    /// means no deadline (tonic applies the same rule).
    pub fn from_metadata(metadata: &MetadataMap) -> Self {
        let timeout = metadata
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout);
        Self(timeout.map(|t| Instant::now() + t))
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
