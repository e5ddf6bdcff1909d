import { describe, expect, it } from "vitest";
import { readGgufHeader } from "./reader";
import { type ByteSource, bytesSource, GgufError } from "./source";
import { countingSource, everyValueType, filler, sampleTensors } from "./testkit";
import { GgmlType, GgufValueType } from "./types";
import { GgufByteWriter, type GgufTensorInfoInput, kv, writeGguf } from "./writer";

/** Expected reader form of an entry the writer was given: 64-bit integers always come back as bigint. */
function normalised(entry: { type: GgufValueType; arrayType?: GgufValueType; value: unknown }): unknown {
  const is64 = (t?: GgufValueType) => t === GgufValueType.UINT64 || t === GgufValueType.INT64;
  if (entry.type !== GgufValueType.ARRAY) return is64(entry.type) ? BigInt(entry.value as number) : entry.value;
  return (entry.value as unknown[]).map((v) => (is64(entry.arrayType) ? BigInt(v as number) : v));
}

describe("readGgufHeader round trip", () => {
  const cases = [
    { version: 3 as const, alignment: 32 },
    { version: 2 as const, alignment: 32 },
    { version: 3 as const, alignment: 64 },
    { version: 3 as const, alignment: 1 },
    { version: 2 as const, alignment: 256 },
  ];
  it.each(cases)("v$version alignment $alignment: every value type and tensor comes back", async (c) => {
    const metadata = everyValueType();
    const tensors = sampleTensors();
    const bytes = writeGguf({ ...c, metadata, tensors });
    const header = await readGgufHeader(bytesSource(bytes));

    expect(header.version).toBe(c.version);
    expect(header.alignment).toBe(c.alignment);
    expect(header.fileSize).toBe(bytes.length);
    expect(header.dataOffset % c.alignment).toBe(0);
    expect(header.dataOffset).toBeGreaterThanOrEqual(header.headerBytes);
    const expectedKeys = metadata.map((e) => e.key);
    if (c.alignment !== 32) expectedKeys.push("general.alignment");
    expect(header.entries.map((e) => e.key)).toEqual(expectedKeys);
    for (const input of metadata) {
      const entry = header.entries.find((e) => e.key === input.key)!;
      expect(entry.type).toBe(input.type);
      expect(entry.arrayType).toBe(input.arrayType);
      expect(entry.value).toEqual(normalised(input));
    }
    expect(header.metadata["t.u64"]).toBe((1n << 64n) - 1n);
    expect(header.metadata["a.nested"]).toEqual([[1, -2], ["x"]]);

    expect(header.tensorCount).toBe(tensors.length);
    header.tensors.forEach((info, i) => {
      const input = tensors[i]!;
      expect(info).toMatchObject({ name: input.name, dims: input.dims, type: input.type, size: input.data.length });
      expect(info.offset % c.alignment).toBe(0);
      expect(info.fileOffset).toBe(header.dataOffset + info.offset);
      expect(bytes.subarray(info.fileOffset, info.fileOffset + info.size)).toEqual(input.data);
    });
  });

  it("reads a file with no metadata and no tensors", async () => {
    const header = await readGgufHeader(bytesSource(writeGguf({ metadata: [], tensors: [] })));
    expect(header).toMatchObject({ version: 3, tensorCount: 0, entries: [], tensors: [], headerBytes: 24 });
  });

  it("keeps a hostile key like __proto__ as a plain key", async () => {
    const header = await readGgufHeader(bytesSource(writeGguf({ metadata: [kv.u32("__proto__", 7)], tensors: [] })));
    expect(Object.hasOwn(header.metadata, "__proto__")).toBe(true);
    expect(Object.getOwnPropertyDescriptor(header.metadata, "__proto__")?.value).toBe(7);
    expect(Object.getPrototypeOf(header.metadata)).toBe(null);
  });

  it("reads the header of a large file without reading its tensor data", async () => {
    const big = { name: "big", dims: [1024, 1024], type: GgmlType.F32, data: new Uint8Array(4 * 1024 * 1024) };
    const src = countingSource(writeGguf({ metadata: everyValueType(), tensors: [big] }));
    const header = await readGgufHeader(src);
    expect(header.tensors[0]?.size).toBe(4 * 1024 * 1024);
    expect(src.requestedBytes).toBeLessThanOrEqual(64 * 1024);
  });

  it("never requests the same byte twice while reading a long token list", async () => {
    const tokens = Array.from({ length: 50_000 }, (_, i) => `token-${i}-${"x".repeat(i % 40)}`);
    const bytes = writeGguf({ metadata: [kv.strArr("tokenizer.ggml.tokens", tokens)], tensors: [] });
    const src = countingSource(bytes);
    const header = await readGgufHeader(src);
    expect((header.metadata["tokenizer.ggml.tokens"] as string[])[49_999]).toBe(tokens[49_999]);
    expect(src.requestedBytes).toBeLessThanOrEqual(bytes.length);
    const ranges = [...src.calls].sort((a, b) => a.offset - b.offset);
    for (let i = 1; i < ranges.length; i++) {
      expect(ranges[i]!.offset).toBeGreaterThanOrEqual(ranges[i - 1]!.offset + ranges[i - 1]!.length);
    }
  });
});

