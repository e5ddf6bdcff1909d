/**
 * Rope scaling in config.json (`rope_scaling`, or `rope_parameters` in newer transformers) as llama.cpp's
 * convert_hf_to_gguf.py writes it: the type from `rope_type` or the older `type`; linear → type and factor; yarn →
 * type, factor, the original context length and the yarn knobs the config sets; longrope (or its old name `su`) → the
 * type alone (Phi-3's factor tensors are its own module's, checkpoint-phi3.ts); llama3 → a `rope_freqs.weight` tensor
 * of per-frequency factors; dynamic and anything else → nothing, as llama.cpp does. A top-level
 * `original_max_position_embeddings` counts as the scaling's own when the scaling does not say.
 */
import type { CheckpointConfig } from "./checkpoint";
import { phi3RopeTensors } from "./checkpoint-phi3";
import { ApiError } from "./errors";
import { type GgufMetadataEntry, kv } from "./gguf/writer";

export interface RopeScaling {
  type: "linear" | "llama3" | "yarn" | "longrope";
  factor: number;
  /** llama3's low and high frequency factors. */
  lowFreq: number;
  highFreq: number;
  /** The context length the model was trained with before scaling. */
  original: number;
  /** yarn's optional knobs, present only when config.json sets them. */
  yarn: { extFactor?: number; attnFactor?: number; betaFast?: number; betaSlow?: number };
}

/** Each scaling number in (0, 1e6]: far past any real config, and finite. */
const MAX_VALUE = 1e6;
const MAX_CONTEXT = 1 << 24;

export function parseRopeScaling(config: Record<string, unknown>): RopeScaling | undefined {
  const raw = config.rope_parameters ?? config.rope_scaling;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return undefined;
  const outer = raw as Record<string, unknown>;
  const full = outer.full_attention;
  const s = typeof full === "object" && full !== null ? (full as Record<string, unknown>) : outer;
  const type = typeof s.rope_type === "string" ? s.rope_type : typeof s.type === "string" ? s.type : "";
  const num = (key: string, value: unknown, fallback?: number): number | undefined => {
    const v = value ?? fallback;
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !(v > 0) || v > MAX_VALUE)
      throw bad(`config.json rope_scaling.${key} is out of range`);
    return v;
  };
  const originalValue = s.original_max_position_embeddings ?? config.original_max_position_embeddings;
  const original = (fallback?: number) => {
    const v = num("original_max_position_embeddings", originalValue, fallback);
    if (v !== undefined && (!Number.isInteger(v) || v > MAX_CONTEXT)) {
      throw bad(`config.json rope_scaling.original_max_position_embeddings must be an integer up to ${MAX_CONTEXT}`);
    }
    return v;
  };
  const factor = num("factor", s.factor);
  const common = { lowFreq: 1, highFreq: 4, original: 0, yarn: {} };
  switch (type.toLowerCase()) {
    case "linear":
      return factor === undefined ? undefined : { ...common, type: "linear", factor };
    case "llama3":
      return {
        ...common,
        type: "llama3",
        factor: factor ?? 8,
        lowFreq: num("low_freq_factor", s.low_freq_factor, 1)!,
        highFreq: num("high_freq_factor", s.high_freq_factor, 4)!,
        original: original(8192)!,
      };
    case "yarn": {
      if (factor === undefined) return undefined;
      const context = original();
      if (context === undefined)
        throw bad("config.json rope_scaling.original_max_position_embeddings is required for yarn");
      const yarn: RopeScaling["yarn"] = {};
      const set = (field: keyof RopeScaling["yarn"], key: string, value: unknown) => {
        const v = num(key, value);
        if (v !== undefined) yarn[field] = v;
      };
      set("extFactor", "extrapolation_factor", s.extrapolation_factor);
      set("attnFactor", "attention_factor", s.attention_factor ?? s.attn_factor);
      set("betaFast", "beta_fast", s.beta_fast);
      set("betaSlow", "beta_slow", s.beta_slow);
      return { ...common, type: "yarn", factor, original: context, yarn };
    }
    case "longrope":
    case "su":
      return { ...common, type: "longrope", factor: factor ?? 1, original: original() ?? 0 };
    default:
      return undefined;
  }
}

/** The `<arch>.rope.scaling.*` keys for a scaling (none for llama3: its factors are a tensor). */
export function ropeScalingMetadata(arch: string, s: RopeScaling | undefined): GgufMetadataEntry[] {
  if (!s || s.type === "llama3") return [];
  const entries = [kv.str(`${arch}.rope.scaling.type`, s.type)];
  if (s.type === "longrope") return entries;
  entries.push(kv.f32(`${arch}.rope.scaling.factor`, s.factor));
  if (s.type === "linear") return entries;
  entries.push(kv.u32(`${arch}.rope.scaling.original_context_length`, s.original));
  const { extFactor, attnFactor, betaFast, betaSlow } = s.yarn;
  if (extFactor !== undefined) entries.push(kv.f32(`${arch}.rope.scaling.yarn_ext_factor`, extFactor));
  if (attnFactor !== undefined) entries.push(kv.f32(`${arch}.rope.scaling.yarn_attn_factor`, attnFactor));
  if (betaFast !== undefined) entries.push(kv.f32(`${arch}.rope.scaling.yarn_beta_fast`, betaFast));
  if (betaSlow !== undefined) entries.push(kv.f32(`${arch}.rope.scaling.yarn_beta_slow`, betaSlow));
  return entries;
}

/** F32 tensors the converter computes from config.json: llama 3's `rope_freqs`, Phi-3's longrope factors. */
export function generatedTensors(c: CheckpointConfig): { name: string; values: Float32Array }[] {
  const freqs = llama3RopeFactors(c);
  return freqs ? [{ name: "rope_freqs.weight", values: freqs }] : phi3RopeTensors(c);
}

/** Llama 3's rope scaling as llama.cpp takes it: a `rope_freqs.weight` tensor of per-frequency factors. */
export function llama3RopeFactors(c: CheckpointConfig): Float32Array | null {
  const s = c.ropeScaling;
  if (c.arch !== "llama" || s?.type !== "llama3") return null;
  const dim = c.headDim;
  const factors = new Float32Array(dim / 2);
  const lowWavelength = s.original / s.lowFreq;
  const highWavelength = s.original / s.highFreq;
  for (let i = 0; i < dim; i += 2) {
    const wavelength = 2 * Math.PI * c.ropeTheta ** (i / dim);
    if (wavelength < highWavelength) factors[i / 2] = 1;
    else if (wavelength > lowWavelength) factors[i / 2] = s.factor;
    else {
      const smooth = (s.original / wavelength - s.lowFreq) / (s.highFreq - s.lowFreq);
      factors[i / 2] = 1 / ((1 - smooth) / s.factor + smooth);
    }
  }
  return factors;
}

function bad(message: string): ApiError {
  return new ApiError(400, message);
}
