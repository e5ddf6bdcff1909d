/**
 * Runners dying under a fleet of three (issue 6): one killed mid-stream ends its client's stream with an error line
 * and is evicted, one killed before the first byte is replaced without the client noticing, and a client that goes
 * away is billed for what it got. Every request leaves exactly one usage record with the counts the client saw.
 *
 * The tests run in order and share the fleet: each kill leaves one runner fewer.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, Fleet, generateOnce, LONG_GREEDY, RawStream, type UsageRecord } from "./fleet-support";
import { startStack } from "./harness";
import { sampleValue } from "./prometheus";

let fleet: Fleet;
let tenantId: string;
/** What each request's usage record must say, by request id. */
const expected = new Map<string, Partial<UsageRecord>>();

beforeAll(async () => {
  fleet = new Fleet(await startStack({ runners: 3 }));
  tenantId = await fleet.tenantId("dev");
}, 240_000);

afterAll(async () => {
  await fleet?.stack.stop();
});

/** Where the scheduler has `tiny` loaded right now. */
async function runnersHoldingTiny(): Promise<string[]> {
  const stats = await fleet.scheduler();
  return stats.runners.filter((r) => r.loaded.length > 0).map((r) => r.id);
}

/** A short greedy answer, recorded as expected: ok, with the final chunk's counts, on some runner. */
async function shortAnswer(): Promise<{ runner: string | null; requestId: string }> {
  const res = await generateOnce(fleet.url, fleet.stack.key, {
    model: "tiny",
    prompt: "hi",
    options: { num_predict: 3 },
  });
  expect(res.status).toBe(200);
  expect(res.body.done).toBe(true);
  const requestId = res.requestId ?? "";
  expect(requestId).not.toBe("");
  expected.set(requestId, {
    status: "ok",
    prompt_tokens: res.body.prompt_eval_count as number,
    output_tokens: res.body.eval_count as number,
  });
  const record = (await fleet.settledUsage(tenantId, expected.size)).find((r) => r.request_id === requestId);
  return { runner: record?.runner_id ?? null, requestId };
}

describe("a fleet losing runners", () => {
  it("a runner killed mid-stream: the client gets an error line, the next request goes elsewhere, the runner is evicted", async () => {
    const warm = await shortAnswer();
    expect(warm.runner).toMatch(/^local-\d$/);

    const stream = await RawStream.open(fleet.url, fleet.stack.key, "/api/generate", { model: "tiny", ...LONG_GREEDY });
    expect(stream.status).toBe(200);
    expect(await stream.readLines(1)).toBe(true);
    // Affinity put the stream where tiny was loaded.
    const busy = (await fleet.scheduler()).runners.filter((r) => r.busy_sequences > 0).map((r) => r.id);
    expect(busy).toEqual([warm.runner]);
    const victim = warm.runner as string;
    await fleet.kill(victim);

    const last = await stream.readAll();
    expect(last).toEqual({ error: expect.stringMatching(/runner/) });
    expect(stream.lines.filter((l) => l.done === true)).toEqual([]);
    expected.set(stream.requestId ?? "", { status: "error", output_tokens: stream.tokenLines, runner_id: victim });

    const next = await shortAnswer();
    expect(next.runner).not.toBe(victim);
    expect(next.runner).toMatch(/^local-\d$/);

    // Three missed heartbeats (2 s apart) and the scheduler forgets it (later on a loaded machine).
    const evicted = await eventually(
      async () => !(await fleet.scheduler()).runners.some((r) => r.id === victim),
      60_000,
      500,
    );
    expect(evicted).toBe(true);
    const metrics = await fleet.edgeMetrics();
    expect(sampleValue(metrics, "corral_scheduler_evicted_runners_total")).toBeGreaterThanOrEqual(1);
    expect(sampleValue(metrics, "corral_scheduler_runners", { state: "ready" })).toBe(2);
  });

  it("a runner killed before the first byte: the request is retried on another and the client sees a normal answer", async () => {
    // Only the runner that served the last request holds tiny, so the scheduler sends the next one there.
    const holders = await runnersHoldingTiny();
    expect(holders).toHaveLength(1);
    const target = holders[0] as string;
    const before = (await fleet.scheduler()).totals.dispatched;

    // Killed while the scheduler still believes in it. Eviction normally takes ~6 s of silence, which a loaded
    // machine can spend between the kill and the request reaching the scheduler: it is held off meanwhile.
    await fleet.adminOk("PATCH", "/scheduler/config", { missedHeartbeats: 100 });
    let stream: RawStream;
    let last: Record<string, unknown> | undefined;
    try {
      await fleet.kill(target);
      stream = await RawStream.open(fleet.url, fleet.stack.key, "/api/generate", {
        model: "tiny",
        prompt: "hi",
        options: { num_predict: 5, temperature: 0 },
      });
      expect(stream.status).toBe(200);
      last = await stream.readAll();
    } finally {
      await fleet.adminOk("PATCH", "/scheduler/config", { missedHeartbeats: 3 });
    }
    expect(stream.lines.filter((l) => l.error !== undefined)).toEqual([]);
    expect(last).toMatchObject({ done: true, eval_count: expect.any(Number) });
    expected.set(stream.requestId ?? "", {
      status: "ok",
      prompt_tokens: last?.prompt_eval_count as number,
      output_tokens: last?.eval_count as number,
    });

    // Two placements for one request: the dead runner, then the one that answered. The dead one gets no more work
    // (unhealthy until it is evicted).
    const after = await fleet.scheduler();
    expect(after.totals.dispatched - before).toBe(2);
    expect(after.runners.find((r) => r.id === target)?.state ?? "evicted").not.toBe("ready");
    const record = (await fleet.settledUsage(tenantId, expected.size)).find((r) => r.request_id === stream.requestId);
    expect(record?.runner_id).not.toBe(target);
    expect(record?.status).toBe("ok");
  });

  it("a client that goes away mid-stream is billed for what it was sent, and its sequence is freed", async () => {
    const alive = (await fleet.scheduler()).runners.filter((r) => r.state !== "unhealthy");
    expect(alive.length).toBeGreaterThanOrEqual(1);
    const stream = await RawStream.open(fleet.url, fleet.stack.key, "/api/generate", { model: "tiny", ...LONG_GREEDY });
    expect(await stream.readLines(5)).toBe(true);
    stream.abort();
    const received = stream.tokenLines;

    const freed = await eventually(async () => (await fleet.scheduler()).totals.busy_sequences === 0, 60_000);
    expect(freed).toBe(true);
    const records = await fleet.settledUsage(tenantId, expected.size + 1);
    const record = records.find((r) => r.request_id === stream.requestId);
    expect(record).toMatchObject({ status: "cancelled" });
    // The relay may have read a little ahead of the client; it never bills less than the client got.
    expect(record?.output_tokens).toBeGreaterThanOrEqual(received);
    expected.set(stream.requestId ?? "", { status: "cancelled", output_tokens: record?.output_tokens ?? -1 });
  });

  it("every request, aborted and retried ones included, has exactly one usage record with the streamed counts", async () => {
    const records = await fleet.settledUsage(tenantId, expected.size);
    // Late writers would show up here: give them a moment. A negative check: slowness can only hide a duplicate.
    await new Promise((r) => setTimeout(r, 1000));
    const settled = await fleet.usageRecords(tenantId);
    expect(settled.length).toBe(records.length);
    expect(new Set(settled.map((r) => r.request_id))).toEqual(new Set(expected.keys()));
    for (const record of settled) {
      expect(record).toMatchObject({ ...expected.get(record.request_id), model: "tiny", endpoint: "generate" });
    }
  });
});
