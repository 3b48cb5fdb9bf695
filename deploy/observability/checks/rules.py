"""The alerting rules: the plain rules file, the PrometheusRule generated
from it, what every alert must carry, and the coverage of its unit tests."""

import difflib

import contract
import promql
import yaml

RULES = "deploy/observability/prometheus/cognito-verify.rules.yaml"
TESTS = "deploy/observability/prometheus/cognito-verify.rules.test.yaml"
PROMETHEUS_RULE = "deploy/kubernetes/components/prometheus-operator/prometheusrule.yaml"
JOB = "cognito-verify"
SEVERITIES = ("critical", "warning")
ANNOTATIONS = ("summary", "description", "runbook")

HEADER = f"""\
# GENERATED from {RULES}: do not edit.
# Edit that file, then regenerate this one (from the repository root):
#   .tools/venv/bin/python deploy/observability/checks/check.py prometheusrule --write
# scripts/check-observability fails while the two differ.
#
# For the Prometheus Operator: it loads PrometheusRules whose labels match its
# ruleSelector (kube-prometheus-stack: `release: <its release name>`) from the
# namespaces its ruleNamespaceSelector allows; add that label in your overlay
# (deploy/README.md, "Observability").
"""


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the expressions) as literal blocks, as written;
    long lines (descriptions, runbooks) folded."""


def _style(s):
    if "\n" in s:
        return "|"
    return ">" if len(s) > 80 else None


_Dumper.add_representer(
    str, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style=_style(s))
)


def prometheus_rule(rules):
    """The PrometheusRule text for the groups of a plain rules file."""
    obj = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "cognito-verify",
            "labels": {
                "app.kubernetes.io/name": "cognito-verify",
                "app.kubernetes.io/component": "facade",
            },
        },
        "spec": {"groups": rules["groups"]},
    }
    text = HEADER + yaml.dump(obj, Dumper=_Dumper, sort_keys=False, width=88)
    if yaml.safe_load(text) != obj:
        raise ValueError("the generated PrometheusRule does not read back as written")
    return text


def check_prometheus_rule(rules_path=RULES, generated_path=PROMETHEUS_RULE):
    """The committed PrometheusRule is what the rules file generates: the
    same groups, rules, expressions, labels and annotations."""
    want = prometheus_rule(load(rules_path))
    try:
        with open(generated_path, encoding="utf-8") as f:
            got = f.read()
    except FileNotFoundError:
        return [f"{generated_path} is missing: run check.py prometheusrule --write"]
    if got == want:
        return []
    problems = [f"{generated_path} differs from what {rules_path} generates"]
    got_groups = (yaml.safe_load(got) or {}).get("spec", {}).get("groups")
    if got_groups == load(rules_path)["groups"]:
        problems.append("(the rules are the same; the header or metadata differ)")
    diff = difflib.unified_diff(
        want.splitlines(), got.splitlines(), "generated", generated_path, lineterm="", n=1
    )
    problems += list(diff)[:40]
    problems.append(
        "run: .tools/venv/bin/python deploy/observability/checks/check.py prometheusrule --write"
    )
    return problems


def alerts(rules):
    return [r for g in rules["groups"] for r in g["rules"] if "alert" in r]


def metric_names(rules):
    """The metric names the alerts read (those that parse)."""
    names = set()
    for rule in alerts(rules):
        try:
            names |= {s.name for s in promql.parse(rule["expr"])[0]}
        except ValueError:
            pass  # check_alerts reports it
    return names


def check_alerts(rules):
    """Every alert: a CognitoVerify name, a severity, `for`, a summary, a
    description and a runbook hint; every selector on job="cognito-verify",
    with label values of the metrics contract, read the way its type reads."""
    problems = []
    for group in rules["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert") or rule.get("record")
            if "alert" not in rule:
                problems.append(f"{name}: a recording rule; this file holds alerts only")
                continue
            if not name.startswith("CognitoVerify"):
                problems.append(f"{name}: alert names start with CognitoVerify")
            if (rule.get("labels") or {}).get("severity") not in SEVERITIES:
                problems.append(f"{name}: severity is not one of {SEVERITIES}")
            if not rule.get("for"):
                problems.append(f"{name}: no `for` (one bad evaluation would page)")
            for key in ANNOTATIONS:
                if len(((rule.get("annotations") or {}).get(key) or "").split()) < 3:
                    problems.append(f"{name}: annotation {key} is missing or not a sentence")
            try:
                selectors, grouping = promql.parse(rule["expr"])
            except ValueError as e:
                problems.append(f"{name}: {e}")
                continue
            problems += [f"{name}: {p}" for p in contract.check_grouping(selectors, grouping)]
            for s in selectors:
                if s.matcher("job") != ("=", JOB):
                    problems.append(f'{name}: {s} does not select job="{JOB}"')
                why = promql.misuse(s)
                if why:
                    problems.append(f"{name}: {why}")
                problems += [f"{name}: {p}" for p in contract.check_matchers(s)]
    return problems


def check_test_coverage(rules, tests):
    """Each alert (each severity of it) fires in some test case, and each
    alert stays quiet in another: `exp_alerts: []`."""
    fired, quiet = set(), set()
    for case in tests.get("tests") or []:
        for t in case.get("alert_rule_test") or []:
            exp = t.get("exp_alerts") or []
            if not exp:
                quiet.add(t["alertname"])
            for a in exp:
                fired.add((t["alertname"], (a.get("exp_labels") or {}).get("severity")))
    problems = []
    for rule in alerts(rules):
        name, severity = rule["alert"], (rule.get("labels") or {}).get("severity")
        if (name, severity) not in fired:
            problems.append(f"{name} ({severity}): no test case where it fires")
        if name not in quiet:
            problems.append(f"{name}: no test case where it stays quiet (exp_alerts: [])")
    return problems
