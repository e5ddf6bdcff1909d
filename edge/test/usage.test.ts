import { describe, expect, it } from "vitest";
import { recordUsage, type UsageRecord } from "../src/db/usage";
import { call, newTenant } from "./helpers";
import { bindings } from "./relay-fixtures";

const DAY = 86_400_000;
const base = Date.parse("2026-03-01T12:00:00Z");

function record(tenantId: string, over: Partial<UsageRecord>): UsageRecord {
  return {
    request_id: crypto.randomUUID(),
    tenant_id: tenantId,
    key_id: null,
    endpoint: "generate",
    model: "tiny",
    model_digest: null,
    prompt_tokens: 10,
    prompt_cached_tokens: 0,
    output_tokens: 5,
    load_duration: 0,
    prompt_eval_duration: 0,
    eval_duration: 0,
    total_duration: 100,
    status: "ok",
    runner_id: "r1",
    created_at: base,
    ...over,
  };
}

async function usage(key: string, query = "") {
  const res = await call("GET", `/api/usage${query}`, { key });
  return { status: res.status, body: (await res.json()) as { usage?: Record<string, unknown>[]; error?: string } };
}

describe("GET /api/usage", () => {
  it("sums the tenant's own requests by UTC day and model", async () => {
    const a = await newTenant(`usage-a-${crypto.randomUUID().slice(0, 8)}`);
    const b = await newTenant(`usage-b-${crypto.randomUUID().slice(0, 8)}`);
    for (const r of [
      record(a.id, { prompt_cached_tokens: 6 }),
      record(a.id, { prompt_tokens: 1, output_tokens: 2, status: "cancelled" }),
      record(a.id, { model: "other" }),
      record(a.id, { created_at: base + DAY }),
      record(b.id, { prompt_tokens: 1000 }),
    ]) {
      await recordUsage(bindings.DB, r);
    }
    const { body } = await usage(a.key);
    expect(body.usage).toEqual(
      [
        { day: "2026-03-01", model: "other", requests: 1, prompt_tokens: 10, output_tokens: 5, total_duration: 100 },
        { day: "2026-03-01", model: "tiny", requests: 2, prompt_tokens: 11, output_tokens: 7, total_duration: 200 },
        { day: "2026-03-02", model: "tiny", requests: 1, prompt_tokens: 10, output_tokens: 5, total_duration: 100 },
      ].map((row, i) => ({ ...row, prompt_cached_tokens: i === 1 ? 6 : 0 })),
    );
    const window = await usage(a.key, "?since=2026-03-02&until=2026-03-03");
    expect(window.body.usage?.map((u) => u.day)).toEqual(["2026-03-02"]);
  });

  it("counts a request written twice once", async () => {
    const a = await newTenant(`usage-c-${crypto.randomUUID().slice(0, 8)}`);
    const r = record(a.id, {});
    await recordUsage(bindings.DB, r);
    await recordUsage(bindings.DB, { ...r, output_tokens: 999 });
    expect((await usage(a.key)).body.usage).toMatchObject([{ requests: 1, output_tokens: 5 }]);
  });

  it.each(["since=yesterday", "until=2026-13-45"])("refuses %s with 400", async (query) => {
    const a = await newTenant(`usage-d-${crypto.randomUUID().slice(0, 8)}`);
    const { status, body } = await usage(a.key, `?${query}`);
    expect(status).toBe(400);
    expect(body.error).toMatch(/^invalid (since|until)/);
  });

  it("needs a tenant key", async () => {
    expect((await call("GET", "/api/usage")).status).toBe(401);
  });
});
