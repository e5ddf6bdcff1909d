/**
 * Phi-3 (`Phi3ForCausalLM`) as llama.cpp's `phi3`, by the rules of convert_hf_to_gguf.py's Phi3MiniModel: the
 * fused `qkv_proj` and `gate_up_proj` stay fused (llama.cpp's `attn_qkv`, and `ffn_up` at twice the feed-forward
 * width), the rotary dimension follows `partial_rotary_factor`, and longrope scaling (`su`/`longrope`) becomes the
 * `rope_factors_long` / `rope_factors_short` tensors with its attention factor as a key.
 */
import type { CheckpointConfig } from "./checkpoint";
import { decoderGlobalTensors } from "./checkpoint-decoder";
import { ApiError } from "./errors";
import { type GgufMetadataEntry, kv } from "./gguf/writer";

export interface Phi3Params {
  ropeDims: number;
  /** The context the model was trained at before rope scaling. */
  originalContext: number;
  /** 0 when the model attends everywhere (Phi-4); llama.cpp keys on it. */
  slidingWindow: number;
  longrope?: { long: Float32Array; short: Float32Array; attnFactor: number };
}

export const PHI3_LAYER_NAMES: Readonly<Record<string, string>> = {
  "self_attn.qkv_proj": "attn_qkv",
  "mlp.gate_up_proj": "ffn_up",
};

export function phi3Params(c: Record<string, unknown>, config: CheckpointConfig): Phi3Params {
  const scaling =
    typeof c.rope_scaling === "object" && c.rope_scaling !== null ? (c.rope_scaling as Record<string, unknown>) : {};
  const fraction = c.partial_rotary_factor ?? scaling.partial_rotary_factor ?? 1;
  if (typeof fraction !== "number" || !(fraction > 0) || fraction > 1) {
    throw bad("config.json partial_rotary_factor must be a number in (0, 1]");
  }
  const dims = Math.floor(Math.floor(fraction * config.hidden) / config.heads);
  if (dims < 2 || dims % 2 !== 0) throw bad(`config.json implies a rotary dimension of ${dims}; it must be even`);
  const original =
    scaling.original_max_position_embeddings ?? c.original_max_position_embeddings ?? config.contextLength;
  if (typeof original !== "number" || !Number.isInteger(original) || original < 1 || original > 1 << 24) {
    throw bad("config.json original_max_position_embeddings must be an integer from 1 to 16777216");
  }
  const window = c.sliding_window ?? 0;
  if (typeof window !== "number" || !Number.isInteger(window) || window < 0 || window > 1 << 24) {
    throw bad("config.json sliding_window must be an integer from 0 to 16777216");
  }
  const params: Phi3Params = { ropeDims: dims, originalContext: original, slidingWindow: window };
  if (scaling.long_factor !== undefined && scaling.long_factor !== null) {
    params.longrope = longrope(scaling, dims, config.contextLength / original, original);
  }
  return params;
}

function longrope(s: Record<string, unknown>, dims: number, scale: number, original: number) {
  const type = String(s.rope_type ?? s.type ?? "").toLowerCase();
  if (type !== "su" && type !== "longrope") {
    throw bad(`config.json rope_scaling type ${JSON.stringify(type)} is not supported for Phi-3 (longrope)`);
  }
  const factors = (key: string): Float32Array => {
    const v = s[key];
    if (!Array.isArray(v) || v.length !== dims / 2 || v.some((f) => typeof f !== "number" || !Number.isFinite(f))) {
      throw bad(`config.json rope_scaling.${key} must be ${dims / 2} numbers`);
    }
    return Float32Array.from(v as number[]);
  };
  const attnFactor = scale > 1 ? Math.sqrt(1 + Math.log(scale) / Math.log(original)) : 1;
  return { long: factors("long_factor"), short: factors("short_factor"), attnFactor };
}

export function phi3ExpectedTensors(c: CheckpointConfig, vocabRows: number, hasOutput: boolean) {
  const q = c.heads * c.headDim;
  const kvWidth = c.kvHeads * c.headDim;
  const expected = decoderGlobalTensors(c, vocabRows, hasOutput || !c.tieEmbeddings);
  for (let i = 0; i < c.layers; i++) {
    for (const [name, shape] of [
      ["attn_norm.weight", [c.hidden]],
      ["attn_qkv.weight", [q + 2 * kvWidth, c.hidden]],
      ["attn_output.weight", [c.hidden, q]],
      ["ffn_norm.weight", [c.hidden]],
      ["ffn_up.weight", [2 * c.feedForward, c.hidden]],
      ["ffn_down.weight", [c.hidden, c.feedForward]],
    ] as const) {
      expected.set(`blk.${i}.${name}`, [...shape]);
    }
  }
  return expected;
}

/** The keys Phi3MiniModel writes. */
export function phi3Metadata(c: CheckpointConfig, vocabRows: number): GgufMetadataEntry[] {
  const p = c.phi3!;
  const entries = [
    kv.str("general.architecture", "phi3"),
    kv.u32("phi3.vocab_size", vocabRows),
    kv.u32("phi3.context_length", c.contextLength),
    kv.u32("phi3.rope.scaling.original_context_length", p.originalContext),
    kv.u32("phi3.embedding_length", c.hidden),
    kv.u32("phi3.feed_forward_length", c.feedForward),
    kv.u32("phi3.block_count", c.layers),
    kv.u32("phi3.attention.head_count", c.heads),
    kv.u32("phi3.attention.head_count_kv", c.kvHeads),
    kv.f32("phi3.attention.layer_norm_rms_epsilon", c.normEpsilon),
    kv.u32("phi3.rope.dimension_count", p.ropeDims),
    kv.f32("phi3.rope.freq_base", c.ropeTheta),
    kv.u32("phi3.attention.sliding_window", p.slidingWindow),
  ];
  if (p.longrope) entries.push(kv.f32("phi3.rope.scaling.attn_factor", p.longrope.attnFactor));
  return entries;
}

/** Longrope's per-frequency factors as the tensors llama.cpp's phi3 reads (shared by every layer). */
export function phi3RopeTensors(c: CheckpointConfig): { name: string; values: Float32Array }[] {
  const rope = c.phi3?.longrope;
  if (!rope) return [];
  return [
    { name: "rope_factors_long.weight", values: rope.long },
    { name: "rope_factors_short.weight", values: rope.short },
  ];
}

function bad(message: string): ApiError {
  return new ApiError(400, message);
}
