//! A compact JWT taken apart once: three base64url parts, a header with an
//! RS256 `alg` and a `kid`, and the access-token claims, deserialized by
//! borrowing from the decoded payload. Anything that does not fit is
//! `None`, which the checker reports as `MALFORMED_TOKEN`.

use std::{borrow::Cow, time::Duration};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use serde::Deserialize;

/// Most bytes of a token we look at. Cognito's access tokens are about
/// 1 KiB; custom scopes and groups make them longer, not 16 times longer.
pub(crate) const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Most base64 characters of a header; decoded into a stack buffer.
const MAX_HEADER_CHARS: usize = 1024;
/// Room for [`MAX_HEADER_CHARS`] decoded (base64's estimate, rounded up).
const HEADER_BUFFER_BYTES: usize = 768;

/// A token's parts, its header checked, its payload decoded.
pub(crate) struct Jwt<'t> {
    /// `header.payload`, the bytes the signature covers.
    pub(crate) signed: &'t str,
    /// The base64url signature.
    pub(crate) signature: &'t str,
    /// The key id of the header.
    pub(crate) kid: String,
    payload: Vec<u8>,
}

/// The claims the checks need; borrowed from the payload where no JSON
/// escape forces a copy.
#[derive(Deserialize)]
pub(crate) struct AccessClaims<'p> {
    #[serde(borrow)]
    pub(crate) sub: Cow<'p, str>,
    #[serde(borrow)]
    pub(crate) iss: Cow<'p, str>,
    #[serde(borrow)]
    pub(crate) token_use: Cow<'p, str>,
    exp: f64,
    #[serde(borrow, default)]
    pub(crate) scope: Option<Cow<'p, str>>,
    #[serde(borrow, default)]
    pub(crate) client_id: Option<Cow<'p, str>>,
}

impl AccessClaims<'_> {
    /// `exp` as time since the epoch (a JWT NumericDate may have a fraction).
    pub(crate) fn expires(&self) -> Option<Duration> {
        Duration::try_from_secs_f64(self.exp).ok()
    }
}

#[derive(Deserialize)]
struct Header<'h> {
    #[serde(borrow)]
    alg: Cow<'h, str>,
    #[serde(borrow)]
    kid: Cow<'h, str>,
}

/// Takes `token` apart: exactly three non-empty base64url parts, a JSON
/// header with `alg` RS256 and a non-empty `kid`, a decodable payload.
pub(crate) fn parse(token: &str) -> Option<Jwt<'_>> {
    if token.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let (signed, signature) = token.rsplit_once('.')?;
    let (header, payload) = signed.split_once('.')?;
    let base64url = |part: &str| {
        !part.is_empty()
            && part.len() % 4 != 1
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !(base64url(header) && base64url(payload) && base64url(signature))
        || header.len() > MAX_HEADER_CHARS
    {
        return None;
    }
    let mut buffer = [0u8; HEADER_BUFFER_BYTES];
    let n = URL_SAFE_NO_PAD.decode_slice(header, &mut buffer).ok()?;
    let header: Header<'_> = serde_json::from_slice(&buffer[..n]).ok()?;
    if header.alg != "RS256" || header.kid.is_empty() {
        return None;
    }
    let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
    Some(Jwt {
        signed,
        signature,
        kid: header.kid.into_owned(),
        payload,
    })
}

