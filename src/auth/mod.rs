//! What the access token says about its user, and whether to believe it
//! before spending a Cognito call on it.
//!
//! - [`claims`]: the token's claims read without any check, for the audit
//!   trail ([`Claims::unverified`]).
//! - [`check`]: the local token check ([`TokenChecker`]): shape, token use,
//!   issuer allowlist, scope, expiry, then the RS256 signature against the
//!   pool's JWKS (`jwks`: the per-pool key cache; `fetch`: its HTTP(S)
//!   client; `jwt` and `issuer`: the parsing and issuer rules).
//!
//! The token itself stays an opaque [`crate::domain::AccessToken`]: nothing
//! here logs it or puts it into an error.

pub mod check;
pub mod claims;
mod fetch;
mod issuer;
mod jwks;
mod jwt;
mod rejection;

#[cfg(test)]
mod tests;

pub use check::{CheckError, CheckedToken, Signature, TokenCheckConfig, TokenChecker, ADMIN_SCOPE};
pub use claims::Claims;
pub use rejection::TokenRejection;
