/**
 * Pull and push against an in-memory registry (oci-fake-registry.ts) inside workerd: the real D1, R2, multipart
 * uploads and model writes, with the network replaced so faults can be injected deterministically.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../src/app";
import type { OciEnv } from "../src/registry-client/config";
import type { Progress } from "../src/registry-client/progress";
import { pullModel } from "../src/registry-client/pull";
import { pushModel } from "../src/registry-client/push";
import { MediaType } from "../src/store/manifest";
import { blobKey } from "../src/store/store";
import { ADMIN, call, newTenant } from "./helpers";
import { FakeRegistry } from "./oci-fake-registry";
import { createFromGguf, ggufModel, json, ndjsonLines, snapshot } from "./registry-fixtures";

const MiB = 1024 * 1024;
const ociEnv = (vars: Partial<OciEnv> = {}): OciEnv =>
  ({ ...env, PULL_PART_SIZE: String(5 * MiB), PULL_CONCURRENCY: "1", PULL_RETRIES: "1", ...vars }) as unknown as OciEnv;

async function run(job: AsyncGenerator<Progress>): Promise<{ lines: Progress[]; error?: string }> {
  const lines: Progress[] = [];
  try {
    for await (const line of job) lines.push(line);
    return { lines };
  } catch (err) {
    return { lines, error: err instanceof Error ? err.message : String(err) };
  }
}

const pull = (e: OciEnv, tenantId: string, model: string, registry: FakeRegistry) =>
  run(pullModel(e, tenantId, { model, insecure: false }, new AbortController().signal, registry.fetch));

function bytesOf(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** A registry-side model with one big layer (license-typed, so nothing parses it) of `size` bytes. */
function bigModel(registry: FakeRegistry, repository: string, size: number, seed: number) {
  const big = bytesOf(size, seed);
  const bigDigest = registry.putBlob(big);
  const configBytes = new TextEncoder().encode(`{"model_format":"gguf","seed":${seed}}`);
  const config = registry.putBlob(configBytes);
  const template = registry.putBlob(new TextEncoder().encode("{{ .Prompt }}"));
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.docker.distribution.manifest.v2+json",
    config: { mediaType: "application/vnd.docker.container.image.v1+json", digest: config, size: configBytes.length },
    layers: [
      { mediaType: MediaType.license, digest: bigDigest, size },
      { mediaType: MediaType.template, digest: template, size: 13 },
    ],
  });
  registry.putManifest(repository, "latest", manifest);
  return { bigDigest, size };
}

async function tags(key: string): Promise<{ name: string; digest: string }[]> {
  return (await json<{ models: { name: string; digest: string }[] }>(await call("GET", "/api/tags", { key }))).models;
}

