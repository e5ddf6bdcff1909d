/**
 * A fleet of two healthy runners (issue 6): affinity, the bounded queue, tenant quotas, fairness between tenants,
 * usage records that match what clients were sent, and `/metrics` on the edge and the runners as Prometheus text.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  eventually,
  Fleet,
  generateOnce,
  LONG_GREEDY,
  QUEUE_FULL_TEXT,
  RawStream,
  type UsageRecord,
} from "./fleet-support";
import { startStack } from "./harness";
import type { MetricFamily } from "./prometheus";
import { sampleSum, sampleValue } from "./prometheus";

let fleet: Fleet;

beforeAll(async () => {
  fleet = new Fleet(await startStack({ runners: 2 }));
}, 240_000);

afterAll(async () => {
  await fleet?.stack.stop();
});

const SHORT = { model: "tiny", prompt: "hi", options: { num_predict: 3 } };

/** The usage record of one answered request (records are written just after the response). */
async function recordOf(tenantId: string, requestId: string | null): Promise<UsageRecord | undefined> {
  let record: UsageRecord | undefined;
  await eventually(async () => {
    record = (await fleet.usageRecords(tenantId)).find((r) => r.request_id === requestId);
    return record !== undefined;
  }, 60_000);
  return record;
}

/** Each tenant's records must be exactly these requests, with the counts their final chunks carried. */
async function expectUsage(tenantId: string, expected: Map<string, Partial<UsageRecord>>): Promise<void> {
  await fleet.settledUsage(tenantId, expected.size);
  // A negative check: a late extra record would show up here; a slow machine can only hide it, not fail the test.
  await new Promise((r) => setTimeout(r, 500));
  const records = await fleet.usageRecords(tenantId);
  expect(records.map((r) => r.request_id).sort()).toEqual([...expected.keys()].sort());
  for (const record of records) expect(record).toMatchObject(expected.get(record.request_id) ?? {});
}

const okUsage = (body: Record<string, unknown>): Partial<UsageRecord> => ({
  status: "ok",
  prompt_tokens: body.prompt_eval_count as number,
  output_tokens: body.eval_count as number,
});

describe("placement", () => {
  it("sends the second request for a model to the runner where it is loaded", async () => {
    const devId = await fleet.tenantId("dev");
    // Keep local-0 out of the first placement so that tiny lands on local-1, the runner placement would not pick
    // on its own (ties go to the lowest id).
    expect((await fleet.admin("POST", "/runners/local-0/drain")).status).toBe(200);
    const first = await generateOnce(fleet.url, fleet.stack.key, SHORT);
    expect(first.status).toBe(200);
    expect((await recordOf(devId, first.requestId))?.runner_id).toBe("local-1");

    expect((await fleet.admin("POST", "/runners/local-0/undrain")).status).toBe(200);
    const ready = async () => (await fleet.scheduler()).runners.every((r) => r.state === "ready");
    expect(await eventually(ready, 60_000)).toBe(true);
    // The runner itself takes work again once the edge's heartbeat reply lifts the drain.
    expect(await eventually(async () => !(await fleet.runnerStatus("local-0")).draining, 60_000)).toBe(true);

    const second = await generateOnce(fleet.url, fleet.stack.key, SHORT);
    expect(second.status).toBe(200);
    expect((await recordOf(devId, second.requestId))?.runner_id).toBe("local-1");

    const blob = (await fleet.scheduler()).runners.find((r) => r.id === "local-1")?.loaded[0]?.model_blob;
    expect(blob).toMatch(/^sha256:/);
    expect((await fleet.runnerStatus("local-1")).loaded.map((m) => m.model_blob)).toContain(blob);
    expect((await fleet.runnerStatus("local-0")).loaded.map((m) => m.model_blob)).not.toContain(blob);

    const ps = (await (
      await fetch(`${fleet.url}/api/ps`, { headers: { authorization: `Bearer ${fleet.stack.key}` } })
    ).json()) as { models: { name: string }[] };
    expect(ps.models.map((m) => m.name)).toEqual(["tiny:latest"]);
  });

  it("answers 503 with Ollama's text when the model's queue is full", async () => {
    const tenant = await fleet.newTenant("queue-full");
    await fleet.adminOk("PATCH", "/scheduler/config", { maxQueuePerModel: 1 });
    const inFlight: AbortController[] = [];
    const refused = await fleet
      .frozen(async () => {
        // Every sequence gets leased to a frozen runner, then the one waiting place fills.
        const base = await fleet.scheduler();
        for (let i = 1; i <= 24 && (await fleet.scheduler()).totals.queue_depth < 1; i++) {
          const controller = new AbortController();
          inFlight.push(controller);
          void fetch(`${fleet.url}/api/generate`, {
            method: "POST",
            headers: { authorization: `Bearer ${tenant.key}` },
            body: JSON.stringify(SHORT),
            signal: controller.signal,
          }).catch(() => undefined);
          expect(await eventually(async () => (await fleet.placedSince(base)) >= i, 60_000)).toBe(true);
        }
        expect((await fleet.scheduler()).totals.queue_depth).toBe(1);
        const res = await generateOnce(fleet.url, tenant.key, SHORT);
        // The clients give up before the runners thaw.
        for (const controller of inFlight) controller.abort();
        return res;
      })
      .finally(async () => {
        for (const controller of inFlight) controller.abort();
        await fleet.adminOk("PATCH", "/scheduler/config", { maxQueuePerModel: 512 });
      });

    expect(refused.status).toBe(503);
    expect(refused.body).toEqual({ error: QUEUE_FULL_TEXT });
    const rejected = sampleValue(await fleet.edgeMetrics(), "corral_scheduler_rejected_total", {
      reason: "queue_full",
    });
    expect(rejected).toBeGreaterThanOrEqual(1);

    // The waiting and frozen requests end once the runners answer (to clients already gone); places and leases free.
    const freed = async () => {
      const t = (await fleet.scheduler()).totals;
      return t.queue_depth === 0 && t.busy_sequences === 0;
    };
    expect(await eventually(freed, 60_000)).toBe(true);
    for (const { id } of fleet.runners()) {
      expect(await eventually(async () => (await fleet.runnerStatus(id)).busy_slots === 0, 60_000)).toBe(true);
    }

    // One record per request: the refused one as an error with nothing used, each abandoned one exactly once.
    const records = await fleet.settledUsage(tenant.id, inFlight.length + 1);
    // A negative check (no second record for any request): slowness can only hide a duplicate, not fail the test.
    await new Promise((r) => setTimeout(r, 500));
    expect(await fleet.usageRecords(tenant.id)).toHaveLength(inFlight.length + 1);
    const refusedRecord = records.find((r) => r.request_id === refused.requestId);
    expect(refusedRecord).toMatchObject({ status: "error", prompt_tokens: 0, output_tokens: 0 });
  });
});

