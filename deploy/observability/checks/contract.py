"""The metrics contract of `/metrics`: the families, their types, their
labels and the values those labels take (the main README's metric table).
The dashboard and the rules are checked against it statically, and a real
scrape is checked against it by the live part of scripts/check-observability.
"""

import re

from promql import SYNTHETIC

SERVICE = "cognito.verify.v1.UserAttributeVerificationService"
METHODS = {"GetUserAttributeVerificationCode", "VerifyUserAttribute"}
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
# Cognito's exceptions for the two operations (the main README's errors
# table); any other name is counted as OtherException.
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
    "operation": METHODS,
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


def value_problem(label, value, queried=False):
    """Why `value` is not a value of `label`, or None. `queried`: a value a
    query names, held to the outcomes this contract knows."""
    if queried and label == "outcome" and value not in OUTCOMES | COGNITO_EXCEPTIONS:
        return f"outcome={value!r} is neither a transport outcome nor a known Cognito exception"
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
            why = value_problem(label, v, queried=True)
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