describe("push then pull through a registry", () => {
  it("pushes a model and pulls it into another tenant with the same digest", async () => {
    const registry = new FakeRegistry();
    const a = await newTenant("oci-pusher");
    const b = await newTenant("oci-puller");
    const name = "registry.example.com/corral/fixture:latest";
    await createFromGguf(a.key, name, ggufModel({ salt: 77 }));
    const pushed = await run(
      pushModel(ociEnv(), a.id, { model: name, insecure: false }, new AbortController().signal, registry.fetch),
    );
    expect(pushed.error).toBeUndefined();
    const statuses = pushed.lines.map((l) => l.status);
    expect(statuses[0]).toBe("retrieving manifest");
    expect(statuses).toContain("starting upload");
    expect(statuses.at(-2)).toBe("pushing manifest");
    expect(statuses.at(-1)).toBe("success");
    const started = pushed.lines.find((l) => l.status === "starting upload")!;
    expect(started.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(started.total).toBeGreaterThan(0);
    expect(
      pushed.lines.some((l) => l.status === `pushing ${started.digest!.slice(7, 19)}` && l.completed === l.total),
    ).toBe(true);

    const aDigest = (await tags(a.key)).find((m) => m.name === name)!.digest;
    const pulled = await pull(ociEnv(), b.id, name, registry);
    expect(pulled.error).toBeUndefined();
    const pullStatuses = pulled.lines.map((l) => l.status);
    expect(pullStatuses[0]).toBe("pulling manifest");
    expect(pullStatuses.slice(-3)).toEqual(["verifying sha256 digest", "writing manifest", "success"]);
    for (const l of pulled.lines.filter((x) => x.status.startsWith("pulling "))) {
      if (l.status === "pulling manifest") continue;
      expect(l.status).toBe(`pulling ${l.digest!.slice(7, 19)}`);
    }
    expect((await tags(b.key)).find((m) => m.name === name)?.digest).toBe(aDigest);

    // The model is usable as a model: show reads its (inline) layers.
    const show = await call("POST", "/api/show", { key: b.key, body: { model: name } });
    expect(show.status).toBe(200);

    // Pushing again finds every blob present; pulling again fetches nothing.
    const again = await run(
      pushModel(ociEnv(), a.id, { model: name, insecure: false }, new AbortController().signal, registry.fetch),
    );
    expect(again.lines.map((l) => l.status)).not.toContain("starting upload");
    const servedBefore = [...registry.served.values()].reduce((n, v) => n + v, 0);
    const repull = await pull(ociEnv(), b.id, name, registry);
    expect(repull.error).toBeUndefined();
    expect([...registry.served.values()].reduce((n, v) => n + v, 0)).toBe(servedBefore);
    for (const l of repull.lines.filter((x) => x.digest)) expect(l.completed).toBe(l.total);
  });

  it("resumes an interrupted pull, fetching only the missing parts", async () => {
    const registry = new FakeRegistry();
    const t = await newTenant("oci-resume");
    const { bigDigest, size } = bigModel(registry, "corral/big", 12 * MiB + 100, 5);
    registry.faults = { failRangesFrom: { digest: bigDigest, offset: 5 * MiB } };
    const first = await pull(ociEnv(), t.id, "registry.example.com/corral/big", registry);
    expect(first.error).toMatch(/503/);
    expect(registry.servedBytes(bigDigest)).toBe(5 * MiB);
    expect(await tags(t.key)).toEqual([]);

    registry.faults = {};
    const second = await pull(ociEnv(), t.id, "registry.example.com/corral/big", registry);
    expect(second.error).toBeUndefined();
    expect(registry.servedBytes(bigDigest)).toBe(size);
    const progress = second.lines.filter((l) => l.digest === bigDigest);
    expect(progress[0]!.completed).toBe(5 * MiB);
    expect(progress.at(-1)!.completed).toBe(size);
    expect((await tags(t.key)).map((m) => m.name)).toEqual(["registry.example.com/corral/big:latest"]);
    const stored = await env.BLOBS.head(blobKey(bigDigest));
    expect(stored?.size).toBe(size);
    const { n } = (await env.DB.prepare("SELECT COUNT(*) AS n FROM pull_uploads WHERE tenant_id = ?")
      .bind(t.id)
      .first<{ n: number }>())!;
    expect(n).toBe(0);
  });

  it("fails verification of corrupted bytes and writes nothing", async () => {
    const registry = new FakeRegistry();
    const t = await newTenant("oci-corrupt");
    const { bigDigest } = bigModel(registry, "corral/bad", 6 * MiB, 9);
    registry.faults = { corrupt: bigDigest };
    const result = await pull(ociEnv(), t.id, "registry.example.com/corral/bad", registry);
    expect(result.lines.map((l) => l.status)).toContain("verifying sha256 digest");
    expect(result.error).toMatch(
      new RegExp(`^digest mismatch, file must be downloaded again: want ${bigDigest}, got sha256:`),
    );
    expect(await tags(t.key)).toEqual([]);
    expect((await call("HEAD", `/api/blobs/${bigDigest}`, { key: t.key })).status).toBe(404);
    expect(await env.BLOBS.head(blobKey(bigDigest))).toBeNull();
    const { n } = (await env.DB.prepare("SELECT COUNT(*) AS n FROM uploads WHERE tenant_id = ? AND digest = ?")
      .bind(t.id, bigDigest)
      .first<{ n: number }>())!;
    expect(n).toBe(0);
  });

  it.each([
    ["a traversal digest", { mediaType: MediaType.model, digest: "sha256:../../x", size: 10 }, /invalid digest/],
    ["a negative size", { mediaType: MediaType.model, digest: `sha256:${"1".repeat(64)}`, size: -5 }, /invalid size/],
    [
      "an unknown media type",
      { mediaType: "text/x-shellscript", digest: `sha256:${"1".repeat(64)}`, size: 5 },
      /media type/,
    ],
  ])("refuses a manifest with %s before fetching anything", async (_label, layer, message) => {
    const registry = new FakeRegistry();
    const t = await newTenant(`oci-evil-${String(message).length}-${layer.size}`);
    registry.putManifest(
      "evil/model",
      "latest",
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.docker.distribution.manifest.v2+json",
        config: {
          mediaType: "application/vnd.docker.container.image.v1+json",
          digest: `sha256:${"2".repeat(64)}`,
          size: 2,
        },
        layers: [layer],
      }),
    );
    const before = await snapshot();
    const result = await pull(ociEnv(), t.id, "registry.example.com/evil/model", registry);
    expect(result.lines.map((l) => l.status)).toEqual(["pulling manifest"]);
    expect(result.error).toMatch(/^invalid manifest: /);
    expect(result.error).toMatch(message);
    expect(registry.requests.filter((r) => r.includes("/blobs/"))).toEqual([]);
    expect(await snapshot()).toBe(before);
  });

  it("refuses a model larger than the tenant's storage quota up front", async () => {
    const registry = new FakeRegistry();
    const t = await newTenant("oci-quota");
    const { bigDigest } = bigModel(registry, "corral/quota", 6 * MiB, 3);
    await call("PUT", `/admin/tenants/${t.id}/quotas`, { key: ADMIN, body: { storage_bytes: MiB } });
    const result = await pull(ociEnv(), t.id, "registry.example.com/corral/quota", registry);
    expect(result.error).toMatch(/storage quota exceeded/);
    expect(registry.servedBytes(bigDigest)).toBe(0);
  });
});

