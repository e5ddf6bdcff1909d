/**
 * Issue #9: a runner must stay registered whatever model it loads. Two runners, heartbeats every 500 ms; the test
 * writes llama GGUFs of two sizes (F16), quantizes each to Q8_0 and Q4_K_M through the stack, loads every one with
 * a few context lengths, and after each load watches several heartbeat periods: both runners stay ready, nothing is
 * evicted, the edge drops no heartbeat entry (the runners send whole numbers) and no runner logs a refused beat.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Ollama } from "ollama";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeRandomLlamaModel } from "../gpu-runner/src/tiny-model/random-llama";
import { ensureModel } from "../scripts/stack/provision";
import { eventually, Fleet, type SchedulerView } from "./fleet-support";
import { startStack } from "./harness";

const HEARTBEAT_MS = 500;
const PERIODS = 4;

let fleet: Fleet;
let ollama: Ollama;

beforeAll(async () => {
  fleet = new Fleet(await startStack({ runners: 2, env: { HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS) } }));
  await fleet.adminOk("PATCH", "/scheduler/config", { heartbeatIntervalMs: HEARTBEAT_MS, missedHeartbeats: 10 });
  const tenant = await fleet.newTenant("heartbeat-models");
  ollama = new Ollama({ host: fleet.url, headers: { Authorization: `Bearer ${tenant.key}` } });
  const sizes = {
    small: { embedding: 256, layers: 2, heads: 4, kvHeads: 2, feedForward: 512 },
    large: { embedding: 512, layers: 6, heads: 8, kvHeads: 4, feedForward: 1536 },
  };
  for (const [size, hyperparameters] of Object.entries(sizes)) {
    const gguf = writeRandomLlamaModel({ name: `hb-${size}`, description: "heartbeat test", hyperparameters });
    await ensureModel(fleet.url, tenant.key, `${size}-f16`, gguf);
    for (const type of ["q8_0", "q4_K_M"]) {
      const done = await ollama.create({ model: `${size}-${type.toLowerCase()}`, from: `${size}-f16`, quantize: type });
      expect(done.status).toBe("success");
    }
  }
}, 600_000);

afterAll(async () => {
  await fleet?.stack.stop();
});

/**
 * Watches the scheduler until every runner has been heard from `periods` more times (its last_seen age drops),
 * checking at each look that both are registered and ready and nothing was evicted.
 */
async function throughHeartbeats(base: SchedulerView, periods: number): Promise<void> {
  const beats = new Map<string, number>();
  const lastAge = new Map<string, number>();
  const heard = await eventually(
    async () => {
      const now = await fleet.scheduler();
      expect(now.totals.evicted_runners).toBe(base.totals.evicted_runners);
      expect(now.runners.map((r) => `${r.id}:${r.state}`)).toEqual(["local-0:ready", "local-1:ready"]);
      for (const runner of now.runners) {
        if (runner.last_seen_ms_ago < (lastAge.get(runner.id) ?? 0))
          beats.set(runner.id, (beats.get(runner.id) ?? 0) + 1);
        lastAge.set(runner.id, runner.last_seen_ms_ago);
      }
      return now.runners.every((r) => (beats.get(r.id) ?? 0) >= periods);
    },
    120_000,
    HEARTBEAT_MS / 4,
  );
  expect(heard).toBe(true);
}

describe("runners stay registered through loads of the models a tenant writes", () => {
  const models = ["small", "large"].flatMap((size) => ["f16", "q8_0", "q4_k_m"].map((type) => `${size}-${type}`));

  it.each(models)("%s, at a few context lengths, on either runner", async (model) => {
    for (const numCtx of [333, 4096]) {
      const base = await fleet.scheduler();
      const answer = await ollama.generate({ model, prompt: "hello", options: { num_ctx: numCtx, num_predict: 2 } });
      expect(answer.done).toBe(true);
      await throughHeartbeats(base, PERIODS);
    }
    const stats = (await fleet.adminOk<{ runners: { memory_free: number }[] }>("GET", "/scheduler")).runners;
    expect(stats.every((r) => Number.isInteger(r.memory_free))).toBe(true);
    const dropped = (await fleet.edgeMetrics()).get("corral_scheduler_heartbeat_entries_dropped_total");
    expect(dropped?.samples.reduce((n, s) => n + s.value, 0)).toBe(0);
  });

  it("no runner had a heartbeat refused or repaired", () => {
    for (const i of [0, 1]) {
      const log = readFileSync(join(fleet.stack.stateDir, "logs", `runner-${i}.log`), "utf8");
      // A slow answer on a loaded machine is a timeout and is retried; a refusal (4xx) would be the bug.
      expect(log).not.toMatch(/heartbeat: (edge unreachable \(HTTP 4\d\d\)|status repaired)/);
    }
  });
});
