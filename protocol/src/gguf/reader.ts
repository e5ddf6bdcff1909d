import { type ByteSource, GgufError, SourceCursor } from "./source";
import { type GgmlType, GgufValueType, ggmlTypeTraits } from "./types";
import type { GgufNestedArray } from "./writer";

/**
 * Bounds applied to untrusted headers. Defaults follow Ollama's fs/gguf (16 MiB strings, 64 Mi array elements,
 * 4 dims). Memory-tight callers (a Worker) should lower maxHeaderBytes: arrays are materialised as JS arrays.
 */
export interface GgufLimits {
  maxHeaderBytes: number;
  maxStringBytes: number;
  maxKeyBytes: number;
  maxTensorNameBytes: number;
  maxArrayLength: number;
  /** 1 allows arrays of scalars only; 2 allows arrays of arrays of scalars, and so on. */
  maxArrayDepth: number;
  maxTensorDims: number;
}

export const DEFAULT_GGUF_LIMITS: Readonly<GgufLimits> = Object.freeze({
  maxHeaderBytes: 512 * 1024 * 1024,
  maxStringBytes: 16 * 1024 * 1024,
  maxKeyBytes: 64 * 1024,
  maxTensorNameBytes: 1024,
  maxArrayLength: 64 * 1024 * 1024,
  maxArrayDepth: 4,
  maxTensorDims: 4,
});

export type GgufScalar = number | bigint | boolean | string;
/** Plain form of a value: 64-bit integers are ALWAYS bigint (whatever their size), arrays are plain arrays. */
export type GgufValue = GgufScalar | GgufValue[];

/** A metadata entry in the typed form {@link writeGguf} accepts, so a header can be written back losslessly. */
export interface GgufEntry {
  key: string;
  type: GgufValueType;
  arrayType?: GgufValueType;
  /** A scalar; for ARRAY an array of scalars, or of {@link GgufNestedArray} when arrayType is ARRAY. */
  value: GgufScalar | GgufScalar[] | GgufNestedArray[];
}

export interface GgufTensorInfo {
  name: string;
  /** ggml order, ne0 first. */
  dims: number[];
  type: GgmlType;
  /** Relative to the data section, as stored in the file. */
  offset: number;
  /** Absolute position of the tensor's first byte in the file (dataOffset + offset). */
  fileOffset: number;
  /** Bytes of tensor data. */
  size: number;
}

export interface GgufHeader {
  version: 2 | 3;
  tensorCount: number;
  /** Keyed by metadata key; a null-prototype object, so hostile keys like "__proto__" are plain keys. */
  metadata: Record<string, GgufValue>;
  /** Every entry in file order, with its wire types. */
  entries: GgufEntry[];
  tensors: GgufTensorInfo[];
  alignment: number;
  /** Start of the tensor data section (header end padded to the alignment). */
  dataOffset: number;
  /** Bytes of magic, counts, metadata and tensor infos (before the padding). */
  headerBytes: number;
  fileSize: number;
}

const FIXED_SIZES: ReadonlyMap<GgufValueType, number> = new Map([
  [GgufValueType.UINT8, 1],
  [GgufValueType.INT8, 1],
  [GgufValueType.BOOL, 1],
  [GgufValueType.UINT16, 2],
  [GgufValueType.INT16, 2],
  [GgufValueType.UINT32, 4],
  [GgufValueType.INT32, 4],
  [GgufValueType.FLOAT32, 4],
  [GgufValueType.UINT64, 8],
  [GgufValueType.INT64, 8],
  [GgufValueType.FLOAT64, 8],
]);
/** Fewest bytes an element can take on the wire: strings have a u64 length, arrays a u32 type and u64 count. */
const MIN_STRING_BYTES = 8;
const MIN_ARRAY_BYTES = 12;
const MIN_KV_BYTES = 8 + 4 + 1;
const MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8;
const INT64_MAX = (1n << 63n) - 1n;
const DEFAULT_ALIGNMENT = 32;

/** A key or name as it may appear in an error message: quoted, control characters escaped, cut short. */
function quote(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);
}

function minValueBytes(type: GgufValueType): number {
  if (type === GgufValueType.STRING) return MIN_STRING_BYTES;
  if (type === GgufValueType.ARRAY) return MIN_ARRAY_BYTES;
  return FIXED_SIZES.get(type) ?? 1;
}

function isValueType(t: number): t is GgufValueType {
  return Number.isInteger(t) && t >= 0 && t <= GgufValueType.FLOAT64;
}

class HeaderParser {
  constructor(
    private readonly c: SourceCursor,
    private readonly limits: GgufLimits,
  ) {}

  async string(what: string, maxBytes: number): Promise<string> {
    await this.c.need(8, what);
    const len = this.c.u64();
    if (len > BigInt(maxBytes)) throw new GgufError(`${what} longer than ${maxBytes} bytes`);
    await this.c.need(Number(len), what);
    return this.c.utf8(Number(len));
  }

