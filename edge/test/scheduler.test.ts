import { abortAllDurableObjects, runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { renderSchedulerMetrics } from "../src/scheduler/stats";
import type { AcquireRequest, AcquireResult } from "../src/scheduler/types";
import { eventually, isolatedScheduler, loaded, runnerStatus, useClock } from "./relay-fixtures";

let counter = 0;
/** A fresh scheduler with a controllable clock. */
async function scheduler(config: Record<string, number> = {}) {
  const name = `unit-${counter++}-${crypto.randomUUID()}`;
  const stub = isolatedScheduler(name);
  const clock = { now: 1_000_000 };
  await useClock(stub, () => clock.now);
  if (Object.keys(config).length > 0) await stub.configure(config);
  return { stub, clock, name };
}

const M = `sha256:${"a".repeat(64)}`;
const N = `sha256:${"b".repeat(64)}`;

function req(over: Partial<AcquireRequest> = {}): AcquireRequest {
  return { model_blob: M, estimated_bytes: 1_000, tenant_id: "t1", request_id: crypto.randomUUID(), ...over };
}

function granted(r: AcquireResult): { lease_id: string; runner_id: string } {
  if (!r.ok) throw new Error(`expected a grant, got ${r.reason}`);
  return r.grant;
}

/** Whether a pending acquire has settled, without waiting for it. */
async function settled(p: PromiseLike<unknown>): Promise<boolean> {
  const marker = Symbol();
  // Two round trips to the object let an in-flight settle land first.
  await new Promise((r) => setTimeout(r, 10));
  return (await Promise.race([p, Promise.resolve(marker)])) !== marker;
}

type SchedulerStub = Awaited<ReturnType<typeof scheduler>>["stub"];

/**
 * Waits until the scheduler holds `depth` waiters. Calls made without awaiting them may reach the object in any
 * order under load, so a test that needs "this request queued before that one" waits for it here.
 */
async function queued(stub: SchedulerStub, depth: number): Promise<void> {
  await eventually(async () => expect((await stub.stats()).totals.queue_depth).toBe(depth));
}

describe("placement", () => {
  it("sends a request where the model is loaded (affinity)", async () => {
    const { stub } = await scheduler();
    await stub.heartbeat(runnerStatus("a", { memory_free: 9_000_000 }));
    await stub.heartbeat(runnerStatus("b", { loaded: [loaded(M)] }));
    expect(granted(await stub.acquire(req())).runner_id).toBe("b");
  });

  it("loads a cold model on the runner with the most free memory, then keeps sending it there", async () => {
    const { stub } = await scheduler();
    await stub.heartbeat(runnerStatus("a", { memory_free: 5_000 }));
    await stub.heartbeat(runnerStatus("b", { memory_free: 50_000 }));
    const first = granted(await stub.acquire(req()));
    expect(first.runner_id).toBe("b");
    // Still loading (no heartbeat has reported it): the next request joins it rather than loading elsewhere.
    expect(granted(await stub.acquire(req())).runner_id).toBe("b");
  });

  it.each([
    ["free memory", { memory_free: 2_000 }, "a"],
    ["only after unloading an idle model", { memory_free: 500, loaded: [loaded(N, { size: 5_000 })] }, "a"],
  ])("counts %s as room to load", async (_label, a, expected) => {
    const { stub } = await scheduler();
    await stub.heartbeat(runnerStatus("a", a));
    await stub.heartbeat(runnerStatus("b", { memory_free: 100 }));
    expect(granted(await stub.acquire(req())).runner_id).toBe(expected);
  });

  it("does not count a busy model's memory as reclaimable", async () => {
    const { stub } = await scheduler({ noRunnerWaitMs: 0, maxQueuePerModel: 0 });
    await stub.heartbeat(
      runnerStatus("a", { memory_free: 500, loaded: [loaded(N, { size: 5_000, busy_sequences: 1 })] }),
    );
    expect(await stub.acquire(req())).toEqual({ ok: false, reason: "queue_full" });
  });

  it("loads on a fresh runner, which reports no slots until it holds a model", async () => {
    const { stub } = await scheduler();
    await stub.heartbeat(runnerStatus("fresh", { slots: 0 }));
    const leases = [];
    for (let i = 0; i < 4; i++) leases.push(granted(await stub.acquire(req())).runner_id);
    expect(leases).toEqual(["fresh", "fresh", "fresh", "fresh"]);
    // Four sequences assumed while loading; the fifth waits for the runner to report the real number.
    const fifth = stub.acquire(req());
    await queued(stub, 1);
    expect(await settled(fifth)).toBe(false);
    await stub.heartbeat(runnerStatus("fresh", { slots: 8, loaded: [loaded(M, { sequences: 8, busy_sequences: 4 })] }));
    expect(granted(await fifth).runner_id).toBe("fresh");
  });

  it("refuses a model larger than every runner", async () => {
    const { stub } = await scheduler();
    await stub.heartbeat(runnerStatus("a", { memory_total: 10_000, memory_free: 10_000 }));
    const result = await stub.acquire(req({ estimated_bytes: 20_000 }));
    expect(result).toMatchObject({ ok: false, reason: "too_large" });
  });

  it("answers no_runner when the fleet is empty and waiting is disabled", async () => {
    const { stub } = await scheduler({ noRunnerWaitMs: 0 });
    expect(await stub.acquire(req())).toEqual({ ok: false, reason: "no_runner" });
  });

  it("skips runners a retry excludes", async () => {
    const { stub } = await scheduler();
    await stub.heartbeat(runnerStatus("a", { loaded: [loaded(M)] }));
    await stub.heartbeat(runnerStatus("b"));
    expect(granted(await stub.acquire(req({ exclude: ["a"] }))).runner_id).toBe("b");
  });
});

describe("queueing", () => {
  it("queues when every sequence is busy and hands the freed one to the waiter", async () => {
    const { stub } = await scheduler();
    await stub.heartbeat(runnerStatus("a", { slots: 1, loaded: [loaded(M, { sequences: 1 })] }));
    const first = granted(await stub.acquire(req()));
    const waiting = stub.acquire(req());
    await queued(stub, 1);
    expect(await settled(waiting)).toBe(false);
    expect((await stub.stats()).models.find((m) => m.model_blob === M)?.queue_depth).toBe(1);
    await stub.release(first.lease_id, "ok");
    expect(granted(await waiting).runner_id).toBe("a");
  });

  it("hands capacity freed by a heartbeat (a new runner) to the waiter", async () => {
    const { stub } = await scheduler();
    await stub.heartbeat(runnerStatus("a", { slots: 1, loaded: [loaded(M, { sequences: 1 })] }));
    granted(await stub.acquire(req()));
    const waiting = stub.acquire(req());
    await queued(stub, 1);
    expect(await settled(waiting)).toBe(false);
    await stub.heartbeat(runnerStatus("b"));
    expect(granted(await waiting).runner_id).toBe("b");
  });

  it("answers queue_full once the model's queue holds its maximum", async () => {
    const { stub } = await scheduler({ maxQueuePerModel: 1 });
    await stub.heartbeat(runnerStatus("a", { slots: 1, loaded: [loaded(M, { sequences: 1 })] }));
    granted(await stub.acquire(req()));
    const waiting = stub.acquire(req());
    await queued(stub, 1);
    expect(await stub.acquire(req())).toEqual({ ok: false, reason: "queue_full" });
    expect(await settled(waiting)).toBe(false);
    expect((await stub.stats()).totals.rejected.queue_full).toBe(1);
  });

  it("serves tenants round robin, so a burst does not starve a later tenant", async () => {
    const { stub } = await scheduler();
    await stub.heartbeat(runnerStatus("a", { slots: 1, loaded: [loaded(M, { sequences: 1 })] }));
    let held = granted(await stub.acquire(req({ tenant_id: "burst" }))).lease_id;
    const order: string[] = [];
    const leases = new Map<string, string>();
    const enqueue = async (label: string, tenant: string, depth: number) => {
      const pending = stub.acquire(req({ tenant_id: tenant })).then((r) => {
        leases.set(label, granted(r).lease_id);
        order.push(label);
      });
      await queued(stub, depth);
      expect(await settled(pending)).toBe(false);
    };
    await enqueue("burst-1", "burst", 1);
    await enqueue("burst-2", "burst", 2);
    await enqueue("burst-3", "burst", 3);
    await enqueue("other-1", "other", 4);
    for (let i = 0; i < 4; i++) {
      await stub.release(held, "ok");
      await eventually(async () => expect(order).toHaveLength(i + 1));
      held = leases.get(order[i]!)!;
    }
    expect(order).toEqual(["burst-1", "other-1", "burst-2", "burst-3"]);
  });

  it("makes room for a new tenant by shedding the newest request of the tenant holding the most places", async () => {
    const { stub } = await scheduler({ maxQueuePerModel: 2 });
    await stub.heartbeat(runnerStatus("a", { slots: 1, loaded: [loaded(M, { sequences: 1 })] }));
    granted(await stub.acquire(req({ tenant_id: "burst" })));
    const older = stub.acquire(req({ tenant_id: "burst" }));
    await queued(stub, 1);
    const newer = stub.acquire(req({ tenant_id: "burst" }));
    await queued(stub, 2);
    const other = stub.acquire(req({ tenant_id: "other" }));
    expect(await newer).toEqual({ ok: false, reason: "queue_full" });
    expect(await settled(older)).toBe(false);
    expect(await settled(other)).toBe(false);
  });

  it("stops waiting when the request is cancelled", async () => {
    const { stub } = await scheduler();
    await stub.heartbeat(runnerStatus("a", { slots: 1, loaded: [loaded(M, { sequences: 1 })] }));
    granted(await stub.acquire(req()));
    const id = crypto.randomUUID();
    const waiting = stub.acquire(req({ request_id: id }));
    await queued(stub, 1);
    await stub.cancel(id);
    expect(await waiting).toEqual({ ok: false, reason: "cancelled" });
    expect((await stub.stats()).totals.queue_depth).toBe(0);
  });
});

describe("fleet health", () => {
  it("evicts a runner after missed heartbeats (alarm) and drops its leases", async () => {
    const { stub, clock } = await scheduler({ heartbeatIntervalMs: 1_000, missedHeartbeats: 3, noRunnerWaitMs: 0 });
    await stub.heartbeat(runnerStatus("a"));
    await stub.heartbeat(runnerStatus("b"));
    granted(await stub.acquire(req()));
    clock.now += 2_000;
    await stub.heartbeat(runnerStatus("b"));
    clock.now += 1_500; // a: 3.5 s silent; b: 1.5 s
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const stats = await stub.stats();
    expect(stats.runners.map((r) => r.id)).toEqual(["b"]);
    expect(stats.totals.evicted_runners).toBe(1);
    clock.now += 5_000;
    await runDurableObjectAlarm(stub);
    expect(await stub.acquire(req())).toEqual({ ok: false, reason: "no_runner" });
  });

  it("keeps draining runners out of placement and tells them so", async () => {
    const { stub } = await scheduler();
    expect(await stub.heartbeat(runnerStatus("a", { loaded: [loaded(M)], draining: true }))).toEqual({
      ok: true,
      draining: true,
    });
    await stub.heartbeat(runnerStatus("b"));
    expect(granted(await stub.acquire(req())).runner_id).toBe("b");
    expect(await stub.drain("b")).toBe(true);
    expect((await stub.heartbeat(runnerStatus("b"))).draining).toBe(true);
    expect((await stub.stats()).runners.map((r) => r.state)).toEqual(["draining", "draining"]);
    expect(await stub.drain("nope")).toBe(false);
  });

  it("keeps new work off a runner a request failed on, until the cooldown ends", async () => {
    const { stub, clock } = await scheduler({ unhealthyCooldownMs: 10_000 });
    await stub.heartbeat(runnerStatus("a", { loaded: [loaded(M)] }));
    await stub.heartbeat(runnerStatus("b"));
    const lease = granted(await stub.acquire(req()));
    expect(lease.runner_id).toBe("a");
    await stub.release(lease.lease_id, "failed_before_first_byte");
    expect(granted(await stub.acquire(req())).runner_id).toBe("b");
    expect((await stub.stats()).runners.find((r) => r.id === "a")?.state).toBe("unhealthy");
    clock.now += 10_000;
    expect(granted(await stub.acquire(req())).runner_id).toBe("a");
  });

  it("drops leases the runner does not know about once they are older than the grace period", async () => {
    const { stub, clock } = await scheduler({ leaseGraceMs: 1_000 });
    await stub.heartbeat(runnerStatus("a", { slots: 1, loaded: [loaded(M, { sequences: 1 })] }));
    granted(await stub.acquire(req())); // never released: its isolate "died"
    clock.now += 500;
    await stub.heartbeat(runnerStatus("a", { slots: 1, loaded: [loaded(M, { sequences: 1 })] }));
    const waiting = stub.acquire(req());
    await queued(stub, 1);
    expect(await settled(waiting)).toBe(false);
    clock.now += 1_000;
    await stub.heartbeat(runnerStatus("a", { slots: 1, loaded: [loaded(M, { sequences: 1 })] }));
    expect(granted(await waiting).runner_id).toBe("a");
  });

  it("keeps runners and leases across a restart", async () => {
    const { stub, name } = await scheduler();
    await stub.heartbeat(runnerStatus("a", { loaded: [loaded(M)] }));
    const lease = granted(await stub.acquire(req()));
    await abortAllDurableObjects();
    // A stub to an aborted instance stays broken; a new one reaches the restarted object.
    const restarted = isolatedScheduler(name);
    const stats = await restarted.stats();
    expect(stats.runners.map((r) => r.id)).toEqual(["a"]);
    expect(stats.runners[0]?.busy_sequences).toBe(1);
    expect(await restarted.release(lease.lease_id, "ok")).toBe(true);
  });
});

describe("stats", () => {
  it("reports queue depth, busy sequences and runners per model and overall, also as Prometheus text", async () => {
    const { stub } = await scheduler();
    await stub.heartbeat(runnerStatus("a", { slots: 2, loaded: [loaded(M, { sequences: 2 })] }));
    granted(await stub.acquire(req()));
    granted(await stub.acquire(req()));
    void stub.acquire(req()); // still waiting when the test ends
    await queued(stub, 1);
    const stats = await stub.stats();
    expect(stats.models).toEqual([
      expect.objectContaining({ model_blob: M, queue_depth: 1, busy_sequences: 2, sequences: 2, runners: 1 }),
    ]);
    expect(stats.totals).toMatchObject({ runners: 1, ready_runners: 1, slots: 2, busy_sequences: 2, queue_depth: 1 });
    const text = renderSchedulerMetrics(stats);
    expect(text).toContain(`corral_scheduler_queue_depth{model="${M}"} 1`);
    expect(text).toContain(`corral_scheduler_busy_sequences{model="${M}"} 2`);
    expect(text).toContain('corral_scheduler_runners{state="ready"} 1');
    for (const line of text.trim().split("\n")) {
      expect(line).toMatch(/^(# (HELP|TYPE) \w+ .+|\w+(\{[^}]*\})? -?[\d.e+-]+)$/);
    }
  });
});
