"""How Prometheus finds the facade's metrics, checked on the rendered
objects: the pod annotations, the ServiceMonitor and the Service it reads,
and the job the PrometheusRule's alerts select. Part of the checks that
invariants.py runs (the metrics port itself: serving.check_facade_config;
who may reach it: serving.check_network_policy)."""

import re

from render import (
    container_ports,
    facade_container,
    labels,
    matches,
    namespace,
    port_of,
    ref,
    service_selector,
)
from serving import DEFAULT_ADMIN_LISTEN

METRICS_PATH = "/metrics"


def _metrics_port(r, d):
    """The facade's metrics port number, or None when metrics are off."""
    c = facade_container(d)
    env = r.config(d, c)[0] if c else {}
    return port_of(env.get("COGNITO_VERIFY_ADMIN_LISTEN", DEFAULT_ADMIN_LISTEN))


def check_metrics(r):
    """The pod template's prometheus.io/* annotations name the metrics port
    and path; each ServiceMonitor selects exactly one Service, whose port it
    names sends to the facade's metrics port, plaintext, at /metrics; it
    sets the job that the PrometheusRule's alerts select."""
    problems = []
    jobs = set()
    for d in r.facades():
        annotations = d["spec"]["template"].get("metadata", {}).get("annotations") or {}
        port = _metrics_port(r, d)
        # An overlay may opt out of annotation scraping explicitly (dev: its
        # single replica must not meet the production alerts).
        if annotations.get("prometheus.io/scrape") == "false":
            continue
        want = (
            {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(port),
                "prometheus.io/path": METRICS_PATH,
            }
            if port is not None
            else {}
        )
        for key, value in want.items():
            if annotations.get(key) != value:
                problems.append(
                    f"{ref(d)}: pod annotation {key} is {annotations.get(key)!r}, not {value!r}"
                )
        if port is None and annotations.get("prometheus.io/scrape") == "true":
            problems.append(f"{ref(d)}: prometheus.io/scrape with COGNITO_VERIFY_ADMIN_LISTEN off")
    for sm in r.of("ServiceMonitor"):
        spec, ns = sm["spec"], namespace(sm)
        names = (spec.get("namespaceSelector") or {}).get("matchNames") or [ns]
        chosen = [
            s
            for s in r.of("Service")
            if namespace(s) in names and matches(spec.get("selector"), labels(s))
        ]
        if len(chosen) != 1:
            problems.append(
                f"{ref(sm)}: selects {[ref(s) for s in chosen] or 'no Service'}, not exactly one"
            )
            continue
        svc = chosen[0]
        pods = r.selected(service_selector(svc), namespace(svc))
        facades = [d for d in pods if d in r.facades()]
        if len(facades) != 1 or len(pods) != 1:
            problems.append(f"{ref(sm)}: {ref(svc)} does not select the facade alone")
            continue
        d = facades[0]
        container = facade_container(d) or {}
        for ep in spec.get("endpoints") or []:
            sp = next(
                (p for p in svc["spec"].get("ports") or [] if p.get("name") == ep.get("port")), None
            )
            if sp is None:
                problems.append(
                    f"{ref(sm)}: endpoint port {ep.get('port')!r} is no port of {ref(svc)}"
                )
                continue
            target = sp.get("targetPort", sp.get("port"))
            target = container_ports(container).get(target) if isinstance(target, str) else target
            metrics = _metrics_port(r, d)
            if target is None or target != metrics:
                problems.append(
                    f"{ref(sm)}: endpoint port {ep.get('port')!r} sends to {target}, "
                    f"not the metrics port {metrics}"
                )
            if ep.get("path", METRICS_PATH) != METRICS_PATH or ep.get("scheme", "http") != "http":
                problems.append(f"{ref(sm)}: endpoint is not plaintext http at {METRICS_PATH}")
        job_label = spec.get("jobLabel")
        # Without jobLabel (or a Service without that label) the operator
        # names the job after the Service.
        jobs.add((labels(svc).get(job_label) if job_label else None) or svc["metadata"]["name"])
    for rule in r.of("PrometheusRule"):
        selected = {
            m
            for group in rule["spec"].get("groups") or []
            for x in group.get("rules") or []
            for m in re.findall(r'\bjob="([^"]*)"', str(x.get("expr", "")))
        }
        for job in sorted(jobs):
            if selected != {job}:
                problems.append(
                    f"{ref(rule)}: its rules select job {sorted(selected)}, the ServiceMonitor sets job {job!r}"
                )
    return problems
