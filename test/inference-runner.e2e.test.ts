/**
 * What only the runner can tell: a client that goes away mid-stream frees its sequence, and concurrent requests
 * on one model share its parallel sequences (PARALLEL=4). This file starts its own stack so that it can read
 * the runner's /metrics with the runner secret from the stack's state dir.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Ollama } from "ollama";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningStack, startStack } from "./harness";
import { client, eventually } from "./inference-support";

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

async function runnerGauge(name: string): Promise<number> {
  const res = await fetch(`${runnerUrl}/metrics`, { headers: { authorization: `Bearer ${runnerSecret}` } });
  expect(res.status).toBe(200);
  const line = (await res.text()).split("\n").find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`the runner reports no ${name}`);
  return Number(line.slice(name.length + 1));
}

describe("the runner behind the edge", () => {
  it("accepts only the edge: no secret, no metrics", async () => {
    expect((await fetch(`${runnerUrl}/metrics`)).status).toBe(401);
  });

  it("frees the sequence when the client aborts mid-stream", async () => {
    const stream = await ollama.generate({
      model: "tiny",
      prompt: "Tell me a very long story.",
      stream: true,
      // Far more than the test waits for: only the abort can end this generation in time.
      options: { num_predict: 100_000, temperature: 0.8, seed: 3 },
    });
    let chunks = 0;
    let busyWhileStreaming = -1;
    const drained = (async () => {
      for await (const chunk of stream) {
        chunks++;
        if (chunks === 3) {
          busyWhileStreaming = await runnerGauge("corral_runner_busy_sequences");
          stream.abort();
        }
        if (chunk.done) break;
      }
    })();
    await expect(drained).rejects.toMatchObject({ name: "AbortError" });
    expect(chunks).toBeGreaterThanOrEqual(3);
    expect(busyWhileStreaming).toBe(1);
    expect(await eventually(async () => (await runnerGauge("corral_runner_busy_sequences")) === 0, 10_000)).toBe(true);
    // The model is still loaded and serves the next request.
    const next = await ollama.generate({ model: "tiny", prompt: "Hi", options: { num_predict: 4, temperature: 0 } });
    expect(next.eval_count).toBe(4);
  });

  it("frees the sequence when a client of a non-streaming request hangs up", async () => {
    const controller = new AbortController();
    const pending = fetch(`${stack.url}/api/generate`, {
      method: "POST",
      headers: { authorization: `Bearer ${stack.key}` },
      body: JSON.stringify({ model: "tiny", prompt: "Go on.", stream: false, options: { num_predict: 100_000 } }),
      signal: controller.signal,
    });
    expect(await eventually(async () => (await runnerGauge("corral_runner_busy_sequences")) === 1, 10_000, 50)).toBe(
      true,
    );
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: "AbortError" });
    expect(await eventually(async () => (await runnerGauge("corral_runner_busy_sequences")) === 0, 10_000)).toBe(true);
  });

  it("never runs a request whose client left while it waited for a sequence", async () => {
    const long = { num_predict: 100_000, temperature: 0.8 };
    const holders = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        ollama.generate({ model: "tiny", prompt: `Hold ${i}`, stream: true, options: { ...long, seed: i } }),
      ),
    );
    // Each holder has its sequence once its first chunk arrives.
    const drains = holders.map(async (stream) => {
      for await (const _ of stream) {
        // keep reading until aborted
      }
    });
    expect(await eventually(async () => (await runnerGauge("corral_runner_busy_sequences")) === 4, 10_000, 50)).toBe(
      true,
    );
    const waiter = new AbortController();
    const queued = fetch(`${stack.url}/api/generate`, {
      method: "POST",
      headers: { authorization: `Bearer ${stack.key}` },
      body: JSON.stringify({ model: "tiny", prompt: "Queued", options: long }),
      signal: waiter.signal,
    });
    await new Promise((r) => setTimeout(r, 500));
    waiter.abort();
    await expect(queued).rejects.toMatchObject({ name: "AbortError" });
    for (const stream of holders) stream.abort();
    await Promise.allSettled(drains);
    // Had the queued request started once a holder left, its sequence would stay busy for minutes.
    expect(await eventually(async () => (await runnerGauge("corral_runner_busy_sequences")) === 0, 10_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await runnerGauge("corral_runner_busy_sequences")).toBe(0);
  });

  it("batches 8 concurrent requests on one model and completes them all", async () => {
    const requests = Array.from({ length: 8 }, async (_, i) => {
      const stream = await ollama.generate({
        model: "tiny",
        prompt: `Story number ${i}:`,
        stream: true,
        options: { num_predict: 48, temperature: 0.8, seed: i },
      });
      let firstChunkAt = 0;
      let text = "";
      let last: { done: boolean; done_reason?: string; eval_count?: number } = { done: false };
      for await (const chunk of stream) {
        firstChunkAt ||= performance.now();
        text += chunk.response;
        last = chunk;
      }
      return { firstChunkAt, doneAt: performance.now(), text, last };
    });
    const results = await Promise.all(requests);
    for (const r of results) {
      // Gibberish may sample the end-of-turn token before the limit.
      expect(r.last.done).toBe(true);
      expect(["length", "stop"]).toContain(r.last.done_reason);
      expect(r.last.eval_count).toBeGreaterThan(0);
      expect(r.last.eval_count).toBeLessThanOrEqual(48);
    }
    // Streams overlap: some request produced its first token while another was still generating. Served one at
    // a time, every stream would end before the next one starts.
    const overlapping = results.filter((r) =>
      results.some((other) => other !== r && other.firstChunkAt < r.firstChunkAt && r.firstChunkAt < other.doneAt),
    );
    expect(overlapping.length).toBeGreaterThanOrEqual(3);
    expect(await runnerGauge("corral_runner_sequences")).toBe(4);
    expect(await runnerGauge("corral_runner_busy_sequences")).toBe(0);
  });
});
