/**
 * Where a generation step's time goes, for the throughput benchmarks: the forward pass (node-llama-cpp's addon
 * `decodeBatch`, llama_decode on the decode thread) against the time between two passes (sampling, and the per-token
 * JavaScript round trip from a sampled token to the next decode request). Wraps the context's addon object the way
 * decode-gate.test.ts counts batches; a benchmark aid only, never loaded by the runner.
 *
 * It also counts each pass's runs of consecutive sequence ids: llama.cpp (per-sequence KV streams, which
 * node-llama-cpp always uses) computes each run as its own ubatch, so a pass over sequences 0–4, 6–16, 18–31 reads
 * the weights three times (26M model, 32 streams: 45 ms for 30 tokens in 3 runs, 33 ms for 32 tokens in one).
 */
import type { LlamaContext } from "node-llama-cpp";

export interface StepTimes {
  /** Forward passes counted. */
  passes: number;
  /** Mean tokens per pass (prompt passes included). */
  tokensPerPass: number;
  /** Mean ms of one forward pass. */
  passMs: number;
  /** Mean ms from the end of one pass to the start of the next. */
  betweenMs: number;
  /** Mean runs of consecutive sequence ids per pass: llama.cpp's ubatches per pass. */
  runsPerPass: number;
}

type Addon = Record<string, (...args: unknown[]) => unknown>;

/** Starts timing `context`'s forward passes; `take()` returns the figures since the last take and starts anew. */
export function timeForwardPasses(context: LlamaContext): { take(): StepTimes } {
  const internal = context as unknown as { _ctx: Addon };
  const addon = internal._ctx;
  let passes = 0;
  let tokens = 0;
  let passMs = 0;
  let betweenMs = 0;
  let runs = 0;
  let lastId: number | undefined;
  let lastEnd: number | undefined;
  internal._ctx = new Proxy(addon, {
    get(target, prop) {
      const value = target[prop as string];
      if (typeof value !== "function") return value;
      if (prop === "initBatch")
        return (size: unknown, ...rest: unknown[]) => {
          tokens += Number(size);
          lastId = undefined;
          return value.call(target, size, ...rest);
        };
      if (prop === "addToBatch")
        return (sequenceId: unknown, ...rest: unknown[]) => {
          if (lastId === undefined || sequenceId !== lastId + 1) runs++;
          lastId = Number(sequenceId);
          return value.call(target, sequenceId, ...rest);
        };
      if (prop === "decodeBatch")
        return async (...args: unknown[]) => {
          const start = performance.now();
          if (lastEnd !== undefined) betweenMs += start - lastEnd;
          try {
            return await value.apply(target, args);
          } finally {
            lastEnd = performance.now();
            passMs += lastEnd - start;
            passes++;
          }
        };
      return value.bind(target);
    },
  });
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return {
    take() {
      const times = {
        passes,
        tokensPerPass: round(tokens / passes),
        passMs: round(passMs / passes),
        betweenMs: round(betweenMs / Math.max(1, passes - 1)),
        runsPerPass: round(runs / passes),
      };
      passes = tokens = passMs = betweenMs = runs = 0;
      lastEnd = undefined;
      return times;
    },
  };
}
