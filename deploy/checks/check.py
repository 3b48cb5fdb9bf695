"""scripts/check-deploy's checks of the deployment files.

    check.py schemas FILE               strict Kubernetes and CRD (Certificate, ServiceMonitor, PrometheusRule) schemas
    check.py invariants FILE [--production]   what the manifests promise (invariants.py)
    check.py self-test DEV PRODUCTION   the checks themselves catch breakage
    check.py starts BINARY FILE...      the binary starts with each render's configuration (starts.py)
    check.py context                    .dockerignore, Dockerfile and Cargo.toml agree
    check.py libraries BINARY           the binary links only what distroless cc has

Run from the repository root. Prints the problems found; exits 1 if any.
"""

import argparse
import glob
import re
import sys

import image
import invariants
import schemas
import selftest
import starts
from render import Render, load

SOURCES = "src/**/*.rs"


def known_vars():
    """Every COGNITO_VERIFY_* and OTEL_* variable the binary reads: the
    `env = "..."` of its clap arguments."""
    found = set()
    for path in glob.glob(SOURCES, recursive=True):
        with open(path, encoding="utf-8") as f:
            found |= set(re.findall(r'env\s*=\s*"((?:COGNITO_VERIFY|OTEL)_[A-Z0-9_]+)"', f.read()))
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("schemas").add_argument("file")
    inv = sub.add_parser("invariants")
    inv.add_argument("file")
    inv.add_argument(
        "--production",
        action="store_true",
        help="TLS with client certificates, named user pools, callers and client namespaces",
    )
    st = sub.add_parser("self-test")
    st.add_argument("dev")
    st.add_argument("production")
    sub.add_parser("context")
    sub.add_parser("libraries").add_argument("binary")
    st2 = sub.add_parser("starts")
    st2.add_argument("binary")
    st2.add_argument("files", nargs="+")
    args = parser.parse_args()

    if args.command == "schemas":
        problems = schemas.validate(load(args.file))
    elif args.command == "invariants":
        known = known_vars()
        if not known:
            problems = [
                f"no COGNITO_VERIFY_* variable found in {SOURCES}: run from the repository root"
            ]
        else:
            problems = invariants.run(Render(load(args.file), known), production=args.production)
    elif args.command == "self-test":
        renders = {"dev": load(args.dev), "production": load(args.production)}
        problems, tried = selftest.run(renders, known_vars(), ".dockerignore")
        if not problems:
            print(
                f"self-test: {tried} cases: each deliberate breakage reported, "
                "each good variant passed"
            )
    elif args.command == "starts":
        problems, tried = starts.run(args.binary, {f: load(f) for f in args.files})
        if not problems:
            print(f"starts: {tried} runs of the binary, each as expected")
    elif args.command == "context":
        problems = image.check_context("deploy/Dockerfile", ".dockerignore", "Cargo.toml")
    else:
        problems = image.check_libraries(args.binary)
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
