//! The claims of a Cognito access token, read from its payload without
//! checking its signature: **unverified**. Cognito remains the authority on
//! the token; these claims only say who the token claims to be, for the
//! audit trail. A token that is not a JWT, or whose payload is not JSON,
//! yields `None`.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use serde::Deserialize;

use crate::domain::AccessToken;

/// The claims of interest. Not secret (no token, no code): ids only.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Claims {
    /// The user's immutable id.
    pub sub: Option<String>,
    /// The issuer, `https://cognito-idp.<region>.amazonaws.com/<poolId>`.
    pub iss: Option<String>,
    /// The app client.
    pub client_id: Option<String>,
    /// `access` for an access token.
    pub token_use: Option<String>,
}

/// Most bytes of a payload we decode; Cognito's are well under 2 KiB.
const MAX_PAYLOAD_BYTES: usize = 16 * 1024;

impl Claims {
    /// The unverified claims of `token`.
    pub fn unverified(token: &AccessToken) -> Option<Self> {
        let mut parts = token.expose().split('.');
        let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || payload.len() > MAX_PAYLOAD_BYTES {
            return None;
        }
        let json = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
        serde_json::from_slice(&json).ok()
    }

    /// The user pool: the last path segment of the issuer.
    pub fn pool_id(&self) -> Option<&str> {
        let iss = self.iss.as_deref()?;
        let pool = iss.rsplit('/').next()?;
        (!pool.is_empty() && pool != iss).then_some(pool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(payload: &str) -> AccessToken {
        let p = URL_SAFE_NO_PAD.encode(payload);
        AccessToken::parse(format!("eyJhbGciOiJSUzI1NiJ9.{p}.c2ln"), "access_token").unwrap()
    }

    #[test]
    fn reads_sub_and_pool() {
        let c = Claims::unverified(&token(
            r#"{"sub":"u-1","iss":"https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc","token_use":"access"}"#,
        ))
        .unwrap();
        assert_eq!(c.sub.as_deref(), Some("u-1"));
        assert_eq!(c.pool_id(), Some("eu-west-1_Abc"));
    }

    #[test]
    fn not_a_jwt_is_none() {
        for t in ["abc", "a.b", "a.b.c.d", "a.!!!.c"] {
            let token = AccessToken::parse(t.replace('!', "-"), "access_token").unwrap();
            assert_eq!(Claims::unverified(&token), None, "{t}");
        }
        assert_eq!(Claims::unverified(&token("not json")), None);
        assert_eq!(
            Claims::unverified(&token(r#"{"iss":"nopath"}"#))
                .unwrap()
                .pool_id(),
            None
        );
    }
}
