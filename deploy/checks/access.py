"""Who may use what the manifests run, checked on the rendered objects:
whose tokens the facade accepts (user pools), who may call it (client
certificates, client namespaces), and the password its Redis requires. Part
of the checks that invariants.py runs.

In every render, these mirror what `serve` itself refuses at start-up (exit
64): a render it would refuse is a crash loop, not a deployment. With
`production`, each must also be named: no render that strangers' traffic
meets leaves it open to "any".
"""

import re
from urllib.parse import urlsplit

from render import (
    COMPONENT,
    LIMITS_STORE,
    REDIS_URL,
    containers,
    facade_container,
    labels,
    namespace,
    ref,
    service_selector,
)
from serving import CLIENT_LABEL

USER_POOL = "COGNITO_VERIFY_USER_POOL"
ANY_USER_POOL = "COGNITO_VERIFY_ANY_USER_POOL"
ALLOW_CALLER = "COGNITO_VERIFY_ALLOW_CALLER"
# The label the control plane sets on every namespace, to its name: the only
# namespace label a client namespace may be selected by (any other can be
# set by whoever may label a namespace).
NAME_LABEL = "kubernetes.io/metadata.name"
# A user pool id as `serve` accepts it (src/auth/issuer.rs): the service
# model's `[\w-]+_[0-9a-zA-Z]+`, at most 55 characters, and without an
# endpoint override an AWS region before the underscore.
_POOL_ID = re.compile(r"^([A-Za-z0-9_-]+)_([A-Za-z0-9]+)$")
_AWS_REGION = re.compile(r"^[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}$")
# Where a variable comes from (render.Render.origins), in words.
_ORIGINS = {
    "value": "a value written in the workload",
    "configMap": "a ConfigMap",
    "other": "the pod's own fields",
}
_REFERENCE_ONLY = re.compile(r"^\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)$")


def _list(value):
    """A comma-separated setting's entries, as `serve` reads them."""
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def is_pool_id(pool, endpoint_override):
    m = _POOL_ID.match(pool)
    if m is None or len(pool) > 55:
        return False
    return endpoint_override or bool(_AWS_REGION.match(m.group(1)))


def check_user_pools(r, production=False):
    """The facade names the user pools whose tokens it accepts
    (COGNITO_VERIFY_USER_POOL, ids of Cognito's shape), or says with
    COGNITO_VERIFY_ANY_USER_POOL=true that any pool is meant, never both,
    and any pool only with the signature check on: otherwise `serve`
    refuses to start. In production the pools are named."""
    problems = []
    for d in r.facades():
        c = facade_container(d)
        if c is None:
            continue
        env, origins = r.config(d, c)[0], r.origins(d, c)
        hidden = USER_POOL in origins and USER_POOL not in env  # from a Secret
        pools = _list(env.get(USER_POOL))
        any_value = env.get(ANY_USER_POOL)
        if any_value is not None and any_value not in ("true", "false"):
            problems.append(
                f"{ref(d)}: {ANY_USER_POOL}={any_value!r}: serve takes true or false "
                "only, and refuses to start (exit 64)"
            )
        any_pool = any_value == "true"
        if not pools and not hidden and not any_pool:
            problems.append(
                f"{ref(d)}: names no user pool ({USER_POOL}) and does not set "
                f"{ANY_USER_POOL}=true: serve refuses to start (exit 64)"
            )
        if (pools or hidden) and any_pool:
            problems.append(
                f"{ref(d)}: {USER_POOL} and {ANY_USER_POOL}=true contradict each other: "
                "serve refuses to start (exit 64)"
            )
        if any_pool and env.get("COGNITO_VERIFY_TOKEN_SIGNATURE_CHECK") == "off":
            problems.append(
                f"{ref(d)}: {ANY_USER_POOL}=true with the signature check off: serve "
                "refuses to start (exit 64); tokens of made-up pools would reach Cognito"
            )
        override = bool(env.get("COGNITO_VERIFY_COGNITO_ENDPOINT"))
        for pool in pools:
            if not is_pool_id(pool, override):
                problems.append(
                    f"{ref(d)}: {USER_POOL} entry {pool!r} is not a Cognito user pool id "
                    "(<region>_<letters and digits>, e.g. eu-west-1_AbCdEf123): serve "
                    "refuses to start (exit 64)"
                )
        if production and any_pool:
            problems.append(
                f"{ref(d)}: production names its user pools ({USER_POOL}) instead of "
                f"{ANY_USER_POOL}=true: with any pool, every token naming a made-up pool "
                "costs a rationed key-set fetch"
            )
    return problems


def check_callers(r, production=False):
    """COGNITO_VERIFY_ALLOW_CALLER, when set, lists callers and comes with
    client certificates (COGNITO_VERIFY_TLS_CLIENT_CA), or `serve` refuses
    to start. In production it is set: without it, any certificate the CA
    ever issued, to any workload, may call (and use reflection)."""
    problems = []
    for d in r.facades():
        c = facade_container(d)
        if c is None:
            continue
        env, origins = r.config(d, c)[0], r.origins(d, c)
        hidden = ALLOW_CALLER in origins and ALLOW_CALLER not in env
        value = env.get(ALLOW_CALLER)
        callers = _list(value)
        if value not in (None, "") and not callers:
            problems.append(
                f"{ref(d)}: {ALLOW_CALLER} lists no caller (only empty entries): serve "
                "refuses to start (exit 64)"
            )
        if callers and not env.get("COGNITO_VERIFY_TLS_CLIENT_CA"):
            problems.append(
                f"{ref(d)}: {ALLOW_CALLER} without client certificates "
                "(COGNITO_VERIFY_TLS_CLIENT_CA): serve refuses to start (exit 64)"
            )
        if production and not callers and not hidden:
            problems.append(
                f"{ref(d)}: production names its callers ({ALLOW_CALLER}): without it any "
                "certificate that chains to the client CA may call"
            )
    return problems


