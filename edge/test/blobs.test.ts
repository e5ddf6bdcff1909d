import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ADMIN, call, newTenant } from "./helpers";
import { digest, ggufModel, r2Keys, snapshot, upload } from "./registry-fixtures";

describe("POST/HEAD /api/blobs/:digest", () => {
  it("stores a blob once, answers 201 then 200, and HEAD finds it", async () => {
    const { key } = await newTenant("blob-basic");
    const bytes = ggufModel({ salt: 1 });
    const d = digest(bytes);
    expect((await call("HEAD", `/api/blobs/${d}`, { key })).status).toBe(404);
    expect((await upload(key, bytes)).status).toBe(201);
    expect((await upload(key, bytes)).status).toBe(200);
    expect((await call("HEAD", `/api/blobs/${d}`, { key })).status).toBe(200);
    // Ollama's file-name spelling of the digest is accepted too.
    expect((await call("HEAD", `/api/blobs/${d.replace(":", "-")}`, { key })).status).toBe(200);
    const object = await env.BLOBS.get(`blobs/${d.replace(":", "-")}`);
    expect(new Uint8Array(await object!.arrayBuffer())).toEqual(bytes);
  });

  it("refuses a body whose digest differs, storing nothing", async () => {
    const { key } = await newTenant("blob-mismatch");
    const before = await snapshot();
    const res = await upload(key, ggufModel({ salt: 2 }), digest(ggufModel({ salt: 3 })));
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/^digest mismatch, expected "sha256:/);
    expect(await snapshot()).toBe(before);
  });

  it.each([
    ["shorter", -1],
    ["longer", 1],
  ])("refuses a body %s than its Content-Length, storing nothing", async (_label, delta) => {
    const { key } = await newTenant(`blob-length-${_label}`);
    const bytes = ggufModel({ salt: 4 });
    const before = await snapshot();
    const res = await call("POST", `/api/blobs/${digest(bytes)}`, {
      key,
      raw: bytes,
      headers: { "content-length": String(bytes.length + delta) },
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(await snapshot()).toBe(before);
  });

  it("enforces the storage quota before storing a byte", async () => {
    const { id, key } = await newTenant("blob-quota");
    const small = ggufModel({ salt: 5 });
    await call("PUT", `/admin/tenants/${id}/quotas`, { key: ADMIN, body: { storage_bytes: small.length + 10 } });
    expect((await upload(key, small)).status).toBe(201);
    const before = await snapshot();
    const res = await upload(key, ggufModel({ salt: 6 }));
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: string }).error).toMatch(/storage quota exceeded/);
    expect(await snapshot()).toBe(before);
    // Re-uploading what the tenant already owns costs nothing.
    expect((await upload(key, small)).status).toBe(200);
  });

  it("makes a tenant prove it holds the bytes of a blob another tenant stored", async () => {
    const a = await newTenant("blob-owner-a");
    const b = await newTenant("blob-owner-b");
    const bytes = ggufModel({ salt: 7 });
    expect((await upload(a.key, bytes)).status).toBe(201);
    expect((await call("HEAD", `/api/blobs/${digest(bytes)}`, { key: b.key })).status).toBe(404);
    // Knowing the digest is not enough: garbage under it is refused and grants nothing.
    expect((await upload(b.key, new Uint8Array(bytes.length), digest(bytes))).status).toBe(400);
    expect((await call("HEAD", `/api/blobs/${digest(bytes)}`, { key: b.key })).status).toBe(404);
    // The real bytes: 201 (new to this tenant, no hint that another had it), stored once.
    expect((await upload(b.key, bytes)).status).toBe(201);
    expect((await call("HEAD", `/api/blobs/${digest(bytes)}`, { key: b.key })).status).toBe(200);
    expect((await r2Keys()).filter((k) => k.endsWith(digest(bytes).slice(7)))).toHaveLength(1);
  });

  it.each([
    ["uppercase hex", `sha256:${"A".repeat(64)}`],
    ["short", "sha256:abc"],
    ["empty", "sha256:"],
    ["path traversal", "..%2F..%2Fetc%2Fpasswd"],
    ["other algorithm", `md5:${"a".repeat(32)}`],
  ])("answers 400 to a malformed digest (%s)", async (_label, bad) => {
    const { key } = await newTenant(`blob-bad-${_label.replace(/\W/g, "")}`);
    const before = await snapshot();
    const head = await call("HEAD", `/api/blobs/${bad}`, { key });
    expect(head.status).toBe(400);
    const post = await call("POST", `/api/blobs/${bad}`, { key, raw: "x", headers: { "content-length": "1" } });
    expect(post.status).toBe(400);
    expect(await snapshot()).toBe(before);
  });
});
