"""How the facade serves, checked on the rendered objects: its settings,
its probes, TLS from cert-manager, and its network policy. Part of the
checks that invariants.py runs."""

import ipaddress
import posixpath
import re
from urllib.parse import urlsplit

from render import (
    COMPONENT,
    FACADE,
    REDIS_URL,
    containers,
    container_ports,
    facade_container,
    labels,
    name,
    namespace,
    pod_spec,
    port_of,
    ref,
    references,
    service_selector,
)

DEFAULT_LISTEN_PORT = 50051
DEFAULT_ADMIN_LISTEN = "0.0.0.0:9464"  # serve's default: metrics on
# Variables of these prefixes must be ones the binary reads (a typo in one
# would be ignored silently).
CHECKED_PREFIXES = ("COGNITO_VERIFY_", "OTEL_")
# Variables that name an OTLP/gRPC endpoint the facade sends to.
OTLP_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
CLIENT_LABEL = {"cognito-verify/client": "true"}
# The files cert-manager writes into a Certificate's Secret, by variable.
TLS_FILES = {
    "COGNITO_VERIFY_TLS_CERT": "tls.crt",
    "COGNITO_VERIFY_TLS_KEY": "tls.key",
    "COGNITO_VERIFY_TLS_CLIENT_CA": "ca.crt",
}

# What the binary does after the drain, in seconds: the trace flush (5) and
# the health listener's close (1).
AFTER_DRAIN_SECS = 6
# The port of an endpoint URL that names none, by scheme.
DEFAULT_PORTS = {"http": 80, "https": 443, "redis": 6379, "rediss": 6379}


def redact(url):
    """`url` with the password of its userinfo, if any, replaced by ***:
    problems never show a secret."""
    return re.sub(r"^([a-z][a-z0-9+.-]*://[^/?#:@]*:)[^/?#]*@", r"\1***@", url, flags=re.I)


def _redis_url_problems(r, d, c, origin, url):
    """What is wrong with the facade's Redis URL as the render holds it (a
    ConfigMap or a value: `origin`); the URL itself is never shown. A
    password is fine only as a `$(NAME)` reference, in an env value, to a
    variable from a Secret defined before it (Kubernetes expands it)."""
    problems = []
    try:
        parts = urlsplit(url)
        valid = parts.scheme.lower() in ("redis", "rediss") and bool(parts.hostname)
    except ValueError:
        parts, valid = None, False
    if not valid:
        problems.append(
            f"{ref(d)}: {REDIS_URL} is not a redis:// or rediss:// URL with a host (its "
            "value is not shown: it may hold a password)"
        )
    if parts is not None and (parts.password or "password=" in parts.query.lower()):
        # The password as written, before Kubernetes expands it.
        written = r.written(c, REDIS_URL) if origin == "value" else None
        try:
            password = urlsplit(written).password if written is not None else parts.password
        except ValueError:
            password = parts.password
        names = references(password or "")
        resolved = r.referenced(d, c, REDIS_URL) if origin == "value" else {}
        if len(names) == 1 and password == f"$({names[0]})" and resolved.get(names[0]) == "secret":
            return problems  # the Secret's password, expanded by Kubernetes
        if names and origin == "value" and names[0] not in resolved:
            problems.append(
                f"{ref(d)}: {REDIS_URL}'s password refers to $({names[0]}), which is not "
                "defined before it in the container's env: Kubernetes leaves the "
                "reference as written, and that becomes the password"
            )
            return problems
        where = "a ConfigMap" if origin == "configMap" else "a value written in the workload"
        if names and resolved.get(names[0]) == "configMap":
            where = "a ConfigMap (through $(" + names[0] + "))"
        problems.append(
            f"{ref(d)}: {REDIS_URL} comes from {where} and holds a password: take the "
            "password from a Secret (an env entry with valueFrom.secretKeyRef, named as "
            "$(NAME) in the URL after it), never from a ConfigMap"
        )
    return problems


