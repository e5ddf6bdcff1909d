import { describe, expect, it } from "vitest";
import {
  architectureMetadata,
  type GgufArchitecture,
  llama3RopeFactors,
  parseCheckpointConfig,
  permutedHeads,
  planCheckpoint,
  readsSentencePiece,
} from "./checkpoint";

const base = {
  architectures: ["LlamaForCausalLM"],
  hidden_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  intermediate_size: 128,
};
const parse = (over: Record<string, unknown>) => parseCheckpointConfig(JSON.stringify({ ...base, ...over }));

describe("config.json", () => {
  it.each<[string, Record<string, unknown>, string]>([
    ["0 heads", { num_attention_heads: 0 }, "config.json num_attention_heads must be an integer from 1 to 1024, got 0"],
    ["hidden not divisible", { num_attention_heads: 3, num_key_value_heads: 1 }, "hidden_size 64 is not divisible"],
    ["kv heads not dividing heads", { num_key_value_heads: 3 }, "num_attention_heads 4 is not a multiple of 3"],
    ["absurd layers", { num_hidden_layers: 100_000 }, "num_hidden_layers must be an integer from 1 to 1024"],
    ["fractional width", { hidden_size: 64.5 }, "hidden_size must be an integer"],
    ["negative epsilon", { rms_norm_eps: -1 }, "rms_norm_eps must be a number"],
    ["unknown architecture", { architectures: ["GPT2LMHeadModel"] }, 'unsupported architecture "GPT2LMHeadModel"'],
    ["no architectures", { architectures: [] }, "unknown architecture"],
    [
      "a multimodal Gemma 3 (text only converts)",
      { architectures: ["Gemma3ForConditionalGeneration"] },
      'unsupported architecture "Gemma3ForConditionalGeneration"',
    ],
    [
      "a negative Gemma 2 soft-cap",
      { architectures: ["Gemma2ForCausalLM"], attn_logit_softcapping: -5 },
      "attn_logit_softcapping must be a number in (0, 1000000]",
    ],
    [
      "a fractional sliding window",
      { architectures: ["Gemma3ForCausalLM"], sliding_window: 10.5 },
      "sliding_window must be an integer",
    ],
    [
      "attention soft-capping on Gemma 3",
      { architectures: ["Gemma3ForCausalLM"], attn_logit_softcapping: 50 },
      "attn_logit_softcapping is not used by Gemma 3",
    ],
    [
      "Phi-3 partial rotary over 1",
      { architectures: ["Phi3ForCausalLM"], partial_rotary_factor: 2 },
      "partial_rotary_factor must be a number in (0, 1]",
    ],
    [
      "Phi-3 yarn factors",
      { architectures: ["Phi3ForCausalLM"], rope_scaling: { type: "yarn", long_factor: [1], short_factor: [1] } },
      'rope_scaling type "yarn" is not supported for Phi-3',
    ],
    [
      "a negative Phi-3 sliding window",
      { architectures: ["Phi3ForCausalLM"], sliding_window: -1 },
      "sliding_window must be an integer from 0",
    ],
  ])("refuses %s", (_label, over, message) => {
    expect(() => parse(over)).toThrow(message);
  });

  it("maps Mistral to llama, and Qwen3's explicit head_dim to key/value lengths", () => {
    expect(parse({ architectures: ["MistralForCausalLM"] }).arch).toBe("llama");
    const qwen3 = parse({ architectures: ["Qwen3ForCausalLM"], head_dim: 32 });
    const keys = Object.fromEntries(architectureMetadata(qwen3, 100).map((e) => [e.key, e.value]));
    expect(keys["qwen3.attention.key_length"]).toBe(32);
    expect(keys["qwen3.attention.value_length"]).toBe(32);
    expect(permutedHeads(qwen3, "blk.0.attn_q.weight")).toBeNull();
    expect(permutedHeads(parse({}), "blk.0.attn_k.weight")).toBe(2);
  });

  it("writes linear rope scaling as keys and llama3's as per-frequency factors", () => {
    const linear = parse({ rope_scaling: { type: "linear", factor: 2 } });
    const keys = Object.fromEntries(architectureMetadata(linear, 100).map((e) => [e.key, e.value]));
    expect(keys["llama.rope.scaling.type"]).toBe("linear");
    expect(keys["llama.rope.scaling.factor"]).toBe(2);
    const llama3 = parse({ rope_theta: 500000, rope_scaling: { rope_type: "llama3", factor: 8 } });
    const factors = llama3RopeFactors(llama3)!;
    expect(factors).toHaveLength(8);
    expect(factors[0]).toBe(1);
    expect(factors.at(-1)).toBe(8);
  });
});

describe("Gemma 3's rope bases", () => {
  it.each<[string, Record<string, unknown>, number, number | undefined]>([
    ["top-level keys", { rope_theta: 500_000, rope_local_base_freq: 10_000 }, 500_000, 10_000],
    [
      "nested per attention kind",
      { rope_parameters: { full_attention: { rope_theta: 1e6 }, sliding_attention: { rope_theta: 10_000 } } },
      1e6,
      10_000,
    ],
    ["none: the converter's default global base", {}, 1e6, undefined],
  ])("%s", (_label, over, global, local) => {
    const config = parse({ architectures: ["Gemma3ForCausalLM"], head_dim: 16, ...over });
    const keys = Object.fromEntries(architectureMetadata(config, 100).map((e) => [e.key, e.value]));
    expect(keys["gemma3.rope.freq_base"]).toBe(global);
    expect(keys["gemma3.rope.freq_base_swa"]).toBe(local);
  });
});

describe("which tokenizer a checkpoint converts from", () => {
  it.each<[GgufArchitecture, boolean, boolean, boolean]>([
    ["gemma2", true, true, true],
    ["gemma3", true, true, true],
    ["gemma3", false, true, false],
    ["phi3", true, true, true],
    ["phi3", false, true, false],
    ["llama", true, true, false],
    ["llama", true, false, true],
  ])("%s with tokenizer.model %s and tokenizer.json %s: SentencePiece %s", (arch, model, json, expected) => {
    expect(readsSentencePiece(arch, model, json)).toBe(expected);
  });
});

describe("planCheckpoint", () => {
  it("refuses a weight in a dtype it cannot convert, naming it", () => {
    const headers = new Map([
      [
        "m.safetensors",
        { tensors: [{ name: "model.embed_tokens.weight", dtype: "I32", shape: [4, 64], start: 0, end: 1024 }] },
      ],
    ]);
    expect(() => planCheckpoint(JSON.stringify(base), undefined, headers)).toThrow(
      "tensor model.embed_tokens.weight has dtype I32; only F32, F16 and BF16 can be converted",
    );
  });
});
