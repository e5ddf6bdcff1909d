import { type GgmlType, GgufValueType, ggmlTensorBytes } from "./types";

/**
 * One metadata key/value. ARRAY entries carry `arrayType` and an array `value`; when `arrayType` is itself ARRAY,
 * each element is a {@link GgufNestedArray}. 64-bit integers accept bigint or number.
 */
export interface GgufMetadataEntry {
  key: string;
  type: GgufValueType;
  value: unknown;
  arrayType?: GgufValueType;
}

/** An element of an array-of-arrays: its own element type and values. */
export interface GgufNestedArray {
  arrayType: GgufValueType;
  values: readonly unknown[];
}

export interface GgufTensorInput {
  name: string;
  /** ggml order: ne0 (the contiguous dimension) first. */
  dims: number[];
  type: GgmlType;
  data: Uint8Array;
}

export interface GgufTensorInfoInput {
  name: string;
  dims: readonly (number | bigint)[];
  type: number;
  /** Relative to the start of the data section. */
  offset: number | bigint;
}

export const GGUF_DEFAULT_ALIGNMENT = 32;
const textEncoder = new TextEncoder();

/**
 * Little-endian byte builder for GGUF. Deliberately does not validate anything, so tests can also build hostile
 * files (lying counts and lengths, odd alignments, offsets past the end).
 */
export class GgufByteWriter {
  private buf = new Uint8Array(4096);
  private view = new DataView(this.buf.buffer);
  private pos = 0;

  get length(): number {
    return this.pos;
  }

  private reserve(n: number): number {
    const at = this.pos;
    if (at + n > this.buf.length) {
      let cap = this.buf.length;
      while (cap < at + n) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.buf.subarray(0, at));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    this.pos += n;
    return at;
  }

  magic(text = "GGUF"): this {
    return this.bytes(textEncoder.encode(text));
  }
  bytes(data: Uint8Array): this {
    const at = this.reserve(data.length);
    this.buf.set(data, at);
    return this;
  }
  u8(n: number): this {
    const at = this.reserve(1);
    this.view.setUint8(at, n);
    return this;
  }
  i8(n: number): this {
    const at = this.reserve(1);
    this.view.setInt8(at, n);
    return this;
  }
  u16(n: number): this {
    const at = this.reserve(2);
    this.view.setUint16(at, n, true);
    return this;
  }
  i16(n: number): this {
    const at = this.reserve(2);
    this.view.setInt16(at, n, true);
    return this;
  }
  u32(n: number): this {
    const at = this.reserve(4);
    this.view.setUint32(at, n, true);
    return this;
  }
  i32(n: number): this {
    const at = this.reserve(4);
    this.view.setInt32(at, n, true);
    return this;
  }
  u64(n: number | bigint): this {
    const at = this.reserve(8);
    this.view.setBigUint64(at, BigInt(n), true);
    return this;
  }
  i64(n: number | bigint): this {
    const at = this.reserve(8);
    this.view.setBigInt64(at, BigInt(n), true);
    return this;
  }
  f32(n: number): this {
    const at = this.reserve(4);
    this.view.setFloat32(at, n, true);
    return this;
  }
  f64(n: number): this {
    const at = this.reserve(8);
    this.view.setFloat64(at, n, true);
    return this;
  }
  bool(b: boolean): this {
    return this.u8(b ? 1 : 0);
  }
  /** A GGUF string: u64 byte length, then UTF-8 bytes (no terminator). */
  str(s: string): this {
    const encoded = textEncoder.encode(s);
    return this.u64(encoded.length).bytes(encoded);
  }
  /** Pads with zeros up to the next multiple of `alignment` (counted from the start of the file). */
  padTo(alignment: number): this {
    const rem = this.pos % alignment;
    if (rem !== 0) this.reserve(alignment - rem);
    return this;
  }

  value(type: GgufValueType, value: unknown, arrayType?: GgufValueType): this {
    switch (type) {
      case GgufValueType.UINT8:
        return this.u8(value as number);
      case GgufValueType.INT8:
        return this.i8(value as number);
      case GgufValueType.UINT16:
        return this.u16(value as number);
      case GgufValueType.INT16:
        return this.i16(value as number);
      case GgufValueType.UINT32:
        return this.u32(value as number);
      case GgufValueType.INT32:
        return this.i32(value as number);
      case GgufValueType.FLOAT32:
        return this.f32(value as number);
      case GgufValueType.BOOL:
        return this.bool(value as boolean);
      case GgufValueType.STRING:
        return this.str(value as string);
      case GgufValueType.UINT64:
        return this.u64(value as number | bigint);
      case GgufValueType.INT64:
        return this.i64(value as number | bigint);
      case GgufValueType.FLOAT64:
        return this.f64(value as number);
      case GgufValueType.ARRAY:
        return this.array(arrayType, value);
      default:
        throw new Error(`writeGguf: unknown value type ${String(type)}`);
    }
  }

