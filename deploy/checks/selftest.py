"""The checker's own test: a check that cannot fail proves nothing.

Takes the good dev and production renders, breaks each in one way, in
memory, and asserts that the expected check reports it (and that the good
renders, and the variants the docs recommend, pass). A mutation nobody
notices fails the self-test.
"""

import copy

import image
import invariants
import schemas
from render import COMPONENT, LIMITS_STORE, REDIS_URL, Render, facade_container, labels, name


def _get(docs, kind, obj_name=None, component=None):
    for d in docs:
        if d.get("kind") != kind:
            continue
        if obj_name is not None and name(d) != obj_name:
            continue
        if component is not None and labels(d).get("app.kubernetes.io/component") != component:
            continue
        return d
    raise LookupError(f"{kind} {obj_name or component} not in the render")


def _facade(docs):
    return _get(docs, "Deployment", component="facade")


def _serve(docs):
    return facade_container(_facade(docs))


def _config(docs):
    name_ = _serve(docs)["envFrom"][0]["configMapRef"]["name"]
    return _get(docs, "ConfigMap", name_)["data"]


def _pop(mapping, key):
    mapping.pop(key)


def _port(container, port_name):
    return next(p for p in container["ports"] if p["name"] == port_name)


PROBES = ("startupProbe", "readinessProbe", "livenessProbe")

# A password the mutations put into Redis URLs: no problem may show it.
SECRET = "s3cret-Pw0rd"


def _redis(docs):
    """The limits store's Deployment (components/redis)."""
    return _get(docs, "Deployment", component=LIMITS_STORE)


def _redis_policy(docs):
    return _get(docs, "NetworkPolicy", component=LIMITS_STORE)


def _egress(docs):
    return _get(docs, "NetworkPolicy", "cognito-verify")["spec"]["egress"]


def _egress_to(docs, component):
    """The facade's egress rule to the pods of `component`."""
    for rule in _egress(docs):
        for peer in rule.get("to") or []:
            selector = (peer.get("podSelector") or {}).get("matchLabels") or {}
            if selector.get(COMPONENT) == component:
                return rule
    raise LookupError(f"no egress rule to {component}")


# The facade's variable that holds Redis' password (components/redis).
PASSWORD_VAR = "REDIS_PASSWORD"


def _env(container, var):
    """The container's env entry `var`."""
    return next(e for e in container.get("env") or [] if e["name"] == var)


def _set_redis_url(docs, url):
    """The facade's Redis URL (the redis component's env entry) set to `url`."""
    _env(_serve(docs), REDIS_URL).update(value=url)


def _drop_redis_env(docs):
    """The redis component's env entries (password, URL) removed from the facade."""
    c = _serve(docs)
    _env(c, REDIS_URL)  # LookupError when the component is not there
    c["env"] = [e for e in c["env"] if e["name"] not in (REDIS_URL, PASSWORD_VAR)]


def _redis_args(docs):
    return _redis(docs)["spec"]["template"]["spec"]["containers"][0]["args"]


def _without_requirepass(docs):
    args = _redis_args(docs)
    i = args.index("--requirepass")
    del args[i : i + 2]


def _clients(docs):
    """The facade's client peer (the first ingress rule's)."""
    return _get(docs, "NetworkPolicy", "cognito-verify")["spec"]["ingress"][0]["from"][0]


def _managed_redis(docs, url=None, cidr="10.20.0.0/24"):
    """deploy/README.md's managed Redis: no limits-store objects; the URL
    from a Secret (url None) or in the ConfigMap; egress to an ipBlock."""
    rule = _egress_to(docs, LIMITS_STORE)
    rule.clear()
    rule.update(to=[{"ipBlock": {"cidr": cidr}}], ports=[{"protocol": "TCP", "port": 6379}])
    docs[:] = [d for d in docs if labels(d).get(COMPONENT) != LIMITS_STORE]
    _drop_redis_env(docs)
    if url is None:
        _serve(docs).setdefault("env", []).append(
            {
                "name": REDIS_URL,
                "valueFrom": {"secretKeyRef": {"name": "cognito-verify-redis", "key": "url"}},
            }
        )
    else:
        _config(docs)[REDIS_URL] = url