  async scalar(type: GgufValueType, key: string): Promise<GgufScalar> {
    if (type === GgufValueType.STRING) return this.string(`string value of ${quote(key)}`, this.limits.maxStringBytes);
    const size = FIXED_SIZES.get(type);
    if (size === undefined) throw new GgufError(`unknown value type ${type} for ${quote(key)}`);
    await this.c.need(size, `value of ${quote(key)}`);
    return this.readFixed(type);
  }

  private readFixed(type: GgufValueType): GgufScalar {
    const c = this.c;
    switch (type) {
      case GgufValueType.UINT8:
        return c.u8();
      case GgufValueType.INT8:
        return c.i8();
      case GgufValueType.BOOL:
        return c.u8() !== 0;
      case GgufValueType.UINT16:
        return c.u16();
      case GgufValueType.INT16:
        return c.i16();
      case GgufValueType.UINT32:
        return c.u32();
      case GgufValueType.INT32:
        return c.i32();
      case GgufValueType.FLOAT32:
        return c.f32();
      case GgufValueType.UINT64:
        return c.u64();
      case GgufValueType.INT64:
        return c.i64();
      default:
        return c.f64();
    }
  }

  /** Reads an array's item type, count and items; `depth` is 1 for a top-level array. */
  async array(key: string, depth: number): Promise<GgufNestedArray & { values: GgufScalar[] | GgufNestedArray[] }> {
    if (depth > this.limits.maxArrayDepth) throw new GgufError(`arrays nested too deeply in ${quote(key)}`);
    await this.c.need(MIN_ARRAY_BYTES, `array ${quote(key)}`);
    const itemType = this.c.u32();
    const count = this.c.u64();
    if (!isValueType(itemType)) throw new GgufError(`unknown array item type ${itemType} in ${quote(key)}`);
    if (count > BigInt(this.limits.maxArrayLength)) {
      throw new GgufError(`array ${quote(key)} longer than ${this.limits.maxArrayLength} elements`);
    }
    // Checked before anything is allocated: the file must hold at least the smallest encoding of every element.
    const itemBytes = minValueBytes(itemType);
    if (count * BigInt(itemBytes) > BigInt(this.c.remaining)) throw new GgufError(`truncated array ${quote(key)}`);
    const n = Number(count);

    if (itemType === GgufValueType.ARRAY) {
      const nested: GgufNestedArray[] = [];
      for (let i = 0; i < n; i++) nested.push(await this.array(key, depth + 1));
      return { arrayType: itemType, values: nested };
    }
    const values: GgufScalar[] = [];
    if (itemType === GgufValueType.STRING) {
      const what = `string in array ${quote(key)}`;
      const max = this.limits.maxStringBytes;
      for (let i = 0; i < n; i++) values.push(this.c.stringIfBuffered(max) ?? (await this.string(what, max)));
    } else {
      await this.c.need(n * itemBytes, `array ${quote(key)}`);
      for (let i = 0; i < n; i++) values.push(this.readFixed(itemType));
    }
    return { arrayType: itemType, values };
  }

  async entry(): Promise<GgufEntry> {
    const key = await this.string("metadata key", this.limits.maxKeyBytes);
    await this.c.need(4, `type of ${quote(key)}`);
    const type = this.c.u32();
    if (!isValueType(type)) throw new GgufError(`unknown value type ${type} for ${quote(key)}`);
    if (type === GgufValueType.ARRAY) {
      const { arrayType, values } = await this.array(key, 1);
      return { key, type, arrayType, value: values };
    }
    return { key, type, value: await this.scalar(type, key) };
  }

  async tensorInfo(): Promise<{ name: string; dims: bigint[]; type: number; offset: bigint }> {
    const name = await this.string("tensor name", this.limits.maxTensorNameBytes);
    await this.c.need(4, `tensor ${quote(name)}`);
    const nDims = this.c.u32();
    if (nDims > this.limits.maxTensorDims) {
      throw new GgufError(`tensor ${quote(name)} has ${nDims} dimensions, at most ${this.limits.maxTensorDims}`);
    }
    await this.c.need(nDims * 8 + 4 + 8, `tensor ${quote(name)}`);
    const dims: bigint[] = [];
    for (let i = 0; i < nDims; i++) dims.push(this.c.u64());
    const type = this.c.u32();
    const offset = this.c.u64();
    return { name, dims, type, offset };
  }
}

/** Plain form of an entry's value: nested arrays become arrays of arrays. */
function plainValue(value: GgufEntry["value"]): GgufValue {
  if (!Array.isArray(value)) return value;
  return value.map((item) =>
    typeof item === "object" && item !== null
      ? plainValue((item as GgufNestedArray).values as GgufEntry["value"])
      : item,
  );
}

function resolveAlignment(metadata: Record<string, GgufValue>, entries: GgufEntry[]): number {
  const entry = entries.find((e) => e.key === "general.alignment");
  if (!entry) return DEFAULT_ALIGNMENT;
  const value = metadata["general.alignment"];
  if (entry.type !== GgufValueType.UINT32 || typeof value !== "number") {
    throw new GgufError("general.alignment must be a uint32");
  }
  if (value === 0 || (value & (value - 1)) !== 0) {
    throw new GgufError(`general.alignment ${value} is not a power of two`);
  }
  return value;
}

