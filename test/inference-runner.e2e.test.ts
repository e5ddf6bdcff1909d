/**
 * What only the runner can tell: concurrent requests on one model share its parallel sequences (PARALLEL=4), and a
 * client that goes away frees its sequence. This file starts its own stack so that it can read the runner's
 * /metrics with the runner secret from the stack's state dir.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Ollama } from "ollama";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Fleet } from "./fleet-support";
import { type RunningStack, startStack } from "./harness";
import { api, client, eventually } from "./inference-support";

let stack: RunningStack;
let ollama: Ollama;
let runnerUrl: string;
let runnerSecret: string;

beforeAll(async () => {
  stack = await startStack({ env: { PARALLEL: "4" } });
  ollama = client(stack.url, stack.key);
  runnerUrl = `http://127.0.0.1:${stack.runnerPorts[0]}`;
  runnerSecret = (JSON.parse(readFileSync(join(stack.stateDir, "dev.json"), "utf8")) as { runner_secret: string })
    .runner_secret;
}, 240_000);

afterAll(async () => {
  await stack?.stop();
});

/**
 * A generation that never ends by itself: the scripted model repeats its sentence inside a JSON string, because
 * the grammar forbids the end-of-turn token it would pick after the full stop (ties then fall on a space).
 */
const endless = {
  model: "scripted",
  format: { type: "string" },
  options: { temperature: 0, num_predict: 100_000 },
};

async function runnerGauge(name: string): Promise<number> {
  const res = await fetch(`${runnerUrl}/metrics`, { headers: { authorization: `Bearer ${runnerSecret}` } });
  expect(res.status).toBe(200);
  const line = (await res.text()).split("\n").find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`the runner reports no ${name}`);
  return Number(line.slice(name.length + 1));
}

const busySequences = () => runnerGauge("corral_runner_busy_sequences");
/** Generous by default: on a loaded machine an abort reaches the runner late; a passing check returns at once. */
const busyBecomes = (n: number, deadlineMs = 60_000) =>
  eventually(async () => (await busySequences()) === n, deadlineMs, 50);
/** Requests waiting in the edge's scheduler for a sequence. */
const schedulerQueueDepth = async () =>
  ((await api(stack.url, stack.adminKey, "GET", "/admin/scheduler")).body.totals as { queue_depth: number })
    .queue_depth;

