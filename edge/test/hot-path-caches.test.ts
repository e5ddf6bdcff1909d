/**
 * The isolate-memory caches on the hot paths (db/key-cache.ts, the GGUF summaries of store/show.ts) must not
 * change what anyone sees beyond their documented bounds: a revoked key stops working at once in the isolate that
 * revoked it and within the TTL elsewhere, quota changes apply, tenants stay apart, and models deleted or replaced
 * are gone from show/tags at once.
 */
import { env } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { REQUEST_LIMIT_DEFAULTS } from "../src/bounds";
import { KEY_CACHE_TTL_MS, KeyCache, type KeyIdentity, keyCache } from "../src/db/key-cache";
import { ADMIN, call, newTenant } from "./helpers";
import { createFromGguf, ggufModel, json } from "./registry-fixtures";

const identity = (tenantId: string, keyId: string): KeyIdentity => ({
  tenantId,
  keyId,
  quotas: { storage_bytes: null, requests_per_minute: null, concurrent_requests: null },
  limits: { ...REQUEST_LIMIT_DEFAULTS },
});

describe("KeyCache", () => {
  function cache(ttl = 1_000, max = 3) {
    const clock = { now: 1_000_000 };
    const c = new KeyCache(ttl, max);
    c.clock = () => clock.now;
    return { c, clock };
  }

  it.each([
    ["just stored", 0, true],
    ["one millisecond before the TTL", 999, true],
    ["at the TTL", 1_000, false],
    ["long after", 60_000, false],
  ])("serves an entry %s: %s", (_label, elapsed, served) => {
    const { c, clock } = cache();
    c.set("h1", identity("t1", "k1"));
    clock.now += elapsed;
    expect(c.get("h1") !== undefined).toBe(served);
  });

  it("never extends an entry's life by reading it", () => {
    const { c, clock } = cache();
    c.set("h1", identity("t1", "k1"));
    for (let i = 0; i < 9; i++) {
      clock.now += 100;
      expect(c.get("h1")).toBeDefined();
    }
    clock.now += 100;
    expect(c.get("h1")).toBeUndefined();
  });

  it.each([
    ["a key", (c: KeyCache) => c.forgetKey("k1"), ["h2", "h3"]],
    ["a tenant", (c: KeyCache) => c.forgetTenant("t1"), ["h3"]],
    ["everything", (c: KeyCache) => c.clear(), []],
  ])("forgets %s", (_label, forget, kept) => {
    const { c } = cache();
    c.set("h1", identity("t1", "k1"));
    c.set("h2", identity("t1", "k2"));
    c.set("h3", identity("t2", "k3"));
    forget(c);
    expect(["h1", "h2", "h3"].filter((h) => c.get(h))).toEqual(kept);
  });

  it("drops the oldest entry beyond its bound", () => {
    const { c } = cache(1_000, 2);
    c.set("h1", identity("t1", "k1"));
    c.set("h2", identity("t1", "k2"));
    c.set("h3", identity("t1", "k3"));
    expect(c.size).toBe(2);
    expect(c.get("h1")).toBeUndefined();
    expect(c.get("h3")?.keyId).toBe("k3");
  });
});

