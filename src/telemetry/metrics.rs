//! The service's Prometheus metrics: one registry for the process, with
//! every family the metric table of docs/operations.md lists. Label values
//! come from closed sets (operations, gRPC codes, reasons, media, attribute
//! names, Cognito exception names): never a user id, a token, a code or a
//! destination.
//!
//! The series of the hot path (RPCs started and handled per method and code,
//! latency per method, Cognito calls that succeed) are created at start-up,
//! so recording one is an atomic add on a counter already at hand.

use std::{
    sync::LazyLock,
    time::{Duration, Instant},
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use tonic::Code;

use super::process::ProcessCollector;
use crate::rpc::{CognitoOperation, Operation};

/// `grpc_service` of every series: the only service counted.
pub const GRPC_SERVICE: &str = "cognito.verify.v1.UserAttributeVerificationService";
/// go-grpc-prometheus' latency buckets, in seconds.
const RPC_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Cognito latency buckets, in seconds.
const COGNITO_BUCKETS: [f64; 10] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The gRPC codes, in numeric order, as Go spells them (go-grpc-prometheus).
const CODES: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

/// `reason` values of `cognito_verify_rejected_total` known at build time;
/// their series exist from the start (so that `increase()` sees the first).
const REJECTION_REASONS: &[&str] = &[
    "rate_limited",
    "overloaded",
    "caller_not_allowed",
    "invalid_request",
    "missing_token",
    "deadline_too_short",
    "send_cooldown",
    "user_send_quota",
    "user_verify_quota",
    "caller_rate_limited",
    "malformed_token",
    "token_expired",
    "not_an_access_token",
    "missing_scope",
    "issuer_not_allowed",
    "bad_signature",
    "limits_unavailable",
    "request_in_progress",
    "unknown_user_pool",
    "keys_unavailable",
    "message_too_large",
    "request_buffer_full",
    "request_read_timeout",
    "sms_country_not_allowed",
    "sms_daily_limit",
    "sms_prefix_limit",
];
/// Transport outcomes of a Cognito call.
const TRANSPORT_OUTCOMES: &[&str] = &["timeout", "unreachable", "unparseable_response", "internal"];

/// Cognito exception names that may appear as an `outcome`; anything else is
/// `OtherException`, so a misbehaving endpoint cannot grow the label set.
const COGNITO_EXCEPTIONS: &[&str] = &[
    "AliasExistsException",
    "CodeDeliveryFailureException",
    "CodeMismatchException",
    "ExpiredCodeException",
    "ForbiddenException",
    "InternalErrorException",
    "InvalidEmailRoleAccessPolicyException",
    "InvalidLambdaResponseException",
    "InvalidParameterException",
    "InvalidSmsRoleAccessPolicyException",
    "InvalidSmsRoleTrustRelationshipException",
    "LimitExceededException",
    "NotAuthorizedException",
    "OperationNotEnabledException",
    "PasswordResetRequiredException",
    "ResourceNotFoundException",
    "TooManyRequestsException",
    "UnexpectedLambdaException",
    "UserLambdaValidationException",
    "UserNotConfirmedException",
    "UserNotFoundException",
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    grpc_type: &'static str,
    grpc_service: &'static str,
    grpc_method: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandledLabels {
    grpc_type: &'static str,
    grpc_service: &'static str,
    grpc_method: &'static str,
    grpc_code: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CognitoLabels {
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MediumLabels {
    medium: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttributeLabels {
    attribute: &'static str,
}

/// A phone number's country: ISO 3166-1 alpha-2 from the phone-number
/// library's closed list of regions, or `unknown`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CountryLabels {
    country: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CountryReasonLabels {
    country: String,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabels {
    listener: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
}

/// The series of one RPC, created up front.
#[derive(Debug)]
struct RpcSeries {
    started: Counter,
    handled: [Counter; 17],
    handling: Histogram,
}

/// The series of one Cognito operation.
#[derive(Debug)]
struct CognitoSeries {
    /// `ok`, every known exception, the transport outcomes, `OtherException`.
    outcomes: Vec<(&'static str, Counter)>,
    duration: Histogram,
}

/// Counters of a closed label set, looked up without a lock.
#[derive(Debug)]
struct Closed(Vec<(&'static str, Counter)>);

impl Closed {
    fn get(&self, value: &str) -> Option<&Counter> {
        self.0.iter().find(|(v, _)| *v == value).map(|(_, c)| c)
    }
}

/// Every family, and the registry that exposes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    rpc: [RpcSeries; 3],
    cognito: [CognitoSeries; 3],
    rejected: Family<ReasonLabels, Counter>,
    rejected_known: Closed,
    in_flight: Gauge,
    codes_sent: Closed,
    verified: Closed,
    connections_open: Gauge,
    connections_refused: Counter,
    replays: Counter,
    /// No series until TLS is on: a plaintext deployment shows no expiry.
    tls_expiry: Family<Vec<(&'static str, &'static str)>, Gauge>,
    tls_reloads: Family<ReloadLabels, Counter>,
    jwks_fetches: Closed,
    jwks_stale: Counter,
    buffered_bytes: Gauge,
    streams_ended: Closed,
    listener_refused: Closed,
    warnings_suppressed: Counter,
    sms_sent: Family<CountryLabels, Counter>,
    sms_verified: Family<CountryLabels, Counter>,
    sms_refusals: Family<CountryReasonLabels, Counter>,
    sms_monitored: Family<CountryLabels, Counter>,
}

/// Outcomes of a user pool's key-set fetch: `refused` is a fetch that was
/// due but not started, because the fetches of pools without keys are
/// rationed (`--jwks-fetches-per-sec`).
pub const JWKS_FETCH_OUTCOMES: [&str; 4] = ["ok", "unknown_pool", "failed", "refused"];
/// Why the server ended a stream on its own.
pub const STREAM_END_REASONS: [&str; 2] = ["read_timeout", "deadline"];
/// The listeners besides the gRPC port, whose refusals are counted apart.
pub const SIDE_LISTENERS: [&str; 2] = ["health", "admin"];

/// A family of one label whose values are all created up front.
fn closed_family<
    L: EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug + Send + Sync + 'static,
>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    values: &[&'static str],
    labels: impl Fn(&'static str) -> L,
) -> Closed {
    let family = Family::<L, Counter>::default();
    let closed = Closed(
        values
            .iter()
            .map(|&v| (v, family.get_or_create(&labels(v)).clone()))
            .collect(),
    );
    registry.register(name, help, family);
    closed
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

fn index(op: Operation) -> usize {
    match op {
        Operation::GetUserAttributeVerificationCode => 0,
        Operation::VerifyUserAttribute => 1,
        Operation::GetVerificationStatus => 2,
    }
}

fn cognito_index(op: CognitoOperation) -> usize {
    match op {
        CognitoOperation::GetUserAttributeVerificationCode => 0,
        CognitoOperation::VerifyUserAttribute => 1,
        CognitoOperation::GetUser => 2,
    }
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::default();
        let started = Family::<RpcLabels, Counter>::default();
        let handled = Family::<HandledLabels, Counter>::default();
        let handling = Family::<RpcLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(RPC_BUCKETS)) as fn() -> Histogram,
        );
        let cognito_outcomes = Family::<CognitoLabels, Counter>::default();
        let cognito_duration = Family::<OperationLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(COGNITO_BUCKETS)) as fn() -> Histogram,
        );
        let rejected = Family::<ReasonLabels, Counter>::default();
        let in_flight = Gauge::default();
        let connections_open = Gauge::default();
        let connections_refused = Counter::default();
        let replays = Counter::default();
        let tls_expiry = Family::<Vec<(&'static str, &'static str)>, Gauge>::default();
        let tls_reloads = Family::<ReloadLabels, Counter>::default();
        let build_info = Family::<VersionLabels, Gauge>::default();
        build_info
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);

        let rpc = Operation::ALL.map(|op| {
            let labels = RpcLabels {
                grpc_type: "unary",
                grpc_service: GRPC_SERVICE,
                grpc_method: op.as_str(),
            };
            RpcSeries {
                started: started.get_or_create(&labels).clone(),
                handled: CODES.map(|grpc_code| {
                    handled
                        .get_or_create(&HandledLabels {
                            grpc_type: "unary",
                            grpc_service: GRPC_SERVICE,
                            grpc_method: op.as_str(),
                            grpc_code,
                        })
                        .clone()
                }),
                handling: handling.get_or_create(&labels).clone(),
            }
        });
        let cognito = CognitoOperation::ALL.map(|op| CognitoSeries {
            outcomes: ["ok", "OtherException"]
                .iter()
                .chain(COGNITO_EXCEPTIONS)
                .chain(TRANSPORT_OUTCOMES)
                .map(|&outcome| {
                    let labels = CognitoLabels {
                        operation: op.as_str(),
                        outcome,
                    };
                    (outcome, cognito_outcomes.get_or_create(&labels).clone())
                })
                .collect(),
            duration: cognito_duration
                .get_or_create(&OperationLabels {
                    operation: op.as_str(),
                })
                .clone(),
        });
        let rejected_known = Closed(
            REJECTION_REASONS
                .iter()
                .map(|&reason| {
                    (
                        reason,
                        rejected.get_or_create(&ReasonLabels { reason }).clone(),
                    )
                })
                .collect(),
        );
        let codes_sent_series = Family::<MediumLabels, Counter>::default();
        let codes_sent = Closed(
            ["email", "sms", "unknown"]
                .map(|medium| {
                    (
                        medium,
                        codes_sent_series
                            .get_or_create(&MediumLabels { medium })
                            .clone(),
                    )
                })
                .to_vec(),
        );
        let verified_series = Family::<AttributeLabels, Counter>::default();
        let verified = Closed(
            ["email", "phone_number", "other"]
                .map(|attribute| {
                    let labels = AttributeLabels { attribute };
                    (attribute, verified_series.get_or_create(&labels).clone())
                })
                .to_vec(),
        );

        registry.register("grpc_server_started", "RPCs started on the server", started);
        registry.register(
            "grpc_server_handled",
            "RPCs completed on the server, by gRPC status code",
            handled,
        );
        registry.register(
            "grpc_server_handling_seconds",
            "Response latency of RPCs handled by the server, in seconds",
            handling,
        );
        registry.register(
            "cognito_verify_cognito_requests",
            "Calls to Cognito, by outcome: ok, the Cognito exception, or a transport failure",
            cognito_outcomes,
        );
        registry.register(
            "cognito_verify_cognito_request_duration_seconds",
            "Duration of calls to Cognito, in seconds",
            cognito_duration,
        );
        registry.register(
            "cognito_verify_rejected",
            "Calls refused by the service itself before reaching Cognito, by reason",
            rejected.clone(),
        );
        registry.register(
            "cognito_verify_in_flight",
            "Verification RPCs in flight",
            in_flight.clone(),
        );
        registry.register(
            "cognito_verify_codes_sent",
            "Verification codes Cognito reported sent, by delivery medium",
            codes_sent_series,
        );
        registry.register(
            "cognito_verify_attributes_verified",
            "Attributes verified (VerifyUserAttribute succeeded), by attribute",
            verified_series,
        );
        registry.register(
            "cognito_verify_connections_open",
            "Open connections on the gRPC port",
            connections_open.clone(),
        );
        registry.register(
            "cognito_verify_connections_refused",
            "Connections to the gRPC port closed at once at a bound (--max-connections, --max-connections-per-ip)",
            connections_refused.clone(),
        );
        registry.register(
            "cognito_verify_tls_certificate_expiry_timestamp_seconds",
            "When the serving TLS certificate expires (notAfter), in Unix seconds",
            tls_expiry.clone(),
        );
        registry.register(
            "cognito_verify_tls_reloads",
            "Changes of the TLS files: applied, or rejected (unusable; the previous files stay)",
            tls_reloads.clone(),
        );
        registry.register(
            "cognito_verify_idempotent_replays",
            "Sends answered from the record of an earlier send with the same request_id (nothing sent)",
            replays.clone(),
        );
        registry.register_collector(Box::new(LimitFallbacks));
        registry.register(
            "cognito_verify_build_info",
            "The build: always 1, with the version as a label",
            build_info,
        );
        registry.register_collector(Box::new(ProcessCollector::new()));
        let jwks_fetches = closed_family(
            &mut registry,
            "cognito_verify_jwks_fetches",
            "Fetches of user pools' signing keys (JWKS), by outcome: ok, unknown_pool (the pool does not exist), failed, refused (due but not started: fetches for pools without keys are rationed)",
            &JWKS_FETCH_OUTCOMES,
            |outcome| OutcomeLabels { outcome },
        );
        let jwks_stale = Counter::default();
        registry.register(
            "cognito_verify_jwks_stale_verifications",
            "Tokens verified with signing keys past their refresh age, because the key set could not be refreshed (within --jwks-max-stale-secs)",
            jwks_stale.clone(),
        );
        let buffered_bytes = Gauge::default();
        registry.register(
            "cognito_verify_request_buffered_bytes",
            "Bytes of requests (headers and messages) held for verification RPCs, from arrival until answered (bounded by --max-buffered-request-bytes)",
            buffered_bytes.clone(),
        );
        let streams_ended = closed_family(
            &mut registry,
            "cognito_verify_streams_ended",
            "Streams the server ended on its own, by reason: read_timeout (the request message did not arrive in time) or deadline (the caller's grpc-timeout passed)",
            &STREAM_END_REASONS,
            |reason| ReasonLabels { reason },
        );
        let listener_refused = closed_family(
            &mut registry,
            "cognito_verify_listener_connections_refused",
            "Connections to the health or admin listener closed at once at their bound",
            &SIDE_LISTENERS,
            |listener| ListenerLabels { listener },
        );
        let warnings_suppressed = Counter::default();
        registry.register(
            "cognito_verify_log_warnings_suppressed",
            "Warnings that requests can trigger, not logged because the same warning was logged within its interval",
            warnings_suppressed.clone(),
        );
        let sms_sent = Family::<CountryLabels, Counter>::default();
        registry.register(
            "cognito_verify_sms_codes_sent",
            "Verification codes Cognito sent by SMS, by the number's country",
            sms_sent.clone(),
        );
        let sms_verified = Family::<CountryLabels, Counter>::default();
        registry.register(
            "cognito_verify_sms_verified",
            "Phone numbers verified, by the number's country",
            sms_verified.clone(),
        );
        let sms_refusals = Family::<CountryReasonLabels, Counter>::default();
        registry.register(
            "cognito_verify_sms_refusals",
            "SMS codes the SMS guard refused before any send, by country and reason",
            sms_refusals.clone(),
        );
        let sms_monitored = Family::<CountryLabels, Counter>::default();
        registry.register(
            "cognito_verify_sms_country_monitored",
            "SMS codes sent to numbers outside the allowed countries because the mode is monitor",
            sms_monitored.clone(),
        );
        registry.register_collector(Box::new(SmsDaily));
        Self {
            registry,
            rpc,
            cognito,
            rejected,
            rejected_known,
            in_flight,
            codes_sent,
            verified,
            connections_open,
            connections_refused,
            replays,
            tls_expiry,
            tls_reloads,
            jwks_fetches,
            jwks_stale,
            buffered_bytes,
            streams_ended,
            listener_refused,
            warnings_suppressed,
            sms_sent,
            sms_verified,
            sms_refusals,
            sms_monitored,
        }
    }

    /// Cognito sent a code by SMS to a number of `country` (a code of the
    /// phone-number library's closed list, or `unknown`).
    pub fn sms_sent(&self, country: &str) {
        self.sms_sent.get_or_create(&country_labels(country)).inc();
    }

    /// A phone number of `country` was verified.
    pub fn sms_verified(&self, country: &str) {
        self.sms_verified
            .get_or_create(&country_labels(country))
            .inc();
    }

    /// The SMS guard refused a code to a number of `country` for `reason`
    /// (`SMS_COUNTRY_NOT_ALLOWED`, `SMS_DAILY_LIMIT`, `SMS_PREFIX_LIMIT`).
    pub fn sms_refused(&self, country: &str, reason: &'static str) {
        self.sms_refusals
            .get_or_create(&CountryReasonLabels {
                country: country_labels(country).country,
                reason,
            })
            .inc();
    }

    /// A code went to a number outside the allowed countries (`monitor`).
    pub fn sms_monitored(&self, country: &str) {
        self.sms_monitored
            .get_or_create(&country_labels(country))
            .inc();
    }

    /// The count of `family`'s series with `country`, for tests.
    pub fn sms_count(&self, family: &str, country: &str) -> u64 {
        let labels = country_labels(country);
        match family {
            "sent" => self.sms_sent.get_or_create(&labels).get(),
            "verified" => self.sms_verified.get_or_create(&labels).get(),
            "monitored" => self.sms_monitored.get_or_create(&labels).get(),
            _ => 0,
        }
    }

    /// Where the SMS daily count comes from, and the daily limit (0: off):
    /// set when a server's limits are built (the last one built wins).
    pub fn sms_daily_from(&self, limit: u32, source: impl Fn() -> i64 + Send + Sync + 'static) {
        *SMS_DAILY_SOURCE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((limit, Box::new(source)));
    }

    /// A user pool's key-set fetch ended (or was refused): one of
    /// [`JWKS_FETCH_OUTCOMES`].
    pub fn jwks_fetch(&self, outcome: &'static str) {
        if let Some(counter) = self.jwks_fetches.get(outcome) {
            counter.inc();
        }
    }

    /// The count of key-set fetches with `outcome` so far.
    pub fn jwks_fetches(&self, outcome: &str) -> u64 {
        self.jwks_fetches.get(outcome).map_or(0, Counter::get)
    }

    /// A token was verified with keys past their refresh age.
    pub fn jwks_stale_verification(&self) {
        self.jwks_stale.inc();
    }

    /// The count of tokens verified with stale keys so far.
    pub fn jwks_stale_verifications(&self) -> u64 {
        self.jwks_stale.get()
    }

    /// `bytes` more (or, negative, fewer) request bytes are buffered.
    pub fn request_buffered_bytes(&self, bytes: i64) {
        self.buffered_bytes.inc_by(bytes);
    }

    /// The server ended a stream for `reason`, one of [`STREAM_END_REASONS`].
    pub fn stream_ended(&self, reason: &'static str) {
        if let Some(counter) = self.streams_ended.get(reason) {
            counter.inc();
        }
    }

    /// A connection to `listener` (one of [`SIDE_LISTENERS`]) was refused
    /// at its bound.
    pub fn listener_connection_refused(&self, listener: &'static str) {
        if let Some(counter) = self.listener_refused.get(listener) {
            counter.inc();
        }
    }

    /// `count` warnings were not logged by their throttle.
    pub fn warnings_suppressed(&self, count: u64) {
        self.warnings_suppressed.inc_by(count);
    }

    /// The count of warnings not logged so far.
    pub fn warnings_suppressed_count(&self) -> u64 {
        self.warnings_suppressed.get()
    }

    /// The serving TLS certificate expires at `unix_secs`.
    pub fn tls_certificate_expires(&self, unix_secs: i64) {
        self.tls_expiry.get_or_create(&Vec::new()).set(unix_secs);
    }

    /// The TLS files changed: `applied` or `rejected`.
    pub fn tls_reload(&self, outcome: &'static str) {
        self.tls_reloads
            .get_or_create(&ReloadLabels { outcome })
            .inc();
    }

    /// The counts of TLS reloads so far: (applied, rejected).
    pub fn tls_reloads(&self) -> (u64, u64) {
        let count = |outcome| {
            self.tls_reloads
                .get_or_create(&ReloadLabels { outcome })
                .get()
        };
        (count("applied"), count("rejected"))
    }

    /// An RPC of `op` started.
    pub fn rpc_started(&self, op: Operation) {
        self.rpc[index(op)].started.inc();
    }

    /// An RPC of `op` ended with `code` after `elapsed`.
    pub fn rpc_handled(&self, op: Operation, code: Code, elapsed: Duration) {
        let series = &self.rpc[index(op)];
        let code = usize::try_from(code as i32).unwrap_or(2).min(16);
        series.handled[code].inc();
        series.handling.observe(elapsed.as_secs_f64());
    }

    /// A Cognito call of `op` ended: `outcome` is `ok`, the exception name
    /// or a transport outcome; names this build does not know count as
    /// `OtherException`, so a misbehaving endpoint cannot grow the label set.
    pub fn cognito_call(&self, op: CognitoOperation, outcome: &str, started: Instant) {
        let series = &self.cognito[cognito_index(op)];
        series.duration.observe(started.elapsed().as_secs_f64());
        let known = series.outcomes.iter().find(|(o, _)| *o == outcome);
        let (_, counter) = known.unwrap_or(&series.outcomes[1]);
        counter.inc();
    }

    /// The service refused a call before Cognito, for `reason`.
    pub fn rejected(&self, reason: &'static str) {
        match self.rejected_known.get(reason) {
            Some(counter) => counter.inc(),
            None => self.rejected.get_or_create(&ReasonLabels { reason }).inc(),
        };
    }

    /// Counts an RPC in flight until the guard is dropped.
    pub fn in_flight(&'static self) -> InFlight {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }

    /// Cognito sent a code by `medium` (`email`, `sms` or `unknown`).
    pub fn code_sent(&self, medium: &'static str) {
        if let Some(counter) = self
            .codes_sent
            .get(medium)
            .or(self.codes_sent.get("unknown"))
        {
            counter.inc();
        }
    }

    /// An attribute was verified; names other than email and phone_number
    /// count as `other`.
    pub fn attribute_verified(&self, attribute: &str) {
        if let Some(counter) = self.verified.get(attribute).or(self.verified.get("other")) {
            counter.inc();
        }
    }

    /// A connection opened on the gRPC port; the guard counts it closed.
    pub fn connection_opened(&'static self) -> OpenConnection {
        self.connections_open.inc();
        OpenConnection(&self.connections_open)
    }

    /// A send was answered from its idempotency record.
    pub fn replayed(&self) {
        self.replays.inc();
    }

    /// Where the count of limit decisions made locally (Redis failing)
    /// comes from; set once, when the limits are built.
    pub fn limit_fallbacks_from(&self, source: impl Fn() -> u64 + Send + Sync + 'static) {
        let _ = FALLBACK_SOURCE.set(Box::new(source));
    }

    /// A connection was refused at the bound.
    pub fn connection_refused(&self) {
        self.connections_refused.inc();
    }

    /// The exposition: OpenMetrics text, or the Prometheus text format 0.0.4.
    pub fn encode(&self, openmetrics: bool) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode_registry(&mut out, &self.registry)?;
        if openmetrics {
            prometheus_client::encoding::text::encode_eof(&mut out)?;
            Ok(out)
        } else {
            Ok(super::exposition::to_prometheus_text(&out))
        }
    }
}

/// The count of limit decisions made locally because Redis failed.
static FALLBACK_SOURCE: std::sync::OnceLock<Box<dyn Fn() -> u64 + Send + Sync>> =
    std::sync::OnceLock::new();

/// Exposes [`FALLBACK_SOURCE`] (0 until the limits use Redis).
#[derive(Debug)]
struct LimitFallbacks;

impl prometheus_client::collector::Collector for LimitFallbacks {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::{encoding::EncodeMetric as _, metrics::counter::ConstCounter};
        // 0 until the limits use Redis: the series exists from the start,
        // so that alerts and `increase()` see the first fallback.
        let count = FALLBACK_SOURCE.get().map_or(0, |source| source());
        let counter = ConstCounter::new(count);
        counter.encode(encoder.encode_descriptor(
            "cognito_verify_limits_fallbacks",
            "Limit decisions made with this replica's own state because Redis failed or was too slow",
            None,
            counter.metric_type(),
        )?)
    }
}

/// The label of `country`: the ISO code when it is one (two upper-case
/// letters: the phone-number library gives nothing else), else `unknown`.
fn country_labels(country: &str) -> CountryLabels {
    let iso = country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase());
    CountryLabels {
        country: if iso { country } else { "unknown" }.to_owned(),
    }
}

/// The SMS daily limit and where the day's count comes from.
type DailySource = (u32, Box<dyn Fn() -> i64 + Send + Sync>);
static SMS_DAILY_SOURCE: std::sync::Mutex<Option<DailySource>> = std::sync::Mutex::new(None);

/// Exposes the SMS daily count and limit (both 0 until a server is built).
#[derive(Debug)]
struct SmsDaily;

impl prometheus_client::collector::Collector for SmsDaily {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::{encoding::EncodeMetric as _, metrics::gauge::ConstGauge};
        let (limit, sent) = match &*SMS_DAILY_SOURCE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            Some((limit, source)) => (i64::from(*limit), source()),
            None => (0, 0),
        };
        let gauge = ConstGauge::new(sent);
        gauge.encode(encoder.encode_descriptor(
            "cognito_verify_sms_daily_sent",
            "SMS codes counted against the daily limit in the current UTC day (cluster-wide with Redis, as last seen by this replica)",
            None,
            gauge.metric_type(),
        )?)?;
        let gauge = ConstGauge::new(limit);
        gauge.encode(encoder.encode_descriptor(
            "cognito_verify_sms_daily_limit",
            "The configured SMS codes per UTC day (--sms-daily-limit); 0: off",
            None,
            gauge.metric_type(),
        )?)
    }
}

/// An RPC in flight; decrements the gauge when dropped.
#[derive(Debug)]
pub struct InFlight(&'static Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// An open connection; decrements the gauge when dropped.
#[derive(Debug)]
pub struct OpenConnection(&'static Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}
