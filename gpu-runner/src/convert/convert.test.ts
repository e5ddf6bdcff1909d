import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Token } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testLlama } from "../test-support";
import { tinyBertCheckpoint } from "./bert-fixture";
import { type Checkpoint, type CheckpointOptions, tinyCheckpoint } from "./checkpoint-fixture";
import { convertCheckpoint } from "./convert";
import { convertFiles, expectSameGguf, greedyText, header, writeFiles as writeFilesIn } from "./convert-testkit";
import { ConvertAbortError, convertInChild } from "./engine";
import { halfFromFloatBits } from "./tensor-data";

// The converter on tiny checkpoints the test writes, against the GGUF built independently beside each
// (checkpoint-fixture.ts): tensor for tensor, byte for byte, and the same greedy text from llama.cpp.

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "corral-convert-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const writeFiles = (files: Map<string, Uint8Array>) => writeFilesIn(dir, files);

function convert(options: CheckpointOptions | Checkpoint): { out: Uint8Array; reference: Uint8Array } {
  const { files, reference } = "files" in options ? options : tinyCheckpoint(options);
  return { out: convertFiles(dir, files), reference };
}

const COMPARED_KEYS = [
  "general.architecture",
  "general.file_type",
  "tokenizer.ggml.model",
  "tokenizer.ggml.pre",
  "tokenizer.ggml.tokens",
  "tokenizer.ggml.token_type",
  "tokenizer.ggml.merges",
  "tokenizer.ggml.bos_token_id",
  "tokenizer.ggml.eos_token_id",
  "tokenizer.ggml.add_bos_token",
  "tokenizer.ggml.add_eos_token",
  "tokenizer.chat_template",
];

describe("convertCheckpoint: tensor for tensor equal to the independently built GGUF", () => {
  it.each<[string, CheckpointOptions | Checkpoint]>([
    ["llama, F32", {}],
    ["mistral (a llama to llama.cpp)", { architecture: "MistralForCausalLM" }],
    ["llama, BF16 kept as BF16", { dtype: "BF16" }],
    ["llama, sharded in 3 with an index", { shards: 3 }],
    ["llama, merges as pairs", { pairMerges: true }],
    ["qwen2 (biases, no permutation)", { architecture: "Qwen2ForCausalLM" }],
    ["qwen3 (q/k norms)", { architecture: "Qwen3ForCausalLM" }],
    ["bert (WordPiece, an I64 position_ids skipped)", tinyBertCheckpoint()],
  ])("%s", async (_label, options) => {
    const { out, reference } = convert(options);
    await expectSameGguf(out, reference, COMPARED_KEYS);
  });

  it("llama3 rope scaling: a rope_freqs tensor of per-frequency factors, and llama.cpp runs the model", async () => {
    const checkpoint = tinyCheckpoint({ seed: 8 });
    const config = JSON.parse(new TextDecoder().decode(checkpoint.files.get("config.json")));
    config.rope_theta = 500000;
    config.rope_scaling = { rope_type: "llama3", factor: 8, original_max_position_embeddings: 2048 };
    checkpoint.files.set("config.json", new TextEncoder().encode(JSON.stringify(config)));
    const { out } = convert(checkpoint);
    const h = await header(out);
    const freqs = h.tensors.find((t) => t.name === "rope_freqs.weight");
    expect(freqs).toMatchObject({ dims: [8], type: 0 });
    expect(h.metadata["llama.rope.freq_base"]).toBe(500000);
    const path = join(dir, "llama3-rope.gguf");
    writeFileSync(path, out);
    const model = await (await testLlama()).loadModel({ modelPath: path, gpuLayers: 0 });
    try {
      const context = await model.createContext({ contextSize: 128, threads: 1, sequences: 1 });
      try {
        const tokens: Token[] = [];
        for await (const token of context.getSequence().evaluate(model.tokenize("hello"), { temperature: 0 })) {
          tokens.push(token);
          if (tokens.length >= 3) break;
        }
        expect(tokens).toHaveLength(3);
      } finally {
        await context.dispose();
      }
    } finally {
      await model.dispose();
    }
  });

  it("tied embeddings: no output tensor, llama.cpp reuses the embedding", async () => {
    const { out } = convert({ tied: true });
    expect((await header(out)).tensors.map((t) => t.name)).not.toContain("output.weight");
  });

  it("rounds F32 to F16 to nearest-even like ggml, subnormals and overflow included", () => {
    const bits = (v: number) => new Uint32Array(new Float32Array([v]).buffer)[0]!;
    expect(halfFromFloatBits(bits(1))).toBe(0x3c00);
    expect(halfFromFloatBits(bits(65504))).toBe(0x7bff);
    expect(halfFromFloatBits(bits(65520))).toBe(0x7c00);
    expect(halfFromFloatBits(bits(-(2 ** -24)))).toBe(0x8001);
    expect(halfFromFloatBits(bits(2 ** -25))).toBe(0);
    expect(halfFromFloatBits(bits(1 + 2 ** -11))).toBe(0x3c00);
    expect(halfFromFloatBits(bits(1 + 3 * 2 ** -11))).toBe(0x3c02);
    expect(halfFromFloatBits(bits(Number.NaN)) & 0x7e00).toBe(0x7e00);
  });
});

