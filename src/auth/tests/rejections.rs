//! Each rejection reason, its order, the leeway's edges and the issuer
//! rules; none of these may cost a JWKS fetch.

use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::auth::Signature;

/// A checker without signature check, so no fetch can happen.
fn offline(config: TokenCheckConfig) -> TokenChecker {
    TokenChecker::new(TokenCheckConfig {
        signature_check: false,
        ..config
    })
    .unwrap()
}

fn aws_iss(pool: &str) -> String {
    let region = pool.rsplit_once('_').unwrap().0;
    format!("https://cognito-idp.{region}.amazonaws.com/{pool}")
}

fn with(mut claims: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

async fn reason(checker: &TokenChecker, token: &AccessToken) -> Result<Signature, &'static str> {
    checker
        .check_at(token, now(), None)
        .await
        .map(|c| c.signature)
        .map_err(|e| {
            e.rejection()
                .map_or("KEYS_UNAVAILABLE", TokenRejection::reason)
        })
}

#[tokio::test]
async fn a_valid_token_passes_with_its_ids() {
    let checker = offline(TokenCheckConfig::default());
    let checked = checker
        .check_at(&signed(&KEY_A, &claims(&aws_iss(POOL))), now(), None)
        .await
        .unwrap();
    assert_eq!(
        checked,
        CheckedToken {
            pool_id: POOL.into(),
            region: "us-east-1".into(),
            sub: "8f1c-user".into(),
            client_id: Some("client-1".into()),
            signature: Signature::Unverified,
        }
    );
}

#[tokio::test]
async fn each_reason() {
    let checker = offline(TokenCheckConfig {
        user_pools: vec![POOL.into()],
        ..TokenCheckConfig::default()
    });
    let base = claims(&aws_iss(POOL));
    let header = json!({"alg": "RS256", "kid": "k"});
    let cases: Vec<(AccessToken, &str)> = vec![
        (token("not-a-jwt"), "MALFORMED_TOKEN"),
        (token("a.b.c"), "MALFORMED_TOKEN"),
        (
            unsigned(&json!({"alg": "HS256", "kid": "k"}), &base),
            "MALFORMED_TOKEN",
        ),
        (unsigned(&json!({"alg": "RS256"}), &base), "MALFORMED_TOKEN"),
        (
            unsigned(&header, &with(base.clone(), json!({"exp": "soon"}))),
            "MALFORMED_TOKEN",
        ),
        (
            unsigned(&header, &with(base.clone(), json!({"sub": null}))),
            "MALFORMED_TOKEN",
        ),
        (
            unsigned(&header, &with(base.clone(), json!({"scope": 1}))),
            "MALFORMED_TOKEN",
        ),
        (
            unsigned(&header, &with(base.clone(), json!({"exp": NOW_SECS - 60}))),
            "TOKEN_EXPIRED",
        ),
        (
            unsigned(
                &header,
                &with(base.clone(), json!({"token_use": "id", "aud": "client-1"})),
            ),
            "NOT_AN_ACCESS_TOKEN",
        ),
        (
            unsigned(&header, &with(base.clone(), json!({"token_use": null}))),
            "MALFORMED_TOKEN",
        ),
        (
            unsigned(&header, &with(base.clone(), json!({"scope": null}))),
            "MISSING_SCOPE",
        ),
        (
            unsigned(
                &header,
                &with(base.clone(), json!({"scope": "openid email"})),
            ),
            "MISSING_SCOPE",
        ),
        (
            unsigned(
                &header,
                &with(base.clone(), json!({"scope": format!("{ADMIN_SCOPE}x")})),
            ),
            "MISSING_SCOPE",
        ),
        (
            unsigned(
                &header,
                &with(base.clone(), json!({"iss": aws_iss("us-east-1_Other")})),
            ),
            "ISSUER_NOT_ALLOWED",
        ),
        (
            unsigned(
                &header,
                &with(base.clone(), json!({"iss": "https://accounts.example.com"})),
            ),
            "ISSUER_NOT_ALLOWED",
        ),
        (
            unsigned(
                &header,
                &with(
                    base.clone(),
                    json!({"scope": format!("openid {ADMIN_SCOPE}")}),
                ),
            ),
            "ok",
        ),
    ];
    for (i, (token, expected)) in cases.iter().enumerate() {
        let got = match reason(&checker, token).await {
            Ok(_) => "ok",
            Err(r) => r,
        };
        assert_eq!(got, *expected, "case {i}");
    }
}

