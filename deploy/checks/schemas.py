"""Strict schema validation of rendered objects.

Kubernetes kinds: kubernetes-validate (PyPI) with its strict schemas, which
reject unknown fields; the schemas ship inside the package, so it works
offline. For a kind it has no schema for, the library raises
SchemaNotFoundError and its command line only *warns* and exits 0, so a
mistyped apiVersion would pass unseen: here that is a failure.

CRD kinds have no schema in that package. Those we use are checked against
strict subsets of their CRDs' schemas below, the fields we use (anything
else is an error, as an unknown field would be): cert-manager's Certificate
(cert-manager.io/v1), the fields a server certificate needs; the
Prometheus Operator's ServiceMonitor and PrometheusRule
(monitoring.coreos.com/v1), the fields of a plain HTTP scrape and of
alerting and recording rules.
"""

import jsonschema
from kubernetes_validate import utils as kv

# Kubernetes versions validated against: the oldest the manifests support
# (PodDisruptionBudget unhealthyPodEvictionPolicy is GA from 1.31; gRPC
# probes and matchLabelKeys are older) and the newest the package knows.
VERSIONS = ("1.31.0", "1.37.0")

_STRINGS = {"type": "array", "items": {"type": "string"}}
_DURATION = {"type": "string", "pattern": r"^([0-9]+(\.[0-9]+)?(h|m|s|ms))+$"}
_USAGES = [
    "signing",
    "digital signature",
    "content commitment",
    "key encipherment",
    "key agreement",
    "data encipherment",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
    "any",
    "server auth",
    "client auth",
    "code signing",
    "email protection",
    "s/mime",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "timestamping",
    "ocsp signing",
    "microsoft sgc",
    "netscape sgc",
]
_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}

CERTIFICATE = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "cert-manager.io/v1"},
        "kind": {"const": "Certificate"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                "namespace": {"type": "string"},
                "labels": _LABELS,
                "annotations": _LABELS,
            },
        },
        "spec": {
            "type": "object",
            "required": ["secretName", "issuerRef"],
            "additionalProperties": False,
            "properties": {
                "secretName": {"type": "string", "minLength": 1},
                "secretTemplate": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"labels": _LABELS, "annotations": _LABELS},
                },
                "issuerRef": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "kind": {"type": "string"},
                        "group": {"type": "string"},
                    },
                },
                "commonName": {"type": "string", "maxLength": 64},
                "dnsNames": {**_STRINGS, "minItems": 1},
                "uris": _STRINGS,
                "ipAddresses": _STRINGS,
                "duration": _DURATION,
                "renewBefore": _DURATION,
                "privateKey": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "algorithm": {"enum": ["RSA", "ECDSA", "Ed25519"]},
                        "encoding": {"enum": ["PKCS1", "PKCS8"]},
                        "rotationPolicy": {"enum": ["Never", "Always"]},
                        "size": {"type": "integer"},
                    },
                },
                "usages": {"type": "array", "items": {"enum": _USAGES}},
            },
        },
    },
}

# The Prometheus Operator's duration (monitoringv1.Duration), e.g. 30s, 1h30m.
_PROM_DURATION = {
    "type": "string",
    "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$",
}
_NAME = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"}
_METADATA = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": _NAME,
        "namespace": {"type": "string"},
        "labels": _LABELS,
        "annotations": _LABELS,
    },
}
_LABEL_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": _LABELS,
        "matchExpressions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "operator"],
                "additionalProperties": False,
                "properties": {
                    "key": {"type": "string"},
                    "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                    "values": _STRINGS,
                },
            },
        },
    },
}

SERVICE_MONITOR = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "jobLabel": {"type": "string"},
                "targetLabels": _STRINGS,
                "podTargetLabels": _STRINGS,
                "selector": _LABEL_SELECTOR,
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"any": {"type": "boolean"}, "matchNames": _STRINGS},
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["port"],
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string", "minLength": 1},
                            "path": {"type": "string", "pattern": "^/"},
                            "scheme": {"enum": ["http", "https"]},
                            "interval": _PROM_DURATION,
                            "scrapeTimeout": _PROM_DURATION,
                            "honorLabels": {"type": "boolean"},
                        },
                    },
                },
            },
        },
    },
}

_RULE = {
    "type": "object",
    "required": ["expr"],
    "additionalProperties": False,
    # Exactly one of alert and record; annotations and `for` only on alerts.
    "oneOf": [
        {"required": ["alert"], "not": {"required": ["record"]}},
        {
            "required": ["record"],
            "not": {
                "anyOf": [
                    {"required": ["alert"]},
                    {"required": ["for"]},
                    {"required": ["annotations"]},
                ]
            },
        },
    ],
    "properties": {
        "alert": {"type": "string", "minLength": 1},
        "record": {"type": "string", "pattern": r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"},
        "expr": {"type": "string", "minLength": 1},
        "for": _PROM_DURATION,
        "keep_firing_for": _PROM_DURATION,
        "labels": _LABELS,
        "annotations": _LABELS,
    },
}

PROMETHEUS_RULE = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "required": ["groups"],
            "additionalProperties": False,
            "properties": {
                "groups": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["name", "rules"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "interval": _PROM_DURATION,
                            "rules": {"type": "array", "minItems": 1, "items": _RULE},
                        },
                    },
                },
            },
        },
    },
}

# Custom kinds checked here instead of by kubernetes-validate.
CUSTOM = {
    ("cert-manager.io/v1", "Certificate"): CERTIFICATE,
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR,
    ("monitoring.coreos.com/v1", "PrometheusRule"): PROMETHEUS_RULE,
}


def validate(docs, versions=VERSIONS):
    """Problems of every object, against every version's strict schema."""
    problems = []
    for doc in docs:
        where = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        custom = CUSTOM.get((doc.get("apiVersion"), doc.get("kind")))
        if custom is not None:
            for error in jsonschema.Draft202012Validator(custom).iter_errors(doc):
                path = ".".join(str(p) for p in error.absolute_path)
                problems.append(f"{where}: {path}: {error.message}")
            continue
        for version in versions:
            try:
                kv.validate(doc, version, strict=True)
            except kv.ValidationError as e:
                path = ".".join(str(p) for p in e.path)
                problems.append(f"{where} (Kubernetes {version}): {path}: {e.message}")
            except kv.SchemaNotFoundError as e:
                problems.append(f"{where}: {e.message}")
    return problems