describe("API keys through the cache", () => {
  const realClock = keyCache.clock;
  afterEach(() => {
    keyCache.clock = realClock;
  });

  async function keyIdOf(tenantId: string): Promise<string> {
    const { keys } = await json<{ keys: { id: string }[] }>(
      await call("GET", `/admin/tenants/${tenantId}/keys`, { key: ADMIN }),
    );
    return keys[0]!.id;
  }

  it("stops accepting a key revoked in another isolate once the TTL has passed", async () => {
    const clock = { now: Date.now() };
    keyCache.clock = () => clock.now;
    const { id, key } = await newTenant("cache-revoke-elsewhere");
    expect((await call("GET", "/api/tags", { key })).status).toBe(200);
    // Another isolate's revocation: D1 changes, this isolate's cache is not told.
    await env.DB.prepare("UPDATE api_keys SET revoked_at = ? WHERE id = ?")
      .bind(Date.now(), await keyIdOf(id))
      .run();
    // Until then this isolate still trusts its copy: that is the documented bound (and shows the cache is in use).
    clock.now += KEY_CACHE_TTL_MS - 1;
    expect((await call("GET", "/api/tags", { key })).status).toBe(200);
    clock.now += 1;
    expect((await call("GET", "/api/tags", { key })).status).toBe(401);
  });

  it("stops accepting a key at once when this isolate revokes it", async () => {
    const { id, key } = await newTenant("cache-revoke-here");
    expect((await call("GET", "/api/tags", { key })).status).toBe(200);
    expect((await call("GET", "/api/tags", { key })).status).toBe(200);
    expect((await call("DELETE", `/admin/keys/${await keyIdOf(id)}`, { key: ADMIN })).status).toBe(200);
    expect((await call("GET", "/api/tags", { key })).status).toBe(401);
  });

  it("accepts a key issued after the same key was refused (failures are not cached)", async () => {
    const { id } = await newTenant("cache-late-key");
    const key = `corral-late-${crypto.randomUUID()}`;
    expect((await call("GET", "/api/tags", { key })).status).toBe(401);
    const issued = await call("POST", `/admin/tenants/${id}/keys`, { key: ADMIN, body: { label: "late", key } });
    expect(issued.status).toBe(201);
    expect((await call("GET", "/api/tags", { key })).status).toBe(200);
  });

  it("applies a quota change made in this isolate to the next request", async () => {
    const { id, key } = await newTenant("cache-quota");
    expect((await call("GET", "/api/tags", { key })).status).toBe(200);
    const set = await call("PUT", `/admin/tenants/${id}/quotas`, { key: ADMIN, body: { requests_per_minute: 0 } });
    expect(set.status).toBe(200);
    // The model does not exist: only a limit read from the fresh quotas answers 429 before the 404.
    const res = await call("POST", "/api/generate", { key, body: { model: "nothing", prompt: "hi" } });
    expect(res.status).toBe(429);
  });

  it("keeps cached tenants apart", async () => {
    const a = await newTenant("cache-iso-a");
    const b = await newTenant("cache-iso-b");
    await createFromGguf(a.key, "only-a", ggufModel({ salt: 70 }));
    await createFromGguf(b.key, "only-b", ggufModel({ salt: 71 }));
    for (let round = 0; round < 2; round++) {
      const names = async (key: string) =>
        (await json<{ models: { name: string }[] }>(await call("GET", "/api/tags", { key }))).models.map((m) => m.name);
      expect(await names(a.key)).toEqual(["only-a:latest"]);
      expect(await names(b.key)).toEqual(["only-b:latest"]);
      expect((await call("POST", "/api/show", { key: b.key, body: { model: "only-a" } })).status).toBe(404);
    }
  });
});

describe("models after changes, in the isolate that made them", () => {
  it("drops a deleted model from show and tags at once", async () => {
    const { key } = await newTenant("cache-delete");
    await createFromGguf(key, "gone", ggufModel({ salt: 72 }));
    expect((await call("POST", "/api/show", { key, body: { model: "gone" } })).status).toBe(200);
    expect((await call("DELETE", "/api/delete", { key, body: { model: "gone" } })).status).toBe(200);
    expect((await call("POST", "/api/show", { key, body: { model: "gone" } })).status).toBe(404);
    const tags = await json<{ models: unknown[] }>(await call("GET", "/api/tags", { key }));
    expect(tags.models).toEqual([]);
  });

  it("shows a model replaced under the same name as it is now", async () => {
    const { key } = await newTenant("cache-replace");
    await createFromGguf(key, "m", ggufModel({ salt: 73 }), { system: "first" });
    const first = await json(await call("POST", "/api/show", { key, body: { model: "m" } }));
    expect(first.system).toBe("first");
    await createFromGguf(key, "m", ggufModel({ salt: 74, fileType: 2 }), { system: "second" });
    const second = await json<{ system: string; details: { quantization_level: string } }>(
      await call("POST", "/api/show", { key, body: { model: "m" } }),
    );
    expect(second.system).toBe("second");
    expect(second.details.quantization_level).toBe("Q4_0");
    await call("POST", "/api/copy", { key, body: { source: "m", destination: "m2" } });
    expect((await call("POST", "/api/show", { key, body: { model: "m2" } })).status).toBe(200);
  });
});