# (which render, what breaks, the check that must notice, a word its message contains)
MUTATIONS = [
    (
        "production",
        "writable root filesystem",
        lambda d: _serve(d)["securityContext"].update(readOnlyRootFilesystem=False),
        "check_pod_security",
        "readOnlyRootFilesystem",
    ),
    (
        "dev",
        "emulator keeps its capabilities",
        lambda d: _pop(
            _get(d, "Deployment", "cognito-verify-emulator")["spec"]["template"]["spec"][
                "containers"
            ][0]["securityContext"],
            "capabilities",
        ),
        "check_pod_security",
        "ALL",
    ),
    (
        "production",
        "service account token mounted",
        lambda d: _facade(d)["spec"]["template"]["spec"].update(automountServiceAccountToken=True),
        "check_pod_security",
        "automountServiceAccountToken",
    ),
    (
        "production",
        "runs as root",
        lambda d: _facade(d)["spec"]["template"]["spec"]["securityContext"].update(runAsUser=0),
        "check_pod_security",
        "runAsUser",
    ),
    (
        "dev",
        "Service selects the emulator too",
        lambda d: _pop(
            _get(d, "Service", "cognito-verify")["spec"]["selector"], "app.kubernetes.io/component"
        ),
        "check_selectors",
        "not exactly one",
    ),
    (
        "dev",
        "PodDisruptionBudget selects the emulator",
        lambda d: _get(d, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"].update(
            {"app.kubernetes.io/component": "emulator"}
        ),
        "check_selectors",
        "selects Deployment/cognito-verify-emulator",
    ),
    (
        "production",
        "NetworkPolicy selects nothing",
        lambda d: _get(d, "NetworkPolicy", "cognito-verify")["spec"]["podSelector"][
            "matchLabels"
        ].update({"app.kubernetes.io/component": "none"}),
        "check_selectors",
        "no workload",
    ),
    (
        "production",
        "HPA scales a missing Deployment",
        lambda d: _get(d, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"].update(
            name="cognito-verfiy"
        ),
        "check_autoscaling",
        "scaleTargetRef",
    ),
    (
        "production",
        "per-RPC limit 25 x 4 replicas without Redis: per replica again",
        _drop_redis_env,
        "check_autoscaling",
        "COGNITO_VERIFY_GET_CODE_LIMIT_PER_SEC=25 x 4 replicas",
    ),
    (
        "production",
        "cluster-wide limit over the quota",
        lambda d: _config(d).update(COGNITO_VERIFY_VERIFY_LIMIT_PER_SEC="26"),
        "check_autoscaling",
        "COGNITO_VERIFY_VERIFY_LIMIT_PER_SEC=26, cluster-wide",
    ),
    (
        "dev",
        "rate limits x replicas over the quota",
        lambda d: _facade(d)["spec"].update(replicas=2),
        "check_autoscaling",
        "x 2 replicas",
    ),
    (
        "dev",
        "PodDisruptionBudget blocks a one-replica drain",
        lambda d: _get(d, "PodDisruptionBudget")["spec"].update(minAvailable=1)
        or _pop(_get(d, "PodDisruptionBudget")["spec"], "maxUnavailable"),
        "check_autoscaling",
        "blocks drains",
    ),
    (
        "production",
        "NetworkPolicy names a port the pod lacks",
        lambda d: _get(d, "NetworkPolicy", "cognito-verify")["spec"]["ingress"][0]["ports"][
            0
        ].update(port="grcp"),
        "check_named_ports",
        "grcp",
    ),
    (
        "production",
        "grace period not above delay + drain",
        lambda d: _facade(d)["spec"]["template"]["spec"].update(terminationGracePeriodSeconds=25),
        "check_facade_config",
        "terminationGracePeriodSeconds",
    ),
    (
        "production",
        "a mistyped variable",
        lambda d: _config(d).update(COGNITO_VERIFY_REGOIN="eu-west-1"),
        "check_facade_config",
        "COGNITO_VERIFY_REGOIN",
    ),
    (
        "dev",
        "a mistyped emulator variable",
        lambda d: _get(d, "Deployment", "cognito-verify-emulator")["spec"]["template"]["spec"][
            "containers"
        ][0]["env"][0].update(name="COGNITO_VERIFY_EMULATOR_LISTN"),
        "check_facade_config",
        "COGNITO_VERIFY_EMULATOR_LISTN",
    ),
    (
        "production",
        "liveness probe on the TLS port",
        lambda d: _serve(d)["livenessProbe"]["grpc"].update(port=50051),
        "check_probes",
        "livenessProbe",
    ),
    (
        "dev",
        "probes back on the gRPC port",
        lambda d: [_serve(d)[kind]["grpc"].update(port=50051) for kind in PROBES],
        "check_probes",
        "startupProbe probes port 50051",
    ),
    (
        "dev",
        "no health listener: the probes share the gRPC port with clients",
        lambda d: _pop(_config(d), "COGNITO_VERIFY_HEALTH_LISTEN")
        or _serve(d)["ports"].remove(_port(_serve(d), "health"))
        or [_serve(d)[kind]["grpc"].update(port=50051) for kind in PROBES],
        "check_probes",
        "COGNITO_VERIFY_HEALTH_LISTEN is not set",
    ),
    (
        "production",
        "health listener on the gRPC port",
        lambda d: _config(d).update(COGNITO_VERIFY_HEALTH_LISTEN="0.0.0.0:50051"),
        "check_probes",
        "is the gRPC listen port",
    ),
    (
        "dev",
        "readiness by HTTP instead of gRPC",
        lambda d: _serve(d).update(readinessProbe={"tcpSocket": {"port": "grpc"}}),
        "check_probes",
        "not a gRPC probe",
    ),
    (
        "production",
        "TLS key outside the Secret mount",
        lambda d: _config(d).update(COGNITO_VERIFY_TLS_KEY="/etc/cognito-verify/tls.key"),
        "check_tls",
        "COGNITO_VERIFY_TLS_KEY",
    ),
    (
        "production",
        "Certificate writes another Secret",
        lambda d: _get(d, "Certificate")["spec"].update(secretName="cognito-verify-cert"),
        "check_tls",
        "written by no Certificate",
    ),
    (
        "production",
        "Certificate misses the headless Service",
        lambda d: _get(d, "Certificate")["spec"].update(
            dnsNames=["cognito-verify.cognito-verify.svc"]
        ),
        "check_tls",
        "cognito-verify-headless",
    ),
    (
        "production",
        "mTLS off",
        lambda d: _pop(_config(d), "COGNITO_VERIFY_TLS_CLIENT_CA"),
        "check_tls",
        "client certificates",
    ),
    (
        "dev",
        "facade cannot reach the emulator",
        lambda d: _get(d, "NetworkPolicy", "cognito-verify")["spec"]["egress"].pop(),
        "check_network_policy",
        "Cognito endpoint",
    ),
    (
        "production",
        "ingress from any pod",
        lambda d: _get(d, "NetworkPolicy", "cognito-verify")["spec"]["ingress"][0]["from"][0].pop(
            "podSelector"
        ),
        "check_network_policy",
        "more than labelled clients",
    ),
    (
        "production",
        "metrics port is not the admin listen port",
        lambda d: _port(_serve(d), "metrics").update(containerPort=9465),
        "check_facade_config",
        "COGNITO_VERIFY_ADMIN_LISTEN",
    ),
    (
        "production",
        "a mistyped OpenTelemetry variable",
        lambda d: _config(d).update(
            OTEL_EXPORTER_OTLP_ENDPIONT=_config(d).pop("OTEL_EXPORTER_OTLP_ENDPOINT")
        ),
        "check_facade_config",
        "OTEL_EXPORTER_OTLP_ENDPIONT",
    ),
    (
        "production",
        "metrics Service speaks gRPC",
        lambda d: _get(d, "Service", "cognito-verify-metrics")["spec"]["ports"][0].update(
            appProtocol="grpc"
        ),
        "check_tls",
        "port metrics appProtocol",
    ),
    (
        "dev",
        "metrics open to every namespace",
        lambda d: _get(d, "NetworkPolicy", "cognito-verify")["spec"]["ingress"][1]["from"][
            0
        ].update(namespaceSelector={}),
        "check_network_policy",
        "named namespaces to the metrics port",
    ),
    (
        "production",
        "clients may scrape",
        lambda d: _get(d, "NetworkPolicy", "cognito-verify")["spec"]["ingress"][0]["ports"].append(
            {"protocol": "TCP", "port": "metrics"}
        ),
        "check_network_policy",
        "clients may reach ports",
    ),
    (
        "production",
        "clients may reach the health port",
        lambda d: _get(d, "NetworkPolicy", "cognito-verify")["spec"]["ingress"][0]["ports"].append(
            {"protocol": "TCP", "port": "health"}
        ),
        "check_network_policy",
        "admits the health port 8081",
    ),
    (
        "dev",
        "every namespace may reach the health port, by number",
        lambda d: _get(d, "NetworkPolicy", "cognito-verify")["spec"]["ingress"].append(
            {"from": [{"namespaceSelector": {}}], "ports": [{"protocol": "TCP", "port": 8081}]}
        ),
        "check_network_policy",
        "admits the health port 8081",
    ),
    (
        "production",
        "client rule without ports: every port, health included",
        lambda d: _pop(_get(d, "NetworkPolicy", "cognito-verify")["spec"]["ingress"][0], "ports"),
        "check_network_policy",
        "admits the health port 8081",
    ),
    (
        "production",
        "a port range over the health port",
        lambda d: _get(d, "NetworkPolicy", "cognito-verify")["spec"]["ingress"][0]["ports"].append(
            {"protocol": "TCP", "port": 8000, "endPort": 8100}
        ),
        "check_network_policy",
        "admits the health port 8081",
    ),
    (
        "dev",
        "another NetworkPolicy opens the health port to every pod",
        lambda d: d.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "allow-health"},
                "spec": {
                    "podSelector": {},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"ports": [{"protocol": "TCP", "port": "health"}]}],
                },
            }
        ),
        "check_network_policy",
        "NetworkPolicy/allow-health: an ingress rule admits the health port 8081",
    ),
    (
        "dev",
        "Prometheus cannot reach the metrics port",
        lambda d: _get(d, "NetworkPolicy", "cognito-verify")["spec"]["ingress"].pop(1),
        "check_network_policy",
        "metrics port",
    ),
    (
        "production",
        "no egress to the OpenTelemetry collector",
        lambda d: _get(d, "NetworkPolicy", "cognito-verify")["spec"]["egress"].pop(),
        "check_network_policy",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ),
    (
        "production",
        "the collector moved to another namespace",
        lambda d: _config(d).update(
            OTEL_EXPORTER_OTLP_ENDPOINT="http://otel-collector.tracing:4317"
        ),
        "check_network_policy",
        "otel-collector.tracing",
    ),
    (
        "production",
        "scrape annotation names another port",
        lambda d: _facade(d)["spec"]["template"]["metadata"]["annotations"].update(
            {"prometheus.io/port": "50051"}
        ),
        "check_metrics",
        "prometheus.io/port",
    ),
    (
        "production",
        "ServiceMonitor selects every facade Service",
        lambda d: _pop(
            _get(d, "ServiceMonitor")["spec"]["selector"]["matchLabels"], "cognito-verify/metrics"
        ),
        "check_metrics",
        "not exactly one",
    ),
    (
        "production",
        "ServiceMonitor names a port the Service lacks",
        lambda d: _get(d, "ServiceMonitor")["spec"]["endpoints"][0].update(port="http-metrics"),
        "check_metrics",
        "http-metrics",
    ),
    (
        "production",
        "ServiceMonitor job is not the alerts' job",
        lambda d: _pop(_get(d, "ServiceMonitor")["spec"], "jobLabel"),
        "check_metrics",
        "cognito-verify-metrics",
    ),
    (
        "dev",
        "an untagged image",
        lambda d: _serve(d).update(image="cognito-verify"),
        "check_images",
        "no tag",
    ),
    (
        "dev",
        "emulator runs another image",
        lambda d: _get(d, "Deployment", "cognito-verify-emulator")["spec"]["template"]["spec"][
            "containers"
        ][0].update(image="registry.example.com/other/emulator:1.0"),
        "check_images",
        "different images",
    ),
    (
        "production",
        "Redis image at latest",
        lambda d: _redis(d)["spec"]["template"]["spec"]["containers"][0].update(
            image="redis:latest"
        ),
        "check_images",
        "'redis:latest' has no tag",
    ),
    (
        "production",
        "Redis runs the service's image",
        lambda d: _redis(d)["spec"]["template"]["spec"]["containers"][0].update(
            image=_serve(d)["image"]
        ),
        "check_images",
        "runs the service's image",
    ),
    (
        "production",
        "Redis runs as root",
        lambda d: _redis(d)["spec"]["template"]["spec"]["securityContext"].update(runAsUser=0),
        "check_pod_security",
        "cognito-verify-redis container redis: runAsUser",
    ),
    (
        "production",
        "Redis with a writable root filesystem",
        lambda d: _redis(d)["spec"]["template"]["spec"]["containers"][0][
            "securityContext"
        ].update(readOnlyRootFilesystem=False),
        "check_pod_security",
        "cognito-verify-redis container redis: readOnlyRootFilesystem",
    ),
    (
        "production",
        "Redis Service selects the facade",
        lambda d: _get(d, "Service", "cognito-verify-redis")["spec"]["selector"].update(
            {COMPONENT: "facade"}
        ),
        "check_selectors",
        "limits-store): selector selects Deployment/cognito-verify",
    ),
    (
        "production",
        "facade cannot reach Redis",
        lambda d: _egress(d).remove(_egress_to(d, LIMITS_STORE)),
        "check_network_policy",
        "egress does not allow the COGNITO_VERIFY_LIMITS_REDIS_URL "
        "redis://:***@cognito-verify-redis:6379",
    ),
    (
        "production",
        "Redis URL on another port than the egress rule's",
        lambda d: _set_redis_url(d, "redis://:$(REDIS_PASSWORD)@cognito-verify-redis:6380"),
        "check_network_policy",
        "(port 6380)",
    ),
    (
        "production",
        "managed Redis outside the egress rule's ipBlock",
        lambda d: _managed_redis(d, url="rediss://10.30.0.5:6379"),
        "check_network_policy",
        "rediss://10.30.0.5:6379",
    ),
    (
        "production",
        "a password in the ConfigMap's Redis URL",
        lambda d: _drop_redis_env(d)
        or _config(d).update({REDIS_URL: f"redis://app:{SECRET}@cognito-verify-redis:6379"}),
        "check_facade_config",
        "comes from a ConfigMap and holds a password",
    ),
    (
        "production",
        "a password in a Redis URL written in the Deployment",
        lambda d: _set_redis_url(d, f"rediss://:{SECRET}@cognito-verify-redis"),
        "check_facade_config",
        "comes from a value written in the workload and holds a password",
    ),
    (
        "production",
        "no egress to a Redis whose URL holds a password: the problem hides it",
        lambda d: _set_redis_url(d, f"redis://app:{SECRET}@cognito-verify-redis:6379")
        or _egress(d).remove(_egress_to(d, LIMITS_STORE)),
        "check_network_policy",
        "redis://app:***@cognito-verify-redis:6379",
    ),
    (
        "production",
        "a Redis URL that is not one",
        lambda d: _set_redis_url(d, "cognito-verify-redis:6379"),
        "check_facade_config",
        "is not a redis:// or rediss:// URL",
    ),
    (
        "production",
        "Redis open to every pod of the namespace",
        lambda d: _redis_policy(d)["spec"]["ingress"][0]["from"][0].update(podSelector={}),
        "check_backend_policies",
        "admits more than the facade's pods",
    ),
    (
        "production",
        "Redis open to the facade's labels in every namespace",
        lambda d: _redis_policy(d)["spec"]["ingress"][0]["from"][0].update(namespaceSelector={}),
        "check_backend_policies",
        "admits more than the facade's pods",
    ),
    (
        "production",
        "Redis may reach out",
        lambda d: _redis_policy(d)["spec"].update(
            egress=[{"ports": [{"protocol": "TCP", "port": 443}]}]
        ),
        "check_backend_policies",
        "may reach out",
    ),
    (
        "production",
        "Redis without its NetworkPolicy",
        lambda d: d.remove(_redis_policy(d)),
        "check_backend_policies",
        "Deployment/cognito-verify-redis: no NetworkPolicy",
    ),
    # --- who may use it (access.py) ---
    (
        "production",
        "no user pools: serve would refuse to start",
        lambda d: _pop(_config(d), "COGNITO_VERIFY_USER_POOL"),
        "check_user_pools",
        "serve refuses to start (exit 64)",
    ),
    (
        "dev",
        "no user pools in dev either",
        lambda d: _pop(_config(d), "COGNITO_VERIFY_USER_POOL"),
        "check_user_pools",
        "names no user pool",
    ),
    (
        "production",
        "any pool instead of named pools",
        lambda d: _pop(_config(d), "COGNITO_VERIFY_USER_POOL")
        or _config(d).update(COGNITO_VERIFY_ANY_USER_POOL="true"),
        "check_user_pools",
        "production names its user pools",
    ),
    (
        "dev",
        "named pools and any pool together",
        lambda d: _config(d).update(COGNITO_VERIFY_ANY_USER_POOL="true"),
        "check_user_pools",
        "contradict",
    ),
    (
        "dev",
        "any pool without the signature check",
        lambda d: _pop(_config(d), "COGNITO_VERIFY_USER_POOL")
        or _config(d).update(
            COGNITO_VERIFY_ANY_USER_POOL="true", COGNITO_VERIFY_TOKEN_SIGNATURE_CHECK="off"
        ),
        "check_user_pools",
        "signature check off",
    ),
    (
        "dev",
        "any pool spelt 1",
        lambda d: _pop(_config(d), "COGNITO_VERIFY_USER_POOL")
        or _config(d).update(COGNITO_VERIFY_ANY_USER_POOL="1"),
        "check_user_pools",
        "takes true or false",
    ),
    (
        "production",
        "a pool id without an AWS region",
        lambda d: _config(d).update(COGNITO_VERIFY_USER_POOL="eu-west-1_AbCdEf123,eu-west_Gh1"),
        "check_user_pools",
        "'eu-west_Gh1' is not a Cognito user pool id",
    ),
    (
        "production",
        "no callers: any certificate of the CA may call",
        lambda d: _pop(_config(d), "COGNITO_VERIFY_ALLOW_CALLER"),
        "check_callers",
        "production names its callers",
    ),
    (
        "production",
        "callers that are only empty entries",
        lambda d: _config(d).update(COGNITO_VERIFY_ALLOW_CALLER=" , "),
        "check_callers",
        "lists no caller",
    ),
    (
        "dev",
        "callers without client certificates",
        lambda d: _config(d).update(COGNITO_VERIFY_ALLOW_CALLER="spiffe://cluster.local/ns/a/sa/b"),
        "check_callers",
        "without client certificates",
    ),
    (
        "production",
        "clients from every namespace",
        lambda d: _clients(d).update(namespaceSelector={}),
        "check_client_namespaces",
        "every namespace",
    ),
    (
        "dev",
        "dev clients from every namespace",
        lambda d: _clients(d).update(namespaceSelector={}),
        "check_client_namespaces",
        "every namespace",
    ),
    (
        "production",
        "client namespaces by a label anyone may set",
        lambda d: _clients(d).update(namespaceSelector={"matchLabels": {"team": "payments"}}),
        "check_client_namespaces",
        "selects namespaces by team",
    ),
    (
        "production",
        "client namespaces: all but some",
        lambda d: _clients(d)["namespaceSelector"]["matchExpressions"][0].update(operator="NotIn"),
        "check_client_namespaces",
        "with NotIn",
    ),
    (
        "production",
        "clients of the facade's own namespace only",
        lambda d: _pop(_clients(d), "namespaceSelector"),
        "check_client_namespaces",
        "names a client namespace",
    ),
    (
        "production",
        "Redis without a password",
        _without_requirepass,
        "check_redis_auth",
        "Redis runs without a password",
    ),
    (
        "production",
        "Redis' password written in the workload",
        lambda d: _redis_args(d).__setitem__(_redis_args(d).index("--requirepass") + 1, SECRET),
        "check_redis_auth",
        "--requirepass is written in the workload",
    ),
    (
        "production",
        "Redis' password from an optional Secret",
        lambda d: _env(_redis(d)["spec"]["template"]["spec"]["containers"][0], PASSWORD_VAR)[
            "valueFrom"
        ]["secretKeyRef"].update(optional=True),
        "check_redis_auth",
        "optional",
    ),
    (
        "production",
        "Redis' password variable written as a value",
        lambda d: _env(_redis(d)["spec"]["template"]["spec"]["containers"][0], PASSWORD_VAR).update(
            value=SECRET
        )
        or _pop(
            _env(_redis(d)["spec"]["template"]["spec"]["containers"][0], PASSWORD_VAR), "valueFrom"
        ),
        "check_redis_auth",
        "comes from a value written in the workload, not a Secret",
    ),
    (
        "production",
        "the facade connects to Redis without the password",
        lambda d: _set_redis_url(d, "redis://cognito-verify-redis:6379"),
        "check_redis_auth",
        "has no password",
    ),
    (
        "production",
        "the facade's password from another Secret",
        lambda d: _env(_serve(d), PASSWORD_VAR)["valueFrom"]["secretKeyRef"].update(
            name="cognito-verify-redis-old"
        ),
        "check_redis_auth",
        "password is Secret cognito-verify-redis-old key password",
    ),
    (
        "production",
        "the password variable after the URL: Kubernetes does not expand it",
        lambda d: _serve(d)["env"].reverse(),
        "check_facade_config",
        "refers to $(REDIS_PASSWORD), which is not defined before it",
    ),
    (
        "production",
        "the facade's password from the ConfigMap",
        lambda d: _serve(d)["env"].remove(_env(_serve(d), PASSWORD_VAR))
        or _config(d).update({PASSWORD_VAR: SECRET}),
        "check_facade_config",
        "comes from a ConfigMap (through $(REDIS_PASSWORD))",
    ),
    (
        "dev",
        "emulator reachable on every port",
        lambda d: _pop(
            _get(d, "NetworkPolicy", "cognito-verify-emulator")["spec"]["ingress"][0], "ports"
        ),
        "check_backend_policies",
        "admits more than the facade's pods on listed ports",
    ),
]

