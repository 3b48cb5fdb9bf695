//! The caller's `grpc-timeout` metadata (`deadline::Deadline::from_metadata`,
//! whose parser is private) and the Cognito call's budget derived from it.
//! Checks: no panic, and the budget agrees with a reference reading of the
//! gRPC spec ("1 to 8 digits and a unit H M S m u n"; anything else is no
//! deadline).
//!
//! Input: one byte `b` for the configured call timeout (`b * b * 100 + 1`
//! ms; the configuration refuses 0),
//! then the header value's bytes.

#![no_main]
#![forbid(unsafe_code)]

use std::time::Duration;

use cognito_verify::{Deadline, DEADLINE_MARGIN as MARGIN};
use libfuzzer_sys::fuzz_target;
use tonic::metadata::{MetadataMap, MetadataValue};

/// The spec's grammar, written independently of `src/deadline.rs`.
fn reference(value: &[u8]) -> Option<Duration> {
    let (&unit, digits) = value.split_last()?;
    if !(1..=8).contains(&digits.len()) || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&b, value)) = data.split_first() else {
        return;
    };
    let configured = Duration::from_millis(u64::from(b) * u64::from(b) * 100 + 1);
    // Bytes an HTTP/2 header cannot carry never reach the service.
    let Ok(header) = MetadataValue::try_from(value) else {
        return;
    };
    let mut metadata = MetadataMap::new();
    metadata.insert("grpc-timeout", header);
    let budget = Deadline::from_metadata(&metadata).budget(configured);
    match reference(value) {
        None => assert_eq!(budget, Some(configured), "{value:?}"),
        Some(timeout) => {
            if let Some(budget) = budget {
                assert!(!budget.is_zero());
                assert!(budget <= configured);
                assert!(budget <= timeout.saturating_sub(MARGIN));
            }
            // Plenty of time left is never refused.
            if timeout >= MARGIN + Duration::from_secs(60) {
                assert!(budget.is_some(), "{value:?}");
            }
        }
    }
});