def check_facade_config(r):
    """Settings: every container sets only COGNITO_VERIFY_* and OTEL_*
    variables the binary reads; the facade has a region, a JSON log, listen
    ports that are its container's (gRPC, health, metrics), requests and a
    memory limit, and a termination grace period above shutdown delay +
    drain timeout, both set explicitly. Its Redis URL (shared limits), when
    the render holds it, is redis:// or rediss:// with a host, and its
    password, if any, is not in the render: the whole URL from a Secret, or
    the password as $(NAME) of a Secret's variable defined before it."""
    problems = []
    for w in r.workloads():
        for c in containers(w):
            env = r.config(w, c)[0]
            for var in sorted(v for v in env if v.startswith(CHECKED_PREFIXES)):
                if r.known_vars and var not in r.known_vars:
                    problems.append(f"{ref(w)}: {var} is not a variable cognito-verify reads")
    for d in r.facades():
        c = facade_container(d)
        if c is None:
            problems.append(f"{ref(d)}: no container runs `serve`")
            continue
        env, resolve = r.config(d, c)
        problems += resolve
        for var in (
            "COGNITO_VERIFY_REGION",
            "COGNITO_VERIFY_SHUTDOWN_DELAY_SECS",
            "COGNITO_VERIFY_DRAIN_TIMEOUT_SECS",
        ):
            if not env.get(var):
                problems.append(f"{ref(d)}: {var} is not set")
        if env.get("COGNITO_VERIFY_LOG_FORMAT") != "json":
            problems.append(f"{ref(d)}: COGNITO_VERIFY_LOG_FORMAT is not json")
        try:
            # After the drain: the trace flush (at most 5 s) and the health
            # listener's close (at most 1 s).
            budget = (
                int(env.get("COGNITO_VERIFY_SHUTDOWN_DELAY_SECS", 5))
                + int(env.get("COGNITO_VERIFY_DRAIN_TIMEOUT_SECS", 20))
                + AFTER_DRAIN_SECS
            )
        except ValueError:
            problems.append(f"{ref(d)}: shutdown delay or drain timeout is not a number")
            budget = 0
        grace = pod_spec(d).get("terminationGracePeriodSeconds", 30)
        if grace <= budget:
            problems.append(
                f"{ref(d)}: terminationGracePeriodSeconds {grace} <= shutdown delay + drain timeout + {AFTER_DRAIN_SECS} s {budget}"
            )
        ports = container_ports(c)
        listen = port_of(env.get("COGNITO_VERIFY_LISTEN", f"0.0.0.0:{DEFAULT_LISTEN_PORT}"))
        if ports.get("grpc") != listen:
            problems.append(
                f"{ref(d)}: container port grpc {ports.get('grpc')} is not the listen port {listen}"
            )
        health = port_of(env.get("COGNITO_VERIFY_HEALTH_LISTEN"))
        if health is not None and ports.get("health") != health:
            problems.append(
                f"{ref(d)}: container port health {ports.get('health')} is not COGNITO_VERIFY_HEALTH_LISTEN's {health}"
            )
        if "health" in ports and health is None:
            problems.append(f"{ref(d)}: a health port without COGNITO_VERIFY_HEALTH_LISTEN")
        admin = port_of(env.get("COGNITO_VERIFY_ADMIN_LISTEN", DEFAULT_ADMIN_LISTEN))
        if admin is not None and ports.get("metrics") != admin:
            problems.append(
                f"{ref(d)}: container port metrics {ports.get('metrics')} is not COGNITO_VERIFY_ADMIN_LISTEN's {admin}"
            )
        if "metrics" in ports and admin is None:
            problems.append(f"{ref(d)}: a metrics port with COGNITO_VERIFY_ADMIN_LISTEN off")
        res = c.get("resources") or {}
        for where, key in (("requests", "cpu"), ("requests", "memory"), ("limits", "memory")):
            if key not in (res.get(where) or {}):
                problems.append(f"{ref(d)}: no {where}.{key}")
        origin, url = r.redis(d, c)
        if url is not None:
            problems += _redis_url_problems(r, d, c, origin, url)
    return problems


