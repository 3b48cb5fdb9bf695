//! # cognito-verify
//!
//! A gRPC facade for Amazon Cognito's user-attribute verification: other
//! services call `GetUserAttributeVerificationCode` and `VerifyUserAttribute`
//! over gRPC, and this service calls Cognito through the official AWS SDK.
//!
//! ## Request flow
//!
//! ```text
//! TCP connection
//!   → transport               connection bound (one descriptor budget for every listener),
//!                             TLS handshake (tls), HTTP/2 preface deadline, flow-control windows,
//!                             keepalive, GOAWAY on age / idleness / drain; a `Peer` per request
//! gRPC call
//!   → middleware::trace       server span (continues the caller's W3C trace), RPC metrics, log line
//!   → middleware::caller      --allow-caller list         → PERMISSION_DENIED
//!   → middleware::intake      grpc-timeout around the rest → DEADLINE_EXCEEDED;
//!                             the whole message within the read timeout → DEADLINE_EXCEEDED;
//!                             declared size over the bound → RESOURCE_EXHAUSTED (MESSAGE_TOO_LARGE);
//!                             bytes reserved before buffering → RESOURCE_EXHAUSTED + RetryInfo
//!   → middleware::load_shed   bound on RPCs in flight     → RESOURCE_EXHAUSTED + RetryInfo
//!   → service                 the tonic handlers; the call runs in a tracked task
//!   → convert                 proto → domain types (validation) → INVALID_ARGUMENT + BadRequest
//!   → auth                    local token check (claims, issuer, RS256 on the pool's JWKS)
//!                                                         → UNAUTHENTICATED + ErrorInfo
//!   → idempotency             a repeated request_id: the first answer, or wait for it
//!                                                         → ABORTED (REQUEST_IN_PROGRESS)
//!   → limits                  cooldown, per-user, per-caller, per-RPC (local or Redis)
//!                                                         → RESOURCE_EXHAUSTED + RetryInfo + QuotaFailure
//!   → deadline                caller's grpc-timeout → the Cognito call's time budget
//!   → cognito                 the AWS SDK call (one client per region), its client span and
//!                             metrics; SdkError → error::Error
//!   → status                  the one error → tonic::Status mapping (ErrorInfo, …)
//!   → audit                   one event per send / verify
//! ```
//!
//! Health and reflection sit beside this stack, never shed: `middleware::side`
//! bounds their streams in time, and reflection is behind the allowlist too.
//!
//! `server` binds the listeners, wires the service with health and reflection
//! and runs the graceful shutdown; `transport` serves connections and `tls`
//! owns the certificates; `config` is the command line; `telemetry` the
//! logs, traces and metrics; `auth` checks the token; `limits` and
//! `idempotency` keep the traffic to Cognito honest, on Redis when shared.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
pub mod auth;
pub mod cognito;
pub mod config;
pub mod convert;
pub mod deadline;
pub mod dev;
pub mod domain;
/// The embedded backend, its own crate (`crates/cognito-emulator`).
pub use cognito_emulator as emulator;
pub mod error;
pub mod idempotency;
pub mod limits;
pub mod middleware;
pub mod proto;
pub mod rpc;
pub mod server;
pub mod service;
pub mod status;
pub mod telemetry;
pub mod tls;
pub mod transport;
