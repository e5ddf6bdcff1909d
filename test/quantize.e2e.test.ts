/**
 * `create` with `quantize` across processes: the official `ollama` client asks the edge, the edge hands the job to
 * the real runner, the runner rewrites the weights with llama.cpp's quantizer (FFI) and stores the result through
 * the edge; the quantized model then answers a generate on the same runner.
 */
import type { CreateRequest, Ollama, ProgressResponse } from "ollama";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { writeTinyModel } from "../gpu-runner/src/tiny-model/index";
import { TestTenant } from "./harness-tenant";

describe("create with quantize", () => {
  const tiny = writeTinyModel({ seed: 11 });
  let ollama: Ollama;

  beforeAll(async () => {
    const tenant = await TestTenant.create(inject("stack"), "quantize");
    ollama = tenant.ollama;
    const digest = await tenant.uploadBlob(tiny);
    const request = { model: "tiny-f16", files: { "tiny.gguf": digest }, stream: false };
    expect(await ollama.create(request as CreateRequest & { stream: false })).toEqual({ status: "success" });
  });

  it.each([
    ["q8_0", "Q8_0"],
    ["q4_K_M", "Q4_K_M"],
  ])("quantizes F16 weights to %s with Ollama's progress, and the model answers", async (type, level) => {
    const name = `tiny-${type.toLowerCase()}`;
    const lines: ProgressResponse[] = [];
    for await (const line of await ollama.create({ model: name, from: "tiny-f16", quantize: type, stream: true })) {
      lines.push(line);
    }
    const statuses = lines.map((l) => l.status);
    const quantizing = lines.filter((l) => l.status === `quantizing F16 model to ${level}`);
    expect(quantizing.length).toBeGreaterThan(0);
    expect(quantizing.at(-1)).toMatchObject({ total: tiny.length, completed: tiny.length });
    expect(statuses).toContain("verifying conversion");
    expect(statuses.some((s) => /^creating new layer sha256:[0-9a-f]{64}$/.test(s))).toBe(true);
    expect(statuses.slice(-2)).toEqual(["writing manifest", "success"]);

    const show = await ollama.show({ model: name });
    expect(show.details.quantization_level).toBe(level);
    const info = show.model_info as unknown as Record<string, unknown>;
    expect(info["general.file_type"]).toBe(level === "Q8_0" ? 7 : 15);
    const listed = (await ollama.list()).models.find((m) => m.name === `${name}:latest`);
    expect(listed?.size).toBeLessThan(tiny.length);

    const answer = await ollama.generate({ model: name, prompt: "hello", options: { num_predict: 4, seed: 1 } });
    expect(answer.done_reason).toBe("length");
    expect(answer.eval_count).toBe(4);
  });

  it("refuses a type Ollama does not support, and quantized weights as a source", async () => {
    await expect(ollama.create({ model: "bad", from: "tiny-f16", quantize: "q3_x" })).rejects.toThrow(
      "unsupported quantization type Q3_X - supported types are F32, F16, Q4_K_S, Q4_K_M, Q8_0",
    );
    await expect(ollama.create({ model: "bad", from: "tiny-q8_0", quantize: "q4_K_M" })).rejects.toThrow(
      "quantization is only supported for F16, BF16 and F32 models",
    );
    expect((await ollama.list()).models.map((m) => m.name)).not.toContain("bad:latest");
  });
});
