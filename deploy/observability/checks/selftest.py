"""The checks' own test: a check that cannot fail proves nothing.

Breaks the good rules, tests, dashboard, PrometheusRule and a synthetic
scrape in known ways and asserts that the matching check reports each. For
the alert tests it goes further, with promtool: each alert made to never
fire must fail its unit tests (so every alert has a real firing case), and
each threshold loosened to always hold must fail them too (so every
threshold has a case that it alone keeps quiet).
"""

import concurrent.futures
import copy
import math
import os
import re
import subprocess
import tempfile

import contract
import dashboard
import rules
import scrape
import yaml

_COMPARISON = re.compile(r"(?<=\s)(>=|<=|==|>|<)\s*([0-9][0-9.]*(?:\s*\*\s*[0-9][0-9.]*)?)")


def _promtool_tests_pass(promtool, rules_doc, alertname=None):
    """Whether the unit tests pass against `rules_doc` (a mutated rules
    file). With `alertname`, only that alert's rules and the test cases that
    assert on it are run: nothing else can notice a change to it."""
    tests = rules.load(rules.TESTS)
    if alertname is not None:
        rules_doc = copy.deepcopy(rules_doc)
        for group in rules_doc["groups"]:
            group["rules"] = [r for r in group["rules"] if r.get("alert") == alertname]
        for case in tests["tests"]:
            case["alert_rule_test"] = [
                t for t in case.get("alert_rule_test") or [] if t["alertname"] == alertname
            ]
        tests["tests"] = [c for c in tests["tests"] if c["alert_rule_test"]]
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, os.path.basename(rules.RULES)), "w", encoding="utf-8") as f:
            yaml.safe_dump(rules_doc, f, sort_keys=False)
        with open(os.path.join(d, "tests.yaml"), "w", encoding="utf-8") as f:
            yaml.safe_dump(tests, f, sort_keys=False)
        out = subprocess.run(
            [promtool, "test", "rules", "tests.yaml"],
            cwd=d,
            capture_output=True,
            text=True,
            check=False,
        )
        return out.returncode == 0


def _each_rule(doc):
    for gi, group in enumerate(doc["groups"]):
        for ri, _ in enumerate(group["rules"]):
            yield gi, ri


def _alert_mutations(doc):
    """(what, mutated rules) that the unit tests must reject."""
    for gi, ri in _each_rule(doc):
        rule = doc["groups"][gi]["rules"][ri]
        where = f"{rule['alert']} ({rule['labels']['severity']})"
        never = copy.deepcopy(doc)
        never["groups"][gi]["rules"][ri]["expr"] = f"({rule['expr']}) unless on () vector(1)"
        yield f"{where} never fires", rule["alert"], never
        for m in _COMPARISON.finditer(rule["expr"]):
            loose = "> -Inf" if m.group(1) in (">", ">=", "==") else "< +Inf"
            expr = rule["expr"][: m.start()] + loose + rule["expr"][m.end() :]
            mutated = copy.deepcopy(doc)
            mutated["groups"][gi]["rules"][ri]["expr"] = expr
            yield f"{where}: `{m.group(0)}` always holds", rule["alert"], mutated


def _first_alert(doc, name):
    return next(r for r in rules.alerts(doc) if r["alert"] == name)


