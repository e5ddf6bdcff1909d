import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LlamaCompletion, type LlamaContext } from "node-llama-cpp";
import { afterEach, describe, expect, it, vi } from "vitest";
import { DecodeGate, installDecodeGate } from "./decode-gate";
import { testLlama, tinyModelBlob } from "./test-support";

/** A decode the test finishes by hand; `started` records the order in which the gate let decodes go. */
function harness(generating: number) {
  const started: number[] = [];
  const finish = new Map<number, () => void>();
  let count = generating;
  const gate = new DecodeGate(() => count, 5);
  const submit = (sequenceId: number, tokens = 1) =>
    gate.submit(sequenceId, tokens, () => {
      started.push(sequenceId);
      return new Promise<number>((resolve) => finish.set(sequenceId, () => resolve(sequenceId)));
    });
  return { gate, started, finish, submit, setGenerating: (n: number) => (count = n) };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("DecodeGate", () => {
  it("lets a lone generating sequence through at once", () => {
    const { started, submit } = harness(1);
    void submit(0);
    expect(started).toEqual([0]);
  });

  it("holds decodes until every generating sequence asked, then releases them sorted by sequence id", () => {
    const { started, submit } = harness(4);
    void submit(3);
    void submit(0);
    void submit(2);
    expect(started).toEqual([]);
    void submit(1);
    expect(started).toEqual([0, 1, 2, 3]);
  });

  it("lets a prompt evaluation through at once and waits only the shortest bound while it runs", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
    const { gate, started, finish, submit, setGenerating } = harness(2);
    // One step measured at 30 ms: held decodes would wait 15 ms for a straggler.
    const first = submit(0);
    void submit(1);
    vi.advanceTimersByTime(30);
    finish.get(0)?.();
    await first;
    expect(gate.boundMs).toBe(15);
    setGenerating(3);
    void submit(2, 40); // sequence 2 evaluates its prompt: it will not ask for a next token for a while
    expect(started).toEqual([0, 1, 2]);
    expect(gate.boundMs).toBe(5);
    void submit(0);
    void submit(1);
    vi.advanceTimersByTime(5);
    expect(started).toEqual([0, 1, 2, 0, 1]);
  });

  it("lets the others go after the bound while one sequence is a straggler", () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
    const { started, submit } = harness(3);
    void submit(2); // alone past the bound
    vi.advanceTimersByTime(5);
    expect(started).toEqual([2]);
    void submit(1);
    void submit(0);
    expect(started).toEqual([2]);
    vi.advanceTimersByTime(5);
    expect(started).toEqual([2, 0, 1]);
  });

  it("waits half a measured step for stragglers, at most its ceiling", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
    const { gate, finish, submit } = harness(2);
    expect(gate.boundMs).toBe(5);
    const first = submit(0);
    void submit(1);
    vi.advanceTimersByTime(200);
    finish.get(0)?.();
    await first;
    expect(gate.boundMs).toBe(25);
  });

  it("releases what it holds after the bound when a generating sequence never asks", () => {
    vi.useFakeTimers();
    const { started, submit } = harness(3);
    void submit(1);
    void submit(0);
    vi.advanceTimersByTime(4);
    expect(started).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(started).toEqual([0, 1]);
  });

  it("passes a failed decode's error to its caller and stops holding once disposed", async () => {
    const gate = new DecodeGate(() => 2, 1000);
    const failed = gate.submit(0, 1, () => Promise.reject(new Error("decode failed")));
    gate.dispose();
    await expect(failed).rejects.toThrow("decode failed");
    await expect(gate.submit(1, 1, () => Promise.resolve("after"))).resolves.toBe("after");
    gate.dispose();
  });
});

/** Counts how many sequences each llama_decode of a real context carried. */
function countBatches(context: LlamaContext): number[][] {
  const batches: number[][] = [[]];
  const internal = context as unknown as { _ctx: Record<string, (...args: unknown[]) => unknown> };
  const addon = internal._ctx;
  internal._ctx = new Proxy(addon, {
    get(target, prop) {
      const value = target[prop as string];
      if (typeof value !== "function") return value;
      if (prop === "addToBatch")
        return (...args: unknown[]) => {
          batches[batches.length - 1]?.push(args[0] as number);
          return value.apply(target, args);
        };
      if (prop === "decodeBatch")
        return (...args: unknown[]) => {
          batches.push([]);
          return value.apply(target, args);
        };
      return value.bind(target);
    },
  });
  return batches;
}

describe("DecodeGate on a real context", () => {
  it("makes 4 concurrent generations share every decode step, in sequence-id order", async () => {
    const llama = await testLlama();
    const path = join(tmpdir(), `corral-gate-${process.pid}.gguf`);
    await writeFile(path, tinyModelBlob().bytes);
    const model = await llama.loadModel({ modelPath: path });
    const context = await model.createContext({ contextSize: 1024, sequences: 4, threads: 1 });
    const sequences = Array.from({ length: 4 }, () => context.getSequence());
    let generating = 0;
    installDecodeGate(context, new DecodeGate(() => generating, 50, 50));
    const batches = countBatches(context);
    generating = 4;
    const produced = await Promise.all(
      sequences.map(async (sequence, i) => {
        const completion = new LlamaCompletion({ contextSequence: sequence });
        let tokens = 0;
        await completion.generateCompletion(`prompt ${i}`, { maxTokens: 24, temperature: 0, onToken: () => tokens++ });
        completion.dispose();
        return tokens;
      }),
    );
    await context.dispose();
    const decodes = batches.filter((b) => b.length > 0);
    // The first decode carries the four prompts; every generation step after it, until the first sequence
    // stops, carries all four sequences in id order (one ubatch, one forward pass).
    expect(decodes[0]).toEqual([0, 1, 2, 3]);
    const together = Math.min(...produced) - 1;
    expect(together).toBeGreaterThan(3);
    expect(decodes.slice(1, 1 + together).map((b) => b.join(","))).toEqual(Array(together).fill("0,1,2,3"));
    await model.dispose();
  });
});
