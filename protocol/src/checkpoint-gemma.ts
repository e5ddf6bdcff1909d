/**
 * Gemma 2 and Gemma 3 (text, `Gemma2ForCausalLM` / `Gemma3ForCausalLM`) as llama.cpp's `gemma2` / `gemma3`, by the
 * rules of convert_hf_to_gguf.py's Gemma2Model and Gemma3Model: a norm before and after both attention and the
 * feed-forward, every RMS norm weight stored with Gemma's `1 + w` folded in, the embedding reused as the output
 * (Gemma 2 drops a stray lm_head; llama.cpp scales the embedding by √hidden itself), logit soft-capping (2),
 * sliding-window attention and, for Gemma 3, q/k norms and a separate rope base for the local layers.
 */
import type { CheckpointConfig } from "./checkpoint";
import {
  decoderExpectedTensors,
  decoderMetadata,
  type LayerExtras,
  qkNormTensors,
  type TensorShapes,
} from "./checkpoint-decoder";
import { ApiError } from "./errors";
import { type GgufMetadataEntry, kv } from "./gguf/writer";

export interface GemmaParams {
  attnSoftcap?: number;
  finalSoftcap?: number;
  slidingWindow?: number;
  /** Gemma 3's rope base for the sliding-window layers (`rope_local_base_freq`). */
  ropeLocalTheta?: number;
  /** Gemma 3's global rope base when newer configs nest it (`rope_parameters.full_attention.rope_theta`). */
  ropeTheta?: number;
}

/** HF layer parts whose GGUF names differ from llama's (Gemma's post_attention_layernorm is a post-norm). */
export const GEMMA_LAYER_NAMES: Readonly<Record<string, string>> = {
  post_attention_layernorm: "post_attention_norm",
  pre_feedforward_layernorm: "ffn_norm",
  post_feedforward_layernorm: "post_ffw_norm",
};

/** Reads Gemma's own config.json keys; a present value out of range is a 400, an absent one keeps llama.cpp's default. */
export function gemmaParams(c: Record<string, unknown>, arch: "gemma2" | "gemma3"): GemmaParams {
  const params: GemmaParams = {};
  const num = (key: string, max: number, from = c, path = key): number | undefined => {
    const v = from[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "number" || !(v > 0) || v > max) throw bad(`config.json ${path} must be a number in (0, ${max}]`);
    return v;
  };
  // Newer transformers nest Gemma 3's rope bases per attention kind (convert_hf_to_gguf.py reads both forms).
  const nested = (kind: string) => {
    const rope = c.rope_parameters as Record<string, Record<string, unknown> | undefined> | undefined;
    const params = typeof rope === "object" && rope !== null ? rope[kind] : undefined;
    return typeof params === "object" && params !== null
      ? num("rope_theta", 1e12, params, `rope_parameters.${kind}.rope_theta`)
      : undefined;
  };
  const window = num("sliding_window", 1 << 24);
  if (window !== undefined && !Number.isInteger(window)) throw bad("config.json sliding_window must be an integer");
  if (arch === "gemma2") {
    params.attnSoftcap = num("attn_logit_softcapping", 1e6);
    params.finalSoftcap = num("final_logit_softcapping", 1e6);
    params.slidingWindow = window;
  } else {
    if (c.attn_logit_softcapping !== undefined && c.attn_logit_softcapping !== null) {
      throw bad("config.json attn_logit_softcapping is not used by Gemma 3");
    }
    params.finalSoftcap = num("final_logit_softcapping", 1e6);
    // A pattern of 1 means every layer is global: llama.cpp then runs without a window.
    if (c.sliding_window_pattern !== 1) params.slidingWindow = window;
    params.ropeLocalTheta = num("rope_local_base_freq", 1e12) ?? nested("sliding_attention");
    params.ropeTheta = nested("full_attention");
  }
  for (const key of Object.keys(params) as (keyof GemmaParams)[]) if (params[key] === undefined) delete params[key];
  return params;
}

/** Gemma's RMS norms multiply by `1 + w`; llama.cpp multiplies by the stored weight, so the 1 is added here. */
export function gemmaNormOffset(ggufName: string): number {
  return ggufName.endsWith("norm.weight") ? 1 : 0;
}

/** Gemma's layers are llama's with a norm after attention and after the feed-forward (and Gemma 3's q/k norms). */
export function gemmaExpectedTensors(c: CheckpointConfig, vocabRows: number, hasOutput: boolean) {
  const postFfwNorm: TensorShapes = [["post_ffw_norm.weight", [c.hidden]]];
  const extras: LayerExtras = {
    afterAttention: [["post_attention_norm.weight", [c.hidden]]],
    atEnd: c.arch === "gemma3" ? [...postFfwNorm, ...qkNormTensors(c)] : postFfwNorm,
  };
  // Gemma 2 always reuses the embedding as the output; Gemma 3 keeps a head it has.
  const withOutput = c.arch === "gemma3" && (hasOutput || !c.tieEmbeddings);
  return decoderExpectedTensors(c, vocabRows, withOutput, extras);
}

/** The keys Gemma2Model / Gemma3Model write (Gemma 2 writes no rope base: llama.cpp's default 10000 is Gemma's). */
export function gemmaMetadata(c: CheckpointConfig, vocabRows: number): GgufMetadataEntry[] {
  const a = c.arch;
  const g = c.gemma ?? {};
  const entries = [
    ...decoderMetadata(c, vocabRows),
    kv.f32(`${a}.attention.layer_norm_rms_epsilon`, c.normEpsilon),
    kv.u32(`${a}.attention.key_length`, c.headDim),
    kv.u32(`${a}.attention.value_length`, c.headDim),
  ];
  if (a === "gemma3") entries.push(kv.f32("gemma3.rope.freq_base", g.ropeTheta ?? c.ropeTheta));
  if (g.ropeLocalTheta !== undefined) entries.push(kv.f32(`${a}.rope.freq_base_swa`, g.ropeLocalTheta));
  if (a === "gemma3" && c.ropeScaling?.type === "linear") {
    entries.push(
      kv.str("gemma3.rope.scaling.type", "linear"),
      kv.f32("gemma3.rope.scaling.factor", c.ropeScaling.factor),
    );
  }
  if (g.attnSoftcap !== undefined) entries.push(kv.f32(`${a}.attn_logit_softcapping`, g.attnSoftcap));
  if (g.finalSoftcap !== undefined) entries.push(kv.f32(`${a}.final_logit_softcapping`, g.finalSoftcap));
  if (g.slidingWindow !== undefined) entries.push(kv.u32(`${a}.attention.sliding_window`, g.slidingWindow));
  return entries;
}

function bad(message: string): ApiError {
  return new ApiError(400, message);
}