describe("pull and push routes", () => {
  it("refuses private registries unless the deployment allows them, and http without insecure", async () => {
    const t = await newTenant("oci-ssrf");
    const res = await call("POST", "/api/pull", { key: t.key, body: { model: "127.0.0.1:5000/a/b", insecure: true } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/refused: loopback/);
    const http = await call("POST", "/api/pull", { key: t.key, body: { model: "http://registry.example.com/a/b" } });
    expect(http.status).toBe(400);
    expect(await http.json()).toEqual({ error: "insecure protocol http" });
    const local = await call("POST", "/api/pull", { key: t.key, body: { model: "localhost/a/b", stream: false } });
    expect(local.status).toBe(400);
  });

  it("answers push of a missing or other tenant's model with 404", async () => {
    const a = await newTenant("oci-owner");
    const b = await newTenant("oci-other");
    await createFromGguf(a.key, "registry.example.com/a/mine", ggufModel({ salt: 5 }));
    for (const model of ["registry.example.com/a/mine", "registry.example.com/a/none"]) {
      const res = await call("POST", "/api/push", { key: b.key, body: { model } });
      expect(res.status).toBe(404);
    }
  });

  it("stores registry credentials encrypted and never returns the password", async () => {
    const t = await newTenant("oci-creds");
    const path = "/api/registry-credentials/Registry.Example.com:5000";
    const disabled = await call("PUT", path, { key: t.key, body: { username: "u", password: "p" } });
    expect(disabled.status).toBe(501);

    const app = createApp();
    const withKey = { ...env, CREDENTIALS_KEY: "test-credentials-key" };
    const send = (method: string, p: string, body?: unknown) =>
      app.fetch(
        new Request(`http://corral.test${p}`, {
          method,
          headers: { authorization: `Bearer ${t.key}`, "content-type": "application/json" },
          body: body === undefined ? undefined : JSON.stringify(body),
        }),
        withKey,
        { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext,
      );
    const put = await send("PUT", path, { username: "alice", password: "pa55-word-xyz" });
    expect(put.status).toBe(200);
    expect(await put.json()).toEqual({ registry: "registry.example.com:5000", username: "alice" });
    const list = await send("GET", "/api/registry-credentials");
    const text = await list.text();
    expect(text).toContain("alice");
    expect(text).not.toContain("pa55-word-xyz");
    const { results } = await env.DB.prepare("SELECT * FROM registry_credentials").all();
    expect(JSON.stringify(results)).not.toContain("pa55-word-xyz");
    expect((await send("PUT", path, { username: "a:b", password: "x" })).status).toBe(400);
    expect((await send("DELETE", path)).status).toBe(200);
    expect((await send("DELETE", path)).status).toBe(404);
  });

  it("answers stream:false with the last object, and errors with their status", async () => {
    const t = await newTenant("oci-nostream");
    const res = await call("POST", "/api/pull", { key: t.key, body: { model: "10.0.0.1/a/b", stream: false } });
    expect(res.status).toBe(400);
    const lines = await ndjsonLines(await call("POST", "/api/pull", { key: t.key, body: {} }));
    expect(lines[0]).toHaveProperty("error");
  });
});
