//! The access token's local pre-check (`auth::TokenChecker`, which takes the
//! token apart with the private `auth::jwt` and judges its issuer with the
//! private `auth::issuer`) and the unverified claims of the audit trail
//! (`auth::Claims::unverified`). The signature check is off: it needs a JWKS
//! server. Checks: no panic, the check never waits, and an accepted token's
//! claims agree with what `Claims::unverified` reads from it.
//!
//! Input: one flags byte (bits 0-1: endpoint override and `--user-pool`
//! allowlist; bit 2: parts mode), then either the token's text or, in parts
//! mode, the header JSON, a newline, the claims JSON, a newline and the
//! signature bytes, which the harness base64url-encodes and joins with dots.

#![no_main]
#![forbid(unsafe_code)]

use std::{
    future::Future,
    pin::pin,
    sync::LazyLock,
    task::{Context, Poll, Waker},
    time::{Duration, UNIX_EPOCH},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use cognito_verify::{Claims, Signature, TokenCheckConfig, TokenChecker, AccessToken};
use libfuzzer_sys::fuzz_target;

/// "Now" of the expiry check.
const NOW_SECS: u64 = 1_700_000_000;
const ALLOWED: [&str; 2] = ["us-east-1_TestPool1", "eu-west-1_AbCdEf123"];

/// Checkers for each mix of endpoint override (bit 0) and allowlist (bit 1).
static CHECKERS: LazyLock<Vec<TokenChecker>> = LazyLock::new(|| {
    (0..4)
        .map(|bits| {
            let config = TokenCheckConfig {
                user_pools: if bits & 2 != 0 {
                    ALLOWED.iter().map(|p| (*p).to_owned()).collect()
                } else {
                    Vec::new()
                },
                signature_check: false,
                endpoint: (bits & 1 != 0).then(|| "http://127.0.0.1:9229".to_owned()),
                ..TokenCheckConfig::default()
            };
            TokenChecker::new(config).expect("valid configuration")
        })
        .collect()
});

fn text(parts_mode: bool, data: &[u8]) -> Option<String> {
    if !parts_mode {
        return String::from_utf8(data.to_vec()).ok();
    }
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let (header, claims, signature) = (parts.next()?, parts.next()?, parts.next()?);
    Some(format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims),
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

/// Polls once: without a JWKS to fetch, the check must not wait.
fn ready<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the check waited without a JWKS to fetch"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Some(text) = text(flags & 4 != 0, rest) else {
        return;
    };
    let Ok(token) = AccessToken::parse(text, "access_token") else {
        return;
    };
    let unverified = Claims::unverified(&token);
    if let Some(pool) = unverified.as_ref().and_then(Claims::pool_id) {
        assert!(!pool.is_empty() && !pool.contains('/'));
    }
    let (endpoint, allowlist) = (flags & 1 != 0, flags & 2 != 0);
    let checker = &CHECKERS[usize::from(flags & 3)];
    let now = UNIX_EPOCH + Duration::from_secs(NOW_SECS);
    let Ok(checked) = ready(checker.check_at(&token, now, None)) else {
        return;
    };
    assert_eq!(checked.signature, Signature::Unverified);
    let (region, id) = checked.pool_id.rsplit_once('_').expect("pool id shape");
    assert_eq!(region, checked.region);
    assert!(!id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()));
    if allowlist {
        assert!(ALLOWED.contains(&checked.pool_id.as_str()));
    }
    let claims = unverified.expect("an accepted token's claims are readable");
    assert_eq!(claims.sub.as_deref(), Some(checked.sub.as_str()));
    assert_eq!(claims.token_use.as_deref(), Some("access"));
    assert_eq!(claims.client_id, checked.client_id);
    assert_eq!(claims.pool_id(), Some(checked.pool_id.as_str()));
    if !endpoint {
        let iss = claims.iss.expect("iss");
        let canonical = format!(
            "https://cognito-idp.{}.amazonaws.com/{}",
            checked.region, checked.pool_id
        );
        assert_eq!(iss, canonical);
    }
});