# Variants of the good renders that must pass as they are: what the docs
# tell operators to do (which render, what changes).
GOOD_VARIANTS = [
    (
        "dev",
        "any pool, said explicitly, with the signature check on",
        lambda d: _pop(_config(d), "COGNITO_VERIFY_USER_POOL")
        or _config(d).update(COGNITO_VERIFY_ANY_USER_POOL="true"),
    ),
    (
        "production",
        "Redis' password Secret in the render (a secretGenerator of your own)",
        lambda d: d.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "cognito-verify-redis-auth", "namespace": "cognito-verify"},
                "type": "Opaque",
                "stringData": {"password": SECRET},
            }
        ),
    ),
    (
        "production",
        "clients also from the facade's own namespace",
        lambda d: _get(d, "NetworkPolicy", "cognito-verify")["spec"]["ingress"][0]["from"].append(
            {"podSelector": {"matchLabels": {"cognito-verify/client": "true"}}}
        ),
    ),
    (
        "production",
        "managed Redis: the URL from a Secret, egress to its subnet",
        lambda d: _managed_redis(d),
    ),
    (
        "production",
        "managed Redis without a password: rediss:// in the ConfigMap, to an address "
        "of the ipBlock",
        lambda d: _managed_redis(d, url="rediss://10.20.0.7:6379/2"),
    ),
    (
        "production",
        "Redis URL without a port: 6379",
        lambda d: _set_redis_url(d, "redis://:$(REDIS_PASSWORD)@cognito-verify-redis"),
    ),
]