describe("the runner behind the edge", () => {
  it("accepts only the edge: no secret, no metrics", async () => {
    expect((await fetch(`${runnerUrl}/metrics`)).status).toBe(401);
  });

  it("batches 8 concurrent requests on one model and completes them all", async () => {
    // tiny loaded first, so that the scheduler knows its four sequences before the burst.
    await ollama.generate({ model: "tiny", prompt: "warm up", options: { num_predict: 1 } });
    const at = (chunk: { created_at: Date }) => new Date(chunk.created_at).getTime();
    const generate = async (i: number) => {
      const stream = await ollama.generate({
        model: "tiny",
        prompt: `Story number ${i}:`,
        stream: true,
        options: { num_predict: 48, temperature: 0.8, seed: i },
      });
      let firstChunkAt = 0;
      let doneAt = 0;
      let text = "";
      let last: { done: boolean; done_reason?: string; eval_count?: number } = { done: false };
      for await (const chunk of stream) {
        // The runner's own clock (created_at), not this process's: a loaded machine may read a whole buffered
        // stream here at once, long after it was generated.
        firstChunkAt ||= at(chunk);
        doneAt = at(chunk);
        text += chunk.response;
        last = chunk;
      }
      return { firstChunkAt, doneAt, text, last };
    };
    // The runner is frozen while the edge places all eight, so that they reach it together however slowly a loaded
    // machine forwards them one by one: four sequences start at once, four requests wait for one.
    const fleet = new Fleet(stack);
    const requests = await fleet.frozen(async () => {
      const base = await fleet.scheduler();
      const started = Array.from({ length: 8 }, (_, i) => generate(i));
      expect(await eventually(async () => (await fleet.placedSince(base)) >= 8, 60_000)).toBe(true);
      return started;
    });
    const results = await Promise.all(requests);
    for (const r of results) {
      // Gibberish may sample the end-of-turn token before the limit.
      expect(r.last.done).toBe(true);
      expect(["length", "stop"]).toContain(r.last.done_reason);
      expect(r.last.eval_count).toBeGreaterThan(0);
      expect(r.last.eval_count).toBeLessThanOrEqual(48);
    }
    // Streams overlap: some requests produced their first token while another, started no later, was still
    // generating. Served one at a time, every stream would end before the next one starts.
    const overlapping = results.filter((r) =>
      results.some((other) => other !== r && other.firstChunkAt <= r.firstChunkAt && r.firstChunkAt < other.doneAt),
    );
    expect(overlapping.length).toBeGreaterThanOrEqual(3);
    // PARALLEL=4 sequences per loaded model.
    expect(await runnerGauge("corral_runner_sequences")).toBe(4 * (await runnerGauge("corral_runner_loaded_models")));
    expect(await busyBecomes(0)).toBe(true);
  });

  const abortedAt = Date.now();

  it("frees the sequence when the client aborts mid-stream", async () => {
    const stream = await ollama.generate({ ...endless, prompt: "Tell me a very long story.", stream: true });
    let chunks = 0;
    let busyWhileStreaming = -1;
    const drained = (async () => {
      for await (const chunk of stream) {
        chunks++;
        if (chunks === 3) {
          busyWhileStreaming = await busySequences();
          stream.abort();
        }
        if (chunk.done) break;
      }
    })();
    await expect(drained).rejects.toMatchObject({ name: "AbortError" });
    expect(chunks).toBeGreaterThanOrEqual(3);
    expect(busyWhileStreaming).toBe(1);
    expect(await busyBecomes(0)).toBe(true);
    // The model is still loaded and serves the next request.
    const next = await ollama.generate({ model: "scripted", prompt: "Hi", options: { temperature: 0 } });
    expect(next.response).toBe("The quick brown fox jumps over the lazy dog.");
  });

  it("records the aborted stream's usage as cancelled", async () => {
    const tenants = (await api(stack.url, stack.adminKey, "GET", "/admin/tenants")).body.tenants as {
      id: string;
      name: string;
    }[];
    const dev = tenants.find((t) => t.name === "dev");
    expect(dev).toBeDefined();
    const cancelled = async () => {
      const { body } = await api(
        stack.url,
        stack.adminKey,
        "GET",
        `/admin/tenants/${dev?.id}/usage/records?since=${abortedAt}`,
      );
      const records = body.records as { model: string; status: string }[];
      return records.some((r) => r.model === "scripted" && r.status === "cancelled");
    };
    expect(await eventually(cancelled, 60_000)).toBe(true);
  });

  it("ends a request whose client left while it waited for a sequence, at the latest once it starts", async () => {
    const holders = await Promise.all(
      Array.from({ length: 4 }, (_, i) => ollama.generate({ ...endless, prompt: `Hold ${i}`, stream: true })),
    );
    const drains = holders.map(async (stream) => {
      for await (const _ of stream) {
        // keep reading until aborted
      }
    });
    expect(await busyBecomes(4)).toBe(true);
    const waiter = new AbortController();
    const queued = fetch(`${stack.url}/api/generate`, {
      method: "POST",
      headers: { authorization: `Bearer ${stack.key}` },
      body: JSON.stringify({ ...endless, prompt: "Queued" }),
      signal: waiter.signal,
    });
    // The client leaves once its request is waiting for a sequence in the scheduler, not after a guessed pause.
    expect(await eventually(async () => (await schedulerQueueDepth()) === 1, 60_000, 50)).toBe(true);
    waiter.abort();
    await expect(queued).rejects.toMatchObject({ name: "AbortError" });
    for (const stream of holders) stream.abort();
    await Promise.allSettled(drains);
    // The queued request may still be dispatched once the holders' sequences free up, but its first write to the
    // gone client must stop it; left running, it would keep a sequence busy for minutes.
    expect(await busyBecomes(0)).toBe(true);
    // A negative check: a request left running would be busy again here, and for minutes (100k tokens), so the
    // bound stays well short of that; slowness only makes a leaked request run longer.
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await busyBecomes(0, 30_000)).toBe(true);
  });

  // Known gap: a stream:false client that hangs up before the answer is invisible to the Worker under `wrangler
  // dev` (no byte is written, and request.signal never fires there, even with the `enable_request_signal`
  // compatibility flag), so the runner finishes the generation. On Cloudflare the relay's listener on
  // request.signal needs that flag in wrangler.toml. Enable this test once the local stack can see the hang-up.
  it.skip("frees the sequence when a client of a non-streaming request hangs up", async () => {
    const controller = new AbortController();
    const pending = fetch(`${stack.url}/api/generate`, {
      method: "POST",
      headers: { authorization: `Bearer ${stack.key}` },
      body: JSON.stringify({ ...endless, prompt: "Go on.", stream: false }),
      signal: controller.signal,
    });
    expect(await busyBecomes(1)).toBe(true);
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: "AbortError" });
    expect(await busyBecomes(0)).toBe(true);
  });
});
