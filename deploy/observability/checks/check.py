"""scripts/check-observability's checks of deploy/observability/.

    check.py rules                        every alert complete; tests cover each
    check.py prometheusrule [--write]     the PrometheusRule is the rules file's
    check.py dashboard RULES_OUT          the dashboard; its queries as rules for promtool
    check.py scrape TEXT OPENMETRICS ...  a live scrape against the contract (live.sh)
    check.py self-test PROMTOOL           the checks themselves catch breakage

Run from the repository root with the venv's Python (PyYAML). Prints the
problems found; exits 1 if any.
"""

import argparse
import re
import sys

import dashboard
import rules
import scrape
import selftest

_NUMBER = re.compile(r"(?<=\s)[-+]?(\d+(\.\d*)?([eE][-+]?\d+)?|NaN|Inf)(?=\s|$)", re.M)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("rules")
    pr = sub.add_parser("prometheusrule")
    pr.add_argument("--write", action="store_true", help="regenerate it from the rules file")
    sub.add_parser("dashboard").add_argument("rules_out")
    sc = sub.add_parser("scrape")
    sc.add_argument("text", help="a scrape in text format 0.0.4")
    sc.add_argument("openmetrics", help="the same endpoint asked for OpenMetrics")
    sc.add_argument("--version", required=True, help="the build's version")
    sc.add_argument("--not-after", required=True, type=int, help="the certificate's notAfter")
    sc.add_argument("--secret", nargs=2, action="append", default=[], metavar=("WHAT", "VALUE"))
    sub.add_parser("self-test").add_argument("promtool")
    args = parser.parse_args()

    if args.command == "rules":
        r = rules.load(rules.RULES)
        problems = rules.check_alerts(r) + rules.check_test_coverage(r, rules.load(rules.TESTS))
    elif args.command == "prometheusrule":
        if args.write:
            with open(rules.PROMETHEUS_RULE, "w", encoding="utf-8") as f:
                f.write(rules.prometheus_rule(rules.load(rules.RULES)))
        problems = rules.check_prometheus_rule()
    elif args.command == "dashboard":
        dash = dashboard.load()
        problems = dashboard.check_structure(dash) + dashboard.check_queries(dash)
        problems += dashboard.check_coverage(dash)
        with open(args.rules_out, "w", encoding="utf-8") as f:
            f.write(dashboard.recording_rules(dash))
    elif args.command == "scrape":
        problems = check_scrape(args)
    else:
        problems, tried = selftest.run(args.promtool)
        if not problems:
            print(f"self-test: {tried} deliberate breakages, each reported")
    for problem in problems:
        print(problem)
    return 1 if problems else 0


def check_scrape(args):
    with open(args.text, encoding="utf-8") as f:
        text = f.read()
    with open(args.openmetrics, encoding="utf-8") as f:
        openmetrics = f.read()
    got = scrape.Scrape(text)
    used = dashboard.metric_names(dashboard.load()) | rules.metric_names(rules.load(rules.RULES))
    problems = scrape.check_contract(got) + scrape.check_at_start(got)
    problems += scrape.check_used(got, used)
    problems += scrape.check_calls(got, args.version, args.not_after, args.secret)
    # Sample values are numbers that may contain a numeric code by chance:
    # names, labels and help texts are searched.
    words = _NUMBER.sub("", text + openmetrics)
    for what, secret in args.secret:
        if secret in words:
            problems.append(f"the scrape contains the {what}")
    if not openmetrics.endswith("# EOF\n"):
        problems.append("the OpenMetrics scrape does not end with `# EOF`")
    return problems


if __name__ == "__main__":
    sys.exit(main())