#[tokio::test]
async fn an_id_token_is_not_an_access_token() {
    // Shaped like Cognito's ID token: aud instead of client_id, no scope.
    let id = json!({
        "sub": "8f1c-user", "aud": "client-1", "iss": aws_iss(POOL), "token_use": "id",
        "email": "demo@example.com", "auth_time": NOW_SECS, "exp": NOW_SECS + 3600,
        "iat": NOW_SECS,
    });
    let checker = offline(TokenCheckConfig::default());
    assert_eq!(
        reason(&checker, &signed(&KEY_A, &id)).await,
        Err("NOT_AN_ACCESS_TOKEN")
    );
}

/// Permanent faults before expiry, expiry before the signature: each token
/// below has every fault of the ones after it, and one more.
#[tokio::test]
async fn one_reason_in_a_fixed_order_and_no_fetch_for_a_rejection() {
    let server = JwksServer::start(Mode::Keys(jwks(&KEY_A))).await;
    let config = TokenCheckConfig {
        user_pools: vec![POOL.into()],
        endpoint: Some(server.endpoint()),
        ..TokenCheckConfig::default()
    };
    let checker = TokenChecker::with_settings(config, settings()).unwrap();
    let expired = with(claims(&server.issuer(POOL)), json!({"exp": NOW_SECS - 60}));
    let unscoped = with(expired.clone(), json!({"scope": "openid"}));
    let foreign = with(
        unscoped.clone(),
        json!({"iss": server.issuer("us-east-1_Other")}),
    );
    let id = with(foreign.clone(), json!({"token_use": "id"}));
    // Signed by a key the JWKS does not have: only the signature check could
    // tell, and it must not be reached.
    for (claims, expected) in [
        (&id, "NOT_AN_ACCESS_TOKEN"),
        (&foreign, "ISSUER_NOT_ALLOWED"),
        (&unscoped, "MISSING_SCOPE"),
        (&expired, "TOKEN_EXPIRED"),
    ] {
        assert_eq!(
            reason(&checker, &signed(&KEY_B, claims)).await,
            Err(expected)
        );
    }
    assert_eq!(server.hits(), 0, "a rejected token must not cost a fetch");
    let valid_but_forged = signed(&KEY_B, &claims(&server.issuer(POOL)));
    assert_eq!(
        reason(&checker, &valid_but_forged).await,
        Err("BAD_SIGNATURE")
    );
}

#[tokio::test]
async fn leeway_edges() {
    let exp = Duration::from_secs(NOW_SECS);
    let t = signed(
        &KEY_A,
        &with(claims(&aws_iss(POOL)), json!({"exp": NOW_SECS})),
    );
    let at = |d: Duration| UNIX_EPOCH + d;
    let default = offline(TokenCheckConfig::default());
    let two = Duration::from_secs(2);
    let ms = Duration::from_millis(1);
    assert!(default.check_at(&t, at(exp), None).await.is_ok());
    assert!(default.check_at(&t, at(exp + two), None).await.is_ok());
    assert_eq!(
        default.check_at(&t, at(exp + two + ms), None).await,
        Err(TokenRejection::Expired.into())
    );
    let strict = offline(TokenCheckConfig {
        leeway: Duration::ZERO,
        ..TokenCheckConfig::default()
    });
    assert!(strict.check_at(&t, at(exp), None).await.is_ok());
    assert_eq!(
        strict.check_at(&t, at(exp + ms), None).await,
        Err(TokenRejection::Expired.into())
    );
    // A fractional exp (a JWT NumericDate may have one) is honoured.
    let frac = signed(
        &KEY_A,
        &with(
            claims(&aws_iss(POOL)),
            json!({"exp": NOW_SECS as f64 + 0.5}),
        ),
    );
    assert!(strict
        .check_at(&frac, at(exp + ms * 500), None)
        .await
        .is_ok());
    assert!(strict
        .check_at(&frac, at(exp + ms * 501), None)
        .await
        .is_err());
    // And `check` uses the real clock: this token expired in 2023.
    assert_eq!(
        default.check(&t, None).await,
        Err(TokenRejection::Expired.into())
    );
}

