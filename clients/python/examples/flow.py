"""The whole flow against a running `cognito-verify dev`: request a code for
the email address, read it from the dev backend's outbox, verify it, then
request again and show the SEND_COOLDOWN refusal with its retry delay; last,
ask where the user stands (GetVerificationStatus): the email verified, as the
backend holds it, and the cooldown the refusal named.

Environment: COGNITO_VERIFY_ADDR (default 127.0.0.1:50051),
COGNITO_VERIFY_EMULATOR_URL (default http://127.0.0.1:9229),
COGNITO_VERIFY_TOKEN (required: the user's access token).
Exits non-zero when a step does not do what it says.
"""
import base64
import json
import os
import sys
import urllib.parse
import urllib.request

from cognito_verify_client import Client, CognitoVerifyError, DeliveryMedium, ErrorReason, connect

ATTRIBUTE = "email"


def fail(msg: str) -> None:
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def username_of(token: str) -> str:
    # The outbox is filtered by user: the access token's `username` claim
    # (read, not verified; the service verifies the token).
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims["username"]


def newest_code(emulator_url: str, username: str) -> str:
    query = urllib.parse.urlencode({"username": username, "attribute": ATTRIBUTE})
    with urllib.request.urlopen(f"{emulator_url}/_emulator/outbox?{query}", timeout=5) as r:
        messages = json.load(r)["messages"]
    if not messages:
        fail(f"no code in the outbox for {username} / {ATTRIBUTE}")
    # Oldest first; sorted() is stable, so the last is the newest.
    return sorted(messages, key=lambda m: m["sentAt"])[-1]["code"]


def attribute_verified(emulator_url: str, token: str) -> bool:
    # Cognito's GetUser, asked of the dev backend directly.
    req = urllib.request.Request(
        emulator_url, data=json.dumps({"AccessToken": token}).encode(), method="POST",
        headers={"content-type": "application/x-amz-json-1.1",
                 "x-amz-target": "AWSCognitoIdentityProviderService.GetUser"})
    with urllib.request.urlopen(req, timeout=5) as r:
        attrs = {a["Name"]: a["Value"] for a in json.load(r)["UserAttributes"]}
    return attrs.get(f"{ATTRIBUTE}_verified") == "true"


def main() -> None:
    addr = os.environ.get("COGNITO_VERIFY_ADDR", "127.0.0.1:50051")
    emulator_url = os.environ.get("COGNITO_VERIFY_EMULATOR_URL", "http://127.0.0.1:9229")
    token = os.environ.get("COGNITO_VERIFY_TOKEN") or fail("COGNITO_VERIFY_TOKEN is not set")
    username = username_of(token)

    # Plaintext for the local dev server; for TLS or mTLS:
    # connect(addr, ca_file="ca.pem", cert_file="client.pem", key_file="client-key.pem")
    with connect(addr, plaintext=True) as channel:
        client = Client(channel, timeout=10)

        # 1. Request a code.
        sent = client.get_user_attribute_verification_code(token, ATTRIBUTE)
        details = sent.code_delivery_details
        if details.delivery_medium != DeliveryMedium.Value("DELIVERY_MEDIUM_EMAIL"):
            fail(f"expected an email delivery, got {sent}")
        print(f"1. code sent by {DeliveryMedium.Name(details.delivery_medium)} to {details.destination}")

        # 2. The code, as the user would read it (the dev backend's outbox).
        code = newest_code(emulator_url, username)
        print(f"2. read the code from the outbox ({len(code)} digits)")

        # 3. Verify it.
        client.verify_user_attribute(token, ATTRIBUTE, code)
        if not attribute_verified(emulator_url, token):
            fail(f"{ATTRIBUTE}_verified is not true after the verify")
        print(f"3. {ATTRIBUTE} verified")

        # 4. Request again at once: refused within the send cooldown.
        try:
            client.get_user_attribute_verification_code(token, ATTRIBUTE)
        except CognitoVerifyError as e:
            if e.reason != ErrorReason.Value("SEND_COOLDOWN") or e.retry_after is None:
                fail(f"expected SEND_COOLDOWN with a retry delay, got {e!r}")
            quota = ", ".join(q.subject for q in e.quota_violations)
            print(f"4. refused: {e.code.name} {e.reason_name}, retry after {e.retry_after:.1f} s"
                  f" (quota: {quota})")
        else:
            fail("a second send within the cooldown was not refused")

        # 5. Where the user stands: read, nothing spent.
        status = client.get_verification_status(token)
        email = next((a for a in status.attributes if a.attribute_name == ATTRIBUTE), None)
        if email is None:
            fail(f"the status has no {ATTRIBUTE}")
        if not email.verified or email.send_blocked_by != ErrorReason.Value("SEND_COOLDOWN"):
            fail(f"expected a verified {ATTRIBUTE} in its cooldown, got {email}")
        left = status.sends_left if status.HasField("sends_left") else "unlimited"
        print(f"5. status: {ATTRIBUTE} verified, next code in {email.next_send_in.seconds} s"
              f" ({ErrorReason.Name(email.send_blocked_by)}), {left} codes left this hour")


if __name__ == "__main__":
    main()
