//! The integration tests: one binary with one module per behaviour, so the
//! library and the AWS SDK are linked once rather than once per file
//! (`cargo test --test suite`; `cargo test --test suite tls::` runs a module).
//! Every test starts real servers on `127.0.0.1:0`, in this process or as
//! child processes of the built binary.
//!
//! - [`common`]: the harness: a scripted Cognito endpoint, the facade
//!   in-process ([`common::Facade`], [`common::serve_config`]), the binary
//!   as a child process ([`common::binary`], [`common::child`]), the embedded
//!   backend and the facade wired to it ([`common::stack`]), certificates
//!   ([`common::certs`]), a `redis-server` per test ([`common::redis`]), and,
//!   shared with the bench, the two requests ([`common::requests`]) and the
//!   `serve` flags every facade under test starts with ([`common::flags`]).
//!
//! What a caller sends, and what comes back:
//! - [`validation`]: requests Cognito would reject are refused first;
//! - [`wire_request`]: what the facade sends to Cognito, and how the answers
//!   come back;
//! - [`error_mapping`], [`fault_injection`], [`status_properties`]: the
//!   error table, against a scripted endpoint, through the embedded
//!   backend's faults, and as properties of the one mapping;
//! - [`end_to_end`]: the whole flow against the embedded backend.
//!
//! What stands in front of Cognito:
//! - [`protection`]: the token check, one replica's limits, idempotent sends;
//! - [`protection_redis`]: the same across replica processes sharing Redis;
//! - [`limits_redis`]: the limits' own behaviour on a real Redis;
//! - [`sms_guard`]: the SMS guard: countries, the daily and prefix limits.
//!
//! What a caller can ask:
//! - [`verification_status`]: GetVerificationStatus, the limits read.
//!
//! The server and its transport:
//! - [`server`]: health, reflection, admission control, graceful shutdown;
//! - [`connections`]: connection bounds and lifetimes on the wire;
//! - [`tls`]: TLS and mTLS, rotation, the plaintext health listener.
//!
//! The binary as it is deployed (child processes):
//! - [`process`]: exit codes, signals, environment, what it logs;
//! - [`tls_process`]: TLS configuration errors and their log lines;
//! - [`telemetry`]: exported spans, `/metrics`, the audit trail;
//! - [`container_runtime`]: read-only, non-root, no credentials.
//!
//! And:
//! - [`emulator_sdk`]: the embedded backend answers the AWS SDK like Cognito;
//! - [`hostile`]: the service tried as an attacker would.
//!
//! # One process for all
//!
//! The tests run concurrently in this one process, so what is process-wide
//! is shared, and each test copes with it where it is:
//!
//! - **the metrics registry**: a test that reads it in-process compares
//!   its own before and after and asserts lower bounds (`tls`,
//!   `hostile::edge`); exact counts come from a child process's `/metrics`
//!   (`telemetry`, `hostile::edge`);
//! - **the `static` warning throttles** and **the global tracing
//!   subscriber**: a test that counts log lines reads a child process's log;
//!   the one global subscriber (`limits_redis`, set once) keeps only the
//!   library's events (the Redis client emits none), so the other tests'
//!   HTTP/2 and SDK events cost them nothing;
//! - **the environment**: no test changes its own; children get theirs
//!   (`binary::command` clears it), and `limits_redis` re-runs this binary
//!   for a test that needs `SSL_CERT_FILE`;
//! - **descriptors and memory**: a test that measures them does it on a
//!   child process (`hostile::edge`);
//! - **the CPU**: any test may run beside a flood or a property test, so
//!   a test of a deadline leaves it to the service rather than race the
//!   client's own timer ([`common::Facade::deadline_client`]), and the
//!   replicas of `protection_redis` give Redis a second for a decision
//!   rather than fall back to deciding alone.

mod common;

mod connections;
mod container_runtime;
mod emulator_sdk;
mod end_to_end;
mod error_mapping;
mod fault_injection;
mod hostile;
mod limits_redis;
mod process;
mod protection;
mod protection_redis;
mod server;
mod sms_guard;
mod status_properties;
mod telemetry;
mod tls;
mod tls_process;
mod validation;
mod verification_status;
mod wire_request;
