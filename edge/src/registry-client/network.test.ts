/**
 * Registry network faults caused for real against servers on loopback (edge/test/network-servers.ts), from inside
 * workerd: each failure is named like Ollama names it, a name resolving to a private address is refused, and
 * answers too big (endless bodies, a gzip bomb) are cut off at their caps.
 */
import { env } from "cloudflare:test";
import { ApiError } from "@corral/protocol";
import { describe, expect, inject, it } from "vitest";
import { newTenant } from "../../test/helpers";
import { BLOB_BOMB_LAYER } from "../../test/network-servers";
import { blobKey } from "../store/store";
import { RegistryClient, type RegistryRef } from "./client";
import type { OciEnv } from "./config";
import { assertPublicAddresses, RegistryNetworkError } from "./network";
import { pullModel } from "./pull";

const servers = inject("networkServers");
const DIGEST = `sha256:${"a".repeat(64)}`;

function client(base: string, overrides: Partial<RegistryRef> = {}) {
  return new RegistryClient({
    base,
    repository: "library/llama3.2",
    insecure: base.startsWith("http:"),
    allowPrivate: true,
    network: { resolverUrl: servers.resolver, timeoutMs: 20_000 },
    ...overrides,
  });
}

async function failure(work: Promise<unknown>): Promise<ApiError> {
  const err = await work.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApiError);
  return err as ApiError;
}

describe("registry network failures are named", () => {
  const manifestUrl = (base: string) => `${base}/v2/library/llama3.2/manifests/latest`;
  it.each([
    [
      "a name that does not resolve",
      "https://no-such-host.invalid",
      () => "dial tcp: lookup no-such-host.invalid: no such host",
    ],
    [
      "a closed port",
      `http://127.0.0.1:${servers.closedPort}`,
      () => `dial tcp 127.0.0.1:${servers.closedPort}: connect: connection refused (or host unreachable)`,
    ],
    [
      "https spoken to a plain http server",
      `https://127.0.0.1:${servers.plainHttp}`,
      () => "http: server gave HTTP response to HTTPS client",
    ],
    [
      "a server that answers something other than HTTP",
      `http://127.0.0.1:${servers.garbage}`,
      () => 'net/http: malformed HTTP response "garbage, not HTTP\\r\\n\\r\\n"',
    ],
  ])("pull: %s", async (_what, base, cause) => {
    const err = await failure(client(base).getManifest("latest"));
    expect(err).toBeInstanceOf(RegistryNetworkError);
    expect(err.status).toBe(502);
    expect(err.message).toBe(`pull model manifest: Get "${manifestUrl(base)}": ${cause()}`);
  });

  it.skipIf(servers.selfSigned === null)("pull: a certificate nobody trusts (needs openssl)", async () => {
    const base = `https://localhost:${servers.selfSigned}`;
    const err = await failure(client(base).getManifest("latest"));
    expect(err.message).toBe(
      `pull model manifest: Get "${manifestUrl(base)}": tls: handshake with localhost:${servers.selfSigned} failed ` +
        "(certificate not trusted, expired or not issued for localhost)",
    );
  });

  it("pull: a server that never answers, within REGISTRY_TIMEOUT_MS", async () => {
    const base = `http://127.0.0.1:${servers.silent}`;
    const slow = client(base, { network: { resolverUrl: servers.resolver, timeoutMs: 300 } });
    const err = await failure(slow.getManifest("latest"));
    expect(err.message).toBe(
      `pull model manifest: Get "${manifestUrl(base)}": net/http: timeout awaiting response headers (none within 300 ms)`,
    );
  });

  it("pull: no resolver and no route (an offline machine)", async () => {
    const dead = `http://127.0.0.1:${servers.closedPort}/dns-query`;
    const offline = client("https://registry.invalid", { network: { resolverUrl: dead, timeoutMs: 20_000 } });
    const err = await failure(offline.getManifest("latest"));
    expect(err.message).toBe(
      'pull model manifest: Get "https://registry.invalid/v2/library/llama3.2/manifests/latest": dial tcp: lookup ' +
        `registry.invalid: cannot resolve or connect (resolver 127.0.0.1:${servers.closedPort} unreachable; is this machine offline?)`,
    );
  });

  it("push: the blob check and the upload name the failure too", async () => {
    const base = `http://127.0.0.1:${servers.closedPort}`;
    const refused = `dial tcp 127.0.0.1:${servers.closedPort}: connect: connection refused (or host unreachable)`;
    const head = await failure(client(base).blobExists(DIGEST));
    expect(head.message).toBe(`Head "${base}/v2/library/llama3.2/blobs/${DIGEST}": ${refused}`);
    const start = await failure(client(base).startUpload());
    expect(start.message).toBe(`Post "${base}/v2/library/llama3.2/blobs/uploads/": ${refused}`);
  });

  it("the pull route's job ends with the named error and writes nothing", async () => {
    const oci = { ...env, REGISTRY_DNS_RESOLVER: servers.resolver } as unknown as OciEnv;
    const job = pullModel(
      oci,
      "tenant-offline",
      { model: "no-such-host.invalid/library/llama3.2", insecure: false },
      new AbortController().signal,
    );
    expect(await job.next()).toEqual({ done: false, value: { status: "pulling manifest" } });
    const err = await failure(job.next());
    expect(err.message).toBe(
      'pull model manifest: Get "https://no-such-host.invalid/v2/library/llama3.2/manifests/latest": dial tcp: lookup no-such-host.invalid: no such host',
    );
  });
});

