import { rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LlamaModel } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testLlama, tinyModelBlob } from "./test-support";
import { OffThreadTokenizer } from "./tokenizer";

let model: LlamaModel;
const path = join(tmpdir(), `corral-tokenizer-${process.pid}.gguf`);

beforeAll(async () => {
  await writeFile(path, tinyModelBlob().bytes);
  model = await (await testLlama()).loadModel({ modelPath: path });
});
afterAll(async () => {
  await model.dispose();
  await rm(path, { force: true });
});

/** Counts event-loop turns while `work` runs: a blocked loop counts none. */
async function loopTurnsDuring<T>(work: () => Promise<T>): Promise<{ result: T; turns: number }> {
  let turns = 0;
  const timer = setInterval(() => turns++, 1);
  try {
    return { result: await work(), turns };
  } finally {
    clearInterval(timer);
  }
}

describe("OffThreadTokenizer", () => {
  it("tokenises a long prompt on its thread, identically, while the event loop keeps running", async () => {
    const tokenizer = new OffThreadTokenizer();
    try {
      const text = "The quick brown fox <|im_start|> jumps over the lazy dog. ".repeat(1500); // ~85 KB
      const inline = model.tokenize(text, true);
      const { result, turns } = await loopTurnsDuring(() => tokenizer.tokenize(model, path, text, true));
      expect(result).toEqual(inline);
      // Tokenising this text inline takes a second or more here, with no turn of the loop at all.
      expect(turns).toBeGreaterThan(3);
      expect(await tokenizer.tokenize(model, path, text, false)).toEqual(model.tokenize(text, false));
    } finally {
      await tokenizer.dispose();
    }
  });

  it("tokenises short texts in place, and fails a long one whose model file is gone without stopping", async () => {
    const tokenizer = new OffThreadTokenizer(16);
    try {
      const gone = join(tmpdir(), "corral-no-such-model.gguf");
      await expect(tokenizer.tokenize(model, gone, "x".repeat(100), true)).rejects.toThrow(/^tokenize: /);
      expect(await tokenizer.tokenize(model, gone, "hi", true)).toEqual(model.tokenize("hi", true));
      const text = "still working ".repeat(10);
      expect(await tokenizer.tokenize(model, path, text, true)).toEqual(model.tokenize(text, true));
    } finally {
      await tokenizer.dispose();
      await tokenizer.dispose();
    }
  });
});
