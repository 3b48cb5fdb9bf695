"""Strict schema validation of rendered objects.

Kubernetes kinds: kubernetes-validate (PyPI) with its strict schemas, which
reject unknown fields; the schemas ship inside the package, so it works
offline. For a kind it has no schema for, the library raises
SchemaNotFoundError and its command line only *warns* and exits 0, so a
mistyped apiVersion would pass unseen: here that is a failure.

CRD kinds have no schema in that package. The one we use, cert-manager's
Certificate (cert-manager.io/v1), is checked against CERTIFICATE below: a
strict subset of its CRD's schema, the fields a server certificate needs.
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

# Custom kinds checked here instead of by kubernetes-validate.
CUSTOM = {("cert-manager.io/v1", "Certificate"): CERTIFICATE}


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