#[tokio::test]
async fn issuer_host_without_override_must_be_cognitos_own() {
    let checker = offline(TokenCheckConfig::default());
    let pool = "eu-central-1_AbC123";
    let ok = signed(&KEY_A, &claims(&aws_iss(pool)));
    let checked = checker.check_at(&ok, now(), None).await.unwrap();
    assert_eq!(
        (checked.pool_id.as_str(), checked.region.as_str()),
        (pool, "eu-central-1")
    );
    for iss in [
        format!("https://cognito-idp.us-east-1.amazonaws.com/{pool}"),
        format!("http://cognito-idp.eu-central-1.amazonaws.com/{pool}"),
        format!("https://cognito-idp.eu-central-1.amazonaws.com.evil.test/{pool}"),
        format!("http://127.0.0.1:9229/{pool}"),
        "http://127.0.0.1:9229/local_AbC123".to_owned(),
    ] {
        let t = signed(&KEY_A, &claims(&iss));
        assert_eq!(
            reason(&checker, &t).await,
            Err("ISSUER_NOT_ALLOWED"),
            "{iss}"
        );
    }
}

#[tokio::test]
async fn issuer_host_with_override_is_not_checked_but_the_pool_is() {
    let checker = offline(TokenCheckConfig {
        endpoint: Some("http://127.0.0.1:9".into()),
        user_pools: vec!["local_AbC123".into(), POOL.into()],
        ..TokenCheckConfig::default()
    });
    for iss in [
        "http://localhost:9229/local_AbC123".to_owned(),
        "http://localhost.localstack.cloud:4566/us-east-1_TestPool1".to_owned(),
        aws_iss(POOL),
    ] {
        let t = signed(&KEY_A, &claims(&iss));
        assert_eq!(
            reason(&checker, &t).await,
            Ok(Signature::Unverified),
            "{iss}"
        );
    }
    for iss in [
        "http://localhost:9229/local_Other1",
        "local_AbC123",
        "http://x/not-a-pool",
    ] {
        let t = signed(&KEY_A, &claims(iss));
        assert_eq!(
            reason(&checker, &t).await,
            Err("ISSUER_NOT_ALLOWED"),
            "{iss}"
        );
    }
}

#[test]
fn reasons_and_messages() {
    use TokenRejection::*;
    let all = [
        Malformed,
        Expired,
        NotAnAccessToken,
        MissingScope,
        IssuerNotAllowed,
        BadSignature,
    ];
    let reasons: Vec<_> = all.iter().map(|r| r.reason()).collect();
    assert_eq!(
        reasons,
        [
            "MALFORMED_TOKEN",
            "TOKEN_EXPIRED",
            "NOT_AN_ACCESS_TOKEN",
            "MISSING_SCOPE",
            "ISSUER_NOT_ALLOWED",
            "BAD_SIGNATURE"
        ]
    );
    for r in all {
        assert!(r.message().len() > 20, "{r:?}");
        assert_eq!(r.to_string(), r.message());
    }
}

#[test]
fn configuration_is_validated() {
    let ok = TokenCheckConfig {
        user_pools: vec!["eu-west-1_AbCdEf123".into(), "us-gov-west-1_X".into()],
        ..TokenCheckConfig::default()
    };
    assert_eq!(ok.validate(), Ok(()));
    let bad_pool = TokenCheckConfig {
        user_pools: vec!["eu-west-1_AbCdEf123".into(), "my-pool".into()],
        ..TokenCheckConfig::default()
    };
    let err = bad_pool.validate().unwrap_err();
    assert!(err.starts_with("--user-pool \"my-pool\""), "{err}");
    assert!(!err.contains('\n'), "{err}");
    assert!(TokenChecker::new(bad_pool).is_err());
    // cognito-local's ids need the override they come with.
    let local = TokenCheckConfig {
        user_pools: vec!["local_AbC".into()],
        ..TokenCheckConfig::default()
    };
    assert!(local.validate().is_err());
    let local = TokenCheckConfig {
        endpoint: Some("http://127.0.0.1:9229/".into()),
        ..local
    };
    assert_eq!(local.validate(), Ok(()));
    for endpoint in [
        "127.0.0.1:9229",
        "ftp://host",
        "http://host/?x=1",
        "not a url",
    ] {
        let config = TokenCheckConfig {
            endpoint: Some(endpoint.into()),
            ..TokenCheckConfig::default()
        };
        let err = config.validate().unwrap_err();
        assert!(err.starts_with("--cognito-endpoint"), "{endpoint}: {err}");
    }
    let leeway = TokenCheckConfig {
        leeway: Duration::from_secs(301),
        ..TokenCheckConfig::default()
    };
    assert!(leeway
        .validate()
        .unwrap_err()
        .contains("--token-leeway-secs"));
}

#[test]
fn the_check_can_run_in_a_tonic_handler() {
    fn send_and_static<T: Send + Sync + 'static>(_: &T) {}
    fn send<T: Send>(_: T) {}
    let checker = offline(TokenCheckConfig::default());
    send_and_static(&checker);
    let token = token("a.b.c");
    send(checker.check(&token, None));
}
