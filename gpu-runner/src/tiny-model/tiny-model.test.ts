import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLlama, type Llama, LlamaLogLevel, type LlamaModel, type Token } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeTinyModel } from "./generate";
import { writeScriptedModel } from "./scripted";
import { SCRIPTED_SENTENCE, SCRIPTED_TOOL_CALL, SENTENCE_SCRIPT } from "./scripts";
import { tinyVocabulary } from "./tokenizer";

// Real llama.cpp inference on the built-in models (prebuilt CPU binaries, nothing downloaded or built).
// Threads are pinned to 1: node-llama-cpp's default of max(cores, 4) is ~300x slower on a 2-core machine.

const CHATML_PROMPT = "<|im_start|>user\nWhat is the weather in Paris?<|im_end|>\n<|im_start|>assistant\n";
const vocab = tinyVocabulary();

let llama: Llama;
let dir: string;
let fileCount = 0;

beforeAll(async () => {
  llama = await getLlama({ gpu: false, build: "never", skipDownload: true, logLevel: LlamaLogLevel.error });
  dir = mkdtempSync(join(tmpdir(), "corral-tiny-model-"));
});

afterAll(async () => {
  await llama?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function withModel<T>(bytes: Uint8Array, use: (model: LlamaModel) => Promise<T>): Promise<T> {
  const modelPath = join(dir, `model-${fileCount++}.gguf`);
  writeFileSync(modelPath, bytes);
  const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
  try {
    return await use(model);
  } finally {
    await model.dispose();
  }
}

interface Generated {
  text: string;
  tokens: Token[];
  stoppedOnEos: boolean;
}

async function generate(
  model: LlamaModel,
  prompt: string,
  options: { maxTokens: number; temperature?: number; seed?: number },
): Promise<Generated> {
  const context = await model.createContext({ contextSize: 512, threads: 1, sequences: 1 });
  try {
    const sequence = context.getSequence();
    const tokens: Token[] = [];
    let stoppedOnEos = false;
    const evaluation = sequence.evaluate(model.tokenize(prompt, true), {
      temperature: options.temperature ?? 0,
      seed: options.seed,
      yieldEogToken: true,
    });
    for await (const token of evaluation) {
      if (model.isEogToken(token)) {
        stoppedOnEos = token === model.tokens.eos;
        break;
      }
      tokens.push(token);
      if (tokens.length >= options.maxTokens) break;
    }
    return { text: model.detokenize(tokens), tokens, stoppedOnEos };
  } finally {
    await context.dispose();
  }
}

describe("tokenizer in llama.cpp", () => {
  it("parses ChatML special tokens and splits words as the vocabulary predicts", async () => {
    await withModel(writeTinyModel(), async (model) => {
      expect(model.tokenize("<|im_start|>user\nhi<|im_end|>", true)).toEqual([
        vocab.imStartId,
        vocab.idOfText("user"),
        vocab.idOfText("\n"),
        vocab.idOfText("hi"),
        vocab.imEndId,
      ]);
      // Without special-token parsing the same text is plain bytes and merges.
      expect(model.tokenize("<|im_start|>", false)).not.toContain(vocab.imStartId);
      expect(model.tokenize(SCRIPTED_SENTENCE)).toEqual(SENTENCE_SCRIPT.pieces.map((p) => vocab.idOfText(p)));
      expect(model.tokenize(" zebra weather")).toEqual([...vocab.encodeWord(" zebra"), vocab.idOfText(" weather")]);
      expect(model.tokens.eos).toBe(vocab.imEndId);
      expect(model.detokenize(model.tokenize('héllo wörld\n\t{"x": 1}'))).toBe('héllo wörld\n\t{"x": 1}');
      expect(model.trainContextSize).toBeGreaterThanOrEqual(4096);
    });
  });
});

describe("random tiny model", () => {
  it("generates the same text for the same seeds, and other text for another model seed", async () => {
    const run = (seed: number) =>
      withModel(writeTinyModel({ seed }), async (model) => ({
        greedy: (await generate(model, CHATML_PROMPT, { maxTokens: 24 })).text,
        sampled: (await generate(model, CHATML_PROMPT, { maxTokens: 24, temperature: 0.8, seed: 5 })).text,
      }));
    const first = await run(1);
    expect(first.greedy.length).toBeGreaterThan(0);
    expect(await run(1)).toEqual(first);
    const other = await run(2);
    expect(other.greedy).not.toBe(first.greedy);
    expect(other.sampled).not.toBe(first.sampled);
  });

  it("runs with Q8_0 weights", async () => {
    await withModel(writeTinyModel({ weightType: "q8_0" }), async (model) => {
      const out = await generate(model, CHATML_PROMPT, { maxTokens: 8 });
      expect(out.tokens.length + (out.stoppedOnEos ? 1 : 0)).toBeGreaterThan(0);
    });
  });
});

describe("scripted models", () => {
  it.each([
    ["sentence", SCRIPTED_SENTENCE],
    ["tool", SCRIPTED_TOOL_CALL],
  ] as const)("%s: greedy decoding emits the script, then stops on EOS", async (script, expected) => {
    await withModel(writeScriptedModel(script), async (model) => {
      const out = await generate(model, CHATML_PROMPT, { maxTokens: 64 });
      expect(out.text).toBe(expected);
      expect(out.stoppedOnEos).toBe(true);
      // Sampling cannot stray either: the successor leads every other token by 32 logits.
      expect((await generate(model, "Hello", { maxTokens: 64, temperature: 1, seed: 3 })).text).toBe(expected);
    });
  });
});