type RawTensor = Awaited<ReturnType<HeaderParser["tensorInfo"]>>;

function checkTensor(raw: RawTensor, alignment: number, dataOffset: number, fileSize: number): GgufTensorInfo {
  const name = quote(raw.name);
  const traits = ggmlTypeTraits(raw.type);
  if (!traits) throw new GgufError(`tensor ${name} has unknown type ${raw.type}`);
  let elements = 1n;
  for (const d of raw.dims) {
    if (d === 0n) throw new GgufError(`tensor ${name} has a zero dimension`);
    elements *= d;
    if (elements > INT64_MAX) throw new GgufError(`tensor ${name} element count overflows`);
  }
  const ne0 = raw.dims[0] ?? 1n;
  if (ne0 % BigInt(traits.blockSize) !== 0n) {
    throw new GgufError(`tensor ${name} row of ${ne0} is not a multiple of the block size ${traits.blockSize}`);
  }
  if (raw.offset % BigInt(alignment) !== 0n) throw new GgufError(`tensor ${name} offset is not aligned`);
  const size = (elements / BigInt(traits.blockSize)) * BigInt(traits.typeSize);
  const end = BigInt(dataOffset) + raw.offset + size;
  if (end > BigInt(fileSize)) throw new GgufError(`tensor ${name} data extends past the end of the file`);
  // Everything is now ≤ fileSize, which is a safe integer, so the conversions below are exact.
  const offset = Number(raw.offset);
  return {
    name: raw.name,
    dims: raw.dims.map(Number),
    type: raw.type as GgmlType,
    offset,
    fileOffset: dataOffset + offset,
    size: Number(size),
  };
}

function checkNoOverlap(tensors: GgufTensorInfo[]): void {
  const byOffset = [...tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1]!;
    const cur = byOffset[i]!;
    if (prev.offset + prev.size > cur.offset) {
      throw new GgufError(`tensors ${quote(prev.name)} and ${quote(cur.name)} overlap`);
    }
  }
}

async function parse(src: ByteSource, limits: GgufLimits): Promise<GgufHeader> {
  const fileSize = src.size;
  if (!Number.isSafeInteger(fileSize) || fileSize < 0) throw new GgufError("unknown file size");
  const c = new SourceCursor(src, limits.maxHeaderBytes);
  const p = new HeaderParser(c, limits);

  await c.need(4, "magic");
  if (c.utf8(4) !== "GGUF") throw new GgufError("not a GGUF file");
  await c.need(4, "version");
  const version = c.u32();
  if (version === 1) throw new GgufError("version 1 is not supported");
  if (version === 0x02000000 || version === 0x03000000) throw new GgufError("big-endian GGUF is not supported");
  if (version !== 2 && version !== 3) throw new GgufError(`unsupported version ${version}`);
  await c.need(16, "counts");
  const tensorCount = c.u64();
  const kvCount = c.u64();
  const room = BigInt(c.remaining);
  if (kvCount * BigInt(MIN_KV_BYTES) + tensorCount * BigInt(MIN_TENSOR_INFO_BYTES) > room) {
    throw new GgufError("metadata or tensor count larger than the file can hold");
  }

  const metadata: Record<string, GgufValue> = Object.create(null);
  const entries: GgufEntry[] = [];
  for (let i = 0n; i < kvCount; i++) {
    const entry = await p.entry();
    if (Object.hasOwn(metadata, entry.key)) throw new GgufError(`duplicate key ${quote(entry.key)}`);
    metadata[entry.key] = plainValue(entry.value);
    entries.push(entry);
  }
  const alignment = resolveAlignment(metadata, entries);

  const raws: RawTensor[] = [];
  const names = new Set<string>();
  for (let i = 0n; i < tensorCount; i++) {
    const raw = await p.tensorInfo();
    if (names.has(raw.name)) throw new GgufError(`duplicate tensor ${quote(raw.name)}`);
    names.add(raw.name);
    raws.push(raw);
  }
  const headerBytes = c.pos;
  const dataOffset = Math.ceil(headerBytes / alignment) * alignment;
  const tensors = raws.map((raw) => checkTensor(raw, alignment, dataOffset, fileSize));
  checkNoOverlap(tensors);

  return {
    version,
    tensorCount: tensors.length,
    metadata,
    entries,
    tensors,
    alignment,
    dataOffset,
    headerBytes,
    fileSize,
  };
}

/**
 * Reads and validates a GGUF header (metadata and tensor infos) without reading tensor data. Rejects with
 * {@link GgufError} only, whatever the bytes or the source do.
 */
export async function readGgufHeader(src: ByteSource, limits?: Partial<GgufLimits>): Promise<GgufHeader> {
  const merged: GgufLimits = { ...DEFAULT_GGUF_LIMITS };
  for (const [name, value] of Object.entries(limits ?? {})) {
    if (value !== undefined) merged[name as keyof GgufLimits] = value;
  }
  try {
    return await parse(src, merged);
  } catch (err) {
    if (err instanceof GgufError) throw err;
    throw new GgufError("malformed header", { cause: err });
  }
}
