/**
 * A tenant using more models than its runner holds at once: each new model's request is served right away, the
 * runner unloading the least recently used idle model to make room (the scheduler counting the tenant's own idle
 * models as reclaimable), and the runner stays in the fleet throughout. (Seen once as a 5th model's generate answering
 * 503 after 30 s: the runner out of service after a request failed before its first byte; see keep-alive.test.ts.)
 */
import { Ollama } from "ollama";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeTinyModel } from "../gpu-runner/src/tiny-model/index";
import { ensureModel } from "../scripts/stack/provision";
import { Fleet } from "./fleet-support";
import { startStack } from "./harness";

const HELD = 4;
const MODELS = 6;

let fleet: Fleet;
let ollama: Ollama;

/** What one loaded tiny model takes on this machine (weights and context), from a runner with room to spare. */
async function instanceSize(): Promise<number> {
  const probe = new Fleet(await startStack({ runners: 1 }));
  try {
    const tenant = await probe.newTenant("probe");
    const client = new Ollama({ host: probe.url, headers: { Authorization: `Bearer ${tenant.key}` } });
    await client.generate({ model: "tiny", prompt: "hi", raw: true, options: { num_predict: 1 } });
    return (await client.ps()).models[0]!.size;
  } finally {
    await probe.stack.stop();
  }
}

beforeAll(async () => {
  // Room for HELD models and half of another: the runner is full from the (HELD + 1)th on.
  const budget = Math.floor((HELD + 0.5) * (await instanceSize()));
  fleet = new Fleet(await startStack({ runners: 1, env: { MEMORY_BUDGET_BYTES: String(budget) } }));
  const tenant = await fleet.newTenant("many-models");
  ollama = new Ollama({ host: fleet.url, headers: { Authorization: `Bearer ${tenant.key}` } });
  for (let i = 0; i < MODELS; i++) {
    await ensureModel(fleet.url, tenant.key, `m${i}`, writeTinyModel({ seed: 1000 + i }));
  }
}, 600_000);

afterAll(async () => {
  await fleet?.stack.stop();
});

describe("one tenant, more models than its runner holds", () => {
  it("each model answers in turn with default keep_alive; the least recently used idle ones are unloaded", async () => {
    const before = await fleet.scheduler();
    for (let i = 0; i < MODELS; i++) {
      const answer = await ollama.generate({
        model: `m${i}`,
        prompt: "the quick brown",
        raw: true,
        options: { temperature: 0, num_predict: 4 },
      });
      expect(answer.done, `m${i}`).toBe(true);
    }
    const loaded = (await ollama.ps()).models.map((m) => m.name).sort();
    expect(loaded).toEqual(["m2:latest", "m3:latest", "m4:latest", "m5:latest"]);
    const after = await fleet.scheduler();
    expect(after.totals.evicted_runners).toBe(before.totals.evicted_runners);
    expect(after.runners.map((r) => r.state)).toEqual(["ready"]);
  });
});