def check_probes(r):
    """Startup, readiness and liveness probes are native gRPC probes on the
    port of COGNITO_VERIFY_HEALTH_LISTEN, in every overlay, TLS or not: the
    plaintext listener that serves health alone, apart from the gRPC port,
    where clients holding every connection COGNITO_VERIFY_MAX_CONNECTIONS
    admits would fail the probes too (and which the kubelet cannot speak to
    with TLS on). Readiness asks for the overall service "", which turns
    NOT_SERVING on SIGTERM. (Who may reach the health port: nobody, see
    check_network_policy.)"""
    problems = []
    for d in r.facades():
        c = facade_container(d)
        if c is None:
            continue
        env = r.config(d, c)[0]
        want = port_of(env.get("COGNITO_VERIFY_HEALTH_LISTEN"))
        listen = port_of(env.get("COGNITO_VERIFY_LISTEN", f"0.0.0.0:{DEFAULT_LISTEN_PORT}"))
        if want is None:
            problems.append(
                f"{ref(d)}: COGNITO_VERIFY_HEALTH_LISTEN is not set: the probes would share "
                "the gRPC port's connections with clients"
            )
        elif want == listen:
            problems.append(
                f"{ref(d)}: COGNITO_VERIFY_HEALTH_LISTEN's port {want} is the gRPC listen port"
            )
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            grpc = (c.get(kind) or {}).get("grpc")
            if grpc is None:
                problems.append(f"{ref(d)}: {kind} is not a gRPC probe")
            elif want is not None and grpc.get("port") != want:
                problems.append(
                    f"{ref(d)}: {kind} probes port {grpc.get('port')}, not "
                    f"COGNITO_VERIFY_HEALTH_LISTEN's {want}"
                )
        service = ((c.get("readinessProbe") or {}).get("grpc") or {}).get("service", "")
        if service != "":
            problems.append(
                f'{ref(d)}: readinessProbe asks for service {service!r}, not the overall ""'
            )
    return problems


