"""What the manifests promise, checked on the rendered objects: security,
selection, scaling and ports here; how the facade serves in serving.py; who
may use it and its Redis in access.py; how Prometheus finds its metrics in
monitoring.py.

Every check takes a Render and returns a list of problems (an empty list:
the check holds). CHECKS lists them in the order they are reported;
selftest.py breaks a good render in memory and asserts that the matching
check notices.
"""

import access
import monitoring
import serving
from render import (
    COMPONENT,
    LIMITS_STORE,
    REDIS_URL,
    facade_container,
    containers,
    container_ports,
    labels,
    name,
    namespace,
    pod_spec,
    ref,
    service_selector,
)

# Cognito's account-wide quota for these user-update calls starts at 25
# requests per second (docs/operations.md, "The limits"), shared by every replica.
COGNITO_QUOTA_PER_SEC = 25
DEFAULT_LIMIT_PER_SEC = 25  # serve's default for both rate limits
# Volume types the "restricted" Pod Security Standard allows.
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def check_pod_security(r):
    """Pod Security Standard "restricted", and no token, on every pod and
    container; the ServiceAccount mounts no token either."""
    problems = []
    for w in r.workloads():
        spec, where = pod_spec(w), ref(w)
        psc = spec.get("securityContext") or {}
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{where}: automountServiceAccountToken is not false")
        if spec.get("enableServiceLinks") is not False:
            problems.append(
                f"{where}: enableServiceLinks is not false (COGNITO_VERIFY_* link variables)"
            )
        for field in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(field):
                problems.append(f"{where}: {field} is set")
        if psc.get("runAsNonRoot") is not True:
            problems.append(f"{where}: pod securityContext.runAsNonRoot is not true")
        for v in spec.get("volumes") or []:
            kinds = set(v) - {"name"}
            if not kinds <= RESTRICTED_VOLUMES:
                problems.append(
                    f"{where}: volume {v['name']} is {sorted(kinds)}, not allowed by restricted"
                )
        sa = r.find("ServiceAccount", spec.get("serviceAccountName", "default"), namespace(w))
        if sa is not None and sa.get("automountServiceAccountToken") is not False:
            problems.append(f"{ref(sa)}: automountServiceAccountToken is not false")
        for c in containers(w):
            at = f"{where} container {c['name']}"
            csc = c.get("securityContext") or {}
            eff = {**psc, **csc}
            if eff.get("runAsNonRoot") is not True:
                problems.append(f"{at}: runAsNonRoot is not true")
            for field in ("runAsUser", "runAsGroup"):
                if not isinstance(eff.get(field), int) or eff[field] == 0:
                    problems.append(f"{at}: {field} is not a numeric non-root id")
            if (eff.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
                problems.append(f"{at}: seccompProfile is not RuntimeDefault")
            if csc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{at}: allowPrivilegeEscalation is not false")
            if csc.get("privileged"):
                problems.append(f"{at}: privileged")
            caps = csc.get("capabilities") or {}
            if "ALL" not in (caps.get("drop") or []):
                problems.append(f"{at}: capabilities do not drop ALL")
            if caps.get("add"):
                problems.append(f"{at}: capabilities add {caps['add']}")
            if csc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{at}: readOnlyRootFilesystem is not true")
            if any("hostPort" in p for p in c.get("ports") or []):
                problems.append(f"{at}: hostPort is set")
    return problems


def check_selectors(r):
    """Every selector selects the pods of exactly one workload: the one whose
    component its object names. The facade's Services, PodDisruptionBudget,
    NetworkPolicy and spread constraints never select the emulator's pods."""
    problems = []

    def expect(obj, selector, what):
        component = labels(obj).get(COMPONENT)
        chosen = r.selected(selector, namespace(obj))
        names = [ref(w) for w in chosen]
        if len(chosen) != 1:
            problems.append(f"{ref(obj)}: {what} selects {names or 'no workload'}, not exactly one")
        elif labels(chosen[0]).get(COMPONENT) != component:
            problems.append(f"{ref(obj)} ({COMPONENT}={component}): {what} selects {names[0]}")

    for svc in r.of("Service"):
        expect(svc, service_selector(svc), "selector")
    for pdb in r.of("PodDisruptionBudget"):
        expect(pdb, pdb["spec"].get("selector"), "selector")
    for np in r.of("NetworkPolicy"):
        expect(np, np["spec"].get("podSelector"), "podSelector")
        for rule in (np["spec"].get("ingress") or []) + (np["spec"].get("egress") or []):
            for peer in (rule.get("from") or []) + (rule.get("to") or []):
                sel = peer.get("podSelector")
                if sel is None or "namespaceSelector" in peer:
                    continue  # peers in other namespaces: not in this render
                if sel == {"matchLabels": serving.CLIENT_LABEL}:
                    continue  # the clients: deployed by others, not in this render
                if not r.selected(sel, namespace(np)):
                    problems.append(f"{ref(np)}: peer {sel} selects no pod of the render")
    for w in r.workloads():
        if not r.selected(w["spec"]["selector"], namespace(w)) == [w]:
            problems.append(f"{ref(w)}: its selector does not select exactly its own pods")
        for tsc in pod_spec(w).get("topologySpreadConstraints") or []:
            expect(w, tsc.get("labelSelector"), f"spread constraint on {tsc.get('topologyKey')}")
    return problems


def check_autoscaling(r):
    """HPA targets the facade Deployment; the count is the HPA's alone; a PDB
    never blocks a drain, even with one replica; the rate limits of all
    replicas together stay within Cognito's quota: each limit x maxReplicas
    when every replica limits alone, the limit itself when the limits are
    shared on Redis (COGNITO_VERIFY_LIMITS_REDIS_URL set, cluster-wide)."""
    problems = []
    for hpa in r.of("HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        d = r.find(target.get("kind"), target.get("name"), namespace(hpa))
        if target.get("kind") != "Deployment" or target.get("apiVersion") != "apps/v1" or d is None:
            problems.append(
                f"{ref(hpa)}: scaleTargetRef {target} names no Deployment of the render"
            )
        elif labels(d).get(COMPONENT) != labels(hpa).get(COMPONENT):
            problems.append(f"{ref(hpa)}: scales {ref(d)}, another component")
    for d in r.facades():
        hpas = [
            h
            for h in r.of("HorizontalPodAutoscaler")
            if h["spec"]["scaleTargetRef"].get("name") == name(d) and namespace(h) == namespace(d)
        ]
        if hpas:
            lowest, highest = hpas[0]["spec"].get("minReplicas", 1), hpas[0]["spec"]["maxReplicas"]
            if "replicas" in d["spec"]:
                problems.append(f"{ref(d)}: sets replicas while {ref(hpas[0])} owns the count")
            if lowest < 2:
                problems.append(f"{ref(hpas[0])}: minReplicas {lowest} < 2 (availability)")
        else:
            lowest = highest = d["spec"].get("replicas", 1)
        c = facade_container(d)
        env = r.config(d, c)[0] if c else {}
        # With Redis the limits hold for all replicas together. (While Redis
        # fails, the `local` failure mode lets each replica apply them alone:
        # Cognito throttles the excess for that time.)
        shared = c is not None and r.redis(d, c)[0] is not None
        for var in ("COGNITO_VERIFY_GET_CODE_LIMIT_PER_SEC", "COGNITO_VERIFY_VERIFY_LIMIT_PER_SEC"):
            value = env.get(var, DEFAULT_LIMIT_PER_SEC)
            try:
                limit = float(value)
            except ValueError:
                limit = 0
            if shared and (limit <= 0 or limit > COGNITO_QUOTA_PER_SEC):
                problems.append(
                    f"{ref(d)}: {var}={value}, cluster-wide ({REDIS_URL} is set), is not "
                    f"within Cognito's quota of {COGNITO_QUOTA_PER_SEC}/s (0 = no limit)"
                )
            elif not shared and (limit <= 0 or limit * highest > COGNITO_QUOTA_PER_SEC):
                problems.append(
                    f"{ref(d)}: {var}={value} x {highest} replicas, each limiting alone "
                    f"(no {REDIS_URL}), is not within Cognito's quota of "
                    f"{COGNITO_QUOTA_PER_SEC}/s (0 = no limit)"
                )
        for pdb in r.of("PodDisruptionBudget"):
            if r.selected(pdb["spec"].get("selector"), namespace(pdb)) != [d]:
                continue
            spec = pdb["spec"]
            if "minAvailable" in spec:
                if not isinstance(spec["minAvailable"], int) or spec["minAvailable"] >= lowest:
                    problems.append(
                        f"{ref(pdb)}: minAvailable {spec['minAvailable']} blocks drains at {lowest} replica(s)"
                    )
            elif spec.get("maxUnavailable") in (0, "0%", None):
                problems.append(
                    f"{ref(pdb)}: maxUnavailable {spec.get('maxUnavailable')} blocks drains"
                )
        keys = {
            t.get("topologyKey"): t.get("whenUnsatisfiable")
            for t in pod_spec(d).get("topologySpreadConstraints") or []
        }
        if "kubernetes.io/hostname" not in keys:
            problems.append(f"{ref(d)}: no spread constraint across nodes")
        if keys.get("topology.kubernetes.io/zone") != "ScheduleAnyway":
            problems.append(f"{ref(d)}: no ScheduleAnyway spread constraint across zones")
    if not r.facades():
        problems.append("no Deployment with app.kubernetes.io/component=facade")
    return problems


def check_named_ports(r):
    """Ports referenced by name exist on the pods (Service targetPort,
    NetworkPolicy ports, HTTP and TCP probes)."""
    problems = []

    def names_on(workloads):
        found = set()
        for w in workloads:
            for c in containers(w):
                found |= set(container_ports(c))
        return found

    for svc in r.of("Service"):
        pods = r.selected(service_selector(svc), namespace(svc))
        for p in svc["spec"].get("ports") or []:
            if isinstance(p.get("targetPort"), str) and p["targetPort"] not in names_on(pods):
                problems.append(
                    f"{ref(svc)}: targetPort {p['targetPort']!r} is no container port name"
                )
    for np in r.of("NetworkPolicy"):
        pods = r.selected(np["spec"].get("podSelector"), namespace(np))
        for rule in np["spec"].get("ingress") or []:
            for p in rule.get("ports") or []:
                if isinstance(p.get("port"), str) and p["port"] not in names_on(pods):
                    problems.append(
                        f"{ref(np)}: ingress port {p['port']!r} is no container port name"
                    )
    for w in r.workloads():
        for c in containers(w):
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                probe = c.get(kind) or {}
                for action in ("httpGet", "tcpSocket"):
                    port = (probe.get(action) or {}).get("port")
                    if isinstance(port, str) and port not in container_ports(c):
                        problems.append(f"{ref(w)} {kind}: port {port!r} is no container port name")
    return problems


def check_images(r):
    """The service's own workloads (the facade, the dev emulator) run the
    same cognito-verify image; the limits store (Redis) runs its own, never
    that one. Every image is tagged or pinned by digest, never latest."""
    problems, own, stores = [], set(), []
    for w in r.workloads():
        for c in containers(w):
            image = c.get("image", "")
            if labels(w).get(COMPONENT) == LIMITS_STORE:
                stores.append((w, image))
            else:
                own.add(image)
            if "@sha256:" not in image and (
                ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
            ):
                problems.append(f"{ref(w)}: image {image!r} has no tag or digest (or is latest)")
    if len(own) > 1:
        problems.append(f"the facade and emulator run different images: {sorted(own)}")
    for w, image in stores:
        if image in own:
            problems.append(
                f"{ref(w)} ({COMPONENT}={LIMITS_STORE}) runs the service's image {image!r}"
            )
    return problems


CHECKS = [
    check_pod_security,
    check_selectors,
    check_autoscaling,
    check_named_ports,
    serving.check_facade_config,
    serving.check_probes,
    serving.check_tls,
    serving.check_network_policy,
    serving.check_backend_policies,
    access.check_user_pools,
    access.check_callers,
    access.check_client_namespaces,
    access.check_redis_auth,
    monitoring.check_metrics,
    check_images,
]
# The checks that hold more in production: TLS with client certificates,
# named user pools, named callers, named client namespaces.
PRODUCTION_AWARE = {
    serving.check_tls,
    access.check_user_pools,
    access.check_callers,
    access.check_client_namespaces,
}


def run(r, production=False):
    """Every check's problems, each prefixed with the check's name."""
    problems = []
    for check in CHECKS:
        found = check(r, production) if check in PRODUCTION_AWARE else check(r)
        problems += [f"{check.__name__}: {p}" for p in found]
    return list(dict.fromkeys(problems))  # each once, in order