// Hostile headers built byte by byte.
const start = (opts: { version?: number; tensors?: number | bigint; kvs?: number | bigint } = {}) =>
  new GgufByteWriter()
    .magic()
    .u32(opts.version ?? 3)
    .u64(opts.tensors ?? 0)
    .u64(opts.kvs ?? 0);
const pad = (w: GgufByteWriter, n = 256) => w.bytes(new Uint8Array(n)).finish();
const tensorFile = (info: Partial<GgufTensorInfoInput>, metadata = [kv.str("general.architecture", "llama")]) => {
  const w = start({ tensors: 1, kvs: metadata.length });
  for (const e of metadata) w.kv(e);
  w.tensorInfo({ name: "w", dims: [4], type: GgmlType.F32, offset: 0, ...info });
  return pad(w.padTo(32), 64);
};
const validFile = writeGguf({ metadata: everyValueType(), tensors: sampleTensors() });
const u64Max = (1n << 64n) - 1n;

const badInputs: { name: string; bytes: Uint8Array; message: RegExp }[] = [
  { name: "empty file", bytes: new Uint8Array(0), message: /truncated magic/ },
  { name: "not GGUF", bytes: new TextEncoder().encode("GGML and then some bytes......"), message: /not a GGUF file/ },
  { name: "only the magic", bytes: new TextEncoder().encode("GGUF"), message: /truncated version/ },
  { name: "version 1", bytes: pad(start({ version: 1 })), message: /version 1 is not supported/ },
  { name: "version 4", bytes: pad(start({ version: 4 })), message: /unsupported version 4/ },
  { name: "big-endian", bytes: pad(new GgufByteWriter().magic().u32(0x03000000)), message: /big-endian/ },
  { name: "counts cut off", bytes: start().finish().subarray(0, 20), message: /truncated counts/ },
  { name: "kv count past the file", bytes: pad(start({ kvs: 1000 })), message: /count larger than the file/ },
  { name: "kv count 2^64-1", bytes: pad(start({ kvs: u64Max })), message: /count larger than the file/ },
  { name: "tensor count 2^64-1", bytes: pad(start({ tensors: u64Max })), message: /count larger than the file/ },
  { name: "huge key length", bytes: pad(start({ kvs: 1 }).u64(1n << 62n)), message: /key longer than 65536/ },
  {
    name: "huge string length",
    bytes: pad(start({ kvs: 1 }).str("k").u32(GgufValueType.STRING).u64(u64Max)),
    message: /string value of "k" longer than 16777216 bytes/,
  },
  {
    name: "string longer than the file",
    bytes: pad(start({ kvs: 1 }).str("k").u32(GgufValueType.STRING).u64(5000)),
    message: /truncated string value of "k"/,
  },
  {
    name: "huge array count",
    bytes: pad(
      start({ kvs: 1 })
        .str("a")
        .u32(GgufValueType.ARRAY)
        .u32(GgufValueType.UINT8)
        .u64(1n << 40n),
    ),
    message: /array "a" longer than 67108864 elements/,
  },
  {
    name: "array count past the file",
    bytes: pad(start({ kvs: 1 }).str("a").u32(GgufValueType.ARRAY).u32(GgufValueType.STRING).u64(1_000_000)),
    message: /truncated array "a"/,
  },
  {
    name: "unknown value type",
    bytes: pad(start({ kvs: 1 }).str("k").u32(13)),
    message: /unknown value type 13 for "k"/,
  },
  {
    name: "unknown array item type",
    bytes: pad(start({ kvs: 1 }).str("a").u32(GgufValueType.ARRAY).u32(99).u64(1)),
    message: /unknown array item type 99/,
  },
  {
    name: "arrays nested too deeply",
    bytes: pad(
      start({ kvs: 1 })
        .str("a")
        .u32(GgufValueType.ARRAY)
        .bytes(new GgufByteWriter().u32(GgufValueType.ARRAY).u64(1).finish().slice())
        .bytes(new GgufByteWriter().u32(GgufValueType.ARRAY).u64(1).finish())
        .bytes(new GgufByteWriter().u32(GgufValueType.ARRAY).u64(1).finish())
        .bytes(new GgufByteWriter().u32(GgufValueType.ARRAY).u64(1).finish()),
    ),
    message: /nested too deeply/,
  },
  {
    name: "duplicate key",
    bytes: pad(start({ kvs: 2 }).kv(kv.u32("k", 1)).kv(kv.u32("k", 2))),
    message: /duplicate key "k"/,
  },
  {
    name: "alignment 0",
    bytes: pad(start({ kvs: 1 }).kv(kv.u32("general.alignment", 0))),
    message: /alignment 0 is not a power of two/,
  },
  {
    name: "alignment not a power of two",
    bytes: pad(start({ kvs: 1 }).kv(kv.u32("general.alignment", 48))),
    message: /alignment 48 is not a power of two/,
  },
  {
    name: "alignment of the wrong type",
    bytes: pad(start({ kvs: 1 }).kv(kv.u64("general.alignment", 32))),
    message: /general.alignment must be a uint32/,
  },
  { name: "5 dims", bytes: tensorFile({ dims: [1, 1, 1, 1, 1] }), message: /"w" has 5 dimensions, at most 4/ },
  { name: "zero dim", bytes: tensorFile({ dims: [4, 0] }), message: /"w" has a zero dimension/ },
  { name: "unknown ggml type", bytes: tensorFile({ type: 4 }), message: /"w" has unknown type 4/ },
  { name: "ggml type past the table", bytes: tensorFile({ type: 1000 }), message: /unknown type 1000/ },
  {
    name: "row not a whole number of blocks",
    bytes: tensorFile({ dims: [16], type: GgmlType.Q4_0 }),
    message: /not a multiple of the block size 32/,
  },
  { name: "element count overflow", bytes: tensorFile({ dims: [1n << 32n, 1n << 32n] }), message: /overflows/ },
  { name: "dim of 2^64-1", bytes: tensorFile({ dims: [u64Max] }), message: /overflows/ },
  { name: "offset not aligned", bytes: tensorFile({ offset: 4 }), message: /offset is not aligned/ },
  { name: "offset past the end", bytes: tensorFile({ offset: 1n << 40n }), message: /past the end of the file/ },
  { name: "offset 2^64-32", bytes: tensorFile({ offset: u64Max - 31n }), message: /past the end of the file/ },
  { name: "data overlapping the end", bytes: tensorFile({ dims: [64] }), message: /"w" data extends past the end/ },
  {
    name: "duplicate tensor name",
    bytes: pad(
      start({ tensors: 2 })
        .tensorInfo({ name: "w", dims: [1], type: 0, offset: 0 })
        .tensorInfo({ name: "w", dims: [1], type: 0, offset: 32 }),
    ),
    message: /duplicate tensor "w"/,
  },
  {
    name: "overlapping tensors",
    bytes: pad(
      start({ tensors: 2 })
        .tensorInfo({ name: "a", dims: [16], type: 0, offset: 0 })
        .tensorInfo({ name: "b", dims: [1], type: 0, offset: 32 }),
    ),
    message: /tensors "a" and "b" overlap/,
  },
  { name: "tensor data cut off", bytes: validFile.subarray(0, validFile.length - 40), message: /past the end/ },
];