# (what breaks, how, a word the report contains)
RULE_MUTATIONS = [
    (
        "an alert without severity",
        lambda d: _first_alert(d, "CognitoVerifyTargetDown")["labels"].pop("severity"),
        "severity",
    ),
    (
        "an alert without a runbook hint",
        lambda d: _first_alert(d, "CognitoVerifyReplicasLow")["annotations"].pop("runbook"),
        "runbook",
    ),
    (
        "a selector without the job",
        lambda d: _first_alert(d, "CognitoVerifyTargetDown").update(expr="up == 0"),
        'select job="cognito-verify"',
    ),
    (
        "a misspelt gRPC code",
        lambda d: _first_alert(d, "CognitoVerifyServerErrors").update(
            expr=_first_alert(d, "CognitoVerifyServerErrors")["expr"].replace(
                "DeadlineExceeded", "DeadlineExceded"
            )
        ),
        "DeadlineExceded",
    ),
    (
        "a counter read without rate",
        lambda d: _first_alert(d, "CognitoVerifyTargetDown").update(
            expr='cognito_verify_rejected_total{job="cognito-verify"} > 100'
        ),
        "not rate/increase",
    ),
    (
        "a misspelt SMS guard reason (the page would never fire)",
        lambda d: _first_alert(d, "CognitoVerifySmsDailyLimitReached").update(
            expr=_first_alert(d, "CognitoVerifySmsDailyLimitReached")["expr"].replace(
                "sms_daily_limit", "sms_daily_limits"
            )
        ),
        "reason='sms_daily_limits' is not a rejection reason",
    ),
    (
        "a label the metric does not have",
        lambda d: _first_alert(d, "CognitoVerifyTargetDown").update(
            expr='sum by (job, reason) (rate(cognito_verify_codes_sent_total{job="cognito-verify", reason="x"}[5m])) > 1'
        ),
        "no label reason",
    ),
]

DASHBOARD_MUTATIONS = [
    (
        "a query that ignores $namespace",
        lambda d: _target(d, "Requests").update(
            expr='sum(rate(grpc_server_handled_total{job=~"$job"}[$__rate_interval]))'
        ),
        'not narrowed by namespace=~"$namespace"',
    ),
    (
        "an undefined variable",
        lambda d: _target(d, "Threads").update(
            expr='process_threads{job=~"$job",namespace=~"$namespace",cluster=~"$cluster"}'
        ),
        "$cluster",
    ),
    (
        "a metric outside the contract",
        lambda d: _target(d, "Threads").update(
            expr='process_thread{job=~"$job",namespace=~"$namespace"}'
        ),
        "process_thread is not a metric of the contract",
    ),
    (
        "a misspelt Cognito exception",
        lambda d: _target(d, "Throttled by Cognito").update(
            expr=_target(d, "Throttled by Cognito")["expr"].replace(
                "TooManyRequestsException", "TooManyRequestException"
            )
        ),
        "TooManyRequestException",
    ),
    (
        "a rejection reason the contract does not know",
        lambda d: _target(d, "Requests refused before they are read").update(
            expr=_target(d, "Requests refused before they are read")["expr"].replace(
                "request_buffer_full", "buffer_full"
            )
        ),
        "reason='buffer_full' is not a rejection reason",
    ),
    (
        "a quantile not grouped by le",
        lambda d: _target(d, "p99 latency").update(
            expr='histogram_quantile(0.99, sum(rate(grpc_server_handling_seconds_bucket{job=~"$job",namespace=~"$namespace"}[5m])))'
        ),
        "grouped by le",
    ),
    (
        "overlapping panels",
        lambda d: _panel(d, "Threads")["gridPos"].update(x=12),
        "overlaps",
    ),
    (
        "a panel on another data source",
        lambda d: _panel(d, "CPU").update(datasource={"type": "prometheus", "uid": "prod"}),
        "${datasource}",
    ),
    (
        "a family on no panel",
        lambda d: _panel(d, "Threads").update(targets=[]),
        "process_threads is on no panel",
    ),
]


def _panel(dash, title):
    return next(p for p in dashboard.panels(dash) if p.get("title") == title)


def _target(dash, title):
    return _panel(dash, title)["targets"][0]