# (what breaks, a word the schema validation's message contains)
SCHEMA_MUTATIONS = [
    (
        "unknown Deployment field",
        lambda d: _facade(d)["spec"]["template"]["spec"].update(terminationGracePeriod=35),
        "terminationGracePeriod",
    ),
    (
        "unknown apiVersion",
        lambda d: _get(d, "HorizontalPodAutoscaler").update(apiVersion="autoscaling/v3"),
        "Couldn't find schema",
    ),
    (
        "unknown Certificate field",
        lambda d: _get(d, "Certificate")["spec"].update(dnsName=["x"]),
        "dnsName",
    ),
    (
        "unknown ServiceMonitor field",
        lambda d: _get(d, "ServiceMonitor")["spec"]["endpoints"][0].update(scrapeInterval="30s"),
        "scrapeInterval",
    ),
    (
        "ServiceMonitor scheme in capitals",
        lambda d: _get(d, "ServiceMonitor")["spec"]["endpoints"][0].update(scheme="HTTP"),
        "HTTP",
    ),
    (
        "PrometheusRule `for` in words",
        lambda d: _get(d, "PrometheusRule")["spec"]["groups"][0]["rules"][0].update(
            {"for": "10 minutes"}
        ),
        "10 minutes",
    ),
    (
        "PrometheusRule rule both alert and record",
        lambda d: _get(d, "PrometheusRule")["spec"]["groups"][0]["rules"][0].update(
            record="cognito_verify:errors"
        ),
        "groups.0.rules.0: {'alert'",
    ),
    (
        "wrong Certificate key algorithm",
        lambda d: _get(d, "Certificate")["spec"]["privateKey"].update(algorithm="EC"),
        "EC",
    ),
]

