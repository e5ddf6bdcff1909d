/**
 * Create from a safetensors checkpoint across processes, as `ollama create` with `FROM ./dir` does it: the official
 * `ollama` client uploads each file as a blob and sends the `files` map; the edge checks the checkpoint and hands it to
 * the real runner, which converts it in its child process and stores the GGUF through the edge. The converted model
 * then answers greedily exactly as the GGUF built independently from the same weights (checkpoint-fixture.ts, and
 * sentencepiece-fixture.ts for the Gemma and Phi-3 checkpoints with a SentencePiece tokenizer.model) does.
 */
import { beforeAll, describe, expect, inject, it } from "vitest";
import { tinyBertCheckpoint } from "../gpu-runner/src/convert/bert-fixture";
import { type CheckpointOptions, tinyCheckpoint } from "../gpu-runner/src/convert/checkpoint-fixture";
import {
  type SentencePieceCheckpointOptions,
  tinySentencePieceCheckpoint,
} from "../gpu-runner/src/convert/sentencepiece-fixture";
import { TestTenant } from "./harness-tenant";

let tenant: TestTenant;

beforeAll(async () => {
  tenant = await TestTenant.create(inject("stack"), "convert");
});

describe("create from a safetensors checkpoint", () => {
  it.each<[string, CheckpointOptions]>([
    ["llama", { seed: 21 }],
    ["llama-sharded-bf16", { seed: 22, shards: 2, dtype: "BF16" }],
    ["qwen2", { seed: 23, architecture: "Qwen2ForCausalLM" }],
  ])("%s: converts with Ollama's progress and answers as the reference GGUF does", async (name, options) => {
    const { files, reference } = tinyCheckpoint(options);
    const statuses = await tenant.createStreaming({ model: `${name}-converted`, files: await tenant.uploadAll(files) });
    expect(statuses[0]).toBe("converting model");
    expect(statuses.some((s) => /^creating new layer sha256:[0-9a-f]{64}$/.test(s))).toBe(true);
    expect(statuses.slice(-2)).toEqual(["writing manifest", "success"]);

    const referenceDigest = await tenant.uploadBlob(reference);
    await tenant.createStreaming({ model: `${name}-reference`, files: { "model.gguf": referenceDigest } });
    const text = await tenant.greedy(`${name}-converted`);
    expect(text?.length).toBeGreaterThan(0);
    expect(text).toBe(await tenant.greedy(`${name}-reference`));
  });

  it.each<[string, SentencePieceCheckpointOptions]>([
    ["gemma2", { architecture: "Gemma2ForCausalLM", seed: 31 }],
    ["gemma3", { architecture: "Gemma3ForCausalLM", seed: 32 }],
    ["phi3", { architecture: "Phi3ForCausalLM", seed: 21, longrope: true }],
  ])("%s with a SentencePiece tokenizer.model: answers as the reference GGUF does", async (name, options) => {
    const { files, reference } = tinySentencePieceCheckpoint(options);
    const statuses = await tenant.createStreaming({ model: `${name}-converted`, files: await tenant.uploadAll(files) });
    expect(statuses.slice(-2)).toEqual(["writing manifest", "success"]);
    await tenant.createStreaming({
      model: `${name}-reference`,
      files: { "model.gguf": await tenant.uploadBlob(reference) },
    });
    expect((await tenant.ollama.show({ model: `${name}-converted` })).details.family).toBe(name);
    const text = await tenant.greedy(`${name}-converted`);
    expect(text?.length).toBeGreaterThan(0);
    expect(text).toBe(await tenant.greedy(`${name}-reference`));
  });

  it("refuses a truncated tokenizer.model before any conversion, and creates nothing", async () => {
    const { files } = tinySentencePieceCheckpoint({ architecture: "Gemma2ForCausalLM", seed: 34 });
    files.set("tokenizer.model", files.get("tokenizer.model")!.subarray(0, 40));
    const map = await tenant.uploadAll(files);
    await expect(tenant.createStreaming({ model: "gemma-bad", files: map })).rejects.toThrow(
      /invalid tokenizer\.model: /,
    );
    expect((await tenant.ollama.list()).models.map((m) => m.name)).not.toContain("gemma-bad:latest");
  });

  it("bert: /api/embed on the converted model gives the reference GGUF's vectors", async () => {
    const { files, reference } = tinyBertCheckpoint();
    await tenant.createStreaming({ model: "bert-converted", files: await tenant.uploadAll(files) });
    await tenant.createStreaming({
      model: "bert-reference",
      files: { "model.gguf": await tenant.uploadBlob(reference) },
    });
    const embed = async (model: string) =>
      (await tenant.ollama.embed({ model, input: ["the quick brown fox", "hello world"], keep_alive: 0 })).embeddings;
    const vectors = await embed("bert-converted");
    expect(vectors).toHaveLength(2);
    expect(vectors[0]).toHaveLength(32);
    expect(vectors).toEqual(await embed("bert-reference"));
  });

  it("converts and quantizes in one request", async () => {
    const { files } = tinyCheckpoint({ seed: 24 });
    const statuses = await tenant.createStreaming({
      model: "llama-q8",
      files: await tenant.uploadAll(files),
      quantize: "q8_0",
    });
    expect(statuses).toContain("converting model");
    expect(statuses).toContain("quantizing F16 model to Q8_0");
    expect(statuses.at(-1)).toBe("success");
    expect((await tenant.ollama.show({ model: "llama-q8" })).details.quantization_level).toBe("Q8_0");
    const answer = await tenant.ollama.generate({
      model: "llama-q8",
      prompt: "hello",
      keep_alive: 0,
      options: { num_predict: 4 },
    });
    expect(answer.eval_count).toBe(4);
  });

  it("refuses an architecture it cannot convert, naming it, and creates nothing", async () => {
    const { files } = tinyCheckpoint({ seed: 25 });
    files.set("config.json", new TextEncoder().encode('{"architectures":["FalconForCausalLM"]}'));
    const map = await tenant.uploadAll(files);
    await expect(tenant.createStreaming({ model: "falcon", files: map })).rejects.toThrow(
      'unsupported architecture "FalconForCausalLM"',
    );
    expect((await tenant.ollama.list()).models.map((m) => m.name)).not.toContain("falcon:latest");
  });
});
