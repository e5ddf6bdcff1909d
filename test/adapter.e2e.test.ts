/**
 * A PEFT LoRA adapter on a base model across processes, as `ollama create` with `FROM base` and `ADAPTER ./dir` does
 * it: the official `ollama` client uploads adapter_config.json and adapter_model.safetensors and sends the `adapters`
 * map; the edge checks the adapter against the base, the real runner converts it in its child process, and inference
 * applies it: greedy text changes from the base's, and equals what the independently built GGUF adapter
 * (adapter-fixture.ts) gives on the same base.
 */
import { beforeAll, describe, expect, inject, it } from "vitest";
import { type AdapterArchitecture, tinyAdapter } from "../gpu-runner/src/convert/adapter-fixture";
import { tinyCheckpoint } from "../gpu-runner/src/convert/checkpoint-fixture";
import { tinySentencePieceCheckpoint } from "../gpu-runner/src/convert/sentencepiece-fixture";
import { TestTenant } from "./harness-tenant";

let tenant: TestTenant;

beforeAll(async () => {
  tenant = await TestTenant.create(inject("stack"), "adapter");
});

describe("create with a safetensors LoRA adapter", () => {
  it.each<[AdapterArchitecture, () => Uint8Array, string[]?]>([
    ["llama", () => tinyCheckpoint({ seed: 31, architecture: "LlamaForCausalLM" }).reference],
    ["qwen2", () => tinyCheckpoint({ seed: 31, architecture: "Qwen2ForCausalLM" }).reference],
    [
      "phi3",
      () => tinySentencePieceCheckpoint({ seed: 21, architecture: "Phi3ForCausalLM" }).reference,
      ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
    ],
  ])(
    "%s: converted on the runner, applied by inference, as the reference GGUF adapter is",
    async (arch, baseModel, modules) => {
      await tenant.createStreaming({
        model: `${arch}-base`,
        files: await tenant.uploadAll(new Map([["model.gguf", baseModel()]])),
      });
      const { files, reference } = tinyAdapter({ architecture: arch, alpha: 16, modules });

      const statuses = await tenant.createStreaming({
        model: `${arch}-tuned`,
        from: `${arch}-base`,
        adapters: await tenant.uploadAll(files),
      });
      expect(statuses).toContain("converting adapter");
      expect(statuses.slice(-2)).toEqual(["writing manifest", "success"]);
      await tenant.createStreaming({
        model: `${arch}-tuned-reference`,
        from: `${arch}-base`,
        adapters: await tenant.uploadAll(new Map([["adapter.gguf", reference]])),
      });

      const plain = await tenant.greedy(`${arch}-base`);
      const tuned = await tenant.greedy(`${arch}-tuned`);
      expect(tuned?.length).toBeGreaterThan(0);
      expect(tuned).not.toBe(plain);
      expect(tuned).toBe(await tenant.greedy(`${arch}-tuned-reference`));
      expect((await tenant.ollama.show({ model: `${arch}-tuned` })).modelfile).toMatch(
        /^ADAPTER sha256:[0-9a-f]{64}$/m,
      );
    },
  );

  it("refuses an adapter made for another base, naming the tensor, and creates nothing", async () => {
    const base = tinyCheckpoint({ seed: 32, hidden: 128 }).reference;
    await tenant.createStreaming({
      model: "wide-base",
      files: await tenant.uploadAll(new Map([["model.gguf", base]])),
    });
    const { files } = tinyAdapter();
    await expect(
      tenant.createStreaming({ model: "misfit", from: "wide-base", adapters: await tenant.uploadAll(files) }),
    ).rejects.toThrow("do not fit the base model's blk.0.attn_q.weight");
    expect((await tenant.ollama.list()).models.map((m) => m.name)).not.toContain("misfit:latest");
  });
});
