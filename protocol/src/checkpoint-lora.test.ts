import { describe, expect, it } from "vitest";
import { type AdapterBase, adapterMetadata, planAdapter } from "./checkpoint-lora";
import type { SafetensorsTensor } from "./safetensors";

// A llama base: 64 wide, 4 heads (2 KV) of 16, 2 layers.
const base: AdapterBase = {
  architecture: "llama",
  layers: 2,
  heads: 4,
  kvHeads: 2,
  tensors: new Map([
    ["blk.0.attn_q.weight", [64, 64]],
    ["blk.0.attn_k.weight", [64, 32]],
    ["blk.1.attn_q.weight", [64, 64]],
  ]),
};
const config = { r: 4, lora_alpha: 8, target_modules: ["q_proj", "k_proj"] };
let at = 0;
const t = (name: string, shape: number[], dtype = "F32"): SafetensorsTensor => {
  const bytes = shape.reduce((a, b) => a * b, 1) * 4;
  const tensor = { name, dtype, shape, start: at, end: at + bytes };
  at += bytes;
  return tensor;
};
const lora = (layer: number, module: string, side: "A" | "B", shape: number[], dtype?: string) =>
  t(`base_model.model.model.layers.${layer}.self_attn.${module}.lora_${side}.weight`, shape, dtype);
const mlp = (layer: number, module: string, side: "A" | "B", shape: number[]) =>
  t(`base_model.model.model.layers.${layer}.mlp.${module}.lora_${side}.weight`, shape);
// Phi-3 of the same width: q + 2 kv = 128 rows of attn_qkv, gate + up = 256 rows of ffn_up.
const phi3: AdapterBase = {
  ...base,
  architecture: "phi3",
  tensors: new Map([
    ["blk.0.attn_qkv.weight", [64, 128]],
    ["blk.0.ffn_up.weight", [64, 256]],
  ]),
};
const good = () => [
  lora(0, "q_proj", "A", [4, 64]),
  lora(0, "q_proj", "B", [64, 4]),
  lora(0, "k_proj", "A", [4, 64]),
  lora(0, "k_proj", "B", [32, 4]),
];
const plan = (over: Record<string, unknown>, tensors: SafetensorsTensor[], b: AdapterBase = base) =>
  planAdapter(JSON.stringify({ ...config, ...over }), "adapter_model.safetensors", tensors, b);

