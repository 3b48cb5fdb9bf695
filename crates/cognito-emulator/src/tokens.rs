//! RS256 JWTs shaped like Cognito's, signed with a key generated at start-up
//! (aws-lc-rs) and published as a JWKS; signing and checking by jsonwebtoken.

use aws_lc_rs::{
    encoding::AsDer,
    rsa::{KeyPair, KeySize},
    signature::KeyPair as _,
};
use base64::{
    engine::general_purpose::STANDARD, engine::general_purpose::URL_SAFE_NO_PAD, Engine as _,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The scope the two verification operations require.
pub const ADMIN_SCOPE: &str = "aws.cognito.signin.user.admin";

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    /// The user's immutable id.
    pub sub: String,
    /// `<base-url>/<poolId>`.
    pub iss: String,
    /// The app client the user signed in through.
    pub client_id: String,
    /// The id of the sign-in session (shared by refreshed tokens).
    pub origin_jti: String,
    /// Always `access`.
    pub token_use: String,
    /// Space-separated scopes.
    pub scope: String,
    /// When the user signed in.
    pub auth_time: u64,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issue time, seconds since the epoch.
    pub iat: u64,
    /// This token's id.
    pub jti: String,
    /// The user's name.
    pub username: String,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a JWT of ours (bad signature, malformed, wrong type).
    Invalid,
}

/// Signs and checks tokens with one RSA key.
pub struct Signer {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwks: Value,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A fresh 2048-bit key. Done once per backend, never per request.
    pub fn generate() -> Result<Self, String> {
        let key =
            KeyPair::generate(KeySize::Rsa2048).map_err(|e| format!("RSA key generation: {e}"))?;
        let der = key.as_der().map_err(|e| format!("RSA key encoding: {e}"))?;
        let pem = pem("PRIVATE KEY", der.as_ref());
        let encoding =
            EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| format!("signing key: {e}"))?;
        let public = key.public_key();
        let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
        let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
        let decoding =
            DecodingKey::from_rsa_components(&n, &e).map_err(|e| format!("verifying key: {e}"))?;
        let kid = uuid::Uuid::new_v4().to_string();
        let jwks = json!({"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid, "n": n, "e": e}]});
        Ok(Self {
            kid,
            encoding,
            decoding,
            jwks,
        })
    }

    /// The JWKS document with the public key.
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    /// Signs any claims (access or ID token).
    pub fn sign(&self, claims: &impl Serialize) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .expect("RS256 signing with a valid key")
    }

    /// Checks the signature and the shape of an access token. Expiry,
    /// revocation and scope are the caller's checks (they need the backend's
    /// clock and state).
    pub fn verify_access(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false; // checked against the backend's clock
        validation.validate_aud = false; // access tokens carry client_id, not aud
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &validation)
            .map_err(|_| TokenError::Invalid)?;
        if data.header.kid.as_deref() != Some(self.kid.as_str())
            || data.claims.token_use != "access"
        {
            return Err(TokenError::Invalid);
        }
        Ok(data.claims)
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> AccessClaims {
        AccessClaims {
            sub: "s".into(),
            iss: "http://x/pool".into(),
            client_id: "c".into(),
            origin_jti: "o".into(),
            token_use: "access".into(),
            scope: ADMIN_SCOPE.into(),
            auth_time: 1,
            exp: 2,
            iat: 1,
            jti: "j".into(),
            username: "u".into(),
        }
    }

    #[test]
    fn signs_and_verifies_and_rejects_foreign_keys() {
        let signer = Signer::generate().unwrap();
        let token = signer.sign(&claims());
        assert_eq!(signer.verify_access(&token).unwrap(), claims());
        let other = Signer::generate().unwrap();
        assert_eq!(other.verify_access(&token), Err(TokenError::Invalid));
        assert_eq!(signer.verify_access("not.a.jwt"), Err(TokenError::Invalid));
        let mut id = claims();
        id.token_use = "id".into();
        assert_eq!(
            signer.verify_access(&signer.sign(&id)),
            Err(TokenError::Invalid)
        );
        assert_eq!(signer.jwks()["keys"][0]["alg"], "RS256");
    }
}
