"""A rendered kustomization (the output of `kubectl kustomize`), indexed for
the checks: objects by kind and name, workloads and their pod templates, the
effective COGNITO_VERIFY_* configuration of a container, label selectors."""

import yaml

COMPONENT = "app.kubernetes.io/component"
FACADE = "facade"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


def load(path):
    """The non-empty YAML documents of a file."""
    with open(path, encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def namespace(obj):
    return obj.get("metadata", {}).get("namespace") or "default"


def name(obj):
    return obj.get("metadata", {}).get("name", "?")


def labels(obj):
    return obj.get("metadata", {}).get("labels") or {}


def ref(obj):
    return f"{obj.get('kind', '?')}/{name(obj)}"


def service_selector(svc):
    """A Service's selector as a LabelSelector; None (selects nothing) for a
    Service without one."""
    selector = svc.get("spec", {}).get("selector")
    return {"matchLabels": selector} if selector else None


def matches(selector, pod_labels):
    """Whether a LabelSelector ({matchLabels, matchExpressions}) selects
    `pod_labels`. An empty selector selects everything, as in Kubernetes."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if pod_labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        present = key in pod_labels
        if op == "In" and not (present and pod_labels[key] in values):
            return False
        if op == "NotIn" and present and pod_labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


class Render:
    """The objects of one rendered kustomization."""

    def __init__(self, docs, known_vars=frozenset()):
        self.docs = docs
        # COGNITO_VERIFY_* variables the binary reads (from src/).
        self.known_vars = frozenset(known_vars)

    def of(self, kind):
        return [d for d in self.docs if d.get("kind") == kind]

    def find(self, kind, obj_name, ns):
        for d in self.of(kind):
            if name(d) == obj_name and namespace(d) == ns:
                return d
        return None

    def workloads(self):
        return [d for d in self.docs if d.get("kind") in WORKLOAD_KINDS]

    def facades(self):
        return [w for w in self.workloads() if labels(w).get(COMPONENT) == FACADE]

    def pod_labels(self, workload):
        return workload["spec"]["template"].get("metadata", {}).get("labels") or {}

    def selected(self, selector, ns):
        """The workloads in `ns` whose pods `selector` selects."""
        return [
            w
            for w in self.workloads()
            if namespace(w) == ns and matches(selector, self.pod_labels(w))
        ]

    def config(self, workload, container):
        """The container's environment: ConfigMaps from envFrom, then env
        values; and the problems found resolving it."""
        env, problems = {}, []
        for source in container.get("envFrom") or []:
            cm_ref = source.get("configMapRef")
            if not cm_ref:
                continue
            cm = self.find("ConfigMap", cm_ref.get("name"), namespace(workload))
            if cm is None:
                problems.append(
                    f"{ref(workload)}: envFrom names ConfigMap {cm_ref.get('name')!r}, "
                    "which the render does not contain"
                )
                continue
            env.update(cm.get("data") or {})
        for var in container.get("env") or []:
            if "value" in var:
                env[var["name"]] = var["value"]
        return env, problems


def pod_spec(workload):
    return workload["spec"]["template"]["spec"]


def containers(workload):
    spec = pod_spec(workload)
    return (spec.get("initContainers") or []) + (spec.get("containers") or [])


def container_ports(container):
    return {p["name"]: p["containerPort"] for p in container.get("ports") or [] if "name" in p}


def port_of(address):
    """The port of a `host:port` listen address, or None (e.g. `off`)."""
    if not address or ":" not in address:
        return None
    try:
        return int(address.rsplit(":", 1)[1])
    except ValueError:
        return None


def facade_container(workload):
    """The serving container of a facade workload."""
    for c in pod_spec(workload).get("containers") or []:
        if (c.get("args") or [None])[0] == "serve":
            return c
    return None
