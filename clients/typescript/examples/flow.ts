// The whole flow against a running `cognito-verify dev`: request a code for
// the email address, read it from the dev backend's outbox, verify it, then
// request again and show the SEND_COOLDOWN refusal with its retry delay;
// last, ask where the user stands (GetVerificationStatus): the email
// verified, as the backend holds it, and the cooldown the refusal named.
//
// Environment: COGNITO_VERIFY_ADDR (default 127.0.0.1:50051),
// COGNITO_VERIFY_EMULATOR_URL (default http://127.0.0.1:9229),
// COGNITO_VERIFY_TOKEN (required: the user's access token).
// Exits non-zero when a step does not do what it says.
import { toJsonString } from "@bufbuild/protobuf";

import {
  AttributeStatusSchema,
  Client,
  CognitoVerifyError,
  DeliveryMedium,
  DeliveryMediumSchema,
  ErrorReason,
  ErrorReasonSchema,
  GetUserAttributeVerificationCodeResponseSchema,
  connect,
} from "../src/index.js";

const ATTRIBUTE = "email";

function fail(msg: string): never {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
}

function usernameOf(token: string): string {
  // The outbox is filtered by user: the access token's `username` claim
  // (read, not verified; the service verifies the token).
  const payload = token.split(".")[1] ?? "";
  return JSON.parse(Buffer.from(payload, "base64url").toString("utf8")).username;
}

async function newestCode(emulatorUrl: string, username: string): Promise<string> {
  const query = new URLSearchParams({ username, attribute: ATTRIBUTE });
  const r = await fetch(`${emulatorUrl}/_emulator/outbox?${query}`, { signal: AbortSignal.timeout(5000) });
  if (!r.ok) fail(`the outbox answered ${r.status}`);
  const { messages } = (await r.json()) as { messages: { code: string; sentAt: string | number }[] };
  if (messages.length === 0) fail(`no code in the outbox for ${username} / ${ATTRIBUTE}`);
  // Oldest first; sort() is stable, so the last is the newest.
  messages.sort((a, b) => (a.sentAt < b.sentAt ? -1 : a.sentAt > b.sentAt ? 1 : 0));
  return messages[messages.length - 1].code;
}

async function attributeVerified(emulatorUrl: string, token: string): Promise<boolean> {
  // Cognito's GetUser, asked of the dev backend directly.
  const r = await fetch(emulatorUrl, {
    method: "POST",
    body: JSON.stringify({ AccessToken: token }),
    headers: {
      "content-type": "application/x-amz-json-1.1",
      "x-amz-target": "AWSCognitoIdentityProviderService.GetUser",
    },
    signal: AbortSignal.timeout(5000),
  });
  if (!r.ok) fail(`GetUser answered ${r.status}`);
  const user = (await r.json()) as { UserAttributes: { Name: string; Value: string }[] };
  const attrs = new Map(user.UserAttributes.map((a) => [a.Name, a.Value]));
  return attrs.get(`${ATTRIBUTE}_verified`) === "true";
}

async function main(): Promise<void> {
  const addr = process.env.COGNITO_VERIFY_ADDR ?? "127.0.0.1:50051";
  const emulatorUrl = process.env.COGNITO_VERIFY_EMULATOR_URL ?? "http://127.0.0.1:9229";
  const token = process.env.COGNITO_VERIFY_TOKEN || fail("COGNITO_VERIFY_TOKEN is not set");
  const username = usernameOf(token);

  // Plaintext for the local dev server; for TLS or mTLS:
  // connect(addr, { caFile: "ca.pem", certFile: "client.pem", keyFile: "client-key.pem" })
  const transport = connect(addr, { plaintext: true });
  const client = new Client(transport, { timeoutMs: 10_000 });

  // 1. Request a code.
  const sent = await client.getUserAttributeVerificationCode(token, ATTRIBUTE);
  const details = sent.codeDeliveryDetails;
  if (details?.deliveryMedium !== DeliveryMedium.EMAIL) {
    fail(`expected an email delivery, got ${toJsonString(GetUserAttributeVerificationCodeResponseSchema, sent)}`);
  }
  console.log(`1. code sent by ${DeliveryMediumSchema.value[details.deliveryMedium].name} to ${details.destination}`);

  // 2. The code, as the user would read it (the dev backend's outbox).
  const code = await newestCode(emulatorUrl, username);
  console.log(`2. read the code from the outbox (${code.length} digits)`);

  // 3. Verify it.
  await client.verifyUserAttribute(token, ATTRIBUTE, code);
  if (!(await attributeVerified(emulatorUrl, token))) {
    fail(`${ATTRIBUTE}_verified is not true after the verify`);
  }
  console.log(`3. ${ATTRIBUTE} verified`);

  // 4. Request again at once: refused within the send cooldown.
  try {
    await client.getUserAttributeVerificationCode(token, ATTRIBUTE);
    fail("a second send within the cooldown was not refused");
  } catch (e) {
    if (!(e instanceof CognitoVerifyError)) throw e;
    if (e.reason !== ErrorReason.SEND_COOLDOWN || e.retryAfterMs === undefined) {
      fail(`expected SEND_COOLDOWN with a retry delay, got ${e}`);
    }
    const quota = e.quotaViolations.map((q) => q.subject).join(", ");
    console.log(`4. refused: ${e.codeName} ${e.reasonName}, retry after ${(e.retryAfterMs / 1000).toFixed(1)} s`
      + ` (quota: ${quota})`);
  }

  // 5. Where the user stands: read, nothing spent.
  const status = await client.getVerificationStatus(token);
  const email = status.attributes.find((a) => a.attributeName === ATTRIBUTE);
  if (email === undefined) fail(`the status has no ${ATTRIBUTE}`);
  if (!email.verified || email.sendBlockedBy !== ErrorReason.SEND_COOLDOWN) {
    fail(`expected a verified ${ATTRIBUTE} in its cooldown, got ${toJsonString(AttributeStatusSchema, email)}`);
  }
  const left = status.sendsLeft ?? "unlimited";
  console.log(`5. status: ${ATTRIBUTE} verified, next code in ${email.nextSendIn?.seconds ?? 0} s`
    + ` (${ErrorReasonSchema.value[email.sendBlockedBy].name}), ${left} codes left this hour`);
}

main().catch((e: unknown) => fail(String(e)));
