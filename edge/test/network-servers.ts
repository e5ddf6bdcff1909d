/**
 * Global setup of the Worker tests (runs in Node): real servers on loopback that commit the network faults a
 * registry client must name or survive, so the tests inside workerd cause them for real instead of mocking fetch.
 *
 * - `resolver`: the DNS-over-HTTPS JSON API backed by this machine's resolver (getaddrinfo), so a name that does not
 *   resolve really does not; names under `.rebind.test` answer 127.0.0.1 (a rebinding name: no real DNS record can
 *   be created for a test, so this one answer is scripted).
 * - `closedPort`: a port that was bound and released (connection refused).
 * - `plainHttp`: an HTTP server, to be spoken to over https (TLS fault); `selfSigned`: TLS with an untrusted cert.
 * - `silent`: accepts connections and never answers (timeout); `garbage`: answers bytes that are not HTTP.
 * - `hostile`: a registry whose answers are too big: endless manifests, a gzip bomb (as a manifest and as a blob),
 *   endless token and error bodies.
 * - `cutJob`: a runner whose connection drops in the middle of a job's NDJSON answer, after a progress line: between
 *   two lines under a `/between` URL, inside a line under `/mid-line`; under `/stall` it keeps the connection open
 *   and says nothing more (a runner host that vanished).
 */
import { execFileSync } from "node:child_process";
import { lookup } from "node:dns/promises";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { createServer as createTcpServer, type Server as TcpServer } from "node:net";
import { gzipSync } from "node:zlib";
import type { TestProject } from "vitest/node";

export interface NetworkServers {
  resolver: string;
  closedPort: number;
  plainHttp: number;
  /** null where `openssl` is not installed (the case is then skipped, saying so). */
  selfSigned: number | null;
  silent: number;
  garbage: number;
  hostile: number;
  cutJob: number;
}

declare module "vitest" {
  export interface ProvidedContext {
    networkServers: NetworkServers;
  }
}

const open: (Server | TcpServer)[] = [];
const sockets = new Set<import("node:net").Socket>();

async function listen<T extends Server | TcpServer>(server: T): Promise<number> {
  open.push(server);
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

/** `?name=…&type=A|AAAA` answered from getaddrinfo: Status 3 when the name does not exist. */
const resolver = createHttpServer(async (req, res) => {
  const url = new URL(req.url ?? "/", "http://resolver");
  const name = url.searchParams.get("name") ?? "";
  const family = url.searchParams.get("type") === "AAAA" ? 6 : 4;
  const type = family === 6 ? 28 : 1;
  res.setHeader("content-type", "application/dns-json");
  if (name.endsWith(".rebind.test")) {
    res.end(JSON.stringify({ Status: 0, Answer: family === 4 ? [{ type, data: "127.0.0.1" }] : [] }));
    return;
  }
  try {
    const found = await lookup(name, { all: true, family });
    res.end(JSON.stringify({ Status: 0, Answer: found.map((a) => ({ type, data: a.address })) }));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    res.end(JSON.stringify({ Status: code === "ENOTFOUND" ? 3 : code === "ENODATA" ? 0 : 2 }));
  }
});

const MiB = 1024 * 1024;
/** 64 MiB of zeros gzip to ~64 KiB: a bomb small on the wire, huge once decoded. */
const bomb = gzipSync(Buffer.alloc(64 * MiB));

/** A model whose one 1000-byte layer the server sends as the gzip bomb. */
export const BLOB_BOMB_LAYER = `sha256:${"b".repeat(64)}`;
const BLOB_BOMB_MANIFEST = {
  schemaVersion: 2,
  mediaType: "application/vnd.docker.distribution.manifest.v2+json",
  config: { mediaType: "application/vnd.docker.container.image.v1+json", digest: BLOB_BOMB_LAYER, size: 1000 },
  layers: [{ mediaType: "application/vnd.ollama.image.license", digest: BLOB_BOMB_LAYER, size: 1000 }],
};

/** Writes `chunk` until the client goes away. */
function endless(res: import("node:http").ServerResponse, chunk: Buffer) {
  const write = () => {
    while (!res.destroyed && res.write(chunk)) {}
    if (!res.destroyed) res.once("drain", write);
  };
  res.on("close", () => res.removeAllListeners("drain"));
  write();
}

const hostile = createHttpServer((req, res) => {
  const path = req.url ?? "/";
  const chunk = Buffer.alloc(64 * 1024, "a");
  if (path.startsWith("/token")) return endless(res.writeHead(200, { "content-type": "application/json" }), chunk);
  if (path.includes("/blob-bomb/manifests/")) {
    res.writeHead(200, { "content-type": "application/vnd.docker.distribution.manifest.v2+json" });
    return res.end(JSON.stringify(BLOB_BOMB_MANIFEST));
  }
  if (path.includes("/blob-bomb/blobs/")) {
    res.writeHead(200, { "content-type": "application/octet-stream", "content-encoding": "gzip" });
    return res.end(bomb);
  }
  if (path.includes("/bomb/")) {
    res.writeHead(200, {
      "content-type": "application/vnd.docker.distribution.manifest.v2+json",
      "content-encoding": "gzip",
    });
    return res.end(bomb);
  }
  if (path.includes("/endless/")) return endless(res.writeHead(200), chunk);
  if (path.includes("/auth/")) {
    const port = (hostile.address() as AddressInfo).port;
    res.writeHead(401, { "www-authenticate": `Bearer realm="http://127.0.0.1:${port}/token",service="hostile"` });
    return res.end();
  }
  // Every other path: a 500 whose body never ends.
  endless(res.writeHead(500, { "content-type": "text/plain" }), chunk);
});

/** A runner job's first progress line, then the socket destroyed where the URL says (after the line was sent). */
const cutJob = createHttpServer((req, res) => {
  req.resume();
  req.on("end", () => {
    res.writeHead(200, { "content-type": "application/x-ndjson" });
    const progress = `${JSON.stringify({ event: "progress", phase: "fetch", completed: 1, total: 2 })}\n`;
    const sent = req.url?.startsWith("/mid-line") ? `${progress}{"event":"prog` : progress;
    if (req.url?.startsWith("/stall")) res.write(progress);
    else res.write(sent, () => res.socket?.destroy());
  });
});

/** A throwaway key and certificate for `localhost`, or null without the openssl command. */
function selfSignedCert(): { key: string; cert: string } | null {
  let pem: string;
  try {
    pem = execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-days",
        "1",
        "-keyout",
        "-",
        "-out",
        "-",
      ],
      { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] },
    );
  } catch {
    return null;
  }
  const key = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----/.exec(pem)?.[0];
  const cert = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem)?.[0];
  if (!key || !cert) throw new Error("openssl did not write a key and certificate");
  return { key, cert };
}

export async function setup(project: TestProject) {
  const closed = createTcpServer();
  await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
  const closedPort = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));

  const tls = selfSignedCert();
  const servers: NetworkServers = {
    resolver: `http://127.0.0.1:${await listen(resolver)}/dns-query`,
    closedPort,
    plainHttp: await listen(createHttpServer((_req, res) => res.end("plain http"))),
    selfSigned: tls ? await listen(createHttpsServer(tls, (_req, res) => res.end("self-signed"))) : null,
    silent: await listen(createTcpServer(() => {})),
    garbage: await listen(createTcpServer((socket) => socket.end("garbage, not HTTP\r\n\r\n"))),
    hostile: await listen(hostile),
    cutJob: await listen(cutJob),
  };
  project.provide("networkServers", servers);
}

export async function teardown() {
  for (const socket of sockets) socket.destroy();
  for (const server of open) server.close();
}
