import type { LlamaModel, Token } from "node-llama-cpp";
import { describe, expect, it } from "vitest";
import { LogprobRecorder, PendingLogprobs } from "./logprobs";

// A byte-level vocabulary: token 1 is "a", tokens 2 and 3 are the two bytes of "é" (0xC3 0xA9).
const BYTES: Record<number, number[]> = { 1: [0x61], 2: [0xc3], 3: [0xa9] };
const model = {
  detokenize: (tokens: readonly Token[]) => new TextDecoder().decode(new Uint8Array(tokens.flatMap((t) => BYTES[t]!))),
} as unknown as LlamaModel;

/** A recorder fed as LlamaCompletion feeds it: samples as evaluated, then the released tokens. */
function recorded(samples: [number, number][], released: number[], top = 0) {
  const recorder = new LogprobRecorder(model, top);
  const sequence = {
    async *evaluateWithMetadata() {
      for (const [token, confidence] of samples) {
        yield { token, confidence, probabilities: new Map([[token, confidence]]) };
      }
    },
  };
  return { recorder, sequence: recorder.tap(sequence as never), released: released as Token[] };
}

describe("LogprobRecorder", () => {
  it("gives a character split over two tokens to the token that ends it, so the tokens concatenate to the text", async () => {
    const { recorder, sequence, released } = recorded(
      [
        [1, 0.5],
        [2, 0.25],
        [3, 1],
      ],
      [1, 2, 3],
      1,
    );
    const tokens: Token[] = [];
    for await (const token of sequence.evaluate([] as Token[])) tokens.push(token);
    expect(tokens).toEqual([1, 2, 3]);
    recorder.release(released);
    const entries = recorder.drain();
    expect(entries.map((e) => e.token)).toEqual(["a", "", "é"]);
    expect(entries.map((e) => e.logprob)).toEqual([Math.log(0.5), Math.log(0.25), 0]);
    expect(entries[2]?.bytes).toEqual([0xc3, 0xa9]);
    expect(entries[0]?.top_logprobs).toEqual([{ token: "a", logprob: Math.log(0.5), bytes: [0x61] }]);
    expect(recorder.drain()).toEqual([]);
  });

  it("skips samples that were never released (a stop string, the end token)", async () => {
    const { recorder, sequence } = recorded(
      [
        [1, 0.5],
        [2, 0.9],
        [1, 0.8],
      ],
      [],
    );
    for await (const _ of sequence.evaluate([] as Token[])) {
      // drain the generator
    }
    recorder.release([1 as Token]);
    recorder.release([1 as Token]);
    expect(recorder.drain().map((e) => e.logprob)).toEqual([Math.log(0.5), Math.log(0.8)]);
  });
});

describe("PendingLogprobs", () => {
  it("hands the waiting entries to the next chunk once", () => {
    const pending = new PendingLogprobs();
    expect(pending.take()).toEqual({});
    pending.add([{ token: "a", logprob: 0, bytes: [97] }]);
    pending.add([]);
    expect(pending.take()).toEqual({ logprobs: [{ token: "a", logprob: 0, bytes: [97] }] });
    expect(pending.take()).toEqual({});
  });
});
