/**
 * Tensor bytes from a checkpoint's dtype to the GGUF type the converters write (F32 for 1-D, F16 or BF16 for
 * matrices), and llama's Q/K row permutation. All on little-endian bytes; one tensor at a time.
 */
import { GgmlType } from "@corral/protocol/gguf/types";
import type { SafetensorsTensor } from "@corral/protocol/safetensors";

export type SourceDtype = SafetensorsTensor["dtype"];

/**
 * Reused buffers, one per stage (read, permute, convert), grown to the largest tensor: converting a tensor allocates
 * nothing, so peak memory stays at about one tensor's stages instead of whatever the GC has not yet collected.
 * A returned view is valid until the same stage is asked for again.
 */
export class Scratch {
  private readonly buffers: ArrayBuffer[] = [];
  take(stage: 0 | 1 | 2, bytes: number): Uint8Array {
    let buffer = this.buffers[stage];
    if (!buffer || buffer.byteLength < bytes) {
      buffer = new ArrayBuffer(bytes);
      this.buffers[stage] = buffer;
    }
    return new Uint8Array(buffer, 0, bytes);
  }
}

/**
 * The type a tensor is written as: norms, biases and other vectors in F32 (llama.cpp adds them in F32 anyway);
 * matrices in BF16 when they come as BF16 (lossless, and F16 would overflow on BF16's range), else F16 (Ollama's and
 * llama.cpp's default `--outtype f16`).
 */
export function outputType(name: string, dtype: SourceDtype, dims: number): GgmlType {
  // BERT's token type embeddings stay F32 too (Ollama's tensorBase.Kind): llama.cpp adds them to the input in F32.
  if (dims <= 1 || name === "token_types.weight") return GgmlType.F32;
  return dtype === "BF16" ? GgmlType.BF16 : GgmlType.F16;
}

/** IEEE binary16 bits of a binary32 (given as its bits), rounded to nearest-even; NaN stays NaN, overflow is ±inf. */
export function halfFromFloatBits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const abs = x & 0x7fffffff;
  if (abs > 0x7f800000) return sign | 0x7e00;
  if (abs >= 0x477ff000) return sign | 0x7c00;
  if (abs >= 0x38800000) {
    // Re-bias the exponent (127 → 15) in place, then round away the low 13 mantissa bits; a carry bumps the exponent.
    const v = abs - 0x38000000;
    return sign | ((v + 0x0fff + ((v >>> 13) & 1)) >>> 13);
  }
  if (abs < 0x33000000) return sign;
  // A half subnormal: the value in units of 2^-24, rounded to nearest-even.
  const shift = 126 - (abs >>> 23);
  const mantissa = (abs & 0x7fffff) | 0x800000;
  const half = mantissa >>> shift;
  const rest = mantissa & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  return sign | (half + (rest > halfway || (rest === halfway && (half & 1) === 1) ? 1 : 0));
}

let halfTable: Float32Array | undefined;

/** binary16 → binary32 for all 65536 patterns (exact), built once. */
function halves(): Float32Array {
  if (halfTable) return halfTable;
  halfTable = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >>> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    halfTable[h] =
      exponent === 0
        ? sign * mantissa * 2 ** -24
        : exponent === 0x1f
          ? mantissa
            ? Number.NaN
            : sign * Number.POSITIVE_INFINITY
          : sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  return halfTable;
}

/** `data` (whole elements of `from`, 4-byte aligned) converted to `to`'s bytes. */
export function convertTensorData(
  data: Uint8Array,
  from: SourceDtype,
  to: GgmlType,
  scratch = new Scratch(),
): Uint8Array {
  const n = data.length / (from === "F32" ? 4 : 2);
  if (to === GgmlType.F32) {
    if (from === "F32") return data;
    const out = new Float32Array(scratch.take(2, n * 4).buffer, 0, n);
    const src = new Uint16Array(data.buffer, data.byteOffset, n);
    if (from === "F16") {
      const table = halves();
      for (let i = 0; i < n; i++) out[i] = table[src[i]!]!;
    } else {
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = src[i]! << 16;
    }
    return new Uint8Array(out.buffer, 0, n * 4);
  }
  if (to === GgmlType.BF16 && from === "BF16") return data;
  if (to === GgmlType.F16 && from === "F16") return data;
  if (to === GgmlType.F16 && from === "F32") {
    const src = new Uint32Array(data.buffer, data.byteOffset, n);
    const out = new Uint16Array(scratch.take(2, n * 2).buffer, 0, n);
    for (let i = 0; i < n; i++) out[i] = halfFromFloatBits(src[i]!);
    return new Uint8Array(out.buffer, 0, n * 2);
  }
  throw new Error(`no conversion from ${from} to ggml type ${to}`);
}

/**
 * `offset` added to every value of converted F32 data, in place (Gemma's norm weights, stored as `w` for `1 + w`).
 * Only vectors get an offset, and vectors are always written as F32.
 */
export function addToValues(data: Uint8Array, type: GgmlType, offset: number): Uint8Array {
  if (type !== GgmlType.F32) throw new Error(`an offset applies to F32 data, not ggml type ${type}`);
  const values = new Float32Array(data.buffer, data.byteOffset, data.length / 4);
  for (let i = 0; i < values.length; i++) values[i]! += offset;
  return data;
}

/**
 * llama.cpp's `permute` for attention Q/K (convert_hf_to_gguf.py LlamaModel.permute, Ollama's llama repack): within
 * each head, HF's rows [first rotary half; second half] become interleaved pairs. Row (h, s, j) → row (h, j, s).
 */
export function permuteRows(data: Uint8Array, rows: number, heads: number, scratch = new Scratch()): Uint8Array {
  const rowBytes = data.length / rows;
  const headRows = rows / heads;
  const half = headRows / 2;
  const out = scratch.take(1, data.length);
  for (let h = 0; h < heads; h++) {
    for (let s = 0; s < 2; s++) {
      for (let j = 0; j < half; j++) {
        const from = (h * headRows + s * half + j) * rowBytes;
        const to = (h * headRows + j * 2 + s) * rowBytes;
        out.set(data.subarray(from, from + rowBytes), to);
      }
    }
  }
  return out;
}
