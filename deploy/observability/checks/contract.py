"""The metrics contract of `/metrics`: the families, their types, their
labels and the values those labels take (docs/operations.md, "Metrics").
The dashboard and the rules are checked against it statically, and a real
scrape is checked against it by the live part of scripts/check-observability.
"""

import re

from promql import SYNTHETIC

SERVICE = "cognito.verify.v1.UserAttributeVerificationService"
METHODS = {"GetUserAttributeVerificationCode", "VerifyUserAttribute", "GetVerificationStatus"}
# The Cognito operations the service calls: the two verification calls, and
# GetUser (GetVerificationStatus, and the SMS guard before an SMS is sent).
OPERATIONS = {"GetUserAttributeVerificationCode", "VerifyUserAttribute", "GetUser"}
GRPC = {"grpc_type", "grpc_service", "grpc_method"}

# family: (type, label names)
FAMILIES = {
    "grpc_server_started_total": ("counter", GRPC),
    "grpc_server_handled_total": ("counter", GRPC | {"grpc_code"}),
    "grpc_server_handling_seconds": ("histogram", GRPC),
    "cognito_verify_cognito_requests_total": ("counter", {"operation", "outcome"}),
    "cognito_verify_cognito_request_duration_seconds": ("histogram", {"operation"}),
    "cognito_verify_rejected_total": ("counter", {"reason"}),
    "cognito_verify_in_flight": ("gauge", set()),
    "cognito_verify_codes_sent_total": ("counter", {"medium"}),
    "cognito_verify_attributes_verified_total": ("counter", {"attribute"}),
    "cognito_verify_connections_open": ("gauge", set()),
    "cognito_verify_connections_refused_total": ("counter", set()),
    # 0 without Redis.
    "cognito_verify_limits_fallbacks_total": ("counter", set()),
    "cognito_verify_idempotent_replays_total": ("counter", set()),
    # Only with TLS on.
    "cognito_verify_tls_certificate_expiry_timestamp_seconds": ("gauge", set()),
    "cognito_verify_build_info": ("gauge", {"version"}),
    # Protection: what callers can make the service spend.
    "cognito_verify_jwks_fetches_total": ("counter", {"outcome"}),
    "cognito_verify_jwks_stale_verifications_total": ("counter", set()),
    "cognito_verify_request_buffered_bytes": ("gauge", set()),
    "cognito_verify_streams_ended_total": ("counter", {"reason"}),
    "cognito_verify_listener_connections_refused_total": ("counter", {"listener"}),
    "cognito_verify_log_warnings_suppressed_total": ("counter", set()),
    # The SMS guard (GetUserAttributeVerificationCode for phone_number), by
    # the number's country.
    "cognito_verify_sms_codes_sent_total": ("counter", {"country"}),
    "cognito_verify_sms_verified_total": ("counter", {"country"}),
    "cognito_verify_sms_refusals_total": ("counter", {"country", "reason"}),
    # Sent to a country outside the allow list, because its mode is monitor.
    "cognito_verify_sms_country_monitored_total": ("counter", {"country"}),
    # Counted against the daily limit in the current UTC day: cluster-wide
    # (as this replica last saw it) with Redis, this replica's own without.
    "cognito_verify_sms_daily_sent": ("gauge", set()),
    # 0: no daily limit.
    "cognito_verify_sms_daily_limit": ("gauge", set()),
    "process_cpu_seconds_total": ("counter", set()),
    "process_resident_memory_bytes": ("gauge", set()),
    "process_virtual_memory_bytes": ("gauge", set()),
    "process_open_fds": ("gauge", set()),
    "process_max_fds": ("gauge", set()),
    "process_start_time_seconds": ("gauge", set()),
    "process_threads": ("gauge", set()),
}
BUCKETS = {
    "grpc_server_handling_seconds": [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    "cognito_verify_cognito_request_duration_seconds": [
        0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    ],
}  # fmt: skip
# Cognito's exceptions for its operations (docs/errors.md, the first
# table; GetUser's are among them); any other name is counted as
# OtherException.
COGNITO_EXCEPTIONS = {
    "AliasExistsException", "CodeDeliveryFailureException", "CodeMismatchException",
    "ExpiredCodeException", "ForbiddenException", "InternalErrorException",
    "InvalidEmailRoleAccessPolicyException", "InvalidLambdaResponseException",
    "InvalidParameterException", "InvalidSmsRoleAccessPolicyException",
    "InvalidSmsRoleTrustRelationshipException", "LimitExceededException",
    "NotAuthorizedException", "OperationNotEnabledException",
    "PasswordResetRequiredException", "ResourceNotFoundException", "TooManyRequestsException",
    "UnexpectedLambdaException", "UserLambdaValidationException", "UserNotConfirmedException",
    "UserNotFoundException", "OtherException",
}  # fmt: skip
OUTCOMES = {"ok", "timeout", "unreachable", "unparseable_response", "internal"}
# Label values: a closed set, or a pattern for open ones (Cognito's
# exception names; rejection reasons, which later builds extend). The
# dashboard and the rules may name only the outcomes above (a misspelt
# exception would match nothing, silently); a scrape may hold any name of
# the pattern.
VALUES = {
    "grpc_type": {"unary"},
    "grpc_service": {SERVICE},
    "grpc_method": METHODS,
    "operation": OPERATIONS,
    "grpc_code": {
        "OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
        "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
        "Aborted", "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss",
        "Unauthenticated",
    },
    "medium": {"email", "sms", "unknown"},
    "attribute": {"email", "phone_number", "other"},
}  # fmt: skip
PATTERNS = {
    "outcome": re.compile(
        r"^(ok|timeout|unreachable|unparseable_response|internal|[A-Z][A-Za-z0-9]*Exception)$"
    ),
    "reason": re.compile(r"^[a-z][a-z0-9_]*$"),
    "version": re.compile(r"^\d+\.\d+\.\d+\S*$"),
    # ISO 3166-1 alpha-2, upper case, or unknown (no number, or one the
    # phone-number library places in no country): bounded by its regions.
    "country": re.compile(r"^([A-Z]{2}|unknown)$"),
}
# Why the SMS guard refuses a send: its ErrorInfo reasons, upper case as
# they are, in cognito_verify_sms_refusals_total (by country); lower case,
# as every reason there, in cognito_verify_rejected_total.
SMS_REASONS = {"SMS_COUNTRY_NOT_ALLOWED", "SMS_DAILY_LIMIT", "SMS_PREFIX_LIMIT"}
# Why the service refuses a call itself (cognito_verify_rejected_total):
# the reasons of this build. A scrape may hold others (a later build's: the
# pattern above); the dashboard and the rules may name only these, and the
# binary creates each one's series at start (AT_START).
REJECTION_REASONS = {
    "rate_limited", "overloaded", "caller_not_allowed", "invalid_request", "missing_token",
    "deadline_too_short", "send_cooldown", "user_send_quota", "user_verify_quota",
    "caller_rate_limited", "malformed_token", "token_expired", "not_an_access_token",
    "missing_scope", "issuer_not_allowed", "bad_signature", "limits_unavailable",
    "request_in_progress", "unknown_user_pool", "keys_unavailable", "message_too_large",
    "request_buffer_full", "request_read_timeout",
} | {reason.lower() for reason in SMS_REASONS}  # fmt: skip
# A label whose values are a closed set of its own in one family, instead
# of the label's values in general (VALUES, PATTERNS).
FAMILY_VALUES = {
    # refused: due, but not started (fetches for pools without cached keys
    # are rationed); unknown_pool: the pool does not exist.
    "cognito_verify_jwks_fetches_total": {"outcome": {"ok", "unknown_pool", "failed", "refused"}},
    # read_timeout: the request message did not arrive in time; deadline:
    # the caller's grpc-timeout passed.
    "cognito_verify_streams_ended_total": {"reason": {"read_timeout", "deadline"}},
    "cognito_verify_listener_connections_refused_total": {"listener": {"health", "admin"}},
    "cognito_verify_sms_refusals_total": {"reason": SMS_REASONS},
}
# Families whose series appear with their first event, and which the live
# check's calls cause none of (a refusal by the SMS guard, a send in monitor
# mode): labelled by country, they have no series at start, and
# prometheus-client does not expose a family without series at all. A
# scrape may lack them; when present they keep the contract. Alerts count
# the guard's refusals on cognito_verify_rejected_total, whose reasons exist
# at start.
EVENT_ONLY = {"cognito_verify_sms_refusals_total", "cognito_verify_sms_country_monitored_total"}
# Series the binary creates at start, one per value, before anything
# happens: so that an alert's increase() counts the very first event (a
# series that appears with 1 is no increase).
AT_START = {
    **{fam: by_label for fam, by_label in FAMILY_VALUES.items() if fam not in EVENT_ONLY},
    "cognito_verify_rejected_total": {"reason": REJECTION_REASONS},
}
# Labels Prometheus adds to every series of a target (kubernetes_sd, the
# Prometheus Operator): never the service's own.
TARGET_LABELS = {"job", "instance", "namespace", "pod", "service", "endpoint", "container"}


def family_of(name):
    """(family, suffix) of a sample name: histograms' _bucket/_sum/_count
    belong to the histogram's family."""
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and FAMILIES.get(base, ("",))[0] == "histogram":
            return base, suffix
    return name, ""


def labels_of(name):
    """Label names a sample of `name` may carry, or None if unknown."""
    fam, suffix = family_of(name)
    if fam not in FAMILIES:
        return None
    return FAMILIES[fam][1] | ({"le"} if suffix == "_bucket" else set())


def value_problem(label, value, queried=False, family=None):
    """Why `value` is not a value of `label` (in `family`), or None.
    `queried`: a value a query names, held to the outcomes and rejection
    reasons this contract knows."""
    closed = FAMILY_VALUES.get(family, {}).get(label)
    if closed is not None:
        if value not in closed:
            return f"{label}={value!r} is not one of {sorted(closed)} ({family})"
        return None
    if queried and label == "outcome" and value not in OUTCOMES | COGNITO_EXCEPTIONS:
        return f"outcome={value!r} is neither a transport outcome nor a known Cognito exception"
    if queried and label == "reason" and value not in REJECTION_REASONS:
        return f"reason={value!r} is not a rejection reason of this contract"
    if label == "reason" and value in REJECTION_REASONS:
        return None  # named by this contract (the SMS guard's are upper case)
    if label in VALUES and value not in VALUES[label]:
        return f"{label}={value!r} is not one of {sorted(VALUES[label])}"
    if label in PATTERNS and not PATTERNS[label].match(value):
        return f"{label}={value!r} does not match {PATTERNS[label].pattern}"
    return None


def _alternatives(regex):
    """The literal alternatives of `a|b|c`, or None for any other regex."""
    if re.fullmatch(r"[A-Za-z0-9_.]+(\|[A-Za-z0-9_.]+)*", regex):
        return regex.split("|")
    return None


def check_matchers(selector):
    """The selector names a contract metric, with labels it has and values
    they take. Target labels and Grafana's variables are not checked."""
    if selector.name in SYNTHETIC:
        return []
    allowed = labels_of(selector.name)
    if allowed is None:
        return [f"{selector.name} is not a metric of the contract"]
    problems = []
    for label, op, value in selector.matchers:
        if label in TARGET_LABELS or label == "__name__":
            continue
        if label not in allowed:
            problems.append(f"{selector.name} has no label {label}")
            continue
        values = [value] if op in ("=", "!=") else _alternatives(value) or []
        for v in values:
            why = value_problem(label, v, queried=True, family=family_of(selector.name)[0])
            if why:
                problems.append(f"{selector}: {why}")
    return problems


def check_grouping(selectors, grouping):
    """Labels in by / on / ignoring clauses exist on the metrics read."""
    known = set(TARGET_LABELS)
    for s in selectors:
        known |= labels_of(s.name) or set()
    return [
        f"groups or matches on {label}, which no metric read has"
        for label in sorted(grouping - known)
    ]