def check_tls(r, expect_tls=False):
    """With TLS: the three files are in a read-only mount (no subPath: it
    would never see a renewal) of the Secret a Certificate writes, named as
    cert-manager names them; the Certificate covers the names of the
    Services of the gRPC port; they say `grpc`. Without: they say
    `kubernetes.io/h2c`. The metrics port (plaintext either way) says
    `http`."""
    problems = []
    certs = {(c["spec"].get("secretName"), namespace(c)): c for c in r.of("Certificate")}
    for d in r.facades():
        c = facade_container(d)
        if c is None:
            continue
        env = r.config(d, c)[0]
        tls = any(env.get(v) for v in TLS_FILES)
        if expect_tls and not all(env.get(v) for v in TLS_FILES):
            problems.append(
                f"{ref(d)}: TLS with client certificates expected, not all of {sorted(TLS_FILES)} set"
            )
        services = []
        for s in r.of("Service"):
            if r.selected(service_selector(s), namespace(s)) != [d]:
                continue
            grpc_ports = 0
            for p in s["spec"].get("ports") or []:
                target = _target_port(p, c)
                if target == container_ports(c).get("grpc"):
                    want, grpc_ports = ("grpc" if tls else "kubernetes.io/h2c"), grpc_ports + 1
                elif target == container_ports(c).get("metrics"):
                    want = "http"
                else:
                    continue
                if p.get("appProtocol") != want:
                    problems.append(
                        f"{ref(s)}: port {p.get('name')} appProtocol {p.get('appProtocol')!r}, not {want!r}"
                    )
            if grpc_ports:
                services.append(s)
        if not tls:
            continue
        volumes = {v["name"]: v for v in pod_spec(d).get("volumes") or []}
        for var, file in TLS_FILES.items():
            path = env.get(var)
            if not path:
                continue
            mount = next(
                (
                    m
                    for m in c.get("volumeMounts") or []
                    if posixpath.dirname(path) == m["mountPath"].rstrip("/")
                ),
                None,
            )
            if mount is None:
                problems.append(f"{ref(d)}: {var}={path} is in no volume mount")
                continue
            secret = (volumes.get(mount["name"]) or {}).get("secret")
            if mount.get("readOnly") is not True or "subPath" in mount or "subPathExpr" in mount:
                problems.append(
                    f"{ref(d)}: mount {mount['mountPath']} is not read-only, or uses subPath"
                )
            if secret is None:
                problems.append(f"{ref(d)}: {var}: volume {mount['name']} is not a Secret")
                continue
            cert = certs.get((secret.get("secretName"), namespace(d)))
            if cert is None:
                problems.append(
                    f"{ref(d)}: Secret {secret.get('secretName')} is written by no Certificate"
                )
            keys = {i["key"]: i["path"] for i in secret.get("items") or []} or {file: file}
            if keys.get(file) != posixpath.basename(path):
                problems.append(f"{ref(d)}: {var}={path} is not the Secret's {file}")
        for cert in certs.values():
            names = set(cert["spec"].get("dnsNames") or [])
            ns = namespace(cert)
            for s in services:
                for n in (f"{name(s)}.{ns}.svc", f"{name(s)}.{ns}.svc.cluster.local"):
                    if n not in names:
                        problems.append(f"{ref(cert)}: dnsNames lack {n}")
            key = cert["spec"].get("privateKey") or {}
            if key.get("rotationPolicy") != "Always" or key.get("algorithm") != "ECDSA":
                problems.append(f"{ref(cert)}: privateKey is not ECDSA with rotationPolicy Always")
            if "server auth" not in (cert["spec"].get("usages") or ["server auth"]):
                problems.append(f"{ref(cert)}: usages lack server auth")
    return problems


def _target_port(service_port, container):
    """The container port number a Service port sends to."""
    target = service_port.get("targetPort", service_port.get("port"))
    return container_ports(container).get(target) if isinstance(target, str) else target


def _egress_problem(r, np, d, endpoint, what):
    """Why the policy's egress does not let the facade reach `endpoint`
    (`scheme://[user[:password]@]host[:port]`; the port defaults to the
    scheme's: 80, 443, 6379 for redis:// and rediss://), or None. A Service
    of the render: a rule whose peer selects its pods, on their port (by
    number or name). Another namespace's Service (`name.namespace[.svc...]`):
    a rule naming that namespace by its kubernetes.io/metadata.name label, on
    the port. Anything else: a rule on the port to any address, or to an
    ipBlock, which must hold the address when the host is one (a name's
    addresses are unknown here)."""
    try:
        parts = urlsplit(endpoint)
        host = (parts.hostname or "").rstrip(".")
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower(), 80)
    except ValueError:
        return f"{ref(np)}: the {what} {redact(endpoint)} is not a URL with a host and a port"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    labels_ = host.split(".")
    egress = np["spec"].get("egress") or []
    ns = labels_[1] if len(labels_) > 1 else namespace(d)
    svc = (
        r.find("Service", labels_[0], namespace(d))
        if address is None and ns == namespace(d)
        else None
    )
    if svc is not None:
        backends = r.selected(service_selector(svc), namespace(svc))
        names = {}
        for w in backends:
            for c2 in containers(w):
                names.update(container_ports(c2))
        target = next((p for p in svc["spec"]["ports"] if p["port"] == port), {}).get(
            "targetPort", port
        )
        if isinstance(target, str):
            target = names.get(target)
        ok = any(
            any(
                r.selected(peer.get("podSelector"), namespace(np)) == backends
                for peer in rule.get("to") or []
            )
            and any(
                p.get("port") == target or names.get(p.get("port")) == target
                for p in rule.get("ports") or []
            )
            for rule in egress
        )
        port = target
    elif (
        address is None
        and len(labels_) in (2, 3, 5)
        and labels_[2:] in ([], ["svc"], ["svc", "cluster", "local"])
    ):
        ok = any(
            any(
                ((peer.get("namespaceSelector") or {}).get("matchLabels") or {}).get(
                    "kubernetes.io/metadata.name"
                )
                == ns
                for peer in rule.get("to") or []
            )
            and any(p.get("port") == port for p in rule.get("ports") or [])
            for rule in egress
        )
    else:
        ok = any(
            any(p.get("port") == port for p in rule.get("ports") or [])
            and (
                not rule.get("to")
                or any(_block_admits(peer.get("ipBlock"), address) for peer in rule["to"])
            )
            for rule in egress
        )
    if ok:
        return None
    return f"{ref(np)}: egress does not allow the {what} {redact(endpoint)} (port {port})"


