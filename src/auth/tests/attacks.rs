//! The key cache under attack: tokens for made-up pools cost at most the
//! rationed fetches and never evict a real pool's keys; busy fetches never
//! let a token through unverified; stale keys verify for a bounded time.

use serde_json::json;

use super::*;
use crate::{auth::Signature, telemetry::metrics::metrics};

async fn outcome(
    checker: &TokenChecker,
    token: &AccessToken,
    base: Instant,
    secs: u64,
) -> Result<Signature, &'static str> {
    check_after(checker, token, base, secs)
        .await
        .map(|c| c.signature)
        .map_err(reason_of)
}

/// A made-up pool id, distinct for each `n`.
fn made_up(n: usize) -> String {
    format!("us-east-1_Fake{n:06}")
}

#[tokio::test]
async fn made_up_pools_cost_only_the_rationed_fetches_and_are_remembered() {
    // The endpoint knows no pool: every key set is "not found".
    let server = JwksServer::start(Mode::Status(404)).await;
    let checker = checker_for(
        &server.endpoint(),
        JwksSettings {
            fetches_per_sec: 5,
            ..settings()
        },
    );
    let base = Instant::now();
    let refused_before = metrics().jwks_fetches("refused");
    let mut answers = Vec::new();
    for n in 0..300 {
        let t = signed(&KEY_A, &claims(&server.issuer(&made_up(n))));
        answers.push(outcome(&checker, &t, base, 0).await);
    }
    // The burst (one second's worth) is fetched and found missing; the
    // rest is refused without a fetch. Nothing passes.
    let unknown = answers
        .iter()
        .filter(|a| **a == Err("UNKNOWN_USER_POOL"))
        .count();
    let unavailable = answers
        .iter()
        .filter(|a| **a == Err("KEYS_UNAVAILABLE"))
        .count();
    assert_eq!((unknown, unavailable), (5, 295), "{answers:?}");
    assert_eq!(server.hits(), 5);
    assert!(metrics().jwks_fetches("refused") >= refused_before + 295);
    // A second later, one second's worth more.
    for n in 300..320 {
        let t = signed(&KEY_A, &claims(&server.issuer(&made_up(n))));
        let _ = outcome(&checker, &t, base, 1).await;
    }
    assert_eq!(server.hits(), 10);
    // The pools found missing are answered from memory for the interval.
    for n in 0..5 {
        let t = signed(&KEY_A, &claims(&server.issuer(&made_up(n))));
        assert_eq!(
            outcome(&checker, &t, base, 30).await,
            Err("UNKNOWN_USER_POOL")
        );
    }
    assert_eq!(server.hits(), 10);
}

#[tokio::test]
async fn a_flood_of_made_up_pools_never_evicts_the_real_pools_keys() {
    let server = JwksServer::start(Mode::KeysFor(vec![POOL.into()], jwks(&KEY_A))).await;
    let checker = checker_for(
        &server.endpoint(),
        JwksSettings {
            max_pools: 8,
            fetches_per_sec: 5,
            ..settings()
        },
    );
    let base = Instant::now();
    let real = signed(&KEY_A, &claims(&server.issuer(POOL)));
    assert_eq!(
        outcome(&checker, &real, base, 0).await,
        Ok(Signature::Verified)
    );
    // 600 made-up pools over 60 s, with random signatures, on a cache of 8.
    let header = json!({"alg": "RS256", "kid": jwks(&KEY_A)["keys"][0]["kid"]});
    for n in 0..600 {
        let secs = 1 + n as u64 / 10;
        let forged = unsigned(&header, &claims(&server.issuer(&made_up(n))));
        assert_ne!(
            outcome(&checker, &forged, base, secs).await,
            Ok(Signature::Verified)
        );
        if n % 50 == 0 {
            assert_eq!(
                outcome(&checker, &real, base, secs).await,
                Ok(Signature::Verified)
            );
        }
    }
    assert_eq!(server.hits_for(POOL), 1, "the real pool was never evicted");
    // At most the budget: 5 per second over 60 s, plus the burst.
    assert!(server.hits() <= 1 + 5 * 61, "{} fetches", server.hits());
}

