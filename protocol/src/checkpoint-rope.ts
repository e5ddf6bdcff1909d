/**
 * Rope scaling from config.json as llama.cpp takes it: linear as keys (checkpoint.ts), llama 3's as a
 * `rope_freqs.weight` tensor of per-frequency factors, Phi-3's longrope as its long/short factor tensors.
 */
import type { CheckpointConfig } from "./checkpoint";
import { phi3RopeTensors } from "./checkpoint-phi3";
import { ApiError } from "./errors";

export function ropeScaling(value: unknown): CheckpointConfig["ropeScaling"] {
  if (typeof value !== "object" || value === null) return undefined;
  const s = value as Record<string, unknown>;
  const type = typeof s.rope_type === "string" ? s.rope_type : typeof s.type === "string" ? s.type : "";
  const num = (key: string, fallback: number) => {
    const v = s[key] ?? fallback;
    if (typeof v !== "number" || !(v > 0) || v > 1e6)
      throw new ApiError(400, `config.json rope_scaling.${key} is out of range`);
    return v;
  };
  if (type !== "linear" && type !== "llama3") return undefined;
  return {
    type,
    factor: num("factor", 8),
    lowFreq: num("low_freq_factor", 1),
    highFreq: num("high_freq_factor", 4),
    original: num("original_max_position_embeddings", 8192),
  };
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