def _block_admits(block, address):
    """Whether an ipBlock peer admits `address` (None: a host name, whose
    addresses the render cannot know: any ipBlock)."""
    if block is None:
        return False
    if address is None:
        return True
    try:
        if address not in ipaddress.ip_network(block.get("cidr", ""), strict=False):
            return False
        return not any(
            address in ipaddress.ip_network(e, strict=False) for e in block.get("except") or []
        )
    except (TypeError, ValueError):
        return False


def _admits_port(rule, port, container):
    """Whether an ingress rule's ports admit container port number `port`:
    a rule without ports, or a port entry without a port, admits them all;
    otherwise by number, by range (endPort) or by a name of the container."""
    entries = rule.get("ports") or []
    if not entries:
        return True
    names = container_ports(container)
    for p in entries:
        value = p.get("port")
        if value is None:
            return True
        if isinstance(value, str):
            if names.get(value) == port:
                return True
        elif value == port or (value <= port <= p.get("endPort", value)):
            return True
    return False


def check_network_policy(r):
    """The facade takes gRPC from labelled clients only (which namespaces:
    access.check_client_namespaces), and the metrics port (if any) from
    named namespaces only; no ingress rule of any
    NetworkPolicy that selects it admits the health port
    (COGNITO_VERIFY_HEALTH_LISTEN: at most 64 connections, which a client
    could hold to starve the kubelet's probes, which come from the node and
    need no rule). It sends DNS, HTTPS, and what its Cognito endpoint, OTLP
    endpoint and Redis (COGNITO_VERIFY_LIMITS_REDIS_URL, when the render
    holds it, not from a Secret) need (see _egress_problem)."""
    problems = []
    for d in r.facades():
        c = facade_container(d)
        health = port_of((r.config(d, c)[0] if c else {}).get("COGNITO_VERIFY_HEALTH_LISTEN"))
        if c is not None and health is not None:
            for np in r.of("NetworkPolicy"):
                if d not in r.selected(np["spec"].get("podSelector"), namespace(np)):
                    continue
                for rule in np["spec"].get("ingress") or []:
                    if _admits_port(rule, health, c):
                        problems.append(
                            f"{ref(np)}: an ingress rule admits the health port {health} "
                            f"(COGNITO_VERIFY_HEALTH_LISTEN), whose 64 connections a client "
                            f"could hold to fail the probes: {rule}"
                        )
        policies = [
            np
            for np in r.of("NetworkPolicy")
            if r.selected(np["spec"].get("podSelector"), namespace(np)) == [d]
        ]
        if not policies:
            problems.append(f"{ref(d)}: no NetworkPolicy selects it")
            continue
        np = policies[0]
        if set(np["spec"].get("policyTypes") or []) != {"Ingress", "Egress"}:
            problems.append(f"{ref(np)}: policyTypes is not Ingress and Egress")
        want = {"grpc"}
        from_clients, from_monitoring = set(), set()
        for rule in np["spec"].get("ingress") or []:
            peers = rule.get("from") or []
            ports = {p.get("port") for p in rule.get("ports") or []}
            if peers and all(p.get("podSelector") == {"matchLabels": CLIENT_LABEL} for p in peers):
                from_clients |= ports
            elif (
                peers
                and ports == {"metrics"}
                and all((p.get("namespaceSelector") or {}).get("matchLabels") for p in peers)
            ):
                # Prometheus: the metrics port only, from namespaces named
                # by their labels (never `{}`: every namespace).
                from_monitoring |= ports
            else:
                problems.append(
                    f"{ref(np)}: an ingress rule admits more than labelled clients (or than "
                    f"named namespaces to the metrics port): {rule}"
                )
        if from_clients != want:
            problems.append(
                f"{ref(np)}: clients may reach ports {sorted(from_clients, key=str)}, not {sorted(want)}"
            )
        if "metrics" in container_ports(c or {}) and not from_monitoring:
            problems.append(f"{ref(np)}: no ingress rule lets Prometheus reach the metrics port")
        egress = np["spec"].get("egress") or []
        allowed = {
            (p.get("protocol", "TCP"), p.get("port"))
            for rule in egress
            if not rule.get("to")
            for p in rule.get("ports") or []
        }
        for need in (("UDP", 53), ("TCP", 53), ("TCP", 443)):
            if need not in allowed:
                problems.append(f"{ref(np)}: egress lacks {need[0]} {need[1]}")
        env = r.config(d, c)[0] if c else {}
        endpoint = env.get("COGNITO_VERIFY_COGNITO_ENDPOINT", "")
        if endpoint:
            why = _egress_problem(r, np, d, endpoint, "Cognito endpoint")
            if why:
                problems.append(why)
        for var in OTLP_ENDPOINTS:
            if env.get(var):
                why = _egress_problem(r, np, d, env[var], f"{var}")
                if why:
                    problems.append(why)
        url = r.redis(d, c)[1] if c else None
        if url is not None:
            why = _egress_problem(r, np, d, url, REDIS_URL)
            if why:
                problems.append(why)
    return problems


