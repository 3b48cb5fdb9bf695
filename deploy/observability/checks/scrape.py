"""A real scrape of `/metrics` (Prometheus text format 0.0.4) against the
metrics contract, the names the dashboard and the rules read, and the calls
the live check made (deploy/observability/checks/live.sh)."""

import math
import re

import contract
import promql

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')

# What the live check's calls leave behind (live.sh):
#   GetUserAttributeVerificationCode phone_number, then email: 2 OK, 2 codes;
#   VerifyUserAttribute: a wrong code (Cognito's CodeMismatchException), the
#   right code (OK, phone_number verified), no token (refused:
#   missing_token), a code with a space (refused: invalid_request);
#   GetVerificationStatus: OK;
#   health and reflection calls, which are not counted. The SMS went to the
#   demo user's +1 206 number (US), under a daily limit of 100 and no Redis:
#   this replica counted it. Cognito's GetUser was called three times: for
#   the number before the SMS (the guard), for its country after it was
#   verified, and for the status.
GET, VERIFY = "GetUserAttributeVerificationCode", "VerifyUserAttribute"
STATUS = "GetVerificationStatus"
EXPECTED = [
    ("grpc_server_handled_total", {"grpc_method": STATUS, "grpc_code": "OK"}, 1),
    ("cognito_verify_cognito_requests_total", {"operation": "GetUser", "outcome": "ok"}, 3),
    ("grpc_server_started_total", {"grpc_method": GET}, 2),
    ("grpc_server_started_total", {"grpc_method": VERIFY}, 4),
    ("grpc_server_handled_total", {"grpc_method": GET, "grpc_code": "OK"}, 2),
    ("grpc_server_handled_total", {"grpc_method": VERIFY, "grpc_code": "OK"}, 1),
    ("grpc_server_handled_total", {"grpc_method": VERIFY, "grpc_code": "InvalidArgument"}, 2),
    ("grpc_server_handled_total", {"grpc_method": VERIFY, "grpc_code": "Unauthenticated"}, 1),
    ("grpc_server_handling_seconds_count", {"grpc_method": GET}, 2),
    ("grpc_server_handling_seconds_count", {"grpc_method": VERIFY}, 4),
    ("cognito_verify_cognito_requests_total", {"operation": GET, "outcome": "ok"}, 2),
    ("cognito_verify_cognito_requests_total", {"operation": VERIFY, "outcome": "ok"}, 1),
    (
        "cognito_verify_cognito_requests_total",
        {"operation": VERIFY, "outcome": "CodeMismatchException"},
        1,
    ),
    ("cognito_verify_cognito_request_duration_seconds_count", {"operation": GET}, 2),
    ("cognito_verify_cognito_request_duration_seconds_count", {"operation": VERIFY}, 2),
    ("cognito_verify_rejected_total", {"reason": "missing_token"}, 1),
    ("cognito_verify_rejected_total", {"reason": "invalid_request"}, 1),
    ("cognito_verify_codes_sent_total", {"medium": "sms"}, 1),
    ("cognito_verify_codes_sent_total", {"medium": "email"}, 1),
    ("cognito_verify_attributes_verified_total", {"attribute": "phone_number"}, 1),
    ("cognito_verify_sms_codes_sent_total", {"country": "US"}, 1),
    ("cognito_verify_sms_verified_total", {"country": "US"}, 1),
    ("cognito_verify_sms_daily_sent", {}, 1),
    ("cognito_verify_sms_daily_limit", {}, 100),
    ("cognito_verify_in_flight", {}, 0),
    ("cognito_verify_connections_refused_total", {}, 0),
    # Nothing of these calls is refused, ended or held: every message was
    # released once its handler ran.
    ("cognito_verify_request_buffered_bytes", {}, 0),
    # One pool, its keys fetched once and kept.
    ("cognito_verify_jwks_fetches_total", {"outcome": "ok"}, 1),
    ("cognito_verify_jwks_fetches_total", {"outcome": "refused"}, 0),
    ("cognito_verify_jwks_stale_verifications_total", {}, 0),
    ("cognito_verify_streams_ended_total", {"reason": "read_timeout"}, 0),
    ("cognito_verify_streams_ended_total", {"reason": "deadline"}, 0),
    ("cognito_verify_listener_connections_refused_total", {}, 0),
]


def unescape(value):
    return value.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")


class Scrape:
    """The families (TYPE lines) and samples of a text-format scrape."""

    def __init__(self, text):
        self.types, self.samples, self.problems = {}, [], []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            if line.startswith("#"):
                parts = line.split(None, 3)
                if len(parts) >= 4 and parts[1] == "TYPE":
                    self.types[parts[2]] = parts[3].strip()
                continue
            m = _SAMPLE.match(line)
            if m is None:
                self.problems.append(f"line {n} is not a sample: {line!r}")
                continue
            labels = {k: unescape(v) for k, v in _LABEL.findall(m.group(3) or "")}
            self.samples.append((m.group(1), labels, float(m.group(4))))

    def family(self, name):
        """The TYPE'd family a sample name belongs to."""
        if name in self.types:
            return name
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        return base if self.types.get(base) in ("histogram", "summary") else None

    def series(self, name, **match):
        return [
            (labels, value)
            for n, labels, value in self.samples
            if n == name and all(labels.get(k) == v for k, v in match.items())
        ]