describe("convertCheckpoint: bad checkpoints are 400s that name the problem", () => {
  const enc = new TextEncoder();
  it.each<[string, (files: Map<string, Uint8Array>) => void, RegExp]>([
    ["no tokenizer.json", (f) => f.delete("tokenizer.json"), /tokenizer\.json is required/],
    [
      "tokenizer with fewer rows than tokens",
      (f) => {
        const c = JSON.parse(new TextDecoder().decode(f.get("tokenizer.json")));
        c.model.vocab["extra-token"] = Object.keys(c.model.vocab).length + c.added_tokens.length;
        f.set("tokenizer.json", enc.encode(JSON.stringify(c)));
      },
      /tokenizer has \d+ tokens but the embedding only \d+ rows/,
    ],
    [
      "unsupported tokenizer model",
      (f) => {
        const c = JSON.parse(new TextDecoder().decode(f.get("tokenizer.json")));
        c.model.type = "Unigram";
        f.set("tokenizer.json", enc.encode(JSON.stringify(c)));
      },
      /model type "Unigram" is not supported/,
    ],
  ])("%s", (_label, mutate, message) => {
    const { files } = tinyCheckpoint();
    mutate(files);
    const output = join(mkdtempSync(join(dir, "bad-")), "model.gguf");
    expect(() => convertCheckpoint({ files: writeFiles(files), output })).toThrow(message);
  });
});

describe("bert pooling from sentence-transformers' modules", () => {
  it.each([
    ["no modules.json: mean", undefined, 1],
    ["a Pooling module with pooling_mode_cls_token: cls", { pooling_mode_cls_token: true }, 2],
    ["a Pooling module with pooling_mode_mean_tokens: mean", { pooling_mode_mean_tokens: true }, 1],
  ])("%s", async (_label, pooling, expected) => {
    const checkpoint = tinyBertCheckpoint();
    if (pooling) {
      const enc = new TextEncoder();
      checkpoint.files.set(
        "modules.json",
        enc.encode(
          JSON.stringify([{ idx: 1, name: "1", path: "1_Pooling", type: "sentence_transformers.models.Pooling" }]),
        ),
      );
      checkpoint.files.set("1_Pooling/config.json", enc.encode(JSON.stringify(pooling)));
    }
    const { out } = convert(checkpoint);
    expect((await header(out)).metadata["bert.pooling_type"]).toBe(expected);
  });
});

describe("convertInChild", () => {
  it("converts in a child process, reporting progress per tensor", async () => {
    const { files, reference } = tinyCheckpoint({ seed: 5 });
    const sub = mkdtempSync(join(dir, "child-"));
    const output = join(sub, "model.gguf");
    const progress: number[] = [];
    const { size } = await convertInChild({ files: writeFiles(files), output, onProgress: (d) => progress.push(d) });
    expect(size).toBe(readFileSync(output).length);
    expect(progress.at(-1)).toBe((await header(reference)).tensors.length);
    expect(readdirSync(sub)).toEqual(["model.gguf"]);
  });

  it("a bad input is an ApiError 400 and leaves no file", async () => {
    const { files } = tinyCheckpoint();
    files.set("config.json", new TextEncoder().encode('{"architectures":["GPT2LMHeadModel"]}'));
    const sub = mkdtempSync(join(dir, "child-bad-"));
    await expect(convertInChild({ files: writeFiles(files), output: join(sub, "m.gguf") })).rejects.toMatchObject({
      status: 400,
      message: 'unsupported architecture "GPT2LMHeadModel"',
    });
    expect(readdirSync(sub)).toEqual([]);
  });

  it("abort kills the child and leaves no file", async () => {
    const { files } = tinyCheckpoint({ hidden: 256, layers: 8, feedForward: 1024 });
    const sub = mkdtempSync(join(dir, "child-abort-"));
    const controller = new AbortController();
    const run = convertInChild({
      files: writeFiles(files),
      output: join(sub, "m.gguf"),
      signal: controller.signal,
      onProgress: (done) => {
        if (done >= 1) controller.abort();
      },
    });
    await expect(run).rejects.toBeInstanceOf(ConvertAbortError);
    expect(readdirSync(sub)).toEqual([]);
  });
});

describe("the converted model runs as the reference does", () => {
  it("bert: identical mean-pooled embeddings", async () => {
    const { out, reference } = convert(tinyBertCheckpoint());
    const embed = async (bytes: Uint8Array, name: string) => {
      const path = join(dir, name);
      writeFileSync(path, bytes);
      const model = await (await testLlama()).loadModel({ modelPath: path, gpuLayers: 0 });
      try {
        const context = await model.createEmbeddingContext({ contextSize: 64, threads: 1 });
        try {
          return [...(await context.getEmbeddingFor("the quick brown fox jumps")).vector];
        } finally {
          await context.dispose();
        }
      } finally {
        await model.dispose();
      }
    };
    const vector = await embed(out, "bert-converted.gguf");
    expect(vector).toHaveLength(32);
    expect(vector).toEqual(await embed(reference, "bert-reference.gguf"));
  });

  it.each<[string, CheckpointOptions]>([
    ["llama", {}],
    ["qwen2", { architecture: "Qwen2ForCausalLM" }],
  ])("%s: identical greedy text", async (label, options) => {
    const { out, reference } = convert(options);
    const text = await greedyText(dir, out, `${label}-converted.gguf`);
    expect(text.length).toBeGreaterThan(0);
    expect(text).toBe(await greedyText(dir, reference, `${label}-reference.gguf`));
    expect(existsSync(join(dir, `${label}-converted.gguf`))).toBe(true);
  });
});