describe("readGgufHeader refuses bad input", () => {
  it.each(badInputs)("$name", async ({ bytes, message }) => {
    const err = await readGgufHeader(bytesSource(bytes)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GgufError);
    expect((err as GgufError).status).toBe(400);
    expect((err as GgufError).message).toMatch(/^invalid GGUF: /);
    expect((err as GgufError).message).toMatch(message);
  });

  it("refuses every truncation of a valid header", async () => {
    const header = await readGgufHeader(bytesSource(validFile));
    for (let cut = 0; cut < header.headerBytes; cut++) {
      const err = await readGgufHeader(bytesSource(validFile.subarray(0, cut))).catch((e: unknown) => e);
      expect(err, `cut at ${cut}`).toBeInstanceOf(GgufError);
      expect((err as Error).message).toMatch(/truncated|larger than the file|past the end/);
    }
  });

  it("honours a lower header size limit", async () => {
    const err = await readGgufHeader(bytesSource(validFile), { maxHeaderBytes: 100 }).catch((e: unknown) => e);
    expect((err as Error).message).toBe("invalid GGUF: header larger than 100 bytes");
  });

  it("cuts long keys short in messages", async () => {
    const longKey = `k${"y".repeat(1000)}`;
    const bytes = pad(start({ kvs: 2 }).kv(kv.u8(longKey, 1)).kv(kv.u8(longKey, 1)));
    const err = (await readGgufHeader(bytesSource(bytes)).catch((e: unknown) => e)) as Error;
    expect(err.message.length).toBeLessThan(120);
  });

  const faultySources: { name: string; src: ByteSource; message: RegExp }[] = [
    { name: "source throws", src: { size: 100, read: () => Promise.reject(new Error("R2 down")) }, message: /read/ },
    {
      name: "source returns short",
      src: { size: 1000, read: async () => validFile.subarray(0, 10) },
      message: /truncated/,
    },
    { name: "source returns junk", src: { size: 100, read: async () => "nope" as never }, message: /read/ },
    { name: "size is NaN", src: { size: Number.NaN, read: async () => new Uint8Array(0) }, message: /file size/ },
    {
      name: "size getter throws",
      src: {
        get size(): number {
          throw new TypeError("boom");
        },
        read: async () => new Uint8Array(0),
      },
      message: /malformed header/,
    },
  ];
  it.each(faultySources)("wraps faults as GgufError: $name", async ({ src, message }) => {
    const err = await readGgufHeader(src).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GgufError);
    expect((err as Error).message).toMatch(message);
  });
});

describe("writeGguf", () => {
  it("lays out tensor data aligned, each padded, as llama.cpp does", () => {
    const bytes = writeGguf({
      metadata: [],
      tensors: [{ name: "a", dims: [3], type: GgmlType.F32, data: filler(12, 9) }],
    });
    expect(bytes.length % 32).toBe(0);
    expect(new TextDecoder().decode(bytes.subarray(0, 4))).toBe("GGUF");
  });

  const mistakes = [
    { name: "data length", input: { name: "a", dims: [4], type: GgmlType.F32, data: new Uint8Array(12) } },
    { name: "partial block", input: { name: "a", dims: [16], type: GgmlType.Q4_0, data: new Uint8Array(9) } },
  ];
  it.each(mistakes)("throws on a wrong $name", ({ input }) => {
    expect(() => writeGguf({ metadata: [], tensors: [input] })).toThrow(/writeGguf: tensor a/);
  });

  it("throws on a bad alignment and on duplicates", () => {
    expect(() => writeGguf({ alignment: 24, metadata: [], tensors: [] })).toThrow(/power of two/);
    expect(() => writeGguf({ metadata: [kv.u8("k", 1), kv.u8("k", 2)], tensors: [] })).toThrow(/duplicate/);
  });
});