describe("DNS rebinding", () => {
  it("refuses a public-looking name that resolves to a private address, before any request", async () => {
    const guarded = client(`http://registry.rebind.test:${servers.plainHttp}`, { allowPrivate: false });
    const err = await failure(guarded.getManifest("latest"));
    expect(err.status).toBe(400);
    expect(err.message).toBe(
      "registry host registry.rebind.test:" +
        `${servers.plainHttp} refused: it resolves to 127.0.0.1, a loopback address (ALLOW_PRIVATE_REGISTRIES is off)`,
    );
  });

  it.each(["https://93.184.215.14/", "https://[2606:4700::1111]/"])(
    "takes a public IP literal as its own answer: %s",
    async (url) => {
      const noResolver = (() => Promise.reject(new Error("no lookup for a literal"))) as typeof fetch;
      const settings = { resolverUrl: servers.resolver, timeoutMs: 1000 };
      await expect(assertPublicAddresses(noResolver, settings, new URL(url), AbortSignal.timeout(1000))).resolves.toBe(
        undefined,
      );
    },
  );

  it("fails closed when the resolver cannot answer", async () => {
    const dead = `http://127.0.0.1:${servers.closedPort}/dns-query`;
    const guarded = client("https://registry.example.com", {
      allowPrivate: false,
      network: { resolverUrl: dead, timeoutMs: 20_000 },
    });
    const err = await failure(guarded.getManifest("latest"));
    expect(err).toBeInstanceOf(RegistryNetworkError);
    expect(err.message).toBe(
      `pull model manifest: Get "https://registry.example.com/v2/library/llama3.2/manifests/latest": dial tcp: lookup registry.example.com: resolver 127.0.0.1:${servers.closedPort} unreachable`,
    );
  });
});

describe("registry answers are capped", () => {
  const hostile = `http://127.0.0.1:${servers.hostile}`;
  const repo = (repository: string) => client(hostile, { repository });

  it("stops reading an endless manifest at 4 MiB", async () => {
    const err = await failure(repo("x/endless").getManifest("latest"));
    expect(err.message).toBe("registry response too large (more than 4194304 bytes)");
  });

  it("stops decoding a gzip bomb at 4 MiB of output (CVE-2024-12886 class)", async () => {
    const err = await failure(repo("x/bomb").getManifest("latest"));
    expect(err.message).toBe("registry response too large (more than 4194304 bytes)");
  });

  it("stops decoding a gzip-bombed blob at the length the manifest gives, and stores nothing", async () => {
    const oci = { ...env, ALLOW_PRIVATE_REGISTRIES: "true", PULL_RETRIES: "1" } as unknown as OciEnv;
    const model = `127.0.0.1:${servers.hostile}/x/blob-bomb:latest`;
    const tenant = await newTenant("bomb");
    const job = pullModel(oci, tenant.id, { model, insecure: true }, new AbortController().signal);
    const seen: string[] = [];
    const err = await failure(
      (async () => {
        for await (const p of job) seen.push(p.status);
      })(),
    );
    expect(err.message).toBe(`registry sent more than the 1000 bytes asked for of ${BLOB_BOMB_LAYER}`);
    expect(seen).not.toContain("writing manifest");
    expect(await env.BLOBS.head(blobKey(BLOB_BOMB_LAYER))).toBeNull();
  });

  it("stops reading an endless token answer at 64 KiB", async () => {
    const err = await failure(repo("x/auth").getManifest("latest"));
    expect(err.message).toBe("registry response too large (more than 65536 bytes)");
  });

  it("quotes the start of an endless error page and reads no further", async () => {
    const err = await failure(repo("x/error").getManifest("latest"));
    expect(err.message).toBe(`pull model manifest: 500: ${"a".repeat(300)}`);
  });
});
