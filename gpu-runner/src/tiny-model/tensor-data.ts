import { GgmlType } from "../../../protocol/src/gguf/types";

/**
 * mulberry32: a tiny 32-bit PRNG. Integer-only state so the byte stream is identical on every platform and Node
 * version (Math.random cannot be seeded; Math.log/sin are not guaranteed bit-identical across engines).
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` values uniform in [-scale, scale), drawn from `next`. */
export function uniformValues(next: () => number, count: number, scale: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = (next() * 2 - 1) * scale;
  return out;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE binary16 bits of `value`, rounded to nearest-even (as ggml's GGML_FP32_TO_FP16 does). */
export function float32ToFloat16Bits(value: number): number {
  f32Scratch[0] = value;
  const bits = u32Scratch[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0);
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    if (halfExponent < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - halfExponent;
    let half = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && (half & 1) === 1)) half++;
    return sign | half;
  }
  // A carry out of the mantissa correctly bumps the exponent (and overflows to infinity at the top).
  let half = (halfExponent << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half++;
  return sign | half;
}

function encodeF32(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i]!, true);
  return out;
}

function encodeF16(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setUint16(i * 2, float32ToFloat16Bits(values[i]!), true);
  return out;
}

const Q8_0_BLOCK = 32;

/** ggml block_q8_0: an f16 scale then 32 int8 quants per block of 32 values (ggml-quants.c quantize_row_q8_0_ref). */
function encodeQ8_0(values: Float32Array): Uint8Array {
  if (values.length % Q8_0_BLOCK !== 0) throw new Error("Q8_0 needs a multiple of 32 values");
  const blocks = values.length / Q8_0_BLOCK;
  const out = new Uint8Array(blocks * 34);
  const view = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    const block = values.subarray(b * Q8_0_BLOCK, (b + 1) * Q8_0_BLOCK);
    let absMax = 0;
    for (const v of block) absMax = Math.max(absMax, Math.abs(v));
    const scale = absMax / 127;
    const inverse = scale !== 0 ? 1 / scale : 0;
    view.setUint16(b * 34, float32ToFloat16Bits(scale), true);
    block.forEach((v, i) => {
      // roundf rounds halves away from zero; Math.round would round -2.5 to -2.
      const scaled = Math.fround(v * inverse);
      view.setInt8(b * 34 + 2 + i, Math.sign(scaled) * Math.round(Math.abs(scaled)));
    });
  }
  return out;
}

export type WeightType = "f32" | "f16" | "q8_0";

export const GGML_TYPE_OF: Record<WeightType, GgmlType> = {
  f32: GgmlType.F32,
  f16: GgmlType.F16,
  q8_0: GgmlType.Q8_0,
};

/** llama.cpp `llama_ftype` for a file whose matrices are all `type` (norms stay F32 in every case). */
export const FILE_TYPE_OF: Record<WeightType, number> = { f32: 0, f16: 1, q8_0: 7 };

export function encodeTensorData(values: Float32Array, type: WeightType): Uint8Array {
  switch (type) {
    case "f32":
      return encodeF32(values);
    case "f16":
      return encodeF16(values);
    case "q8_0":
      return encodeQ8_0(values);
  }
}
