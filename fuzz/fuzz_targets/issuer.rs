//! The issuer and pool-id rules (the private `auth::issuer`, reached through
//! `TokenCheckConfig::validate` for `--user-pool`/`--cognito-endpoint` and
//! through `TokenChecker` for a token's `iss`). The input is a configuration
//! and an `iss` claim inside otherwise valid claims. Checks: no panic; a
//! configuration that validates builds a checker; every `--user-pool` the
//! configuration accepts is accepted back from its canonical issuer; an
//! accepted `iss` names an allowed pool, and without an endpoint override it
//! is exactly `https://cognito-idp.<region>.amazonaws.com/<region>_<id>`.
//!
//! Input (UTF-8): the endpoint (empty: none), a newline, the `--user-pool`
//! ids separated by commas (empty: any pool), a newline, then the `iss`.

#![no_main]
#![forbid(unsafe_code)]

use std::{
    future::Future,
    pin::pin,
    task::{Context, Poll, Waker},
    time::{Duration, UNIX_EPOCH},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use cognito_verify::{TokenCheckConfig, TokenChecker, TokenRejection, ADMIN_SCOPE, AccessToken};
use libfuzzer_sys::fuzz_target;

const NOW_SECS: u64 = 1_700_000_000;

/// Polls once: without a JWKS to fetch, the check must not wait.
fn ready<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the check waited without a JWKS to fetch"),
    }
}

fn token(iss: &str) -> AccessToken {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"k1"}"#);
    let claims = serde_json::json!({
        "sub": "u", "iss": iss, "token_use": "access", "scope": ADMIN_SCOPE,
        "exp": NOW_SECS + 3600, "client_id": "c",
    });
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    AccessToken::parse(format!("{header}.{claims}.c2ln"), "access_token").expect("token alphabet")
}

fn check(checker: &TokenChecker, iss: &str) -> Result<(String, String), TokenRejection> {
    let now = UNIX_EPOCH + Duration::from_secs(NOW_SECS);
    ready(checker.check_at(&token(iss), now, None))
        .map(|c| (c.pool_id, c.region))
        .map_err(|e| e.rejection().expect("no key fetch without the signature check"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.splitn(3, '\n');
    let (Some(endpoint), Some(pools), Some(iss)) = (lines.next(), lines.next(), lines.next())
    else {
        return;
    };
    let config = TokenCheckConfig {
        user_pools: pools
            .split(',')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
        signature_check: false,
        endpoint: (!endpoint.is_empty()).then(|| endpoint.to_owned()),
        ..TokenCheckConfig::default()
    };
    if config.validate().is_err() {
        assert!(TokenChecker::new(config).is_err());
        return;
    }
    let checker = TokenChecker::new(config.clone()).expect("a valid configuration builds");
    let endpoint = config.endpoint.is_some();

    for pool in &config.user_pools {
        let (region, _) = pool.rsplit_once('_').expect("a pool id has an underscore");
        let iss = if endpoint {
            format!("http://127.0.0.1:9229/{pool}")
        } else {
            format!("https://cognito-idp.{region}.amazonaws.com/{pool}")
        };
        assert_eq!(
            check(&checker, &iss),
            Ok((pool.clone(), region.to_owned())),
            "{iss}"
        );
    }

    match check(&checker, iss) {
        Ok((pool, region)) => {
            assert!(iss.ends_with(&format!("/{pool}")));
            assert!(pool.starts_with(&format!("{region}_")));
            assert!(config.user_pools.is_empty() || config.user_pools.contains(&pool));
            if !endpoint {
                assert_eq!(
                    iss,
                    format!("https://cognito-idp.{region}.amazonaws.com/{pool}")
                );
            }
        }
        Err(rejection) => assert_eq!(rejection, TokenRejection::IssuerNotAllowed),
    }
});