def synthetic_scrape(version="0.1.0", not_after=1_900_000_000, extra=""):
    """A text-format scrape that keeps the contract, with the live calls'
    counts: what check_contract, check_used and check_calls must accept."""
    counts = {}
    for name, match, value in scrape.EXPECTED:
        counts[(name, tuple(sorted(match.items())))] = value
    base = {
        "grpc_type": "unary",
        "grpc_service": contract.SERVICE,
    }
    lines = []

    def sample(name, labels, value):
        inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
        lines.append(f"{name}{{{inner}}} {value:g}" if inner else f"{name} {value:g}")

    def lookup(name, labels):
        return counts.get((name, tuple(sorted(labels.items()))), 0)

    label_sets = {
        "grpc_server_started_total": [{"grpc_method": m} for m in sorted(contract.METHODS)],
        "grpc_server_handled_total": [
            {"grpc_method": m, "grpc_code": c}
            for m, c in [
                ("GetUserAttributeVerificationCode", "OK"),
                ("VerifyUserAttribute", "OK"),
                ("VerifyUserAttribute", "InvalidArgument"),
                ("VerifyUserAttribute", "Unauthenticated"),
                ("GetVerificationStatus", "OK"),
            ]
        ],
        "grpc_server_handling_seconds": [{"grpc_method": m} for m in sorted(contract.METHODS)],
        "cognito_verify_cognito_requests_total": [
            {"operation": "GetUserAttributeVerificationCode", "outcome": "ok"},
            {"operation": "VerifyUserAttribute", "outcome": "ok"},
            {"operation": "VerifyUserAttribute", "outcome": "CodeMismatchException"},
            {"operation": "GetUser", "outcome": "ok"},
        ],
        "cognito_verify_cognito_request_duration_seconds": [
            {"operation": m} for m in sorted(contract.OPERATIONS)
        ],
        "cognito_verify_rejected_total": [
            {"reason": reason} for reason in sorted(contract.REJECTION_REASONS)
        ],
        "cognito_verify_codes_sent_total": [{"medium": "sms"}, {"medium": "email"}],
        "cognito_verify_attributes_verified_total": [{"attribute": "phone_number"}],
        "cognito_verify_build_info": [{"version": version}],
        **{
            fam: [{label: v} for label, values in by_label.items() for v in sorted(values)]
            for fam, by_label in contract.FAMILY_VALUES.items()
        },
        # The SMS guard's: by country (and its refusals' closed reasons).
        "cognito_verify_sms_codes_sent_total": [{"country": "US"}],
        "cognito_verify_sms_verified_total": [{"country": "US"}],
        "cognito_verify_sms_refusals_total": [
            {"country": "GB", "reason": reason} for reason in sorted(contract.SMS_REASONS)
        ],
        "cognito_verify_sms_country_monitored_total": [{"country": "unknown"}],
    }
    values = {
        "cognito_verify_build_info": 1,
        "cognito_verify_tls_certificate_expiry_timestamp_seconds": not_after,
        "process_max_fds": 1024,
        "process_start_time_seconds": 1_700_000_000,
    }
    for fam, (kind, labels) in contract.FAMILIES.items():
        lines.append(f"# HELP {fam} {fam.replace('_', ' ')}.")
        lines.append(f"# TYPE {fam} {kind}")
        for own in label_sets.get(fam, [{}]):
            full = {**({k: base[k] for k in labels if k in base}), **own}
            if kind == "histogram":
                n = lookup(f"{fam}_count", own)
                for le in contract.BUCKETS[fam] + [math.inf]:
                    sample(
                        f"{fam}_bucket", {**full, "le": "+Inf" if le == math.inf else f"{le:g}"}, n
                    )
                sample(f"{fam}_sum", full, 0.01 * n)
                sample(f"{fam}_count", full, n)
            else:
                sample(fam, full, values.get(fam, lookup(fam, own)))
    return "\n".join(lines) + "\n" + extra