def _namespaces(selector):
    """(names, why not) of a client peer's namespaceSelector: the names it
    admits when it selects by NAME_LABEL alone, else None and the reason."""
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not match_labels and not expressions:
        return None, "admits labelled pods of every namespace (namespaceSelector {})"
    names = None
    by_other = "selects namespaces by {}, which whoever may label a namespace can set"
    for key, value in match_labels.items():
        if key != NAME_LABEL:
            return None, by_other.format(key)
        names = {value} if names is None else names & {value}
    for e in expressions:
        if e.get("key") != NAME_LABEL:
            return None, by_other.format(e.get("key"))
        if e.get("operator") != "In" or not e.get("values"):
            return None, f"selects namespaces with {e.get('operator')}, not by a list of names (In)"
        names = set(e["values"]) if names is None else names & set(e["values"])
    return names, None


def check_client_namespaces(r, production=False):
    """The facade's client peers (pods labelled cognito-verify/client) are
    in its own namespace (no namespaceSelector) or in namespaces named by
    NAME_LABEL: never every namespace, never namespaces by another label.
    In production, client namespaces are named."""
    problems = []
    for d in r.facades():
        named = set()
        for np in r.of("NetworkPolicy"):
            if d not in r.selected(np["spec"].get("podSelector"), namespace(np)):
                continue
            for rule in np["spec"].get("ingress") or []:
                for peer in rule.get("from") or []:
                    if peer.get("podSelector") != {"matchLabels": CLIENT_LABEL}:
                        continue  # not a client peer (serving.check_network_policy)
                    if "namespaceSelector" not in peer:
                        continue  # the policy's own namespace
                    names, why = _namespaces(peer["namespaceSelector"])
                    if names is None:
                        problems.append(f"{ref(np)}: the client peer {why}: {peer}")
                    else:
                        named |= names
        if production and not named - {namespace(d)}:
            problems.append(
                f"{ref(d)}: no NetworkPolicy names a client namespace ({NAME_LABEL}): "
                "production clients live in namespaces of their own"
            )
    return problems


def _store_password(w, c, r):
    """(Secret name, key) of a Redis container's --requirepass, or a problem."""
    argv = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
    at = f"{ref(w)} container {c['name']}"
    if "--requirepass" not in argv:
        return None, (
            f"{at}: Redis runs without a password (no --requirepass): a pod that "
            "reaches it (a CNI that does not enforce NetworkPolicy) can read and reset the limits"
        )
    i = len(argv) - 1 - argv[::-1].index("--requirepass")
    value = argv[i + 1] if i + 1 < len(argv) else ""
    m = _REFERENCE_ONLY.match(value)
    if m is None:
        return None, (
            f"{at}: --requirepass is written in the workload (or empty): take it from a "
            "Secret, as $(NAME) of an env entry with valueFrom.secretKeyRef"
        )
    secret = r.secret_refs(c).get(m.group(1))
    if secret is None:
        origin = _ORIGINS.get(r.origins(w, c).get(m.group(1)), "no variable of the container")
        return None, f"{at}: --requirepass $({m.group(1)}) comes from {origin}, not a Secret"
    if secret[2]:
        return None, (
            f"{at}: the Secret of --requirepass is optional: without it Redis would "
            "start with an empty password"
        )
    return secret[:2], None


def check_redis_auth(r):
    """The shared limits' Redis (components/redis) requires a password from
    a Secret (--requirepass $(VAR), VAR from a secretKeyRef that is not
    optional), and the facade's URL to it carries the password of the same
    Secret and key (see serving._redis_url_problems for how)."""
    problems = []
    for w in r.workloads():
        if labels(w).get(COMPONENT) != LIMITS_STORE:
            continue
        secrets = set()
        for c in containers(w):
            secret, why = _store_password(w, c, r)
            if why:
                problems.append(why)
            elif secret:
                secrets.add(secret)
        services = {
            s["metadata"]["name"]
            for s in r.of("Service")
            if namespace(s) == namespace(w) and w in r.selected(service_selector(s), namespace(s))
        }
        for d in r.facades():
            c = facade_container(d)
            origin, url = r.redis(d, c) if c else (None, None)
            if url is None or namespace(d) != namespace(w):
                continue
            if origin == "value":
                url = r.written(c, REDIS_URL)  # the password as written: $(NAME)
            try:
                parts = urlsplit(url)
                host = (parts.hostname or "").split(".")
            except ValueError:
                continue  # serving.check_facade_config reports it
            if host[0] not in services or (len(host) > 1 and host[1] != namespace(w)):
                continue
            m = _REFERENCE_ONLY.match(parts.password or "")
            if not parts.password:
                problems.append(
                    f"{ref(d)}: {REDIS_URL} to {ref(w)} has no password: Redis, which "
                    "requires one, refuses it (NOAUTH) and every limit falls back to the "
                    "replica's own"
                )
            elif m and secrets:
                theirs = r.secret_refs(c).get(m.group(1))
                if theirs is not None and theirs[:2] not in secrets:
                    problems.append(
                        f"{ref(d)}: {REDIS_URL}'s password is Secret {theirs[0]} key "
                        f"{theirs[1]}, Redis' ({ref(w)}) is "
                        f"{', '.join(f'{n} key {k}' for n, k in sorted(secrets))}"
                    )
    return problems