#[tokio::test]
async fn busy_fetches_never_pass_a_token_unchecked() {
    let server = JwksServer::start(Mode::Keys(jwks(&KEY_A))).await;
    let checker = checker_for(
        &server.endpoint(),
        JwksSettings {
            max_concurrent_fetches: 1,
            fetches_per_sec: 1000,
            // The held fetch outlasts the forgeries below.
            fetch_timeout: Duration::from_secs(10),
            ..settings()
        },
    );
    let base = Instant::now();
    server.close();
    // The one fetch slot is held by a made-up pool's slow key set.
    let held = {
        let checker = checker.clone();
        let t = signed(&KEY_A, &claims(&server.issuer("us-east-1_Slow01")));
        tokio::spawn(async move { outcome(&checker, &t, base, 0).await })
    };
    server.wait_for_hits(1).await;
    // Forged tokens for the real pool (kids nobody has) while it is held:
    // each is refused once its wait runs out; none is verified or passed.
    let forged: Vec<_> = (0..50)
        .map(|n| {
            let header = json!({"alg": "RS256", "kid": format!("forged-{n}")});
            unsigned(&header, &claims(&server.issuer(POOL)))
        })
        .collect();
    for t in &forged {
        let answer = check_waiting(&checker, t, base, 0, Duration::from_millis(20))
            .await
            .map_err(reason_of);
        assert_eq!(answer.map(|c| c.signature), Err("KEYS_UNAVAILABLE"));
    }
    server.open();
    assert_eq!(held.await.unwrap(), Ok(Signature::Verified));
    // With the keys in hand, the same forgeries are bad signatures.
    for t in &forged {
        assert_eq!(outcome(&checker, t, base, 0).await, Err("BAD_SIGNATURE"));
    }
}

#[tokio::test]
async fn stale_keys_verify_for_the_bounded_staleness_only() {
    let server = JwksServer::start(Mode::Keys(jwks(&KEY_A))).await;
    let checker = checker_for(
        &server.endpoint(),
        JwksSettings {
            max_stale: Duration::from_secs(600),
            ..settings()
        },
    );
    let base = Instant::now();
    let t = signed(&KEY_A, &claims(&server.issuer(POOL)));
    let forged = signed(&KEY_B, &claims(&server.issuer(POOL)));
    assert_eq!(
        outcome(&checker, &t, base, 0).await,
        Ok(Signature::Verified)
    );
    // The key set cannot be refreshed any more.
    server.set(Mode::Status(503));
    assert_eq!(
        outcome(&checker, &t, base, 3600).await,
        Ok(Signature::Verified)
    );
    server.wait_for_hits(2).await;
    // An unknown kid waits for that refresh to end (and is refused).
    assert_eq!(
        outcome(&checker, &forged, base, 3600).await,
        Err("KEYS_UNAVAILABLE")
    );
    let stale_before = metrics().jwks_stale_verifications();
    for secs in [3700, 4000, 4199] {
        assert_eq!(
            outcome(&checker, &t, base, secs).await,
            Ok(Signature::Verified)
        );
        // A kid the stale keys lack is not guessed at.
        assert_eq!(
            outcome(&checker, &forged, base, secs).await,
            Err("KEYS_UNAVAILABLE")
        );
    }
    assert!(metrics().jwks_stale_verifications() >= stale_before + 3);
    // Past the bound: refused until a fetch succeeds.
    assert_eq!(
        outcome(&checker, &t, base, 4200).await,
        Err("KEYS_UNAVAILABLE")
    );
    server.set(Mode::Keys(jwks(&KEY_A)));
    assert_eq!(
        outcome(&checker, &t, base, 4300).await,
        Ok(Signature::Verified)
    );
}

#[tokio::test]
async fn without_staleness_keys_past_their_age_wait_for_the_refresh() {
    let server = JwksServer::start(Mode::Keys(jwks(&KEY_A))).await;
    let checker = checker_for(
        &server.endpoint(),
        JwksSettings {
            max_stale: Duration::ZERO,
            ..settings()
        },
    );
    let base = Instant::now();
    let t = signed(&KEY_A, &claims(&server.issuer(POOL)));
    assert_eq!(
        outcome(&checker, &t, base, 0).await,
        Ok(Signature::Verified)
    );
    server.set(Mode::Status(500));
    assert_eq!(
        outcome(&checker, &t, base, 3600).await,
        Err("KEYS_UNAVAILABLE")
    );
    server.set(Mode::Keys(jwks(&KEY_A)));
    assert_eq!(
        outcome(&checker, &t, base, 3601).await,
        Ok(Signature::Verified)
    );
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn named_pools_are_never_rationed() {
    let server = JwksServer::start(Mode::Keys(jwks(&KEY_A))).await;
    let pools = ["us-east-1_Named1", "us-east-1_Named2", "us-east-1_Named3"];
    let config = TokenCheckConfig {
        endpoint: Some(server.endpoint()),
        user_pools: pools.iter().map(|p| p.to_string()).collect(),
        ..TokenCheckConfig::default()
    };
    let checker = TokenChecker::with_settings(
        config,
        JwksSettings {
            fetches_per_sec: 1,
            ..settings()
        },
    )
    .unwrap();
    let base = Instant::now();
    for pool in pools {
        let t = signed(&KEY_A, &claims(&server.issuer(pool)));
        assert_eq!(
            outcome(&checker, &t, base, 0).await,
            Ok(Signature::Verified)
        );
    }
    // Any other pool is refused before a fetch is even considered.
    let other = signed(&KEY_A, &claims(&server.issuer(POOL)));
    assert_eq!(
        outcome(&checker, &other, base, 0).await,
        Err("ISSUER_NOT_ALLOWED")
    );
    assert_eq!(server.hits(), 3);
}
