import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestRunner, TEST_SECRET, type TestRunner } from "./test-support";

// The edge's HTTP client (workerd; cloudflared in production) pools connections to a runner and reuses an idle one
// for the next request. A runner that closes idle connections itself (Node's default: after 5 s) races that reuse:
// the request meets a closing socket, fails before its first byte, and the edge takes the runner out of service for
// its unhealthy cooldown (30 s of "no runner available"). So the runner leaves idle connections to the client.

/** Node's default keepAliveTimeout, and a margin for a loaded machine. */
const NODE_DEFAULT_IDLE_MS = 5_000;
const MARGIN_MS = 1_500;

let t: TestRunner;
beforeAll(async () => {
  t = await startTestRunner();
});
afterAll(() => t.stop());

/** Sends GET /v1/ps on `socket` and resolves with the response's status line once its whole body has arrived. */
function getStatus(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const onData = (chunk: Buffer) => {
      text += chunk.toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) return;
      const length = Number(/content-length: (\d+)/i.exec(text.slice(0, end))?.[1] ?? Number.NaN);
      if (text.length - end - 4 < length) return;
      socket.off("data", onData);
      socket.off("close", onClose);
      resolve(text.slice(0, text.indexOf("\r\n")));
    };
    const onClose = () => reject(new Error("the runner closed the connection"));
    socket.on("data", onData);
    socket.once("close", onClose);
    socket.write(`GET /v1/ps HTTP/1.1\r\nhost: runner\r\nauthorization: Bearer ${TEST_SECRET}\r\n\r\n`);
  });
}

describe("kept-alive connections", () => {
  it("stay open past Node's default idle timeout, and the next request on one is served", async () => {
    const { port } = new URL(t.base);
    const socket = connect(Number(port), "127.0.0.1");
    try {
      expect(await getStatus(socket)).toBe("HTTP/1.1 200 OK");
      // Idle on purpose, as a pooled connection is between two requests: the only way to see the server's own timeout.
      const closed = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), NODE_DEFAULT_IDLE_MS + MARGIN_MS);
        socket.once("close", () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      expect(closed).toBe(false);
      expect(await getStatus(socket)).toBe("HTTP/1.1 200 OK");
    } finally {
      socket.destroy();
    }
  });
});
