import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bytesSource, readGgufHeader } from "@corral/protocol";
import type { Token } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testLlama } from "../test-support";
import { type CheckpointOptions, tinyCheckpoint } from "./checkpoint-fixture";
import { convertCheckpoint } from "./convert";

// yarn and longrope scaling keys through the converter, and llama.cpp loading and running what it wrote.

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "corral-rope-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function convertWithScaling(options: CheckpointOptions, scaling: Record<string, unknown>): string {
  const { files } = tinyCheckpoint(options);
  const config = JSON.parse(new TextDecoder().decode(files.get("config.json")));
  config.rope_scaling = scaling;
  files.set("config.json", new TextEncoder().encode(JSON.stringify(config)));
  const paths = new Map<string, string>();
  for (const [name, bytes] of files) {
    const path = join(dir, `${Math.random().toString(36).slice(2)}-${name}`);
    writeFileSync(path, bytes);
    paths.set(name, path);
  }
  const output = join(dir, `${Math.random().toString(36).slice(2)}.gguf`);
  convertCheckpoint({ files: paths, output });
  return output;
}

async function firstTokens(path: string): Promise<Token[]> {
  const model = await (await testLlama()).loadModel({ modelPath: path, gpuLayers: 0 });
  try {
    const context = await model.createContext({ contextSize: 128, threads: 1, sequences: 1 });
    try {
      const tokens: Token[] = [];
      for await (const token of context.getSequence().evaluate(model.tokenize("hello"), { temperature: 0 })) {
        tokens.push(token);
        if (tokens.length >= 3) break;
      }
      return tokens;
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}

describe("rope scaling in converted models", () => {
  it.each<[string, CheckpointOptions, Record<string, unknown>, Record<string, unknown>]>([
    [
      "qwen2 yarn",
      { architecture: "Qwen2ForCausalLM" },
      { type: "yarn", factor: 4, original_max_position_embeddings: 1024, beta_fast: 32, beta_slow: 1 },
      {
        "qwen2.rope.scaling.type": "yarn",
        "qwen2.rope.scaling.factor": 4,
        "qwen2.rope.scaling.original_context_length": 1024,
        "qwen2.rope.scaling.yarn_beta_fast": 32,
        "qwen2.rope.scaling.yarn_beta_slow": 1,
      },
    ],
    [
      "llama yarn",
      {},
      { rope_type: "yarn", factor: 2, original_max_position_embeddings: 2048 },
      {
        "llama.rope.scaling.type": "yarn",
        "llama.rope.scaling.factor": 2,
        "llama.rope.scaling.original_context_length": 2048,
      },
    ],
    [
      "qwen3 linear",
      { architecture: "Qwen3ForCausalLM" },
      { type: "linear", factor: 2 },
      {
        "qwen3.rope.scaling.type": "linear",
        "qwen3.rope.scaling.factor": 2,
      },
    ],
  ])("%s: the keys as llama.cpp writes them, and llama.cpp runs the model", async (_label, options, scaling, keys) => {
    const path = convertWithScaling(options, scaling);
    const h = await readGgufHeader(bytesSource(readFileSync(path)));
    const written = Object.fromEntries(Object.entries(h.metadata).filter(([k]) => k.includes(".rope.scaling.")));
    expect(written).toEqual(keys);
    expect(await firstTokens(path)).toHaveLength(3);
  });
});