IGNORE_CASES = [
    ("Cargo.toml", False),
    ("src/main.rs", False),
    ("crates/cognito-emulator/src/lib.rs", False),
    ("crates/cognito-emulator/target/debug/x", True),
    ("benches/facade/main.rs", False),
    ("proto/cognito/verify/v1/verification.proto", False),
    ("README.md", True),
    ("deploy/Dockerfile", True),
    ("target/debug/x", True),
    (".git/HEAD", True),
]


def run(renders, known_vars, dockerignore):
    """Failures of the self-test; the number of mutations tried."""
    failures, tried = [], 0
    for which, docs in renders.items():
        good = invariants.run(Render(docs, known_vars), production=which == "production")
        if good:
            failures.append(f"the good {which} render fails: {good}")
    for which, what, mutate, check, word in MUTATIONS:
        tried += 1
        docs = copy.deepcopy(renders[which])
        try:
            mutate(docs)
        except (LookupError, StopIteration, TypeError) as e:
            # The good render lacks what this mutation breaks.
            failures.append(f"{which}: {what}: cannot be applied to the render ({e!r})")
            continue
        found = invariants.run(Render(docs, known_vars), production=which == "production")
        if not any(p.startswith(check + ":") and word in p for p in found):
            failures.append(f"{which}: {what}: {check} did not report it (got {found})")
        if any(SECRET in p for p in found):
            failures.append(f"{which}: {what}: a problem shows the Redis password")
    for which, what, mutate in GOOD_VARIANTS:
        tried += 1
        docs = copy.deepcopy(renders[which])
        try:
            mutate(docs)
        except (LookupError, StopIteration, TypeError) as e:
            failures.append(f"{which}: {what}: cannot be applied to the render ({e!r})")
            continue
        found = invariants.run(Render(docs, known_vars), production=which == "production")
        if found:
            failures.append(f"{which}: {what}: a good variant fails: {found}")
    for what, mutate, word in SCHEMA_MUTATIONS:
        tried += 1
        docs = copy.deepcopy(renders["production"])
        mutate(docs)
        found = schemas.validate(docs, versions=schemas.VERSIONS[-1:])
        if not any(word in p for p in found):
            failures.append(f"schema: {what}: not reported (got {found})")
    rules = image.read_dockerignore(dockerignore)
    for path, excluded in IGNORE_CASES:
        tried += 1
        if image.ignored(rules, path) != excluded:
            failures.append(
                f".dockerignore matching: {path} should be {'out of' if excluded else 'in'} the context"
            )
    return failures, tried
