# Helpers shared by the smoke scripts (sourced, not run).

export PATH="$PWD/.tools/venv/bin:$PATH"
SVC=cognito.verify.v1.UserAttributeVerificationService
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

fail() {
  echo "$(basename "$0"): FAIL: $*" >&2
  for log in "$work"/*.log; do echo "--- $log" >&2; cat "$log" >&2; done
  exit 1
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_serving ADDR: until grpc health says SERVING (10 s at most).
wait_serving() {
  for _ in $(seq 100); do
    local out
    out=$(grpcurl -plaintext "$1" grpc.health.v1.Health/Check 2>/dev/null) && grep -q '"SERVING"' <<<"$out" && return 0
    sleep 0.1
  done
  fail "$1 is not SERVING"
}

# wait_http URL: until the URL answers (10 s at most).
wait_http() {
  for _ in $(seq 100); do
    python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  fail "$1 does not answer"
}

# latest_code BACKEND_URL ATTRIBUTE: the newest code in the backend's outbox.
latest_code() {
  python3 - "$1" "$2" <<'PY'
import json, sys, urllib.request
url = f"{sys.argv[1]}/_emulator/outbox?attribute={sys.argv[2]}"
print(json.load(urllib.request.urlopen(url, timeout=5))["messages"][-1]["code"])
PY
}

# cognito BACKEND_URL OPERATION JSON: one AWS JSON 1.1 call; prints the answer.
cognito() {
  python3 - "$@" <<'PY'
import sys, urllib.request
req = urllib.request.Request(sys.argv[1], data=sys.argv[3].encode(), method="POST", headers={
    "content-type": "application/x-amz-json-1.1",
    "x-amz-target": "AWSCognitoIdentityProviderService." + sys.argv[2]})
print(urllib.request.urlopen(req, timeout=5).read().decode())
PY
}

# stop PID: SIGTERM and expect exit code 0.
stop() {
  kill -TERM "$1"
  local code=0
  wait "$1" || code=$?
  [ "$code" -eq 0 ] || fail "exit code $code after SIGTERM"
}
