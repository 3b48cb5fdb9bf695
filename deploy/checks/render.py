"""A rendered kustomization (the output of `kubectl kustomize`), indexed for
the checks: objects by kind and name, workloads and their pod templates, the
effective COGNITO_VERIFY_* configuration of a container (with Kubernetes'
$(VAR) expansion), label selectors."""

import base64
import re

import yaml

COMPONENT = "app.kubernetes.io/component"
FACADE = "facade"
# The Redis of the shared limits (components/redis): its own image, its own
# NetworkPolicy, reached by the facade alone.
LIMITS_STORE = "limits-store"
# With it set, every limit is decided cluster-wide on that Redis.
REDIS_URL = "COGNITO_VERIFY_LIMITS_REDIS_URL"
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


# `$$` (an escaped `$`) or a `$(NAME)` reference, as Kubernetes reads them
# in env values, command and args.
_REFERENCE = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


def references(text):
    """The variable names `text` refers to as $(NAME) (`$$(NAME)` is an
    escaped literal, not a reference)."""
    return [m.group(1) for m in _REFERENCE.finditer(text or "") if m.group(1)]


def expand(text, values):
    """Kubernetes' expansion of an env value, command or args: `$(NAME)`
    becomes values[NAME] for a variable defined before it (a key of
    `values`; a value of None, one the render cannot see, such as a
    Secret's, stays written as `$(NAME)`), `$$` becomes `$`, and a reference
    to anything else stays as written."""

    def one(m):
        if m.group(1) is None:
            return "$"
        value = values.get(m.group(1))
        return m.group(0) if value is None else value

    return _REFERENCE.sub(one, text or "")


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
        """The container's environment as far as the render holds it:
        ConfigMaps from envFrom, then env values (expanded as Kubernetes
        does, see `expand`) and configMapKeyRefs (env wins, as in
        Kubernetes; a variable from a Secret or another source has no value
        here, see origins); and the problems found resolving it."""
        values, problems = self.environment(workload, container)
        return {k: v for k, v in values.items() if v is not None}, problems

    def environment(self, workload, container, secret=lambda name, key: None):
        """Every variable of the container's environment in Kubernetes'
        order (envFrom, then env), each env value expanded against those
        defined before it: {name: value, or None where the render cannot
        see it}; and the problems found resolving it. `secret(name, key)`
        gives a Secret key's value (None: unknown)."""
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
            value_from = var.get("valueFrom") or {}
            key_ref = value_from.get("configMapKeyRef")
            secret_ref = value_from.get("secretKeyRef")
            if "value" in var or "valueFrom" not in var:
                env[var["name"]] = expand(var.get("value", ""), env)
            elif key_ref:
                cm = self.find("ConfigMap", key_ref.get("name"), namespace(workload)) or {}
                value = (cm.get("data") or {}).get(key_ref.get("key"))
                if value is None:
                    env.pop(var["name"], None)
                    if not key_ref.get("optional"):
                        problems.append(
                            f"{ref(workload)}: {var['name']} names key "
                            f"{key_ref.get('key')!r} of ConfigMap {key_ref.get('name')!r}, "
                            "which the render does not contain"
                        )
                else:
                    env[var["name"]] = value
            elif secret_ref:
                name_, key = secret_ref.get("name"), secret_ref.get("key")
                value = self.secret_value(name_, key, namespace(workload))
                env[var["name"]] = value if value is not None else secret(name_, key)
            else:
                env[var["name"]] = None  # the pod's (fieldRef, ...): unknown here
        return env, problems

    def secret_value(self, secret_name, key, ns):
        """A key of a Secret the render holds (a secretGenerator's), or None."""
        s = self.find("Secret", secret_name, ns) or {}
        if key in (s.get("stringData") or {}):
            return s["stringData"][key]
        data = (s.get("data") or {}).get(key)
        return base64.b64decode(data).decode("utf-8", "replace") if data is not None else None

    def origins(self, workload, container):
        """Where each variable of the container's environment comes from, as
        Kubernetes resolves it (env over envFrom): "configMap" (envFrom or
        configMapKeyRef), "value" (written in the workload), "secret"
        (secretKeyRef) or "other" (fieldRef, resourceFieldRef)."""
        found = {}
        for source in container.get("envFrom") or []:
            cm_ref = source.get("configMapRef")
            if cm_ref:
                cm = self.find("ConfigMap", cm_ref.get("name"), namespace(workload)) or {}
                found.update(dict.fromkeys(cm.get("data") or {}, "configMap"))
        for var in container.get("env") or []:
            value_from = var.get("valueFrom") or {}
            if "value" in var or "valueFrom" not in var:
                found[var["name"]] = "value"
            elif "configMapKeyRef" in value_from:
                found[var["name"]] = "configMap"
            elif "secretKeyRef" in value_from:
                found[var["name"]] = "secret"
            else:
                found[var["name"]] = "other"
        return found

    def written(self, container, var):
        """The value of the container's env entry `var` as written, before
        expansion (None: no such entry, or one from valueFrom)."""
        value = None
        for entry in container.get("env") or []:
            if entry["name"] == var:
                value = entry.get("value", "") if "valueFrom" not in entry else None
        return value

    def secret_refs(self, container):
        """{variable: (Secret name, key, optional)} of the container's env
        entries that come from a secretKeyRef."""
        found = {}
        for var in container.get("env") or []:
            secret_ref = (var.get("valueFrom") or {}).get("secretKeyRef")
            if secret_ref:
                found[var["name"]] = (
                    secret_ref.get("name"),
                    secret_ref.get("key"),
                    bool(secret_ref.get("optional")),
                )
            else:
                found.pop(var["name"], None)
        return found

    def referenced(self, workload, container, var):
        """{name: origin} of the variables that the env entry `var` refers to
        as $(name) and that Kubernetes resolves there: those defined before
        it (envFrom, earlier env entries); see origins. A reference missing
        here stays written as it is."""
        defined = {}
        for source in container.get("envFrom") or []:
            cm_ref = source.get("configMapRef")
            if cm_ref:
                cm = self.find("ConfigMap", cm_ref.get("name"), namespace(workload)) or {}
                defined.update(dict.fromkeys(cm.get("data") or {}, "configMap"))
        found = {}
        for entry in container.get("env") or []:
            if entry["name"] == var and ("value" in entry or "valueFrom" not in entry):
                found = {n: defined[n] for n in references(entry.get("value")) if n in defined}
            defined[entry["name"]] = self.origins(workload, {"env": [entry]})[entry["name"]]
        return found

    def redis(self, workload, container):
        """The container's Redis for the shared limits (REDIS_URL): (where
        it comes from, see origins; the URL, None when the render cannot
        see it), or (None, None) when unset or empty: limits per replica."""
        origin = self.origins(workload, container).get(REDIS_URL)
        url = self.config(workload, container)[0].get(REDIS_URL)
        if origin is None or (url is not None and not url.strip()):
            return None, None
        return origin, url.strip() if url is not None else None


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