SCRAPE_MUTATIONS = [
    (
        "a family missing",
        lambda t: re.sub(r"(?m)^cognito_verify_in_flight.*\n", "", t),
        "cognito_verify_in_flight: no series",
    ),
    (
        "a gauge exposed as a counter",
        lambda t: t.replace(
            "# TYPE cognito_verify_in_flight gauge", "# TYPE cognito_verify_in_flight counter"
        ),
        "cognito_verify_in_flight: TYPE counter",
    ),
    (
        "a label outside the contract",
        lambda t: t.replace('reason="missing_token"', 'reason="missing_token",user="demo"'),
        "labels ['reason', 'user']",
    ),
    (
        "a gRPC code in another spelling",
        lambda t: t.replace('grpc_code="Unauthenticated"', 'grpc_code="UNAUTHENTICATED"'),
        "UNAUTHENTICATED",
    ),
    (
        "other buckets",
        lambda t: re.sub(r'(?m)^grpc_server_handling_seconds_bucket\{[^}]*le="0.005"\}.*\n', "", t),
        "buckets",
    ),
    (
        "health calls counted",
        lambda t: t
        + 'grpc_server_started_total{grpc_type="unary",grpc_service="grpc.health.v1.Health",grpc_method="Check"} 3\n',
        "only cognito.verify.v1",
    ),
    (
        "a count the calls do not explain",
        lambda t: t.replace(
            'cognito_verify_codes_sent_total{medium="sms"} 1',
            'cognito_verify_codes_sent_total{medium="sms"} 2',
        ),
        "expected 1",
    ),
    (
        "a rejection reason's series created late, not at start",
        lambda t: re.sub(r'(?m)^cognito_verify_rejected_total\{reason="request_buffer_full"\}.*\n', "", t),
        "no series for reason request_buffer_full",
    ),
    (
        "a key-fetch outcome outside its closed set",
        lambda t: t.replace('outcome="refused"', 'outcome="rationed"'),
        "outcome='rationed' is not one of",
    ),
    (
        "a country in another spelling",
        lambda t: t.replace('country="US"', 'country="us"'),
        "country='us' does not match",
    ),
    (
        "an SMS guard refusal reason in another spelling",
        lambda t: t.replace(
            'country="GB",reason="SMS_PREFIX_LIMIT"', 'country="GB",reason="sms_prefix_limit"'
        ),
        "reason='sms_prefix_limit' is not one of",
    ),
    (
        "an SMS guard reason's rejection series created late, not at start",
        lambda t: re.sub(r'(?m)^cognito_verify_rejected_total\{reason="sms_daily_limit"\}.*\n', "", t),
        "no series for reason sms_daily_limit",
    ),
    (
        "the daily SMS limit's gauge missing",
        lambda t: re.sub(r"(?m)^cognito_verify_sms_daily_limit .*\n", "", t),
        "cognito_verify_sms_daily_limit: no series",
    ),
    (
        "a family only an event creates, exposed with another type",
        lambda t: t.replace(
            "# TYPE cognito_verify_sms_country_monitored_total counter",
            "# TYPE cognito_verify_sms_country_monitored_total gauge",
        ),
        "cognito_verify_sms_country_monitored_total: TYPE gauge",
    ),
    (
        "a secret in a label",
        lambda t: t.replace('reason="invalid_request"', 'reason="invalid_request_246810"'),
        "holds the code",
    ),
]


