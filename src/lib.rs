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

// Private: the parts of the service. The docs of each say why it exists;
// docs/ARCHITECTURE.md maps them.
mod audit;
mod auth;
mod cognito;
mod contact;
mod deadline;
mod domain;
mod error;
mod idempotency;
mod limits;
mod middleware;
mod rpc;
mod service;
mod sms;
mod status;
mod telemetry;
mod tls;
mod transport;

// The contract: the generated messages, client and server of
// `proto/cognito/verify/v1/` (the service, and `ErrorReason`: every
// `ErrorInfo.reason` it sends).
pub mod proto;

// What the binary (src/main.rs) runs: the command line, the server, the
// `dev` and `emulator` subcommands, and the process set-up.
pub mod config;
pub mod dev;
pub mod server;
pub use crate::{
    audit::set_on as set_audit_on, cognito::Cognito, telemetry::init as init_telemetry,
};

// What the integration tests, the fuzz targets and the bench drive one by
// one, beside the running server: the parsers that take hostile bytes
// (`convert`, the token check, `grpc-timeout`), the typed errors and their
// statuses' constants, the limits, and the metrics the tests read.
pub mod convert;
pub use crate::{
    auth::{Claims, Signature, TokenCheckConfig, TokenChecker, TokenRejection, ADMIN_SCOPE},
    cognito::http::https_client,
    deadline::{Deadline, MARGIN as DEADLINE_MARGIN},
    domain::{
        AccessToken, ATTRIBUTE_NAME_MAX_CHARS, CLIENT_METADATA_MAX_CHARS,
        CLIENT_METADATA_MAX_TOTAL_BYTES, CODE_MAX_CHARS,
    },
    error::{CognitoError, Error, ErrorKind, FieldViolation},
    limits::{Call, FailureMode, Limit, Limits, LimitsConfig, RedisConfig, RedisUrl, Refusal},
    rpc::Operation,
    status::{
        COGNITO_DOMAIN, IN_PROGRESS_RETRY_DELAY, KEYS_MIN_RETRY_DELAY, LIMITS_RETRY_DELAY,
        OVERLOAD_RETRY_DELAY, SERVICE_DOMAIN,
    },
    telemetry::metrics::metrics,
};
