import type { ResolvedModel } from "@corral/protocol/runner";
import { describe, expect, it } from "vitest";
import { estimateModelBytes } from "../src/relay/lease";
import { modelShape } from "../src/store/gguf";

const MiB = 1024 * 1024;
const model: ResolvedModel = {
  name: "m",
  digest: "d",
  model_blob: `sha256:${"a".repeat(64)}`,
  model_size: 50 * MiB,
  adapters: [{ digest: `sha256:${"b".repeat(64)}`, size: MiB }],
  params: {},
  messages: [],
};
// The 26M benchmark llama: 8 layers, 8 heads of 64, 4 KV heads, trained on 4096 tokens.
const shape = modelShape({
  mediaType: "",
  format: "gguf",
  family: "llama",
  parameter_size: "26M",
  quantization_level: "F16",
  context_length: 4096,
  model_info: {
    "llama.block_count": 8,
    "llama.embedding_length": 512,
    "llama.attention.head_count": 8,
    "llama.attention.head_count_kv": 4,
  },
  pooling: false,
  vision: false,
});
const weights = 51 * MiB;
const kvPerToken = 8 * 4 * (64 + 64) * 2;

describe("estimateModelBytes", () => {
  it.each([
    ["the defaults (4096 context, 512 batch)", {}, weights + 4096 * kvPerToken + 512 * 512 * 16],
    ["a short context", { num_ctx: 256 }, weights + 256 * kvPerToken + 256 * 512 * 16],
    [
      "a context past the trained one (clamped, as the runner does)",
      { num_ctx: 2 ** 31 },
      weights + 4096 * kvPerToken + 512 * 512 * 16,
    ],
    ["a bigger batch", { num_ctx: 2048, num_batch: 1024 }, weights + 2048 * kvPerToken + 1024 * 512 * 16],
  ])("counts weights, KV cache and compute buffer for %s", (_label, options, expected) => {
    expect(estimateModelBytes(model, shape, options)).toBe(expected);
  });

  it("counts only the weights when the GGUF's shape is unknown", () => {
    expect(estimateModelBytes(model, null, { num_ctx: 8192 })).toBe(weights);
    expect(estimateModelBytes(model, { context_length: 4096 }, {})).toBe(weights);
  });
});