  private array(itemType: GgufValueType | undefined, value: unknown): this {
    if (itemType === undefined || !Array.isArray(value))
      throw new Error("writeGguf: ARRAY needs arrayType and an array");
    this.u32(itemType).u64(value.length);
    for (const item of value) {
      if (itemType === GgufValueType.ARRAY) {
        const nested = item as GgufNestedArray;
        this.value(GgufValueType.ARRAY, nested.values, nested.arrayType);
      } else {
        this.value(itemType, item);
      }
    }
    return this;
  }

  kv(entry: GgufMetadataEntry): this {
    return this.str(entry.key).u32(entry.type).value(entry.type, entry.value, entry.arrayType);
  }

  tensorInfo(info: GgufTensorInfoInput): this {
    this.str(info.name).u32(info.dims.length);
    for (const d of info.dims) this.u64(d);
    return this.u32(info.type).u64(info.offset);
  }

  /** A copy of the bytes written so far. */
  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

export interface WriteGgufInput {
  /** Default 3. */
  version?: 2 | 3;
  /** Default 32. Any other value is also written as `general.alignment` (unless the metadata already has it). */
  alignment?: number;
  metadata: GgufMetadataEntry[];
  tensors: GgufTensorInput[];
}

/**
 * Serialises a complete GGUF file (header, tensor infos, aligned tensor data). Throws a plain Error on
 * programming mistakes: bad alignment, duplicate names, data length not matching dims and type.
 */
export function writeGguf(input: WriteGgufInput): Uint8Array {
  const version = input.version ?? 3;
  const alignment = input.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
    throw new Error(`writeGguf: alignment must be a power of two, got ${alignment}`);
  }
  const metadata = [...input.metadata];
  if (alignment !== GGUF_DEFAULT_ALIGNMENT && !metadata.some((e) => e.key === "general.alignment")) {
    metadata.push(kv.u32("general.alignment", alignment));
  }
  assertUnique(
    metadata.map((e) => e.key),
    "metadata key",
  );
  assertUnique(
    input.tensors.map((t) => t.name),
    "tensor name",
  );

  const w = new GgufByteWriter().magic().u32(version).u64(input.tensors.length).u64(metadata.length);
  for (const entry of metadata) w.kv(entry);

  let offset = 0;
  for (const t of input.tensors) {
    const expected = ggmlTensorBytes(t.type, t.dims);
    if (expected !== t.data.length) {
      throw new Error(`writeGguf: tensor ${t.name} has ${t.data.length} bytes, dims/type need ${String(expected)}`);
    }
    w.tensorInfo({ name: t.name, dims: t.dims, type: t.type, offset });
    offset += alignUp(t.data.length, alignment);
  }
  w.padTo(alignment);
  // Each tensor's data is padded to the alignment, the last one included, as llama.cpp's gguf writer does.
  for (const t of input.tensors) w.bytes(t.data).padTo(alignment);
  return w.finish();
}

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

function assertUnique(names: string[], what: string): void {
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) throw new Error(`writeGguf: duplicate ${what} ${n}`);
    seen.add(n);
  }
}

/** Builders for metadata entries, so callers read like a key/value listing. */
export const kv = {
  u8: (key: string, value: number): GgufMetadataEntry => ({ key, type: GgufValueType.UINT8, value }),
  i8: (key: string, value: number): GgufMetadataEntry => ({ key, type: GgufValueType.INT8, value }),
  u16: (key: string, value: number): GgufMetadataEntry => ({ key, type: GgufValueType.UINT16, value }),
  i16: (key: string, value: number): GgufMetadataEntry => ({ key, type: GgufValueType.INT16, value }),
  u32: (key: string, value: number): GgufMetadataEntry => ({ key, type: GgufValueType.UINT32, value }),
  i32: (key: string, value: number): GgufMetadataEntry => ({ key, type: GgufValueType.INT32, value }),
  u64: (key: string, value: number | bigint): GgufMetadataEntry => ({ key, type: GgufValueType.UINT64, value }),
  i64: (key: string, value: number | bigint): GgufMetadataEntry => ({ key, type: GgufValueType.INT64, value }),
  f32: (key: string, value: number): GgufMetadataEntry => ({ key, type: GgufValueType.FLOAT32, value }),
  f64: (key: string, value: number): GgufMetadataEntry => ({ key, type: GgufValueType.FLOAT64, value }),
  bool: (key: string, value: boolean): GgufMetadataEntry => ({ key, type: GgufValueType.BOOL, value }),
  str: (key: string, value: string): GgufMetadataEntry => ({ key, type: GgufValueType.STRING, value }),
  arr: (key: string, arrayType: GgufValueType, value: readonly unknown[]): GgufMetadataEntry => ({
    key,
    type: GgufValueType.ARRAY,
    arrayType,
    value,
  }),
  strArr: (key: string, value: readonly string[]): GgufMetadataEntry => kv.arr(key, GgufValueType.STRING, value),
  i32Arr: (key: string, value: readonly number[]): GgufMetadataEntry => kv.arr(key, GgufValueType.INT32, value),
  u32Arr: (key: string, value: readonly number[]): GgufMetadataEntry => kv.arr(key, GgufValueType.UINT32, value),
  f32Arr: (key: string, value: readonly number[]): GgufMetadataEntry => kv.arr(key, GgufValueType.FLOAT32, value),
};
