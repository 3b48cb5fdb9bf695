"""Whether the binary starts with each render's configuration: `serve` run
with the environment Kubernetes would give the facade's container, until it
listens, or until it exits. A configuration it refuses (exit 64, one line)
would be a crash loop in the cluster. access.py mirrors the refusals it
knows; this asks the binary itself, so a refusal the checks do not know yet
is caught too. And a run that must be refused (the render's user pools
removed) shows that this check can fail.

What differs from the pod, and why:
  - every listen address is 127.0.0.1:0: no fixed port, nothing reachable;
  - the TLS files (COGNITO_VERIFY_TLS_*) are a throwaway CA and server
    certificate made with openssl, in place of the mounted Secret;
  - a Secret's value the render does not hold is a hex placeholder;
  - nothing else is in the environment (no HOME, no AWS_*), as in the image.
Nothing is called: the process is killed as soon as it listens.
"""

import os
import re
import selectors
import subprocess
import tempfile
import time

from render import Render, expand, facade_container, ref

LISTENERS = ("COGNITO_VERIFY_LISTEN", "COGNITO_VERIFY_HEALTH_LISTEN", "COGNITO_VERIFY_ADMIN_LISTEN")
TLS_FILES = {
    "COGNITO_VERIFY_TLS_CERT": "server.pem",
    "COGNITO_VERIFY_TLS_KEY": "server.key",
    "COGNITO_VERIFY_TLS_CLIENT_CA": "ca.pem",
}
# A Secret's value the render cannot see: hex, URL-safe like the passwords
# the docs generate.
PLACEHOLDER = "5ec2e7ab5ec2e7ab5ec2e7ab5ec2e7ab"
# Start to listening takes milliseconds; a slow machine gets room.
START_TIMEOUT_SECS = 30
EX_USAGE = 64
_LISTENING = re.compile(r"\blistening\b")


def make_pki(directory):
    """A CA (ca.pem) and a server certificate for localhost signed by it
    (server.pem, server.key), ECDSA P-256, valid for a day."""

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    def path(name):
        return os.path.join(directory, name)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", path("ca.key"), "-out", path("ca.pem"), "-days", "1",
            "-subj", "/CN=starts-ca", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    openssl("req", *ec, "-keyout", path("server.key"), "-out", path("server.csr"),
            "-subj", "/CN=localhost")  # fmt: skip
    with open(path("ext"), "w", encoding="utf-8") as f:
        f.write("subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", path("server.csr"), "-CA", path("ca.pem"), "-CAkey",
            path("ca.key"), "-CAcreateserial", "-days", "1", "-out", path("server.pem"),
            "-extfile", path("ext"))  # fmt: skip


def environment(r, d, c, pki):
    """The facade container's environment for a local run (see above)."""
    values, _ = r.environment(d, c, secret=lambda name, key: PLACEHOLDER)
    env = {k: v for k, v in values.items() if v is not None}
    for var in LISTENERS:
        if var == "COGNITO_VERIFY_LISTEN" or env.get(var, "off") != "off":
            env[var] = "127.0.0.1:0"
    for var, file in TLS_FILES.items():
        if env.get(var):
            env[var] = os.path.join(pki, file)
    return env


def start(binary, argv, env):
    """Runs the binary until it listens (None), exits (its exit code), or
    the timeout passes ("timeout"); and its stderr so far."""
    p = subprocess.Popen(
        [binary, *argv],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    # Raw reads of the pipe, split into lines here: a buffered readline
    # could keep the line that matters in its buffer, where select cannot
    # see it.
    fd, pending, lines, outcome = p.stderr.fileno(), b"", [], "timeout"
    deadline = time.monotonic() + START_TIMEOUT_SECS
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        try:
            while outcome == "timeout" and time.monotonic() < deadline:
                if not sel.select(timeout=deadline - time.monotonic()):
                    continue
                chunk = os.read(fd, 65536)
                *complete, pending = (pending + chunk).split(b"\n")
                for line in complete:
                    lines.append(line.decode("utf-8", "replace"))
                    if _LISTENING.search(lines[-1]):
                        outcome = None
                        break
                if not chunk and outcome == "timeout":
                    if pending:
                        lines.append(pending.decode("utf-8", "replace"))
                    outcome = p.wait(timeout=START_TIMEOUT_SECS)
        finally:
            if p.poll() is None:
                p.kill()
            p.wait()
            p.stderr.close()
    return outcome, lines


def run(binary, renders):
    """Problems (a render the binary does not start with, or a refusal it
    does not make); the number of runs."""
    problems, tried = [], 0
    with tempfile.TemporaryDirectory() as pki:
        try:
            make_pki(pki)
        except (OSError, subprocess.CalledProcessError) as e:
            return [f"cannot make the throwaway TLS files with openssl: {e}"], tried
        for path, docs in renders.items():
            r = Render(docs)
            facades = r.facades()
            if not facades:
                problems.append(f"{path}: no facade Deployment to start")
            for d in facades:
                c = facade_container(d)
                if c is None:
                    continue
                env = environment(r, d, c, pki)
                argv = [expand(a, env) for a in c.get("args") or []]
                tried += 1
                outcome, lines = start(binary, argv, env)
                if outcome is not None:
                    how = (
                        f"no listener within {START_TIMEOUT_SECS} s"
                        if outcome == "timeout"
                        else f"exit {outcome}"
                    )
                    last = lines[-1] if lines else "(nothing on stderr)"
                    command = " ".join(argv)
                    problems.append(f"{path} {ref(d)}: `{command}` did not start ({how}): {last}")
                if not env.get("COGNITO_VERIFY_USER_POOL"):
                    continue
                # Deliberately broken: without its pools it must be refused.
                tried += 1
                env.pop("COGNITO_VERIFY_USER_POOL")
                outcome, lines = start(binary, argv, env)
                if outcome != EX_USAGE or not any("--user-pool" in line for line in lines):
                    problems.append(
                        f"{path} {ref(d)}: without COGNITO_VERIFY_USER_POOL the binary was "
                        f"not refused with exit {EX_USAGE} naming --user-pool (got "
                        f"{outcome}: {lines[-1:] or 'nothing'}): this check cannot see a refusal"
                    )
    return problems, tried
