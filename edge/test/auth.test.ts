import { describe, expect, it } from "vitest";
import { ADMIN, call, newTenant } from "./helpers";

describe("probes and auth", () => {
  it("answers the probes Ollama clients make without a key", async () => {
    const root = await call("GET", "/");
    expect(await root.text()).toBe("Ollama is running");
    const head = await call("HEAD", "/");
    expect(head.status).toBe(200);
    const version = await call("GET", "/api/version");
    expect(((await version.json()) as { version: string }).version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it.each([
    ["no header", undefined],
    ["empty bearer", "Bearer "],
    ["wrong key", "Bearer corral-not-a-key"],
    ["basic scheme", "Basic Zm9vOmJhcg=="],
    ["admin key used as tenant key", `Bearer ${ADMIN}`],
  ])("rejects %s with Ollama's 401 body", async (_label, header) => {
    const res = await call("GET", "/api/tags", { headers: header ? { authorization: header } : {} });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: "unauthorized" });
  });

  it("accepts an issued key and stops accepting it once revoked", async () => {
    const { id, key } = await newTenant("revocable");
    expect((await call("GET", "/api/tags", { key })).status).toBe(200);
    const keys = (await (await call("GET", `/admin/tenants/${id}/keys`, { key: ADMIN })).json()) as {
      keys: { id: string; display_prefix: string }[];
    };
    expect(keys.keys).toHaveLength(1);
    expect(JSON.stringify(keys)).not.toContain(key);
    const revoke = await call("DELETE", `/admin/keys/${keys.keys[0]!.id}`, { key: ADMIN });
    expect(revoke.status).toBe(200);
    expect((await call("GET", "/api/tags", { key })).status).toBe(401);
  });

  it("guards the admin API with the admin secret only", async () => {
    const { key } = await newTenant("not-admin");
    expect((await call("GET", "/admin/tenants", { key })).status).toBe(401);
    expect((await call("GET", "/admin/tenants")).status).toBe(401);
    expect((await call("GET", "/admin/tenants", { key: ADMIN })).status).toBe(200);
  });

  it("stores only a hash of each key", async () => {
    const { env } = await import("cloudflare:test");
    const { key } = await newTenant("hashed");
    const { results } = await env.DB.prepare("SELECT * FROM api_keys").all();
    expect(JSON.stringify(results)).not.toContain(key);
  });
});