def run(promtool):
    """Failures of the self-test; the number of breakages tried."""
    promtool = os.path.abspath(promtool)
    failures, tried = [], 0
    good_rules, good_tests = rules.load(rules.RULES), rules.load(rules.TESTS)
    good_dash = dashboard.load()
    if rules.check_alerts(good_rules) or rules.check_test_coverage(good_rules, good_tests):
        failures.append("the good rules fail their checks")
    if not _promtool_tests_pass(promtool, good_rules):
        failures.append("the unit tests fail against the good rules (as re-serialised)")
    mutations = list(_alert_mutations(good_rules))
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        passed = pool.map(lambda m: _promtool_tests_pass(promtool, m[2], m[1]), mutations)
        for (what, _, _), still_passes in zip(mutations, passed, strict=True):
            tried += 1
            if still_passes:
                failures.append(f"promtool test rules: {what}, and no test noticed")
    for what, mutate, word in RULE_MUTATIONS:
        tried += 1
        doc = copy.deepcopy(good_rules)
        mutate(doc)
        found = rules.check_alerts(doc)
        if not any(word in p for p in found):
            failures.append(f"rules: {what}: not reported (got {found})")
    tried += 1
    tests = copy.deepcopy(good_tests)
    for case in tests["tests"]:
        case["alert_rule_test"] = [
            t
            for t in case["alert_rule_test"]
            if t["alertname"] != "CognitoVerifySmsPumping" or t["exp_alerts"]
        ]
    if not any("stays quiet" in p for p in rules.check_test_coverage(good_rules, tests)):
        failures.append("tests: no quiet case for an alert, not reported")

    tried += 1
    with tempfile.TemporaryDirectory() as d:
        changed = rules.prometheus_rule(good_rules).replace("> 0.05", "> 0.5")
        path = os.path.join(d, "prometheusrule.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(changed)
        if not rules.check_prometheus_rule(generated_path=path):
            failures.append("prometheusrule: a changed threshold, not reported")

    if dashboard.check_structure(good_dash) + dashboard.check_queries(good_dash):
        failures.append("the good dashboard fails its checks")
    for what, mutate, word in DASHBOARD_MUTATIONS:
        tried += 1
        dash = copy.deepcopy(good_dash)
        mutate(dash)
        found = (
            dashboard.check_structure(dash)
            + dashboard.check_queries(dash)
            + dashboard.check_coverage(dash)
        )
        if not any(word in p for p in found):
            failures.append(f"dashboard: {what}: not reported (got {found})")
    tried += 1
    dash = copy.deepcopy(good_dash)
    _target(dash, "CPU")[
        "expr"
    ] = 'rate(process_cpu_seconds_total{job=~"$job",namespace=~"$namespace"}[$__rate_interval]'
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "dashboard.rules.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(dashboard.recording_rules(dash))
        out = subprocess.run([promtool, "check", "rules", path], capture_output=True, check=False)
        if out.returncode == 0:
            failures.append("dashboard: an unbalanced parenthesis passed promtool check rules")

    used = dashboard.metric_names(good_dash) | rules.metric_names(good_rules)
    secrets = [("code", "246810")]

    def scrape_problems(text):
        got = scrape.Scrape(text)
        return (
            scrape.check_contract(got)
            + scrape.check_at_start(got)
            + scrape.check_used(got, used)
            + scrape.check_calls(got, "0.1.0", 1_900_000_000, secrets)
        )

    good = synthetic_scrape()
    if scrape_problems(good):
        failures.append(f"the synthetic scrape fails: {scrape_problems(good)}")
    # Before any refusal or monitored send, prometheus-client does not
    # expose those families at all: a scrape that still keeps the contract.
    before = good
    for fam in contract.EVENT_ONLY:
        before = re.sub(rf"(?m)^(# (HELP|TYPE) )?{fam}\b.*\n", "", before)
    found = scrape_problems(before)
    if any(fam in before for fam in contract.EVENT_ONLY) or found:
        failures.append(f"the synthetic scrape without its event-only families fails: {found}")
    lint = subprocess.run(
        [promtool, "check", "metrics"], input=good, capture_output=True, text=True, check=False
    )
    if lint.returncode != 0:
        failures.append(
            f"the synthetic scrape fails promtool check metrics: {lint.stdout}{lint.stderr}"
        )
    for what, mutate, word in SCRAPE_MUTATIONS:
        tried += 1
        found = scrape_problems(mutate(good))
        if not any(word in p for p in found):
            failures.append(f"scrape: {what}: not reported (got {found})")
    return failures, tried


if __name__ == "__main__":  # a debugging aid: the synthetic scrape
    print(synthetic_scrape(), end="")
