//! Forged tokens against the real binary, wired to the embedded backend with
//! `--any-user-pool` (the most open posture `serve` accepts): tokens for
//! made-up pools and made-up regions, forgeries for the real pool while its
//! key set is slow. What must hold: nothing reaches Cognito, no budget is
//! spent, key-set fetches stay within their ration, warnings stay few, and
//! the real user is served right after. (The key cache's own attacks, with
//! its clock stepped through hours: `src/auth/tests/attacks.rs`.)

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use cognito_emulator::{
    calls::UNKNOWN_POOL_JWKS, store::Seed, store::DEMO_PASSWORD, store::DEMO_USER, Settings,
};
use cognito_verify::proto::user_attribute_verification_service_client::UserAttributeVerificationServiceClient as Client;
use rand::{seq::SliceRandom as _, Rng as _};
use serde_json::{json, Value};
use tonic::{transport::Channel, Code, Status};
use tonic_types::StatusExt as _;

use crate::common::{
    binary::{self, command, Running},
    send_request,
    stack::{self, http_json},
    verify_request,
};

/// The Cognito operations the backend counts.
const OPERATIONS: [&str; 2] = ["GetUserAttributeVerificationCode", "VerifyUserAttribute"];

/// The binary in front of a fresh backend, accepting any pool, with the
/// default limits (a spent budget would show as RATE_LIMITED).
struct Setup {
    url: String,
    real_token: String,
    service: Running,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Setup {
    /// The binary and its backend; the demo user's pool is in use (its keys
    /// cached by one send) before any attack, as a pool in production is.
    async fn start() -> Self {
        let setup = Self::cold().await;
        Client::new(setup.service.channel().await)
            .get_user_attribute_verification_code(send_request(&setup.real_token, "email"))
            .await
            .expect("the real user is served before the attack");
        setup
    }

    /// The binary and its backend; no key set fetched yet.
    async fn cold() -> Self {
        let (url, _backend, stop) = stack::backend(Seed::demo(), Settings::faithful()).await;
        let real_token =
            stack::sign_in(&stack::sdk_client(&url).await, DEMO_USER, DEMO_PASSWORD).await;
        let service = Running::start(command(&[
            "--cognito-endpoint",
            &url,
            "--region",
            "us-east-1",
            "--any-user-pool",
            "--token-signature-check",
            "on",
        ]))
        .await;
        Self {
            url,
            real_token,
            service,
            _stop: stop,
        }
    }

    async fn calls(&self) -> BTreeMap<String, u64> {
        let (status, body) = http_json(&self.url, "GET", "/_emulator/calls", None).await;
        assert_eq!(status, 200);
        serde_json::from_value(body["calls"].clone()).unwrap()
    }

    /// Warnings the service logged so far.
    fn warnings(&self) -> Vec<String> {
        self.service
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|line| line.contains(r#""level":"WARN""#))
            .cloned()
            .collect()
    }
}

/// A token of `pool` (issuer on the backend's host, as an emulator writes
/// it) with valid claims, the backend's kid, and a random signature.
fn forged(url: &str, real: &str, pool: &str, kid: Option<&str>) -> String {
    let real_header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(real.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    let header = json!({
        "alg": "RS256",
        "kid": kid.map_or(real_header["kid"].clone(), |k| json!(k)),
    });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "sub": uuid::Uuid::new_v4().to_string(), "iss": format!("{url}/{pool}"),
        "client_id": "forged", "token_use": "access",
        "scope": "aws.cognito.signin.user.admin", "exp": now + 3600, "iat": now,
        "jti": uuid::Uuid::new_v4().to_string(), "username": "mallory",
    });
    let mut signature = [0u8; 256];
    rand::rng().fill(&mut signature[..]);
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.{}",
        part(&header),
        part(&claims),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// A made-up pool id in `region`.
fn made_up_pool(region: &str) -> String {
    let id: String = (0..9)
        .map(|_| char::from(b'A' + rand::rng().random_range(0..26u8)))
        .collect();
    format!("{region}_{id}")
}

/// Sends each token once, in a random order, from 8 tasks, half as sends
/// and half as verifies; every answer.
async fn flood(channel: Channel, mut tokens: Vec<String>) -> Vec<Status> {
    tokens.shuffle(&mut rand::rng());
    let tokens = Arc::new(tokens);
    let tasks: Vec<_> = (0..8)
        .map(|worker| {
            let (tokens, channel) = (Arc::clone(&tokens), channel.clone());
            tokio::spawn(async move {
                let mut client = Client::new(channel);
                let mut answers = Vec::new();
                for (i, token) in tokens.iter().enumerate().skip(worker).step_by(8) {
                    let answer = if i % 2 == 0 {
                        client
                            .get_user_attribute_verification_code(send_request(token, "email"))
                            .await
                            .map(drop)
                    } else {
                        client
                            .verify_user_attribute(verify_request(token, "email", "123456"))
                            .await
                            .map(drop)
                    };
                    answers.push(answer.expect_err("a forged token is refused"));
                }
                answers
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all
}

/// No more than `before` sends (those made before the attack) reached the
/// backend, and no verify.
fn assert_nothing_reached_cognito(calls: &BTreeMap<String, u64>, before: u64) {
    assert_eq!(
        calls.get(OPERATIONS[0]).copied().unwrap_or(0),
        before,
        "{calls:?}"
    );
    assert_eq!(calls.get(OPERATIONS[1]), None, "{calls:?}");
}

fn reason(status: &Status) -> String {
    status.get_details_error_info().expect("ErrorInfo").reason
}

/// Every answer is a refusal that names the key set, never a spent budget
/// or Cognito's own NotAuthorized (which would mean the token reached it).
fn assert_refused_for_keys(answers: &[Status]) {
    for status in answers {
        match (status.code(), reason(status).as_str()) {
            (Code::Unauthenticated, "UNKNOWN_USER_POOL" | "BAD_SIGNATURE") => {}
            (Code::Unavailable, "SIGNING_KEYS_UNAVAILABLE") => {
                let retry = status.get_details_retry_info().expect("RetryInfo");
                assert!(retry
                    .retry_delay
                    .is_some_and(|d| d >= Duration::from_secs(1)));
            }
            other => panic!("{other:?}: {status:?}"),
        }
    }
}

/// The demo user is served right after the flood: a real send goes through
/// (after `before` sends).
async fn assert_real_user_served(setup: &Setup, before: u64) {
    let mut client = Client::new(setup.service.channel().await);
    let started = Instant::now();
    client
        .get_user_attribute_verification_code(send_request(&setup.real_token, "email"))
        .await
        .expect("the real user is served");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Those before the attack, this one: none in between.
    assert_eq!(
        setup.calls().await["GetUserAttributeVerificationCode"],
        before + 1
    );
}

#[tokio::test]
async fn made_up_pools_and_regions_cost_nothing() {
    let setup = Setup::start().await;
    // Row 1: 300 made-up pools in a real region; row 7: 64 in made-up,
    // region-shaped prefixes.
    let mut tokens: Vec<String> = (0..300)
        .map(|_| {
            forged(
                &setup.url,
                &setup.real_token,
                &made_up_pool("us-east-1"),
                None,
            )
        })
        .collect();
    tokens.extend((0..64).map(|n| {
        let region = format!(
            "{}{}-{}-{}",
            char::from(b'a' + (n % 26) as u8),
            "b",
            "cd",
            n % 9 + 1
        );
        forged(&setup.url, &setup.real_token, &made_up_pool(&region), None)
    }));
    let started = Instant::now();
    let answers = flood(setup.service.channel().await, tokens).await;
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(answers.len(), 364);
    assert_refused_for_keys(&answers);

    let calls = setup.calls().await;
    assert_nothing_reached_cognito(&calls, 1);
    // Fetches for unknown pools: the ration (5 per second, a burst of 5).
    let fetches = calls.get(UNKNOWN_POOL_JWKS).copied().unwrap_or(0);
    let allowed = 5.0 + 5.0 * elapsed.ceil();
    assert!(
        (fetches as f64) <= allowed,
        "{fetches} key-set fetches in {elapsed:.1} s"
    );
    // Row 9: the backend's own bookkeeping stays small: made-up pools'
    // key sets are counted under one name.
    assert!(calls.len() <= 4, "{calls:?}");
    // Warnings that the flood triggers are throttled: a handful at most,
    // saying how many were left out.
    let warnings = setup.warnings();
    assert!(
        warnings.len() <= 3,
        "{} warnings: {warnings:#?}",
        warnings.len()
    );
    // The figures, for `-- --nocapture`.
    println!(
        "made-up pools: {} calls refused in {elapsed:.2} s, 0 reached Cognito, \
         {fetches} key-set fetches, {} warnings",
        answers.len(),
        warnings.len()
    );

    assert_real_user_served(&setup, 1).await;
}

#[tokio::test]
async fn forgeries_for_the_real_pool_wait_for_its_slow_key_set_and_are_refused() {
    // Row 2: every key-set fetch takes 300 ms, from the first one on.
    let setup = Setup::cold().await;
    let (status, _) = http_json(
        &setup.url,
        "POST",
        "/_emulator/faults",
        Some(json!({"operation": "jwks", "count": 1000, "latencyMs": 300})),
    )
    .await;
    assert_eq!(status, 204);
    let real_pool = {
        let claims: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(setup.real_token.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        let iss = claims["iss"].as_str().unwrap();
        iss.rsplit_once('/').unwrap().1.to_owned()
    };
    // A first forgery for the real pool starts its (slow) fetch...
    let first = {
        let channel = setup.service.channel().await;
        let token = forged(&setup.url, &setup.real_token, &real_pool, None);
        tokio::spawn(async move {
            let started = Instant::now();
            let answer = Client::new(channel)
                .get_user_attribute_verification_code(send_request(&token, "email"))
                .await;
            (answer.expect_err("a forgery is refused"), started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    // ...and the flood comes while it runs: made-up pools, and the real pool
    // with kids nobody has or with the real kid.
    let mut tokens = Vec::new();
    for n in 0..200 {
        let made_up = made_up_pool("us-east-1");
        tokens.push(forged(&setup.url, &setup.real_token, &made_up, None));
        let kid = format!("forged-{n}");
        let kid = (n % 2 == 0).then_some(kid.as_str());
        tokens.push(forged(&setup.url, &setup.real_token, &real_pool, kid));
    }
    let answers = flood(setup.service.channel().await, tokens).await;
    let (first, waited) = first.await.unwrap();
    assert_eq!(reason(&first), "BAD_SIGNATURE");
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert_eq!(answers.len(), 400);
    assert_refused_for_keys(&answers);
    // Every forgery for the real pool waited for its one fetch and was
    // checked against its keys: none passed, none was refused unchecked.
    let bad_signatures = answers
        .iter()
        .filter(|s| s.code() == Code::Unauthenticated && reason(s) == "BAD_SIGNATURE")
        .count();
    assert_eq!(bad_signatures, 200);

    let calls = setup.calls().await;
    assert_nothing_reached_cognito(&calls, 0);
    // The real pool's key set: fetched once (single flight; the unknown kids
    // come within the minute after it).
    assert_eq!(calls[&format!("jwks:{real_pool}")], 1, "{calls:?}");
    println!(
        "slow key sets: {} calls refused ({bad_signatures} forgeries for the real pool as \
         BAD_SIGNATURE after its one 300 ms fetch), 0 reached Cognito",
        answers.len() + 1,
    );
    assert_real_user_served(&setup, 0).await;
}

#[tokio::test]
async fn serve_refuses_to_start_with_any_pool_unchecked_or_no_pool_named() {
    for (args, expected) in [
        (
            vec!["--user-pool", "", "--region", "us-east-1"],
            "--any-user-pool",
        ),
        (
            vec!["--any-user-pool", "--region", "us-east-1"],
            "--token-signature-check on",
        ),
        (
            vec![
                "--any-user-pool",
                "--user-pool",
                "us-east-1_Abc",
                "--region",
                "us-east-1",
            ],
            "contradict",
        ),
    ] {
        let (code, stderr) = binary::run_to_exit(&mut command(&args)).await;
        assert_eq!(code, 64, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
