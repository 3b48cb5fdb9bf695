//! What the access token says about its user. This module owns reading the
//! token's claims ([`claims`]); the token itself stays an opaque
//! [`crate::domain::AccessToken`] everywhere else.

pub mod claims;

pub use claims::Claims;
