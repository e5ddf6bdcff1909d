/**
 * Tiny PEFT LoRA adapters for tests, each with the GGUF adapter llama.cpp's convert_lora_to_gguf.py gives for it,
 * built independently: lora_A and lora_B are drawn in llama.cpp's layout and written to the GGUF as they are (F32),
 * while adapter_model.safetensors gets them under PEFT's names, lora_B of llama's Q/K with its rows un-permuted (HF's
 * layout), in F32 or BF16. The base is tinyCheckpoint's reference GGUF of the same shape (sentencepiece-fixture's for
 * gemma2, gemma3 and phi3, whose shapes are the same; phi3's modules are its fused qkv_proj and gate_up_proj).
 */
import { GgmlType } from "@corral/protocol/gguf/types";
import { type GgufTensorInput, kv, writeGguf } from "@corral/protocol/gguf/writer";
import { bf16Bytes, f32Bytes, type SafetensorsInput, writeSafetensors } from "@corral/protocol/safetensors-testkit";
import { type CheckpointDtype, checkpointValues, toHfRows } from "./checkpoint-fixture";

export type AdapterArchitecture = "llama" | "qwen2" | "gemma2" | "gemma3" | "phi3";

export interface AdapterOptions {
  architecture?: AdapterArchitecture;
  rank?: number;
  alpha?: number;
  dtype?: CheckpointDtype;
  /** PEFT module names; q/k/v/o by default. */
  modules?: string[];
  seed?: number;
  /** adapter_config.json fields to add or override. */
  config?: Record<string, unknown>;
}

export interface Adapter {
  files: Map<string, Uint8Array>;
  reference: Uint8Array;
}

// tinyCheckpoint's defaults: hidden 64, 2 layers, feed-forward 128, 4 heads of 16, 2 KV heads.
const HIDDEN = 64;
const LAYERS = 2;
const FF = 128;
const HEADS = 4;
const KV_HEADS = 2;

/** PEFT module → [GGUF part, its (out, in) in the tiny model, heads its rows are permuted by on llama]. */
const MODULES: Record<string, [string, number, number, number]> = {
  q_proj: ["attn_q", HIDDEN, HIDDEN, HEADS],
  k_proj: ["attn_k", (KV_HEADS * HIDDEN) / HEADS, HIDDEN, KV_HEADS],
  v_proj: ["attn_v", (KV_HEADS * HIDDEN) / HEADS, HIDDEN, 0],
  o_proj: ["attn_output", HIDDEN, HIDDEN, 0],
  gate_proj: ["ffn_gate", FF, HIDDEN, 0],
  up_proj: ["ffn_up", FF, HIDDEN, 0],
  down_proj: ["ffn_down", HIDDEN, FF, 0],
  qkv_proj: ["attn_qkv", HIDDEN + (2 * KV_HEADS * HIDDEN) / HEADS, HIDDEN, 0],
  gate_up_proj: ["ffn_up", 2 * FF, HIDDEN, 0],
};
const MLP_MODULES = new Set(["gate_proj", "up_proj", "down_proj", "gate_up_proj"]);

export function tinyAdapter(o: AdapterOptions = {}): Adapter {
  const arch = o.architecture ?? "llama";
  const rank = o.rank ?? 4;
  const alpha = o.alpha ?? 8;
  const dtype = o.dtype ?? "F32";
  const modules = o.modules ?? ["q_proj", "k_proj", "v_proj", "o_proj"];
  const draw = checkpointValues(o.seed ?? 5, dtype);
  const encode = (values: Float32Array) => (dtype === "BF16" ? bf16Bytes(values) : f32Bytes(values));
  const hf: SafetensorsInput[] = [];
  const reference: GgufTensorInput[] = [];
  for (let i = 0; i < LAYERS; i++) {
    for (const module of modules) {
      const [part, out, inp, heads] = MODULES[module]!;
      const group = MLP_MODULES.has(module) ? "mlp" : "self_attn";
      const a = draw(rank * inp, 0.5);
      const b = draw(out * rank, 0.5);
      const hfB = arch === "llama" && heads ? toHfRows(b, out, heads) : b;
      const prefix = `base_model.model.model.layers.${i}.${group}.${module}`;
      hf.push({ name: `${prefix}.lora_A.weight`, dtype, shape: [rank, inp], data: encode(a) });
      hf.push({ name: `${prefix}.lora_B.weight`, dtype, shape: [out, rank], data: encode(hfB) });
      const name = `blk.${i}.${part}.weight`;
      reference.push({ name: `${name}.lora_a`, dims: [inp, rank], type: GgmlType.F32, data: f32Bytes(a) });
      reference.push({ name: `${name}.lora_b`, dims: [rank, out], type: GgmlType.F32, data: f32Bytes(b) });
    }
  }
  const config = {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: "tiny",
    r: rank,
    lora_alpha: alpha,
    lora_dropout: 0,
    bias: "none",
    target_modules: modules,
    use_dora: false,
    ...o.config,
  };
  const files = new Map<string, Uint8Array>([
    ["adapter_config.json", new TextEncoder().encode(JSON.stringify(config))],
    ["adapter_model.safetensors", writeSafetensors(hf)],
  ]);
  const gguf = writeGguf({
    metadata: [
      kv.str("general.architecture", arch),
      kv.str("general.type", "adapter"),
      kv.str("adapter.type", "lora"),
      kv.f32("adapter.lora.alpha", alpha),
      kv.u32("general.quantization_version", 2),
    ],
    tensors: reference,
  });
  return { files, reference: gguf };
}