def check_backend_policies(r):
    """What the facade calls inside the render (the dev emulator, the shared
    limits' Redis, which has no password) is reached by the facade alone and
    reaches nothing: a NetworkPolicy selects exactly its pods, for Ingress
    and Egress; every ingress rule of every policy that selects them admits
    only the facade's pods of its namespace, on listed ports; no egress
    rule."""
    problems = []
    facades = r.facades()
    for w in r.workloads():
        if labels(w).get(COMPONENT) == FACADE:
            continue
        policies = [
            np
            for np in r.of("NetworkPolicy")
            if w in r.selected(np["spec"].get("podSelector"), namespace(np))
        ]
        own = [
            np
            for np in policies
            if r.selected(np["spec"].get("podSelector"), namespace(np)) == [w]
        ]
        if not own:
            problems.append(f"{ref(w)}: no NetworkPolicy selects its pods alone")
        for np in own:
            if set(np["spec"].get("policyTypes") or []) != {"Ingress", "Egress"}:
                problems.append(f"{ref(np)}: policyTypes is not Ingress and Egress")
        for np in policies:
            for rule in np["spec"].get("ingress") or []:
                peers = rule.get("from") or []
                if (
                    not peers
                    or not rule.get("ports")
                    or not all(
                        set(peer) == {"podSelector"}
                        and all(
                            x in facades
                            for x in r.selected(peer["podSelector"], namespace(np))
                        )
                        for peer in peers
                    )
                ):
                    problems.append(
                        f"{ref(np)}: an ingress rule to {ref(w)} admits more than the "
                        f"facade's pods on listed ports: {rule}"
                    )
            if np["spec"].get("egress"):
                problems.append(
                    f"{ref(np)}: {ref(w)} may reach out (egress "
                    f"{np['spec']['egress']}): it needs nothing"
                )
    return problems
