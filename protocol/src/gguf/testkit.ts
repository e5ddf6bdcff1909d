// Test helpers shared by the gguf tests (not exported from the package index).
import type { ByteSource } from "./source";
import { GgmlType, GgufValueType } from "./types";
import { type GgufMetadataEntry, type GgufTensorInput, kv } from "./writer";

/** Deterministic filler bytes, so tensor data written and read back can be compared. */
export function filler(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** One entry of every value type, arrays of every item type, a nested array and an empty one. */
export function everyValueType(): GgufMetadataEntry[] {
  return [
    kv.str("general.architecture", "llama"),
    kv.u8("t.u8", 255),
    kv.i8("t.i8", -128),
    kv.u16("t.u16", 65535),
    kv.i16("t.i16", -32768),
    kv.u32("t.u32", 4294967295),
    kv.i32("t.i32", -2147483648),
    kv.f32("t.f32", Math.fround(1e-5)),
    kv.bool("t.bool.true", true),
    kv.bool("t.bool.false", false),
    kv.str("t.str", "héllo ✓ \u0000 end"),
    kv.str("t.str.empty", ""),
    kv.u64("t.u64", (1n << 64n) - 1n),
    kv.i64("t.i64", -(1n << 63n)),
    kv.f64("t.f64", Math.PI),
    kv.arr("a.u8", GgufValueType.UINT8, [0, 1, 255]),
    kv.arr("a.i8", GgufValueType.INT8, [-1, 127]),
    kv.arr("a.u16", GgufValueType.UINT16, [7, 65535]),
    kv.arr("a.i16", GgufValueType.INT16, [-7]),
    kv.u32Arr("a.u32", [1, 2, 3]),
    kv.i32Arr("a.i32", [-1, 0, 1]),
    kv.f32Arr("a.f32", [0.5, -2]),
    kv.arr("a.bool", GgufValueType.BOOL, [true, false, true]),
    kv.strArr("a.str", ["<s>", "", "ü"]),
    kv.arr("a.u64", GgufValueType.UINT64, [0n, (1n << 64n) - 1n]),
    kv.arr("a.i64", GgufValueType.INT64, [-5n, 5n]),
    kv.arr("a.f64", GgufValueType.FLOAT64, [1.25]),
    kv.arr("a.empty", GgufValueType.INT32, []),
    kv.arr("a.nested", GgufValueType.ARRAY, [
      { arrayType: GgufValueType.INT8, values: [1, -2] },
      { arrayType: GgufValueType.STRING, values: ["x"] },
    ]),
  ];
}

export function sampleTensors(): GgufTensorInput[] {
  return [
    { name: "token_embd.weight", dims: [64, 4], type: GgmlType.Q8_0, data: filler(2 * 34 * 4, 1) },
    { name: "output_norm.weight", dims: [3], type: GgmlType.F32, data: filler(12, 2) },
    { name: "blk.0.attn_q.weight", dims: [256, 2], type: GgmlType.Q4_K, data: filler(144 * 2, 3) },
    { name: "blk.0.ffn.weight", dims: [8, 2, 1, 2], type: GgmlType.BF16, data: filler(64, 4) },
  ];
}

export interface CountingSource extends ByteSource {
  readonly calls: { offset: number; length: number }[];
  readonly requestedBytes: number;
}

/** Wraps bytes in a ByteSource that records every range asked for. */
export function countingSource(bytes: Uint8Array): CountingSource {
  const calls: { offset: number; length: number }[] = [];
  return {
    size: bytes.length,
    calls,
    get requestedBytes() {
      return calls.reduce((n, c) => n + c.length, 0);
    },
    async read(offset, length) {
      calls.push({ offset, length });
      return bytes.slice(offset, offset + length);
    },
  };
}
