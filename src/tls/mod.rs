//! Transport security of the gRPC port (rustls). This module owns:
//!
//! - [`files`]: reading the PEM files named by `--tls-cert`, `--tls-key` and
//!   `--tls-client-ca` into a rustls server configuration (ALPN `h2`; with a
//!   client CA, a client certificate is required: mTLS), with one clear error
//!   per bad file;
//! - [`reload`]: the configuration in force, read again when the files
//!   change, so that renewed certificates (cert-manager rewrites them in
//!   place) apply to new handshakes without a restart;
//! - [`identity`]: the caller identity of a client certificate.
//!
//! Handshakes themselves run in `transport`, per connection.

pub mod files;
pub mod identity;
pub mod reload;

pub use files::{TlsError, TlsFiles};
pub use identity::caller_identity;
pub use reload::Reloader;
