// An in-process gRPC server for the tests: Connect's Node adapter on
// 127.0.0.1:0 (HTTP/2, plaintext or TLS), answering each call with the next
// scripted answer (a ConnectError, which it sends as the service does: a
// google.rpc.Status in grpc-status-details-bin) and recording what it got.
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";

import { create, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";

import { UserAttributeVerificationService } from "../src/gen/cognito/verify/v1/verification_pb.js";
import { ErrorInfoSchema, RetryInfoSchema } from "../src/gen/google/rpc/error_details_pb.js";

/** The next answer: an error, or "hang" (answer nothing until the call ends); "ok" when none is left. */
export type Answer = ConnectError | "hang";

/** One call as the server saw it. */
export interface Seen {
  method: "send" | "verify" | "status";
  accessToken: string;
  attributeName?: string;
  code?: string;
  requestId?: string;
  clientMetadata?: Record<string, string>;
  /** The grpc-timeout the client sent, in ms. */
  timeoutMs: number | undefined;
  /** performance.now() when the call arrived. */
  at: number;
}

export interface TestServer {
  addr: string;
  seen: Seen[];
  /** Answers still to give. */
  answers: Answer[];
  /** The client certificate's CN of each call, over TLS. */
  peers: string[];
  close(): Promise<void>;
}

/** A status as the service sends it: ErrorInfo, and RetryInfo when `retryMs` is given. */
export function serviceError(
  code: Code,
  reason: string,
  retryMs?: number,
  extra: { desc: DescMessage; value: MessageInitShape<DescMessage> }[] = [],
): ConnectError {
  const details: { desc: DescMessage; value: MessageInitShape<DescMessage> }[] = [
    { desc: ErrorInfoSchema, value: { reason, domain: "cognito-verify" } },
  ];
  if (retryMs !== undefined) {
    details.push({
      desc: RetryInfoSchema,
      value: {
        retryDelay: create(DurationSchema, {
          seconds: BigInt(Math.floor(retryMs / 1000)),
          nanos: (retryMs % 1000) * 1_000_000,
        }),
      },
    });
  }
  return new ConnectError(`${reason} (test)`, code, undefined, [...details, ...extra]);
}

function grpcTimeoutMs(ctx: HandlerContext): number | undefined {
  const t = ctx.requestHeader.get("grpc-timeout");
  if (t === null) return undefined;
  const m = /^(\d+)([HMSmun])$/.exec(t);
  if (!m) throw new Error(`bad grpc-timeout ${t}`);
  const unit: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };
  return Number(m[1]) * unit[m[2]];
}

export async function startServer(
  answers: Answer[] = [],
  tls?: http2.SecureServerOptions,
): Promise<TestServer> {
  const seen: Seen[] = [];
  const peers: string[] = [];
  async function answer(ctx: HandlerContext): Promise<void> {
    const next = answers.shift();
    if (next === "hang") {
      await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
      throw new ConnectError("the call ended", Code.Canceled);
    }
    if (next) throw next;
  }
  const routes = (router: ConnectRouter) =>
    router.service(UserAttributeVerificationService, {
      async getUserAttributeVerificationCode(req, ctx) {
        seen.push({
          method: "send",
          accessToken: req.accessToken,
          attributeName: req.attributeName,
          requestId: req.requestId,
          clientMetadata: { ...req.clientMetadata },
          timeoutMs: grpcTimeoutMs(ctx),
          at: performance.now(),
        });
        await answer(ctx);
        return { codeDeliveryDetails: { destination: "t***@e***", deliveryMedium: 2, attributeName: req.attributeName } };
      },
      async verifyUserAttribute(req, ctx) {
        seen.push({
          method: "verify",
          accessToken: req.accessToken,
          attributeName: req.attributeName,
          code: req.code,
          timeoutMs: grpcTimeoutMs(ctx),
          at: performance.now(),
        });
        await answer(ctx);
        return {};
      },
      async getVerificationStatus(req, ctx) {
        seen.push({
          method: "status",
          accessToken: req.accessToken,
          timeoutMs: grpcTimeoutMs(ctx),
          at: performance.now(),
        });
        await answer(ctx);
        return {
          attributes: [
            { attributeName: "email", present: true, destination: "t***@e***", deliveryMedium: 2, verified: true },
            { attributeName: "phone_number" },
          ],
          sendsLeft: 4,
        };
      },
    });
  const adapter = connectNodeAdapter({ routes, grpc: true, grpcWeb: false, connect: false });
  const handler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
    if (tls) {
      const socket = req.socket as unknown as { getPeerCertificate(): { subject?: { CN?: string } } };
      peers.push(socket.getPeerCertificate().subject?.CN ?? "");
    }
    void adapter(req, res);
  };
  const server = tls ? http2.createSecureServer(tls, handler) : http2.createServer(handler);
  // The clients' sessions stay open (idle): close() ends them, or the
  // server would wait for them.
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    addr: `127.0.0.1:${port}`,
    seen,
    answers,
    peers,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
      }),
  };
}
