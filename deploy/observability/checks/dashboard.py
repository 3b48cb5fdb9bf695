"""The Grafana dashboard: importable structure, variables, and every query.

promtool has no way to parse a lone expression without a server, so every
panel query (its Grafana variables replaced) becomes a recording rule in a
generated rules file, and `promtool check rules` parses that file.
"""

import json
import re

import contract
import promql
import yaml

DASHBOARD = "deploy/observability/grafana/cognito-verify.json"
PANEL_TYPES = {"row", "timeseries", "stat", "gauge", "bargauge", "table", "text"}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Every selector is narrowed by these variables, so that a panel never mixes
# in another job or deployment.
SCOPE = {"job": "$job", "namespace": "$namespace"}
# Values the variables stand for when the queries are parsed.
PLACEHOLDERS = {"job": "cognito-verify", "namespace": ".*", "instance": ".*"}
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(.*),\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$")


def load(path=DASHBOARD):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def panels(dash):
    """Every panel, those inside collapsed rows included."""
    for p in dash.get("panels") or []:
        yield p
        yield from p.get("panels") or []


def queries(dash):
    """(where, PromQL expression, the scope variables it must use) of every
    panel target and variable query. A variable's query is scoped by the
    variables before it (namespace by job); the job variable's by none."""
    out = []
    for p in panels(dash):
        for t in p.get("targets") or []:
            where = f"panel {p.get('id')} {p.get('title')!r} {t.get('refId')}"
            out.append((where, t.get("expr", ""), set(SCOPE)))
    before = set()
    for v in (dash.get("templating") or {}).get("list") or []:
        if v.get("type") == "query":
            q = v.get("query")
            q = q.get("query", "") if isinstance(q, dict) else q or ""
            m = _LABEL_VALUES.match(q)
            where = f"variable {v.get('name')}"
            if m is None:
                out.append((where, q, before & set(SCOPE)))
            elif m.group(1):
                out.append((where, m.group(1), before & set(SCOPE)))
        before.add(v.get("name"))
    return out


def _marked(expr):
    """`expr` with each variable replaced by a marker naming it."""
    return promql.substitute(expr, lambda name: f"__var_{name}__")


def check_structure(dash):
    """What Grafana needs to import it and lay it out."""
    problems = []
    for key in ("title", "uid", "schemaVersion", "panels", "templating"):
        if key not in dash:
            problems.append(f"no {key!r}")
    variables = {v.get("name"): v for v in (dash.get("templating") or {}).get("list") or []}
    ds = variables.get("datasource") or {}
    if ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problems.append("no `datasource` variable of type datasource for Prometheus")
    for name in ("job", "namespace"):
        if (variables.get(name) or {}).get("type") != "query":
            problems.append(f"no `{name}` query variable")
    ids, cells = set(), {}
    for p in panels(dash):
        pid, where = p.get("id"), f"panel {p.get('id')} {p.get('title')!r}"
        if not isinstance(pid, int) or pid in ids:
            problems.append(f"{where}: id missing or not unique")
        ids.add(pid)
        if p.get("type") not in PANEL_TYPES:
            problems.append(f"{where}: unknown panel type {p.get('type')!r}")
        g = p.get("gridPos") or {}
        if (
            not all(isinstance(g.get(k), int) for k in "xywh")
            or g["x"] + g["w"] > 24
            or min(g["w"], g["h"]) < 1
        ):
            problems.append(f"{where}: gridPos {g} is not inside the 24-column grid")
            continue
        cover = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        if cover & cells.keys():
            problems.append(f"{where}: overlaps panel {cells[min(cover & cells.keys())]}")
        cells.update(dict.fromkeys(cover, pid))
        if p.get("type") == "row":
            continue
        if p.get("datasource") != DATASOURCE:
            problems.append(f"{where}: datasource is not the ${{datasource}} variable")
        targets = p.get("targets") or []
        if not targets and p.get("type") != "text":
            problems.append(f"{where}: no query")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs) or None in refs:
            problems.append(f"{where}: refIds missing or repeated")
        for t in targets:
            if t.get("datasource", DATASOURCE) != DATASOURCE:
                problems.append(f"{where} {t.get('refId')}: datasource is not ${{datasource}}")
            if not (t.get("expr") or "").strip():
                problems.append(f"{where} {t.get('refId')}: empty expr")
        if not (p.get("description") or "").strip():
            problems.append(
                f"{where}: no description (what the panel shows, which alert watches it)"
            )
    return problems


def check_queries(dash):
    """Every query: known variables, selectors scoped by $job and
    $namespace, contract metrics with their labels and values, counters
    through rate/increase, histogram quantiles grouped by le."""
    problems = []
    defined = {v.get("name") for v in (dash.get("templating") or {}).get("list") or []}
    for where, expr, scope in queries(dash):
        for var in promql.variables(expr) - defined - set(promql.GRAFANA_INTERVALS):
            problems.append(f"{where}: ${var} is not a variable of the dashboard")
        try:
            selectors, grouping = promql.parse(_marked(expr))
        except ValueError as e:
            problems.append(f"{where}: {e}")
            continue
        if not selectors:
            problems.append(f"{where}: reads no metric")
        for s in selectors:
            for label in sorted(scope):
                if s.matcher(label) != ("=~", f"__var_{SCOPE[label][1:]}__"):
                    problems.append(
                        f'{where}: {s.name} is not narrowed by {label}=~"{SCOPE[label]}"'
                    )
            why = promql.misuse(s)
            if why:
                problems.append(f"{where}: {why}")
            problems += [f"{where}: {p}" for p in contract.check_matchers(s)]
        problems += [f"{where}: {p}" for p in contract.check_grouping(selectors, grouping)]
        if "histogram_quantile" in expr and "le" not in grouping:
            problems.append(f"{where}: histogram_quantile over buckets not grouped by le")
    return problems


def recording_rules(dash):
    """A rules file with one recording rule per query, variables replaced:
    what `promtool check rules` parses."""
    rules = []
    for i, (where, expr, _) in enumerate(queries(dash)):
        rules.append(
            {
                "record": f"dashboard:query_{i}",
                "expr": promql.substitute(expr, PLACEHOLDERS),
                "labels": {"query": where},
            }
        )
    return yaml.safe_dump(
        {"groups": [{"name": "dashboard-queries", "rules": rules}]}, sort_keys=False
    )


def metric_names(dash):
    """The metric names the queries read (those that parse)."""
    names = set()
    for _, expr, _ in queries(dash):
        try:
            names |= {s.name for s in promql.parse(_marked(expr))[0]}
        except ValueError:
            pass  # check_queries reports it
    return names


def check_coverage(dash):
    """Every family of the metrics contract is on the dashboard."""
    shown = {contract.family_of(n)[0] for n in metric_names(dash)}
    return [f"{fam} is on no panel" for fam in sorted(set(contract.FAMILIES) - shown)]
