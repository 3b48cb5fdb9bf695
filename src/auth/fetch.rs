//! Fetching one pool's JWKS: the one HTTP(S) client of the checker
//! (hyper-util's pooled client over hyper-rustls with aws-lc-rs, the TLS
//! stack the AWS SDK already brings, and the system's root certificates),
//! the URL built from the configuration and the pool id only, and the
//! document parsed into RS256 `DecodingKey`s. No redirects are followed: the
//! keys come from the configured URL or not at all.

use std::{sync::Arc, time::Duration};

use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::{body::Bytes, header, Request, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};
use jsonwebtoken::DecodingKey;
use rustls::{crypto::aws_lc_rs, ClientConfig, RootCertStore};
use serde::Deserialize;

/// One pool's keys by kid.
pub(crate) type KeySet = std::collections::HashMap<String, DecodingKey>;

/// The HTTP(S) client of the JWKS fetches.
pub(crate) type HttpsClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// Idle connections to a JWKS host are kept this long; fetches are rare.
const POOL_IDLE: Duration = Duration::from_secs(30);

/// The client. `needs_roots` is false when the only JWKS host is a plain
/// `http://` endpoint override; otherwise a system without root
/// certificates is a start-up error, not a silent loss of the check.
pub(crate) fn https_client(
    needs_roots: bool,
    connect_timeout: Duration,
) -> Result<HttpsClient, String> {
    let provider = Arc::new(aws_lc_rs::default_provider());
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = if needs_roots {
        builder
            .with_provider_and_native_roots(provider)
            .map_err(|e| {
                format!(
                    "cannot fetch user pool keys over HTTPS: {e}; install the system's CA \
                     certificates or set --token-signature-check off"
                )
            })?
    } else {
        let tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS configuration for the JWKS client: {e}"))?
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth();
        builder.with_tls_config(tls)
    };
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    let connector = builder.https_or_http().enable_http1().wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE)
        .pool_max_idle_per_host(2)
        .build(connector))
}

/// Where the keys come from.
#[derive(Debug, Clone)]
pub(crate) enum JwksSource {
    /// `https://cognito-idp.<region>.amazonaws.com/<poolId>/.well-known/jwks.json`.
    Aws,
    /// `<endpoint>/<poolId>/.well-known/jwks.json` (no trailing slash).
    Endpoint(String),
}

impl JwksSource {
    /// The JWKS URL of `pool`, whose id starts with `region`.
    pub(crate) fn url(&self, pool: &str, region: &str) -> Result<Uri, FetchError> {
        let url = match self {
            Self::Aws => {
                format!("https://cognito-idp.{region}.amazonaws.com/{pool}/.well-known/jwks.json")
            }
            Self::Endpoint(base) => format!("{base}/{pool}/.well-known/jwks.json"),
        };
        url.parse().map_err(|_| FetchError::Url)
    }
}

/// Why a JWKS could not be had. Says nothing about any token.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("the JWKS URL is not valid")]
    Url,
    #[error("request failed: {0}")]
    Request(String),
    #[error("timed out")]
    Timeout,
    #[error("HTTP status {0}")]
    Status(StatusCode),
    #[error("content type {0:?} is not JSON")]
    NotJson(String),
    #[error("body larger than {0} bytes, or unreadable")]
    Body(usize),
    #[error("not a JWKS document: {0}")]
    Parse(#[from] serde_json::Error),
}

/// GETs `url` and parses it: 200, a JSON content type (when one is sent),
/// at most `max_body` bytes. The caller bounds the time.
pub(crate) async fn fetch_keys(
    client: &HttpsClient,
    url: Uri,
    max_body: usize,
) -> Result<KeySet, FetchError> {
    let request = Request::get(url)
        .header(header::ACCEPT, "application/json")
        .body(Empty::new())
        .map_err(|_| FetchError::Url)?;
    let response = client
        .request(request)
        .await
        .map_err(|e| FetchError::Request(error_chain(&e)))?;
    if response.status() != StatusCode::OK {
        return Err(FetchError::Status(response.status()));
    }
    if let Some(ct) = response.headers().get(header::CONTENT_TYPE) {
        let ct = String::from_utf8_lossy(ct.as_bytes());
        if !ct.to_ascii_lowercase().contains("json") {
            return Err(FetchError::NotJson(ct.into_owned()));
        }
    }
    let body = Limited::new(response.into_body(), max_body)
        .collect()
        .await
        .map_err(|_| FetchError::Body(max_body))?
        .to_bytes();
    Ok(parse_jwks(&body)?)
}

/// `hyper_util`'s errors say little in `Display`; their sources say why.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kid: Option<String>,
    kty: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

/// The RS256 signing keys of a JWKS document; other keys are skipped.
fn parse_jwks(body: &[u8]) -> Result<KeySet, serde_json::Error> {
    let set: JwkSet = serde_json::from_slice(body)?;
    Ok(set
        .keys
        .into_iter()
        .filter(|k| k.kty.as_deref() == Some("RSA"))
        .filter(|k| k.alg.as_deref().is_none_or(|a| a == "RS256"))
        .filter(|k| k.use_.as_deref().is_none_or(|u| u == "sig"))
        .filter_map(|k| {
            let key = DecodingKey::from_rsa_components(k.n.as_deref()?, k.e.as_deref()?).ok()?;
            Some((k.kid?, key))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwks_keeps_rs256_signing_keys_only() {
        let body = br#"{"keys":[
            {"kid":"a","kty":"RSA","alg":"RS256","use":"sig","n":"AQAB","e":"AQAB"},
            {"kid":"b","kty":"RSA","n":"AQAB","e":"AQAB"},
            {"kid":"c","kty":"RSA","alg":"RS512","n":"AQAB","e":"AQAB"},
            {"kid":"d","kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"},
            {"kid":"e","kty":"EC","crv":"P-256","x":"AQAB","y":"AQAB"},
            {"kid":"f","kty":"RSA","n":"!!","e":"AQAB"},
            {"kty":"RSA","n":"AQAB","e":"AQAB"}
        ]}"#;
        let keys = parse_jwks(body).unwrap();
        let mut kids: Vec<_> = keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        assert_eq!(kids, ["a", "b"]);
        assert!(parse_jwks(b"{}").is_err());
        assert!(parse_jwks(b"<html>").is_err());
        assert!(parse_jwks(br#"{"keys":[]}"#).unwrap().is_empty());
    }

    #[test]
    fn urls_come_from_the_configuration_and_the_pool_id_only() {
        let aws = JwksSource::Aws.url("eu-west-1_Abc", "eu-west-1").unwrap();
        assert_eq!(
            aws.to_string(),
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc/.well-known/jwks.json"
        );
        let local = JwksSource::Endpoint("http://127.0.0.1:9229".into())
            .url("local_Abc", "local")
            .unwrap();
        assert_eq!(
            local.to_string(),
            "http://127.0.0.1:9229/local_Abc/.well-known/jwks.json"
        );
    }
}
