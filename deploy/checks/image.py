"""Checks of the container image that need no container engine.

- The build context: what deploy/Dockerfile copies and what Cargo.toml needs
  to build (build script, targets) is in the context .dockerignore leaves,
  and build output, tools and history are not.
- The runtime libraries: the release binary links only libraries that
  distroless `cc` provides (glibc's and libgcc_s).
"""

import os
import re
import shlex
import subprocess
import tomllib

# Libraries of gcr.io/distroless/cc-debian12: glibc (libc, libm, libpthread,
# libdl, librt, the loader), libgcc_s, and the kernel's vDSO.
DISTROLESS_CC = re.compile(
    r"^(linux-vdso\.so\.1|linux-gate\.so\.1|ld-linux[-\w.]*\.so\.\d+"
    r"|lib(c|m|gcc_s|pthread|dl|rt)\.so\.\d+)$"
)
# Never in the context.
NEVER = (
    "target/release/cognito-verify",
    ".tools/venv",
    ".git/HEAD",
    "node_modules/x",
    "src/target/x",
)


def _pattern(p):
    """A .dockerignore pattern as a regex over slash-separated paths (Go's
    filepath.Match plus `**`, as Docker matches them)."""
    out, i = "", 0
    while i < len(p):
        if p.startswith("**", i):
            out += ".*"
            i += 2
            if p.startswith("/", i):
                out, i = out + "(?:/|)", i + 1
        elif p[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif p[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(p[i]), i + 1
    return re.compile(out + "$")


def ignored(rules, path):
    """Whether Docker leaves `path` out of the context: the last rule that
    matches the path or one of its parent directories decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    verdict = False
    for negate, regex in rules:
        if any(regex.match(p) for p in prefixes):
            verdict = not negate
    return verdict


def read_dockerignore(path):
    rules = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            line = line.lstrip("!").strip("/")
            rules.append((negate, _pattern(os.path.normpath(line))))
    return rules


def copy_sources(dockerfile):
    """The context paths the Dockerfile's COPY/ADD instructions read."""
    sources, text = [], open(dockerfile, encoding="utf-8").read().replace("\\\n", " ")
    for line in text.splitlines():
        words = shlex.split(line, comments=True) if line.strip() else []
        if not words or words[0].upper() not in ("COPY", "ADD"):
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]):
            continue
        sources += [os.path.normpath(s) for s in args[:-1]]
    return sources


def needed_by_cargo(manifest):
    """Files Cargo reads to build: the build script and every target's path."""
    with open(manifest, "rb") as f:
        cargo = tomllib.load(f)
    needed = [cargo["package"].get("build", "build.rs")]
    for section in ("bin", "bench", "test", "example"):
        needed += [t["path"] for t in cargo.get(section, []) if "path" in t]
    if "lib" in cargo:
        needed.append(cargo["lib"].get("path", "src/lib.rs"))
    return [p for p in needed if p]


def check_context(dockerfile, dockerignore, manifest):
    problems, rules = [], read_dockerignore(dockerignore)
    root = os.path.dirname(os.path.abspath(manifest))
    copied = copy_sources(dockerfile)
    for source in copied:
        if ignored(rules, source):
            problems.append(f"{dockerfile} copies {source}, which .dockerignore excludes")
    for path in needed_by_cargo(manifest) + ["Cargo.lock", "proto"]:
        if not os.path.exists(os.path.join(root, path)):
            continue  # cargo reports a missing target itself
        if ignored(rules, path):
            problems.append(f"the build needs {path}, which .dockerignore excludes")
        elif not any(path == s or path.startswith(s.rstrip("/") + "/") for s in copied if s != "."):
            problems.append(f"the build needs {path}, which {dockerfile} does not copy")
    for path in NEVER:
        if not ignored(rules, path):
            problems.append(f".dockerignore lets {path} into the context")
    return problems


def check_libraries(binary):
    """`ldd` of the binary: every library must be one distroless cc has."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return [f"ldd {binary}: {out.stdout}{out.stderr}".strip()]
    problems = []
    for line in out.stdout.splitlines():
        lib = line.split()[0] if line.split() else ""
        if "=>" in line and "not found" in line:
            problems.append(f"{binary}: {lib} not found")
        elif lib and not DISTROLESS_CC.match(os.path.basename(lib)):
            problems.append(f"{binary} links {lib}, which distroless cc does not provide")
    return problems
