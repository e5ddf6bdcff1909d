/**
 * The operator endpoints the fleet tests lean on: raw usage records (billing audits) and run-time scheduler tunables.
 */
import { describe, expect, it } from "vitest";
import { recordUsage, type UsageRecord } from "../src/db/usage";
import { ADMIN, call, newTenant } from "./helpers";
import { bindings } from "./relay-fixtures";

function record(tenantId: string, over: Partial<UsageRecord>): UsageRecord {
  return {
    request_id: crypto.randomUUID(),
    tenant_id: tenantId,
    key_id: null,
    endpoint: "generate",
    model: "tiny",
    model_digest: null,
    prompt_tokens: 3,
    prompt_cached_tokens: 0,
    output_tokens: 4,
    load_duration: 0,
    prompt_eval_duration: 0,
    eval_duration: 0,
    total_duration: 10,
    status: "ok",
    runner_id: "r1",
    created_at: 1_000,
    ...over,
  };
}

describe("GET /admin/tenants/:id/usage/records", () => {
  it("lists the tenant's own records one per request, oldest first, from `since`", async () => {
    const a = await newTenant(`records-a-${crypto.randomUUID().slice(0, 8)}`);
    const b = await newTenant(`records-b-${crypto.randomUUID().slice(0, 8)}`);
    const first = record(a.id, { created_at: 1_000, status: "cancelled", output_tokens: 2 });
    const second = record(a.id, { created_at: 2_000 });
    for (const r of [second, first, record(b.id, {})]) await recordUsage(bindings.DB, r);
    // A retried write of the same request stays one record.
    await recordUsage(bindings.DB, { ...second, output_tokens: 99 });

    const res = await call("GET", `/admin/tenants/${a.id}/usage/records`, { key: ADMIN });
    expect(res.status).toBe(200);
    const { records } = (await res.json()) as { records: UsageRecord[] };
    expect(records).toEqual([first, second]);

    const later = await call("GET", `/admin/tenants/${a.id}/usage/records?since=1500&limit=5`, { key: ADMIN });
    expect(((await later.json()) as { records: UsageRecord[] }).records.map((r) => r.request_id)).toEqual([
      second.request_id,
    ]);
  });

  it.each(["since=-1", "limit=0", "limit=abc"])("refuses %s with 400", async (query) => {
    const a = await newTenant(`records-c-${crypto.randomUUID().slice(0, 8)}`);
    expect((await call("GET", `/admin/tenants/${a.id}/usage/records?${query}`, { key: ADMIN })).status).toBe(400);
  });

  it("is for operators only, and 404s an unknown tenant", async () => {
    const a = await newTenant(`records-d-${crypto.randomUUID().slice(0, 8)}`);
    expect((await call("GET", `/admin/tenants/${a.id}/usage/records`, { key: a.key })).status).toBe(401);
    expect((await call("GET", "/admin/tenants/t_nope/usage/records", { key: ADMIN })).status).toBe(404);
  });
});

describe("PATCH /admin/scheduler/config", () => {
  it("changes the given tunables and keeps the others", async () => {
    const res = await call("PATCH", "/admin/scheduler/config", { key: ADMIN, body: { maxQueuePerModel: 7 } });
    expect(res.status).toBe(200);
    const config = (await res.json()) as Record<string, number>;
    expect(config.maxQueuePerModel).toBe(7);
    expect(config.heartbeatIntervalMs).toBeGreaterThan(0);
    const reset = await call("PATCH", "/admin/scheduler/config", { key: ADMIN, body: { maxQueuePerModel: 512 } });
    expect(((await reset.json()) as Record<string, number>).maxQueuePerModel).toBe(512);
  });

  it.each([
    ["an unknown field", { maxQueue: 1 }],
    ["a negative number", { maxQueuePerModel: -1 }],
    ["zero missed heartbeats", { missedHeartbeats: 0 }],
    ["a string", { unhealthyCooldownMs: "1s" }],
  ])("refuses %s with 400", async (_, body) => {
    expect((await call("PATCH", "/admin/scheduler/config", { key: ADMIN, body })).status).toBe(400);
  });
});
