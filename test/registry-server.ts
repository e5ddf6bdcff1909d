/**
 * Registries for the pull/push cross-process tests:
 * - Debian's `docker-registry` (distribution 2.8) on a loopback port, with a throwaway config and storage dir;
 * - a counting proxy in front of it (node:http) that tallies the blob bytes it relays per digest and can hold
 *   ranged GETs past an offset, so a test can interrupt a pull at a known point;
 * - a tiny scriptable HTTP server for what a real registry cannot be made to do (malicious manifests, foreign
 *   auth realms, a token endpoint).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureRegistry } from "../scripts/prerequisites";

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

const close = (server: Server) =>
  new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });

export interface DockerRegistry {
  /** `127.0.0.1:<port>`, as it appears in model names. */
  host: string;
  url: string;
  storageDir: string;
  /** The file holding a blob's bytes inside the registry's storage (for corrupting it on purpose). */
  blobPath(digest: string): string;
  output(): string;
  stop(): Promise<void>;
}

/**
 * The port is picked free and bound by docker-registry a moment later: another process may take it in between
 * (busy CI machines do), so a registry that could not bind is started again on another port.
 */
export async function startDockerRegistry(): Promise<DockerRegistry> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startDockerRegistryOnce();
    } catch (err) {
      if (attempt >= 3 || !/address already in use/i.test(String(err))) throw err;
    }
  }
}

async function startDockerRegistryOnce(): Promise<DockerRegistry> {
  const dir = mkdtempSync(join(tmpdir(), "corral-registry-"));
  const storageDir = join(dir, "storage");
  const port = await freePort();
  const config = join(dir, "config.yml");
  writeFileSync(
    config,
    [
      "version: 0.1",
      "log:",
      "  level: warn",
      "  accesslog:",
      "    disabled: true",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${storageDir}`,
      "  delete:",
      "    enabled: true",
      "http:",
      `  addr: 127.0.0.1:${port}`,
      "  secret: corral-test-secret",
      "",
    ].join("\n"),
  );
  let out = "";
  const child: ChildProcess = spawn(ensureRegistry(), ["serve", config], { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout?.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr?.on("data", (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null) child.kill("SIGTERM");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`docker-registry exited: ${out}`);
    }
    try {
      if ((await fetch(`${url}/v2/`)).ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry did not start: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    host: `127.0.0.1:${port}`,
    url,
    storageDir,
    blobPath: (digest) => {
      const hex = digest.replace(/^sha256:/, "");
      return join(storageDir, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
    },
    output: () => out,
    stop,
  };
}

/** Flips one byte of a file in place; calling it again restores the file. */
export function flipByte(path: string, offset: number): void {
  const bytes = readFileSync(path);
  bytes[offset] = bytes[offset]! ^ 0xff;
  writeFileSync(path, bytes);
}

interface HeldRequest {
  req: IncomingMessage;
  res: ServerResponse;
  closedByClient: boolean;
}

export interface CountingProxy {
  host: string;
  /** Blob bytes relayed per digest since the last reset. */
  served(digest: string): number;
  reset(): void;
  /** Holds (never answers) ranged GETs of `digest` that start at or after `offset`. */
  hold(digest: string, offset: number): void;
  held(): HeldRequest[];
  /** Fails every held request (the connection drops) and stops holding. */
  releaseHeld(): void;
  /** Lets every held request whose client still waits through (late) and stops holding. */
  passHeld(): void;
  stop(): Promise<void>;
}

export async function startCountingProxy(targetPort: number): Promise<CountingProxy> {
  const served = new Map<string, number>();
  let holding: { digest: string; offset: number } | null = null;
  let heldRequests: HeldRequest[] = [];
  const forward = (req: IncomingMessage, res: ServerResponse, digest: string | undefined) => {
    const upstream = httpRequest(
      { host: "127.0.0.1", port: targetPort, method: req.method, path: req.url, headers: req.headers },
      (up: IncomingMessage) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.on("data", (chunk: Buffer) => {
          if (digest && req.method === "GET") served.set(digest, (served.get(digest) ?? 0) + chunk.length);
        });
        up.pipe(res);
      },
    );
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  };
  const blobDigest = (req: IncomingMessage) => /^\/v2\/.+\/blobs\/(sha256:[0-9a-f]{64})$/.exec(req.url ?? "")?.[1];
  const server = createServer((req, res) => {
    const digest = blobDigest(req);
    const rangeStart = Number(/^bytes=(\d+)-/.exec(req.headers.range ?? "")?.[1] ?? 0);
    if (digest && req.method === "GET" && holding?.digest === digest && rangeStart >= holding.offset) {
      const held: HeldRequest = { req, res, closedByClient: false };
      // The response is never ended while held, so its close means the client dropped the connection.
      res.on("close", () => {
        held.closedByClient = true;
      });
      heldRequests.push(held);
      return;
    }
    forward(req, res, digest);
  });
  const port = await listen(server);
  return {
    host: `127.0.0.1:${port}`,
    served: (digest) => served.get(digest) ?? 0,
    reset: () => served.clear(),
    hold: (digest, offset) => {
      holding = { digest, offset };
    },
    held: () => heldRequests,
    releaseHeld: () => {
      holding = null;
      for (const h of heldRequests) h.res.destroy();
      heldRequests = [];
    },
    passHeld: () => {
      holding = null;
      // One the client gave up on (a stall timeout) gets nothing: its bytes would be counted but never received.
      for (const h of heldRequests) if (!h.closedByClient) forward(h.req, h.res, blobDigest(h.req));
      heldRequests = [];
    },
    stop: () => close(server),
  };
}

export interface ScriptedServer {
  host: string;
  port: number;
  requests: { method: string; url: string; authorization?: string }[];
  stop(): Promise<void>;
}

/** An HTTP server whose answers the test writes; it records every request it gets. */
export async function startScriptedServer(
  handle: (req: IncomingMessage, res: ServerResponse, self: { host: string }) => void,
): Promise<ScriptedServer> {
  const requests: ScriptedServer["requests"] = [];
  const self = { host: "" };
  const server = createServer((req, res) => {
    requests.push({
      method: req.method ?? "",
      url: req.url ?? "",
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
    });
    handle(req, res, self);
  });
  const port = await listen(server);
  self.host = `127.0.0.1:${port}`;
  return { host: self.host, port, requests, stop: () => close(server) };
}

/** Relays a request to another local port unchanged (the auth-checking front of the token dance test). */
export function relay(req: IncomingMessage, res: ServerResponse, targetPort: number): void {
  const { authorization: _checked, ...headers } = req.headers;
  const upstream = httpRequest(
    { host: "127.0.0.1", port: targetPort, method: req.method, path: req.url, headers },
    (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    },
  );
  upstream.on("error", () => res.destroy());
  req.pipe(upstream);
}