impl Jwt<'_> {
    /// The claims: `sub` (non-empty), `iss`, `token_use` strings, `exp` a
    /// non-negative number, `scope` and `client_id` strings when present.
    pub(crate) fn claims(&self) -> Option<AccessClaims<'_>> {
        let claims: AccessClaims<'_> = serde_json::from_slice(&self.payload).ok()?;
        (!claims.sub.is_empty() && claims.expires().is_some()).then_some(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn jwt(header: &str, payload: &str) -> String {
        format!("{}.{}.c2ln", b64(header), b64(payload))
    }

    const HEADER: &str = r#"{"alg":"RS256","kid":"k1"}"#;
    const CLAIMS: &str = r#"{"sub":"u","iss":"i","token_use":"access","exp":5,"scope":"a b"}"#;

    #[test]
    fn parses_header_and_claims() {
        let token = jwt(HEADER, CLAIMS);
        let jwt = parse(&token).unwrap();
        assert_eq!(jwt.kid, "k1");
        assert_eq!(jwt.signature, "c2ln");
        assert_eq!(jwt.signed, token.rsplit_once('.').unwrap().0);
        let c = jwt.claims().unwrap();
        assert_eq!((&*c.sub, &*c.iss, &*c.token_use), ("u", "i", "access"));
        assert_eq!(c.expires(), Some(Duration::from_secs(5)));
        assert_eq!(c.scope.as_deref(), Some("a b"));
        assert_eq!(c.client_id, None);
    }

    #[test]
    fn not_three_base64url_parts() {
        let (h, p) = (b64(HEADER), b64(CLAIMS));
        for token in [
            String::new(),
            format!("{h}.{p}"),
            format!("{h}.{p}.c2ln.c2ln"),
            format!("{h}.{p}."),
            format!(".{p}.c2ln"),
            format!("{h}.{p}=.c2ln"),
            format!("{h}.{p}.c2lu="),
            format!("{h}.{p}.c"),
            format!("{h}.{p}.{}", "A".repeat(MAX_TOKEN_BYTES)),
        ] {
            assert!(parse(&token).is_none(), "{token}");
        }
    }

    #[test]
    fn header_must_be_rs256_with_a_kid() {
        for header in [
            "not json",
            r#"{"alg":"RS256"}"#,
            r#"{"alg":"RS256","kid":""}"#,
            r#"{"alg":"RS256","kid":7}"#,
            r#"{"alg":"HS256","kid":"k1"}"#,
            r#"{"alg":"none","kid":"k1"}"#,
            r#"{"kid":"k1"}"#,
            r#"{"alg":"RS256","kid":"k1","kid":"k2"}"#,
        ] {
            assert!(parse(&jwt(header, CLAIMS)).is_none(), "{header}");
        }
        let long = format!(r#"{{"alg":"RS256","kid":"{}"}}"#, "k".repeat(800));
        assert!(parse(&jwt(&long, CLAIMS)).is_none());
    }

    #[test]
    fn claims_need_their_types() {
        for claims in [
            "not json",
            "[]",
            r#"{"iss":"i","token_use":"access","exp":5}"#,
            r#"{"sub":"","iss":"i","token_use":"access","exp":5}"#,
            r#"{"sub":"u","token_use":"access","exp":5}"#,
            r#"{"sub":"u","iss":"i","exp":5}"#,
            r#"{"sub":"u","iss":"i","token_use":"access"}"#,
            r#"{"sub":"u","iss":"i","token_use":"access","exp":"5"}"#,
            r#"{"sub":"u","iss":"i","token_use":"access","exp":-1}"#,
            r#"{"sub":1,"iss":"i","token_use":"access","exp":5}"#,
            r#"{"sub":"u","iss":"i","token_use":"access","exp":5,"scope":["a"]}"#,
            r#"{"sub":"u","iss":"i","token_use":"access","exp":5,"client_id":3}"#,
            r#"{"sub":"u","sub":"v","iss":"i","token_use":"access","exp":5}"#,
        ] {
            let token = jwt(HEADER, claims);
            assert!(parse(&token).unwrap().claims().is_none(), "{claims}");
        }
        let escaped =
            r#"{"sub":"u\u0041","iss":"i","token_use":"access","exp":5.5,"extra":{"x":[1]}}"#;
        let token = jwt(HEADER, escaped);
        let jwt = parse(&token).unwrap();
        let c = jwt.claims().unwrap();
        assert_eq!(c.sub, "uA");
        assert_eq!(c.expires(), Some(Duration::from_millis(5500)));
    }
}