describe("tenant quotas", () => {
  it("requests per minute over the quota → 429 with Retry-After, and no usage record", async () => {
    const tenant = await fleet.newTenant("rpm", { requests_per_minute: 2 });
    const expected = new Map<string, Partial<UsageRecord>>();
    for (let i = 0; i < 2; i++) {
      const res = await generateOnce(fleet.url, tenant.key, SHORT);
      expect(res.status).toBe(200);
      expected.set(res.requestId ?? "", okUsage(res.body));
    }
    const limited = await generateOnce(fleet.url, tenant.key, SHORT);
    expect(limited.status).toBe(429);
    expect(limited.body.error).toMatch(/rate limit exceeded: this tenant may send 2 requests per minute/);
    expect(Number(limited.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(limited.retryAfter)).toBeLessThanOrEqual(60);
    await expectUsage(tenant.id, expected);
  });

  it("concurrent requests over the quota → 429 with Retry-After, until the running one ends", async () => {
    const tenant = await fleet.newTenant("concurrency", { concurrent_requests: 1 });
    const running = await RawStream.open(fleet.url, tenant.key, "/api/generate", { model: "tiny", ...LONG_GREEDY });
    expect(await running.readLines(1)).toBe(true);

    const limited = await generateOnce(fleet.url, tenant.key, SHORT);
    expect(limited.status).toBe(429);
    expect(limited.body.error).toMatch(/too many concurrent requests: this tenant may run 1 at a time/);
    expect(limited.retryAfter).toBe("1");

    running.abort();
    let after: Awaited<ReturnType<typeof generateOnce>> | undefined;
    const admitted = await eventually(async () => {
      after = await generateOnce(fleet.url, tenant.key, SHORT);
      return after.status === 200;
    }, 60_000);
    expect(admitted).toBe(true);
    // The abandoned stream is one record: cancelled, or ok when the runner had sent it all before the edge noticed.
    const abandoned = await recordOf(tenant.id, running.requestId);
    expect(["cancelled", "ok"]).toContain(abandoned?.status);
    expect(abandoned?.output_tokens).toBeGreaterThanOrEqual(running.tokenLines);
    await expectUsage(
      tenant.id,
      new Map([
        [running.requestId ?? "", {}],
        [after?.requestId ?? "", okUsage(after?.body ?? {})],
      ]),
    );
  });

  it("two tenants hammering at once both make progress", async () => {
    const burst = await fleet.newTenant("hammer-burst");
    const late = await fleet.newTenant("hammer-late");
    // Greedy on "hi" runs past 100 tokens: every answer has the same length, so completion order follows dispatch order.
    const body = { model: "tiny", prompt: "hi", options: { temperature: 0, num_predict: 100 } };
    const finished: string[] = [];
    const send = (tenant: { key: string }, label: string) =>
      generateOnce(fleet.url, tenant.key, body).then((res) => {
        finished.push(label);
        return res;
      });

    // Frozen runners hold the first wave, so the rest of the burst is still waiting when the other tenant arrives.
    const { burstRequests, lateRequests } = await fleet.frozen(async () => {
      const base = await fleet.scheduler();
      const burstRequests = Array.from({ length: 16 }, () => send(burst, "burst"));
      expect(await eventually(async () => (await fleet.placedSince(base)) >= 16, 60_000)).toBe(true);
      const lateRequests = Array.from({ length: 4 }, () => send(late, "late"));
      expect(await eventually(async () => (await fleet.placedSince(base)) >= 20, 60_000)).toBe(true);
      // Two runners × 4 sequences serve 8; at least the late four and four of the burst wait.
      expect((await fleet.scheduler()).totals.queue_depth).toBeGreaterThanOrEqual(8);
      return { burstRequests, lateRequests };
    });

    const [burstDone, lateDone] = await Promise.all([Promise.all(burstRequests), Promise.all(lateRequests)]);
    for (const res of [...burstDone, ...lateDone]) {
      expect(res.status).toBe(200);
      expect(res.body.done).toBe(true);
    }
    // Round robin between tenants: the late tenant is served alongside the burst's second wave, so its first answer
    // comes before the burst's last four at least (first come, first served would put all sixteen first).
    const afterFirstLate = finished.slice(finished.indexOf("late")).filter((label) => label === "burst");
    expect(afterFirstLate.length).toBeGreaterThanOrEqual(4);

    await expectUsage(burst.id, new Map(burstDone.map((r) => [r.requestId ?? "", okUsage(r.body)])));
    await expectUsage(late.id, new Map(lateDone.map((r) => [r.requestId ?? "", okUsage(r.body)])));
  });
});

describe("/metrics", () => {
  const scrapeAll = async () => ({
    edge: await fleet.edgeMetrics(),
    runners: await Promise.all(fleet.runners().map((r) => fleet.runnerMetrics(r.id))),
  });
  const runnerSum = (runners: Map<string, MetricFamily>[], name: string, labels: Record<string, string>) =>
    runners.reduce((sum, m) => sum + sampleSum(m, name, labels), 0);

  it("edge and runners expose valid Prometheus text that counts what was served", async () => {
    const before = await scrapeAll();
    const types = (m: Map<string, MetricFamily>) => Object.fromEntries([...m.values()].map((f) => [f.name, f.type]));
    expect(types(before.edge)).toMatchObject({
      corral_scheduler_queue_depth: "gauge",
      corral_scheduler_busy_sequences: "gauge",
      corral_scheduler_runners: "gauge",
      corral_scheduler_dispatched_total: "counter",
      corral_scheduler_rejected_total: "counter",
      corral_scheduler_evicted_runners_total: "counter",
    });
    for (const runner of before.runners) {
      expect(types(runner)).toMatchObject({
        corral_runner_requests_total: "counter",
        corral_runner_generated_tokens_total: "counter",
        corral_runner_busy_sequences: "gauge",
        corral_runner_loaded_models: "gauge",
      });
      for (const f of runner.values()) expect(f.help, f.name).toBeTruthy();
    }
    expect(sampleValue(before.edge, "corral_scheduler_runners", { state: "ready" })).toBe(2);
    // Every runner holding tiny loaded it once at least (earlier tests put it on both).
    const holding = (await fleet.scheduler()).runners.filter((r) => r.loaded.length > 0).length;
    expect(holding).toBeGreaterThanOrEqual(1);
    expect(runnerSum(before.runners, "corral_runner_model_loads_total", {})).toBeGreaterThanOrEqual(holding);

    const res = await generateOnce(fleet.url, fleet.stack.key, { ...SHORT, options: { num_predict: 7 } });
    expect(res.status).toBe(200);
    const after = await scrapeAll();
    const delta = (name: string, labels: Record<string, string> = {}) =>
      runnerSum(after.runners, name, labels) - runnerSum(before.runners, name, labels);
    expect(delta("corral_runner_requests_total", { endpoint: "generate", status: "200" })).toBe(1);
    expect(delta("corral_runner_generated_tokens_total", { endpoint: "generate" })).toBe(res.body.eval_count);
    expect(delta("corral_runner_prompt_tokens_total", { endpoint: "generate" })).toBe(res.body.prompt_eval_count);
    const dispatched = (m: Map<string, MetricFamily>) => sampleValue(m, "corral_scheduler_dispatched_total") ?? 0;
    expect(dispatched(after.edge) - dispatched(before.edge)).toBe(1);
  });

  it("refuses scrapes without the right secret", async () => {
    expect((await fetch(`${fleet.url}/metrics`)).status).toBe(401);
    expect(
      (await fetch(`${fleet.url}/metrics`, { headers: { authorization: `Bearer ${fleet.stack.key}` } })).status,
    ).toBe(401);
    const port = fleet.runners()[0]?.port;
    expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(401);
  });
});
