import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createApp } from "../src/app";
import { STALE_PERMIT_MS } from "../src/scheduler/limiter";
import { ADMIN, call, newTenant } from "./helpers";
import {
  bindings,
  fakeRunners,
  heartbeat,
  loaded,
  ndjsonLine,
  resetFleet,
  runnerStatus,
  seedModel,
  streamingRunner,
  useClock,
} from "./relay-fixtures";

async function limiter() {
  const stub = bindings.LIMITER.get(bindings.LIMITER.idFromName(`unit-${crypto.randomUUID()}`));
  const clock = { now: 5_000_000 };
  await useClock(stub, () => clock.now);
  return { stub, clock };
}

const unlimited = { requests_per_minute: null, concurrent_requests: null };

describe("TenantLimiter", () => {
  it("allows a minute's requests at once, then refills evenly and says when to retry", async () => {
    const { stub, clock } = await limiter();
    const quotas = { ...unlimited, requests_per_minute: 2 };
    expect(await stub.acquire("r1", quotas)).toEqual({ ok: true });
    expect(await stub.acquire("r2", quotas)).toEqual({ ok: true });
    expect(await stub.acquire("r3", quotas)).toMatchObject({
      ok: false,
      limit: "requests_per_minute",
      retry_after_s: 30,
      message: "rate limit exceeded: this tenant may send 2 requests per minute",
    });
    clock.now += 29_000;
    expect((await stub.acquire("r4", quotas)).ok).toBe(false);
    clock.now += 1_000;
    expect(await stub.acquire("r5", quotas)).toEqual({ ok: true });
  });

  it("counts concurrent requests until released, and forgets a permit never released", async () => {
    const { stub, clock } = await limiter();
    const quotas = { ...unlimited, concurrent_requests: 1 };
    expect(await stub.acquire("a", quotas)).toEqual({ ok: true });
    expect(await stub.acquire("b", quotas)).toMatchObject({
      ok: false,
      limit: "concurrent_requests",
      retry_after_s: 1,
      message: "too many concurrent requests: this tenant may run 1 at a time",
    });
    await stub.release("a");
    expect(await stub.acquire("c", quotas)).toEqual({ ok: true });
    clock.now += STALE_PERMIT_MS;
    expect(await stub.acquire("d", quotas)).toEqual({ ok: true });
    expect(await stub.activeCount()).toBe(1);
  });

  it("does not spend the rate allowance on a request refused for concurrency", async () => {
    const { stub } = await limiter();
    // Two a minute: if the refused request had spent one, the third would be refused for the rate.
    const quotas = { requests_per_minute: 2, concurrent_requests: 1 };
    expect((await stub.acquire("a", quotas)).ok).toBe(true);
    expect(await stub.acquire("b", quotas)).toMatchObject({ limit: "concurrent_requests" });
    await stub.release("a");
    expect((await stub.acquire("c", quotas)).ok).toBe(true);
  });
});

describe("quotas on inference routes", () => {
  let restore: (() => void) | undefined;
  beforeEach(resetFleet);
  afterEach(() => {
    restore?.();
    restore = undefined;
  });

  async function limitedTenant(quotas: Record<string, number>) {
    const tenant = await newTenant(`limits-${crypto.randomUUID().slice(0, 8)}`);
    const res = await call("PUT", `/admin/tenants/${tenant.id}/quotas`, { key: ADMIN, body: quotas });
    expect(res.status).toBe(200);
    const model = await seedModel(tenant.id, "tiny");
    await heartbeat(runnerStatus("r1", { loaded: [loaded(model.modelBlob)] }));
    return tenant;
  }

  it("answers 429 with Retry-After past the requests-per-minute quota", async () => {
    const tenant = await limitedTenant({ requests_per_minute: 1 });
    restore = fakeRunners({ r1: streamingRunner(["x"]) }).restore;
    const body = { model: "tiny", prompt: "hi", stream: false };
    expect((await call("POST", "/api/generate", { key: tenant.key, body })).status).toBe(200);
    const res = await call("POST", "/api/chat", { key: tenant.key, body: { model: "tiny", messages: [] } });
    expect(res.status).toBe(429);
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(await res.json()).toEqual({ error: "rate limit exceeded: this tenant may send 1 requests per minute" });
  });

  it("holds a concurrency permit until the stream ends", async () => {
    const tenant = await limitedTenant({ concurrent_requests: 1 });
    restore = fakeRunners({
      r1: () =>
        new Response(
          new ReadableStream<Uint8Array>({
            pull: (c) => c.enqueue(ndjsonLine({ model: "tiny", response: "a", done: false })),
          }),
        ),
    }).restore;
    const app = createApp();
    const generate = (ctx: ExecutionContext) =>
      app.fetch(
        new Request("http://corral.test/api/generate", {
          method: "POST",
          headers: { authorization: `Bearer ${tenant.key}` },
          body: JSON.stringify({ model: "tiny", prompt: "hi" }),
        }),
        bindings,
        ctx,
      );
    const firstCtx = createExecutionContext();
    const first = await generate(firstCtx);
    const reader = first.body!.getReader();
    await reader.read();

    const secondCtx = createExecutionContext();
    const second = await generate(secondCtx);
    expect(second.status).toBe(429);
    expect(second.headers.get("retry-after")).toBe("1");

    await reader.cancel();
    await waitOnExecutionContext(firstCtx);
    const thirdCtx = createExecutionContext();
    const third = await generate(thirdCtx);
    expect(third.status).toBe(200);
    await third.body!.cancel();
    await waitOnExecutionContext(thirdCtx);
  });

  it("leaves unlimited tenants alone", async () => {
    const tenant = await limitedTenant({});
    restore = fakeRunners({ r1: streamingRunner(["x"]) }).restore;
    for (let i = 0; i < 3; i++) {
      const res = await call("POST", "/api/generate", { key: tenant.key, body: { model: "tiny", stream: false } });
      expect(res.status).toBe(200);
    }
  });
});
