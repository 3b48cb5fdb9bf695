#!/usr/bin/env bash
# The live part of scripts/check-observability: the real binary as
# `cognito-verify emulator` and as `serve` with TLS (the certificate gauge
# exists only then) and --admin-listen, a few real calls with grpcurl, then
# the scrape of /metrics:
#   - promtool check metrics (the exposition lints clean);
#   - text format 0.0.4 by default, OpenMetrics when the Accept header asks;
#   - the metrics contract, every name the dashboard and the rules read, the
#     counts these calls leave, the build's version, the certificate's
#     notAfter, and no token, code, user or destination anywhere
#     (deploy/observability/checks/scrape.py).
#   usage: deploy/observability/checks/live.sh BINARY PROMTOOL
set -euo pipefail
cd "$(dirname "$0")/../../.."
BIN=$1
PROMTOOL=$(realpath "$2")
. scripts/lib.sh
python=.tools/venv/bin/python

# A CA and a server certificate for localhost, valid for 30 days.
pki="$work/pki"
mkdir -p "$pki"
ec() { echo -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes; }
# shellcheck disable=SC2046 # ec's words are separate arguments
openssl req -x509 $(ec) -keyout "$pki/ca.key" -out "$pki/ca.pem" -days 30 -subj /CN=live-ca \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
# shellcheck disable=SC2046
openssl req $(ec) -keyout "$pki/server.key" -out "$pki/server.csr" -subj /CN=localhost 2>/dev/null
openssl x509 -req -in "$pki/server.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial \
  -days 30 -out "$pki/server.pem" \
  -extfile <(printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth') 2>/dev/null
not_after=$(python3 -c 'import ssl, sys; print(int(ssl.cert_time_to_seconds(sys.argv[1])))' \
  "$(openssl x509 -in "$pki/server.pem" -noout -enddate | cut -d= -f2)")

backend="http://127.0.0.1:$(free_port)"
"$BIN" emulator --listen "${backend#http://}" --fixed-code 246810 2>"$work/emulator.log" &
pids+=($!)
wait_http "$backend/_emulator/clock"

port=$(free_port)
admin="127.0.0.1:$(free_port)"
# A daily SMS limit, so that the SMS guard's gauges have values to check.
"$BIN" serve --listen "127.0.0.1:$port" --region us-east-1 --cognito-endpoint "$backend" --user-pool us-east-1_DevPool01 \
  --tls-cert "$pki/server.pem" --tls-key "$pki/server.key" --sms-daily-limit 100 \
  --admin-listen "$admin" --shutdown-delay-secs 0 2>"$work/service.log" &
service=$!
pids+=("$service")
wait_http "http://$admin/metrics"

tls=(-cacert "$pki/ca.pem")
addr="localhost:$port"
# Health and reflection: served, and never counted.
for _ in $(seq 100); do
  out=$(grpcurl "${tls[@]}" "$addr" grpc.health.v1.Health/Check 2>&1) && grep -q '"SERVING"' <<<"$out" && break
  sleep 0.1
done
grep -q '"SERVING"' <<<"$out" || fail "the service is not SERVING: $out"
out=$(grpcurl "${tls[@]}" "$addr" list) || fail "list: $out"

auth=$(cognito "$backend" InitiateAuth \
  '{"AuthFlow":"USER_PASSWORD_AUTH","ClientId":"devclient0000000000000001","AuthParameters":{"USERNAME":"demo","PASSWORD":"DemoPassw0rd!"}}')
token=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["AuthenticationResult"]["AccessToken"])' "$auth")
# The user's id (the token's `sub`): it must not reach a label either.
sub=$(python3 -c 'import base64,json,sys; p=sys.argv[1].split(".")[1]; print(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))["sub"])' "$token")
call() { grpcurl "${tls[@]}" -d "$2" "$addr" "$SVC/$1" 2>&1; }

out=$(call GetUserAttributeVerificationCode '{"access_token":"'"$token"'","attribute_name":"phone_number"}') ||
  fail "GetUserAttributeVerificationCode phone_number: $out"
grep -q DELIVERY_MEDIUM_SMS <<<"$out" || fail "unexpected response: $out"
if out=$(call VerifyUserAttribute '{"access_token":"'"$token"'","attribute_name":"phone_number","code":"135790"}'); then
  fail "a wrong code was accepted"
fi
grep -q CODE_MISMATCH <<<"$out" || fail "wrong code: $out"
out=$(call VerifyUserAttribute '{"access_token":"'"$token"'","attribute_name":"phone_number","code":"246810"}') ||
  fail "VerifyUserAttribute: $out"
out=$(call GetUserAttributeVerificationCode '{"access_token":"'"$token"'","attribute_name":"email"}') ||
  fail "GetUserAttributeVerificationCode email: $out"
grep -q DELIVERY_MEDIUM_EMAIL <<<"$out" || fail "unexpected response: $out"
out=$(call GetVerificationStatus '{"access_token":"'"$token"'"}') || fail "GetVerificationStatus: $out"
grep -q '"verified": true' <<<"$out" || fail "the verified phone number is not in the status: $out"
if out=$(call VerifyUserAttribute '{"attribute_name":"email","code":"1"}'); then
  fail "a call without a token succeeded"
fi
grep -q MISSING_ACCESS_TOKEN <<<"$out" || fail "no token: $out"
if out=$(call VerifyUserAttribute '{"access_token":"'"$token"'","attribute_name":"email","code":"12 34"}'); then
  fail "a code with a space was accepted"
fi
grep -q INVALID_FIELD <<<"$out" || fail "invalid code: $out"

# scrape ACCEPT FILE: the body into FILE; prints the Content-Type.
scrape() {
  "$python" - "http://$admin/metrics" "$1" "$2" <<'PY'
import sys, urllib.request
req = urllib.request.Request(sys.argv[1], headers={"Accept": sys.argv[2]} if sys.argv[2] else {})
with urllib.request.urlopen(req, timeout=5) as r:
    open(sys.argv[3], "wb").write(r.read())
    print(r.headers.get("Content-Type", ""))
PY
}
type=$(scrape "" "$work/metrics.txt") || fail "GET /metrics failed"
[[ $type == "text/plain; version=0.0.4"* ]] || fail "Content-Type $type, not text/plain; version=0.0.4"
type=$(scrape "application/openmetrics-text; version=1.0.0, text/plain; version=0.0.4; q=0.5" "$work/metrics.om") ||
  fail "GET /metrics as OpenMetrics failed"
[[ $type == "application/openmetrics-text"* ]] || fail "asked for OpenMetrics, got Content-Type $type"

out=$("$PROMTOOL" check metrics <"$work/metrics.txt" 2>&1) || fail "promtool check metrics: $out"
version=$("$BIN" --version | awk '{print $2}')
out=$("$python" -B deploy/observability/checks/check.py scrape "$work/metrics.txt" "$work/metrics.om" \
  --version "$version" --not-after "$not_after" \
  --secret "access token" "$token" --secret "user id" "$sub" --secret username demo \
  --secret code 246810 --secret "wrong code" 135790 \
  --secret "phone number" "+12065550100" --secret "email address" demo@example.com) ||
  fail "the scrape of /metrics:
$out
--- the scrape:
$(cat "$work/metrics.txt")"

stop "$service"
echo "live: $(grep -c '^[a-z]' "$work/metrics.txt") samples scraped and checked"