def check_contract(scrape):
    """Every family of the contract, with its type, exactly its labels,
    values those labels take, and the contract's buckets; nothing else
    beside them carries a label outside the contract. A family that only
    an event creates (contract.EVENT_ONLY) may be absent altogether."""
    problems = list(scrape.problems)
    for fam, (kind, labels) in contract.FAMILIES.items():
        if fam in contract.EVENT_ONLY and fam not in scrape.types and not scrape.series(fam):
            continue
        if scrape.types.get(fam) != kind:
            problems.append(f"{fam}: TYPE {scrape.types.get(fam)}, not {kind}")
            continue
        names = [fam] if kind != "histogram" else [f"{fam}_bucket", f"{fam}_sum", f"{fam}_count"]
        for name in names:
            found = scrape.series(name)
            if not found:
                problems.append(f"{name}: no series")
            for series_labels, _ in found:
                want = labels | ({"le"} if name.endswith("_bucket") else set())
                if set(series_labels) != want:
                    problems.append(f"{name}: labels {sorted(series_labels)}, not {sorted(want)}")
                for label, value in series_labels.items():
                    why = contract.value_problem(label, value, family=fam)
                    if why:
                        problems.append(f"{name}: {why}")
        if fam in contract.BUCKETS:
            want = contract.BUCKETS[fam] + [math.inf]
            per_series = {}
            for labels_, _ in scrape.series(f"{fam}_bucket"):
                key = tuple(sorted((k, v) for k, v in labels_.items() if k != "le"))
                per_series.setdefault(key, []).append(float(labels_["le"]))
            for key, les in per_series.items():
                if sorted(les) != want:
                    problems.append(f"{fam}{dict(key)}: buckets {sorted(les)}, not {want}")
    return problems


def check_at_start(scrape):
    """The series the binary creates at start (contract.AT_START): one per
    value, whatever has happened."""
    problems = []
    for fam, by_label in contract.AT_START.items():
        for label, values in by_label.items():
            present = {labels.get(label) for labels, _ in scrape.series(fam)}
            missing = sorted(values - present)
            if missing:
                problems.append(f"{fam}: no series for {label} {', '.join(missing)}")
    return problems


def check_used(scrape, used):
    """Every metric name the dashboard and the rules read is in the scrape
    (a histogram's _bucket/_sum/_count by its family), with the type its
    use implies. Families only an event creates may be absent."""
    problems = []
    for name in sorted(used - promql.SYNTHETIC):
        fam = scrape.family(name)
        if fam is None and contract.family_of(name)[0] in contract.EVENT_ONLY:
            continue
        if fam is None:
            problems.append(f"{name} is read by the dashboard or the rules but not in the scrape")
            continue
        kind = scrape.types[fam]
        if name.endswith("_total") and kind != "counter":
            problems.append(f"{name} is read as a counter but is a {kind}")
        elif name.endswith("_bucket") and kind != "histogram":
            problems.append(f"{name} is read as histogram buckets but {fam} is a {kind}")
        elif not promql.counter_like(name) and kind != "gauge":
            problems.append(f"{name} is read as a gauge but is a {kind}")
    return problems


def check_calls(scrape, version, not_after, secrets):
    """The counts the live check's calls leave, only the verification
    service counted, the build's version, the served certificate's notAfter,
    and none of the call's secrets anywhere in the scrape."""
    problems = []
    for name, match, want in EXPECTED:
        found = scrape.series(name, **match)
        got = sum(v for _, v in found)
        if got != want:
            problems.append(f"{name}{match}: {got:g}, expected {want} after the live calls")
    for name, labels, _ in scrape.samples:
        if name.startswith("grpc_server_") and labels.get("grpc_service") != contract.SERVICE:
            problems.append(f"{name}{labels}: only {contract.SERVICE} is counted")
    info = scrape.series("cognito_verify_build_info")
    if [(labels.get("version"), value) for labels, value in info] != [(version, 1.0)]:
        problems.append(f"cognito_verify_build_info: {info}, expected version={version} = 1")
    expiry = scrape.series("cognito_verify_tls_certificate_expiry_timestamp_seconds")
    if [value for _, value in expiry] != [float(not_after)]:
        problems.append(
            f"cognito_verify_tls_certificate_expiry_timestamp_seconds: {expiry}, "
            f"expected the certificate's notAfter {not_after}"
        )
    for label, secret in secrets:
        for name, labels, _ in scrape.samples:
            if any(secret in v for v in labels.values()):
                problems.append(f"{name}{labels}: a label holds the {label}")
    return problems
