//! # cognito-verify
//!
//! A gRPC facade for Amazon Cognito's user-attribute verification: other
//! services call `GetUserAttributeVerificationCode` and `VerifyUserAttribute`
//! over gRPC, and this service calls Cognito through the official AWS SDK.
//!
//! The request flow, the code map and the invariants the code keeps are
//! written down once, in `docs/ARCHITECTURE.md`; this is the short map.
//!
//! - A connection: `transport` (accept, TLS from `tls`, HTTP/2) and
//!   `server` (the listeners, the routes, the graceful shutdown).
//! - A verification RPC: `middleware` (trace, caller allowlist, intake,
//!   load shedding), then `service`: `convert` into `domain` types,
//!   the checks (`auth`, `idempotency`, `limits`), `deadline`, one
//!   call through `cognito`; every failure an `error::Error`, turned
//!   into a status only by `status`; one `audit` event per call.
//! - Around it: `config` (the only code that reads the environment),
//!   `telemetry` (logs, traces, metrics), `proto` (the generated API),
//!   `rpc` (the names every part shares: operation, trace id, code).
//! - Beside it: the embedded Cognito-compatible backend, the crate
//!   `cognito_emulator` (`crates/cognito-emulator`), which knows nothing
//!   of the facade; `dev` runs it.
//!
//! Errors and their statuses: `docs/errors.md`; operating the service:
//! `docs/operations.md`.

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