describe("planAdapter", () => {
  it("pairs lora_A/lora_B under GGUF names, lora_b of Q by the heads and of K by the KV heads", () => {
    const p = plan({}, good());
    expect(p.tensors.map((x) => [x.name, x.permuteHeads])).toEqual([
      ["blk.0.attn_q.weight.lora_a", null],
      ["blk.0.attn_q.weight.lora_b", 4],
      ["blk.0.attn_k.weight.lora_a", null],
      ["blk.0.attn_k.weight.lora_b", 2],
    ]);
    expect(Object.fromEntries(adapterMetadata(p).map((e) => [e.key, e.value]))).toEqual({
      "general.architecture": "llama",
      "general.type": "adapter",
      "adapter.type": "lora",
      "adapter.lora.alpha": 8,
      "general.quantization_version": 2,
    });
    const qwen = plan({}, good(), { ...base, architecture: "qwen2" });
    expect(qwen.tensors.every((x) => x.permuteHeads === null)).toBe(true);
  });

  it.each<[string, Record<string, unknown>, () => SafetensorsTensor[], string, AdapterBase?]>([
    ["r missing", { r: undefined }, good, "adapter_config.json r must be an integer from 1 to 4096"],
    ["alpha missing", { lora_alpha: undefined }, good, "lora_alpha must be a number"],
    [
      "an unknown target module",
      { target_modules: ["q_proj", "c_attn"] },
      good,
      'target module "c_attn" is not supported',
    ],
    ["DoRA", { use_dora: true }, good, "DoRA adapters (use_dora) are not supported"],
    ["another PEFT type", { peft_type: "IA3" }, good, 'peft_type "IA3" is not supported'],
    ["per-module ranks", { rank_pattern: { q_proj: 8 } }, good, "rank_pattern is not supported"],
    ["modules_to_save", { modules_to_save: ["lm_head"] }, good, "modules_to_save is not supported"],
    [
      "a rank other than r",
      {},
      () => [lora(0, "q_proj", "A", [8, 64]), lora(0, "q_proj", "B", [64, 8])],
      "do not have rank r=4",
    ],
    [
      "A's rank unlike B's",
      {},
      () => [lora(0, "q_proj", "A", [4, 64]), lora(0, "q_proj", "B", [64, 2])],
      "do not have rank r=4",
    ],
    ["a lora_A without its lora_B", {}, () => [lora(0, "q_proj", "A", [4, 64])], "has no lora_B beside it"],
    ["a tensor twice", {}, () => [...good(), lora(0, "q_proj", "A", [4, 64])], "appears twice"],
    [
      "a module target_modules does not list",
      {},
      () => [lora(0, "v_proj", "A", [4, 64]), lora(0, "v_proj", "B", [32, 4])],
      "target_modules does not list",
    ],
    [
      "a layer the base lacks",
      {},
      () => [lora(5, "q_proj", "A", [4, 64]), lora(5, "q_proj", "B", [64, 4])],
      "is for layer 5; the base model has 2",
    ],
    [
      "a weight the base lacks",
      {},
      () => [lora(1, "k_proj", "A", [4, 64]), lora(1, "k_proj", "B", [32, 4])],
      "the base model has no tensor blk.1.attn_k.weight",
    ],
    [
      "shapes of another base",
      {},
      () => [lora(0, "q_proj", "A", [4, 128]), lora(0, "q_proj", "B", [128, 4])],
      "do not fit the base model's blk.0.attn_q.weight (64 × 64)",
    ],
    [
      "embeddings",
      {},
      () => [t("base_model.model.model.embed_tokens.lora_embedding_A", [4, 100])],
      "unexpected tensor base_model.model.model.embed_tokens.lora_embedding_A",
    ],
    [
      "an integer dtype",
      {},
      () => [lora(0, "q_proj", "A", [4, 64], "I32"), lora(0, "q_proj", "B", [64, 4])],
      "has dtype I32",
    ],
    ["no LoRA tensors", {}, () => [], "the adapter has no LoRA tensors"],
    [
      "a base architecture without adapters",
      {},
      good,
      "LoRA adapters on bert models are not supported (only llama, qwen2, qwen3, gemma2, gemma3, phi3)",
      { ...base, architecture: "bert" },
    ],
    [
      "q_proj on a phi3 base (fused into qkv_proj)",
      {},
      good,
      "adapter tensor base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight targets q_proj, but phi3 " +
        "models fuse it into qkv_proj: a LoRA on a part of a fused weight cannot be applied (train it on qkv_proj)",
      phi3,
    ],
    [
      "up_proj on a phi3 base (fused into gate_up_proj)",
      { target_modules: ["up_proj"] },
      () => [mlp(0, "up_proj", "A", [4, 64]), mlp(0, "up_proj", "B", [128, 4])],
      "targets up_proj, but phi3 models fuse it into gate_up_proj",
      phi3,
    ],
    [
      "qkv_proj on a llama base",
      { target_modules: ["qkv_proj"] },
      () => [lora(0, "qkv_proj", "A", [4, 64]), lora(0, "qkv_proj", "B", [128, 4])],
      "targets qkv_proj, which llama models do not have",
    ],
  ])("refuses %s", (_label, over, tensors, message, b) => {
    expect(() => plan(over, tensors(), b)).toThrow(message);
  });

  it.each(["gemma2", "gemma3"])("%s: llama's modules under llama's names, nothing permuted", (architecture) => {
    const p = plan({}, good(), { ...base, architecture });
    expect(p.architecture).toBe(architecture);
    expect(p.tensors.map((x) => [x.name, x.permuteHeads])).toEqual([
      ["blk.0.attn_q.weight.lora_a", null],
      ["blk.0.attn_q.weight.lora_b", null],
      ["blk.0.attn_k.weight.lora_a", null],
      ["blk.0.attn_k.weight.lora_b", null],
    ]);
  });

  it("phi3: the fused qkv_proj and gate_up_proj onto attn_qkv and ffn_up", () => {
    const p = plan(
      { target_modules: ["qkv_proj", "gate_up_proj"] },
      [
        lora(0, "qkv_proj", "A", [4, 64]),
        lora(0, "qkv_proj", "B", [128, 4]),
        mlp(0, "gate_up_proj", "A", [4, 64]),
        mlp(0, "gate_up_proj", "B", [256, 4]),
      ],
      phi3,
    );
    expect(p.tensors.map((x) => [x.name, x.permuteHeads])).toEqual([
      ["blk.0.attn_qkv.weight.lora_a", null],
      ["blk.0.attn_qkv.weight.lora_b", null],
      ["blk.0.ffn_up.weight.lora_a", null],
      ["blk.0.ffn_up.weight.lora_b", null],
    ]);
  });

  it("takes PEFT's string target_modules, checking each tensor's module instead", () => {
    expect(plan({ target_modules: "all-linear" }, good()).tensors).toHaveLength(4);
  });
});
