import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LlamaCompletion } from "node-llama-cpp";
import { describe, expect, it } from "vitest";
import { testLlama } from "../test-support";
import { writeRandomLlamaModel } from "./random-llama";

/** How many of `prompts` top-k generations end before `maxTokens` on a small random llama. */
async function endedEarly(neverEnds: boolean, prompts: number, maxTokens: number): Promise<number> {
  const llama = await testLlama();
  const path = join(tmpdir(), `corral-random-llama-${neverEnds}-${process.pid}.gguf`);
  const hyperparameters = { embedding: 64, layers: 2, heads: 4, kvHeads: 2, feedForward: 128 };
  await writeFile(path, writeRandomLlamaModel({ name: "t", description: "t", hyperparameters, seed: 3, neverEnds }));
  const model = await llama.loadModel({ modelPath: path });
  const context = await model.createContext({ contextSize: 256, threads: 1 });
  const sequence = context.getSequence();
  let early = 0;
  try {
    for (let i = 0; i < prompts; i++) {
      await sequence.clearHistory();
      const completion = new LlamaCompletion({ contextSequence: sequence });
      const { metadata } = await completion.generateCompletionWithMeta(`Tell me ${i}`, {
        maxTokens,
        temperature: 1,
        topK: 40,
        seed: i,
      });
      completion.dispose();
      if (metadata.stopReason !== "maxTokens") early++;
    }
  } finally {
    await context.dispose();
    await model.dispose();
  }
  return early;
}

describe("writeRandomLlamaModel", () => {
  it("with neverEnds, top-k generations always run to their limit; without, some end on their own", async () => {
    // 5 of 32 end early without it (seeded: the same on every run).
    expect(await endedEarly(false, 32, 64)).toBeGreaterThan(0);
    expect(await endedEarly(true, 32, 64)).toBe(0);
  });
});
