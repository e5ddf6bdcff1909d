import { describe, expect, it } from "vitest";
import { architectureMetadata, parseCheckpointConfig } from "./checkpoint";

const base = {
  hidden_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  intermediate_size: 128,
};
const scalingKeys = (hf: string, over: Record<string, unknown>) => {
  const config = parseCheckpointConfig(JSON.stringify({ ...base, architectures: [hf], ...over }));
  return Object.fromEntries(
    architectureMetadata(config, 100)
      .filter((e) => e.key.includes(".rope.scaling."))
      .map((e) => [e.key, e.value]),
  );
};

describe("rope scaling keys, as convert_hf_to_gguf.py writes them", () => {
  it.each<[string, string, Record<string, unknown>, Record<string, unknown>]>([
    [
      "linear (type)",
      "LlamaForCausalLM",
      { rope_scaling: { type: "linear", factor: 2 } },
      {
        "llama.rope.scaling.type": "linear",
        "llama.rope.scaling.factor": 2,
      },
    ],
    ["linear without a factor: nothing", "LlamaForCausalLM", { rope_scaling: { type: "linear" } }, {}],
    [
      "yarn (rope_type), qwen2 with every knob",
      "Qwen2ForCausalLM",
      {
        rope_scaling: {
          rope_type: "yarn",
          factor: 4,
          original_max_position_embeddings: 32768,
          extrapolation_factor: 1,
          attention_factor: 0.5,
          beta_fast: 32,
          beta_slow: 1,
        },
      },
      {
        "qwen2.rope.scaling.type": "yarn",
        "qwen2.rope.scaling.factor": 4,
        "qwen2.rope.scaling.original_context_length": 32768,
        "qwen2.rope.scaling.yarn_ext_factor": 1,
        "qwen2.rope.scaling.yarn_attn_factor": 0.5,
        "qwen2.rope.scaling.yarn_beta_fast": 32,
        "qwen2.rope.scaling.yarn_beta_slow": 1,
      },
    ],
    [
      "yarn (type), qwen3, the original length from the top level, attn_factor's old name",
      "Qwen3ForCausalLM",
      { original_max_position_embeddings: 4096, rope_scaling: { type: "yarn", factor: 2, attn_factor: 0.7 } },
      {
        "qwen3.rope.scaling.type": "yarn",
        "qwen3.rope.scaling.factor": 2,
        "qwen3.rope.scaling.original_context_length": 4096,
        "qwen3.rope.scaling.yarn_attn_factor": 0.7,
      },
    ],
    [
      "yarn in rope_parameters (newer transformers)",
      "LlamaForCausalLM",
      { rope_parameters: { rope_type: "yarn", factor: 8, original_max_position_embeddings: 8192, rope_theta: 1e4 } },
      {
        "llama.rope.scaling.type": "yarn",
        "llama.rope.scaling.factor": 8,
        "llama.rope.scaling.original_context_length": 8192,
      },
    ],
    [
      "longrope: the type alone",
      "LlamaForCausalLM",
      { rope_scaling: { type: "longrope", factor: 4 } },
      {
        "llama.rope.scaling.type": "longrope",
      },
    ],
    [
      "su, longrope's old name",
      "Qwen2ForCausalLM",
      { rope_scaling: { type: "su" } },
      {
        "qwen2.rope.scaling.type": "longrope",
      },
    ],
    ["dynamic: nothing", "LlamaForCausalLM", { rope_scaling: { type: "dynamic", factor: 2 } }, {}],
    ["llama3: a tensor, no keys", "LlamaForCausalLM", { rope_scaling: { rope_type: "llama3", factor: 8 } }, {}],
    ["unknown type: nothing", "LlamaForCausalLM", { rope_scaling: { type: "ntk-by-parts", factor: 2 } }, {}],
    ["null", "LlamaForCausalLM", { rope_scaling: null }, {}],
  ])("%s", (_label, hf, over, expected) => {
    expect(scalingKeys(hf, over)).toEqual(expected);
  });

  it.each<[string, Record<string, unknown>, string]>([
    ["yarn without its original length", { type: "yarn", factor: 4 }, "original_max_position_embeddings is required"],
    ["a negative factor", { type: "yarn", factor: -1 }, "rope_scaling.factor is out of range"],
    [
      "an infinite beta",
      { type: "yarn", factor: 2, original_max_position_embeddings: 4096, beta_fast: 1e300 },
      "beta_fast",
    ],
    [
      "a fractional original length",
      { type: "yarn", factor: 2, original_max_position_embeddings: 4096.5 },
      "original_max_position_embeddings must be an integer",
    ],
  ])("refuses %s", (_label, rope_scaling, message) => {
    expect(() => scalingKeys("LlamaForCausalLM", { rope_scaling })).toThrow(message);
  });
});
