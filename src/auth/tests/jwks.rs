//! The signature check and the key cache, against a JWKS server that counts
//! its requests: caching, refresh on an unknown kid, failures that refuse
//! the token (never pass it unverified), single flight, the cache bound, and
//! that a token can never make the checker connect anywhere else. The
//! attacks on the cache (made-up pools, busy fetches, stale keys) are in
//! `attacks.rs`.

use serde_json::json;

use super::*;
use crate::auth::Signature;

async fn signature(
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

#[tokio::test]
async fn verified_and_cached() {
    let server = JwksServer::start(Mode::Keys(jwks(&KEY_A))).await;
    let checker = checker_for(&server.endpoint(), settings());
    let t = signed(&KEY_A, &claims(&server.issuer(POOL)));
    let base = Instant::now();
    for secs in [0, 1, 59, 600, 3599] {
        assert_eq!(
            signature(&checker, &t, base, secs).await,
            Ok(Signature::Verified)
        );
    }
    assert_eq!(server.hits_for(POOL), 1);
    // Keys an hour old are fetched again, so rotations are picked up: in the
    // background, while the token is verified with the keys it names.
    assert_eq!(
        signature(&checker, &t, base, 3600).await,
        Ok(Signature::Verified)
    );
    server.wait_for_hits(2).await;
    assert_eq!(
        signature(&checker, &t, base, 3601).await,
        Ok(Signature::Verified)
    );
    assert_eq!(server.hits_for(POOL), 2);
}

#[tokio::test]
async fn signature_off_never_fetches() {
    let server = JwksServer::start(Mode::Keys(jwks(&KEY_A))).await;
    let config = TokenCheckConfig {
        endpoint: Some(server.endpoint()),
        signature_check: false,
        ..TokenCheckConfig::default()
    };
    let checker = TokenChecker::with_settings(config, settings()).unwrap();
    let forged = signed(&KEY_B, &claims(&server.issuer(POOL)));
    let base = Instant::now();
    assert_eq!(
        signature(&checker, &forged, base, 0).await,
        Ok(Signature::Unverified)
    );
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn another_key_and_an_altered_payload_are_bad_signatures() {
    let server = JwksServer::start(Mode::Keys(jwks(&KEY_A))).await;
    let checker = checker_for(&server.endpoint(), settings());
    let base = Instant::now();
    let good = KEY_A.sign(&claims(&server.issuer(POOL)));
    assert_eq!(
        signature(&checker, &token(&good), base, 0).await,
        Ok(Signature::Verified)
    );

    // Same header and signature, another user in the payload.
    let (header, rest) = good.split_once('.').unwrap();
    let sig = rest.rsplit_once('.').unwrap().1;
    let mut other = claims(&server.issuer(POOL));
    other["sub"] = json!("someone-else");
    let payload = URL_SAFE_NO_PAD.encode(other.to_string());
    let altered = token(&format!("{header}.{payload}.{sig}"));
    assert_eq!(
        signature(&checker, &altered, base, 1).await,
        Err("BAD_SIGNATURE")
    );

    // A key that claims KEY_A's kid: the kid is found, the signature fails.
    let mut impostor_jwks = jwks(&KEY_B);
    impostor_jwks["keys"][0]["kid"] = jwks(&KEY_A)["keys"][0]["kid"].clone();
    let impostor_server = JwksServer::start(Mode::Keys(impostor_jwks)).await;
    let impostor = checker_for(&impostor_server.endpoint(), settings());
    assert_eq!(
        signature(&impostor, &token(&good), base, 0).await,
        Err("BAD_SIGNATURE")
    );
    assert_eq!(server.hits() + impostor_server.hits(), 2);
}

#[tokio::test]
async fn unknown_kid_refreshes_once_per_interval_then_is_a_bad_signature() {
    let server = JwksServer::start(Mode::Keys(jwks(&KEY_A))).await;
    let checker = checker_for(&server.endpoint(), settings());
    let base = Instant::now();
    let good = signed(&KEY_A, &claims(&server.issuer(POOL)));
    let foreign = signed(&KEY_B, &claims(&server.issuer(POOL)));
    assert_eq!(
        signature(&checker, &good, base, 0).await,
        Ok(Signature::Verified)
    );
    // Within the interval of that fetch: no refresh.
    for secs in [1, 30, 59] {
        assert_eq!(
            signature(&checker, &foreign, base, secs).await,
            Err("BAD_SIGNATURE")
        );
    }
    assert_eq!(server.hits(), 1);
    // After it: one refresh, still unknown.
    assert_eq!(
        signature(&checker, &foreign, base, 60).await,
        Err("BAD_SIGNATURE")
    );
    assert_eq!(server.hits(), 2);
    for secs in [61, 100, 119] {
        assert_eq!(
            signature(&checker, &foreign, base, secs).await,
            Err("BAD_SIGNATURE")
        );
    }
    assert_eq!(server.hits(), 2);
    // The known key is still served from the cache meanwhile.
    assert_eq!(
        signature(&checker, &good, base, 119).await,
        Ok(Signature::Verified)
    );
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn a_rotated_key_is_found_by_the_refresh() {
    let server = JwksServer::start(Mode::Keys(jwks(&KEY_A))).await;
    let checker = checker_for(&server.endpoint(), settings());
    let base = Instant::now();
    let old = signed(&KEY_A, &claims(&server.issuer(POOL)));
    let new = signed(&KEY_B, &claims(&server.issuer(POOL)));
    assert_eq!(
        signature(&checker, &old, base, 0).await,
        Ok(Signature::Verified)
    );
    server.set(Mode::Keys(jwks(&KEY_B)));
    assert_eq!(
        signature(&checker, &new, base, 61).await,
        Ok(Signature::Verified)
    );
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn unreachable_or_broken_jwks_refuses_the_token() {
    // A port that was bound and released: connection refused.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let down = checker_for(&closed_endpoint, settings());
    let t = signed(&KEY_A, &claims(&format!("{closed_endpoint}/{POOL}")));
    let base = Instant::now();
    assert_eq!(signature(&down, &t, base, 0).await, Err("KEYS_UNAVAILABLE"));

    let big = format!(r#"{{"keys":[],"pad":"{}"}}"#, "x".repeat(70 * 1024));
    for (mode, expected) in [
        (Mode::Status(500), "KEYS_UNAVAILABLE"),
        (Mode::Status(404), "UNKNOWN_USER_POOL"),
        (
            Mode::Body("application/json", "{not json".into()),
            "KEYS_UNAVAILABLE",
        ),
        (
            Mode::Body("application/json", r#"{"no":"keys"}"#.into()),
            "KEYS_UNAVAILABLE",
        ),
        (
            Mode::Body("text/html", "<html>jwks</html>".into()),
            "KEYS_UNAVAILABLE",
        ),
        (Mode::Body("application/json", big), "KEYS_UNAVAILABLE"),
        (Mode::Hang, "KEYS_UNAVAILABLE"),
    ] {
        let server = JwksServer::start(mode).await;
        let checker = checker_for(
            &server.endpoint(),
            JwksSettings {
                fetch_timeout: Duration::from_millis(200),
                ..settings()
            },
        );
        let t = signed(&KEY_A, &claims(&server.issuer(POOL)));
        assert_eq!(signature(&checker, &t, base, 0).await, Err(expected));
        assert_eq!(server.hits(), 1);
    }
}

#[tokio::test]
async fn a_failed_fetch_is_retried_after_a_doubling_backoff() {
    let server = JwksServer::start(Mode::Status(500)).await;
    let checker = checker_for(&server.endpoint(), settings());
    let t = signed(&KEY_A, &claims(&server.issuer(POOL)));
    let forged = signed(&KEY_B, &claims(&server.issuer(POOL)));
    let base = Instant::now();
    assert_eq!(
        signature(&checker, &t, base, 0).await,
        Err("KEYS_UNAVAILABLE")
    );
    // Within a second of the failure: refused without fetching, and a
    // forged token is refused too (never passed on unverified).
    for t in [&t, &forged] {
        assert_eq!(
            signature(&checker, t, base, 0).await,
            Err("KEYS_UNAVAILABLE")
        );
    }
    assert_eq!(server.hits(), 1);
    // 1 s later: one retry, which fails; the next waits 2 s.
    assert_eq!(
        signature(&checker, &t, base, 1).await,
        Err("KEYS_UNAVAILABLE")
    );
    assert_eq!(
        signature(&checker, &t, base, 2).await,
        Err("KEYS_UNAVAILABLE")
    );
    assert_eq!(server.hits(), 2);
    server.set(Mode::Keys(jwks(&KEY_A)));
    assert_eq!(
        signature(&checker, &t, base, 3).await,
        Ok(Signature::Verified)
    );
    assert_eq!(
        signature(&checker, &forged, base, 3).await,
        Err("BAD_SIGNATURE")
    );
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn concurrent_checks_share_one_fetch() {
    let server = JwksServer::start(Mode::Keys(jwks(&KEY_A))).await;
    let checker = checker_for(&server.endpoint(), settings());
    let t = signed(&KEY_A, &claims(&server.issuer(POOL)));
    let base = Instant::now();
    server.close();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (checker, t) = (checker.clone(), t.clone());
            tokio::spawn(async move { signature(&checker, &t, base, 0).await })
        })
        .collect();
    server.wait_for_hits(1).await;
    // One more, started while the fetch is held at the server, and one that
    // gives up waiting (a cancelled RPC) without cancelling the fetch.
    let late = {
        let (checker, t) = (checker.clone(), t.clone());
        tokio::spawn(async move { signature(&checker, &t, base, 0).await })
    };
    let cancelled = {
        let (checker, t) = (checker.clone(), t.clone());
        tokio::spawn(async move { signature(&checker, &t, base, 0).await })
    };
    tokio::task::yield_now().await;
    cancelled.abort();
    server.open();
    for task in tasks.into_iter().chain([late]) {
        assert_eq!(task.await.unwrap(), Ok(Signature::Verified));
    }
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn fetches_in_flight_are_bounded_and_the_others_wait_their_turn() {
    let server = JwksServer::start(Mode::Keys(jwks(&KEY_A))).await;
    let checker = checker_for(
        &server.endpoint(),
        JwksSettings {
            max_concurrent_fetches: 1,
            ..settings()
        },
    );
    let base = Instant::now();
    server.close();
    let first = {
        let (checker, t) = (
            checker.clone(),
            signed(&KEY_A, &claims(&server.issuer(POOL))),
        );
        tokio::spawn(async move { signature(&checker, &t, base, 0).await })
    };
    server.wait_for_hits(1).await;
    // Another pool while the one permitted fetch is held: it waits for a
    // slot, and a caller whose deadline ends first is refused, not passed.
    let other = signed(&KEY_A, &claims(&server.issuer("us-east-1_Other1")));
    let short = Duration::from_millis(100);
    assert_eq!(
        check_waiting(&checker, &other, base, 0, short)
            .await
            .map_err(reason_of),
        Err("KEYS_UNAVAILABLE")
    );
    let waiting = {
        let (checker, other) = (checker.clone(), other.clone());
        tokio::spawn(async move { signature(&checker, &other, base, 0).await })
    };
    server.open();
    assert_eq!(first.await.unwrap(), Ok(Signature::Verified));
    assert_eq!(waiting.await.unwrap(), Ok(Signature::Verified));
    // One fetch for the queued pool, shared by both of its checks.
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn the_cache_is_bounded_least_recently_used_first() {
    let server = JwksServer::start(Mode::Keys(jwks(&KEY_A))).await;
    let checker = checker_for(
        &server.endpoint(),
        JwksSettings {
            max_pools: 2,
            fetches_per_sec: 100,
            ..settings()
        },
    );
    let base = Instant::now();
    let [a, b, c] = ["us-east-1_PoolA", "us-east-1_PoolB", "us-east-1_PoolC"];
    let t = |pool: &str| signed(&KEY_A, &claims(&server.issuer(pool)));
    for pool in [a, b, a, c, a, b] {
        assert_eq!(
            signature(&checker, &t(pool), base, 0).await,
            Ok(Signature::Verified)
        );
    }
    // c evicted b (least recently used; a was just used), b evicted c.
    assert_eq!(
        (server.hits_for(a), server.hits_for(b), server.hits_for(c)),
        (1, 2, 1)
    );
    assert_eq!(
        signature(&checker, &t(c), base, 0).await,
        Ok(Signature::Verified)
    );
    assert_eq!(server.hits_for(c), 2);
}

/// A listener that records the peer of every connection it accepts.
async fn recording_listener() -> (SocketAddr, Arc<Mutex<Vec<SocketAddr>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peers = Arc::new(Mutex::new(Vec::new()));
    let record = peers.clone();
    tokio::spawn(async move {
        while let Ok((_socket, peer)) = listener.accept().await {
            record.lock().unwrap().push(peer);
        }
    });
    (addr, peers)
}

/// The connections accepted before a sentinel connection of our own: the
/// accept queue is FIFO, so whatever the checker opened earlier is counted.
async fn connections_before_sentinel(addr: SocketAddr, peers: &Mutex<Vec<SocketAddr>>) -> usize {
    let sentinel = tokio::net::TcpStream::connect(addr).await.unwrap();
    let me = sentinel.local_addr().unwrap();
    loop {
        if let Some(i) = peers.lock().unwrap().iter().position(|p| *p == me) {
            return i;
        }
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_token_never_chooses_where_keys_are_fetched() {
    let (evil, peers) = recording_listener().await;
    let evil_url = format!("http://{evil}");
    let server = JwksServer::start(Mode::Keys(jwks(&KEY_A))).await;
    let header = json!({
        "alg": "RS256", "kid": jwks(&KEY_B)["keys"][0]["kid"],
        "jku": format!("{evil_url}/{POOL}/.well-known/jwks.json"), "x5u": evil_url,
    });
    let base = Instant::now();
    // With an override: the issuer's host is the evil listener; keys still
    // come from the configured endpoint only (and do not have this kid).
    let with_override = checker_for(&server.endpoint(), settings());
    let evil_iss = claims(&format!("{evil_url}/{POOL}"));
    assert_eq!(
        signature(&with_override, &signed(&KEY_A, &evil_iss), base, 0).await,
        Ok(Signature::Verified)
    );
    assert_eq!(
        signature(&with_override, &unsigned(&header, &evil_iss), base, 60).await,
        Err("BAD_SIGNATURE")
    );
    assert_eq!(server.hits_for(POOL), 2);
    // Without: such an issuer is refused before any fetch.
    let config = TokenCheckConfig {
        signature_check: true,
        ..TokenCheckConfig::default()
    };
    let aws = TokenChecker::with_settings(config, settings()).unwrap();
    for t in [signed(&KEY_A, &evil_iss), unsigned(&header, &evil_iss)] {
        assert_eq!(
            signature(&aws, &t, base, 0).await,
            Err("ISSUER_NOT_ALLOWED")
        );
    }
    assert_eq!(connections_before_sentinel(evil, &peers).await, 0);
}
