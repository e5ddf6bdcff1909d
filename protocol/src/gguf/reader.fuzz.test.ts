import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type GgufHeader, type GgufValue, readGgufHeader } from "./reader";
import { GgufError } from "./source";
import { countingSource, everyValueType, sampleTensors } from "./testkit";
import { GgmlType, GgufValueType } from "./types";
import { GgufByteWriter, type GgufMetadataEntry, type GgufTensorInput, kv, writeGguf } from "./writer";

const SEED = 20240611;
/** Guards against a hang, not a speed claim: a case that never settles fails instead of stalling the run. */
const CASE_TIMEOUT_MS = 5_000;

function countValues(value: GgufValue): number {
  return Array.isArray(value) ? value.reduce((n: number, v) => n + countValues(v), 1) : 1;
}

/**
 * Reads `bytes` and checks the invariants that must hold for ANY input: it settles with a header or a GgufError,
 * never asks for bytes outside the file or twice, and never materialises more values than the file has bytes.
 */
async function readAndCheck(bytes: Uint8Array): Promise<GgufHeader | GgufError> {
  const src = countingSource(bytes);
  let outcome: GgufHeader | GgufError;
  try {
    outcome = await readGgufHeader(src);
  } catch (err) {
    if (!(err instanceof GgufError)) throw new Error(`non-GgufError escaped: ${String(err)}`);
    expect(err.message).toMatch(/^invalid GGUF: /);
    outcome = err;
  }
  for (const call of src.calls) {
    expect(call.offset).toBeGreaterThanOrEqual(0);
    expect(call.length).toBeGreaterThan(0);
    expect(call.offset + call.length).toBeLessThanOrEqual(bytes.length);
  }
  expect(src.requestedBytes).toBeLessThanOrEqual(bytes.length);
  if (!(outcome instanceof GgufError)) {
    const values = Object.values(outcome.metadata).reduce((n: number, v) => n + countValues(v), 0);
    expect(values).toBeLessThanOrEqual(bytes.length);
    for (const t of outcome.tensors) expect(t.fileOffset + t.size).toBeLessThanOrEqual(bytes.length);
  }
  return outcome;
}

// Valid bases for mutation: rich metadata, several tensors, two versions and alignments.
const BASES: Uint8Array[] = [
  writeGguf({ metadata: everyValueType(), tensors: sampleTensors() }),
  writeGguf({ version: 2, alignment: 64, metadata: everyValueType().slice(0, 8), tensors: sampleTensors() }),
  writeGguf({ metadata: [kv.strArr("tokenizer.ggml.tokens", ["a", "b", "c", "<s>"])], tensors: [] }),
];

const EXTREME_U64 = [
  0n,
  1n,
  31n,
  32n,
  255n,
  1n << 31n,
  1n << 32n,
  1n << 53n,
  (1n << 63n) - 1n,
  1n << 63n,
  (1n << 64n) - 1n,
];
const EXTREME_U32 = [0, 1, 4, 5, 9, 13, 39, 40, 0x7fffffff, 0xffffffff];

type Mutation =
  | { kind: "flip"; at: number; bit: number }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "delete"; at: number; count: number }
  | { kind: "u64"; at: number; value: bigint }
  | { kind: "u32"; at: number; value: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({
    kind: fc.constant("insert" as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), count: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant("u64" as const), at: fc.nat(), value: fc.constantFrom(...EXTREME_U64) }),
  fc.record({ kind: fc.constant("u32" as const), at: fc.nat(), value: fc.constantFrom(...EXTREME_U32) }),
);

function mutate(base: Uint8Array, mutations: Mutation[]): Uint8Array {
  let bytes: Uint8Array = base.slice();
  for (const m of mutations) {
    // Mutations land in the header most of the time, where they matter; tensor data is opaque to the reader.
    const at = m.at % Math.max(1, Math.min(bytes.length, 1200));
    if (m.kind === "flip") {
      if (at < bytes.length) bytes[at]! ^= 1 << m.bit;
    } else if (m.kind === "insert") {
      bytes = concat(bytes.subarray(0, at), m.bytes, bytes.subarray(at));
    } else if (m.kind === "delete") {
      bytes = concat(bytes.subarray(0, at), bytes.subarray(at + m.count));
    } else if (at + 8 <= bytes.length && m.kind === "u64") {
      new DataView(bytes.buffer, bytes.byteOffset).setBigUint64(at, m.value, true);
    } else if (at + 4 <= bytes.length && m.kind === "u32") {
      new DataView(bytes.buffer, bytes.byteOffset).setUint32(at, m.value, true);
    }
  }
  return bytes;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// Random but valid files, built through the writer.
const scalarEntryArb: fc.Arbitrary<GgufMetadataEntry> = fc.oneof(
  fc.tuple(fc.string(), fc.integer({ min: 0, max: 255 })).map(([k, v]) => kv.u8(k, v)),
  fc.tuple(fc.string(), fc.integer()).map(([k, v]) => kv.i32(k, v)),
  fc.tuple(fc.string(), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })).map(([k, v]) => kv.u64(k, v)),
  fc.tuple(fc.string(), fc.double({ noNaN: true })).map(([k, v]) => kv.f64(k, v)),
  fc.tuple(fc.string(), fc.boolean()).map(([k, v]) => kv.bool(k, v)),
  fc.tuple(fc.string(), fc.string({ unit: "grapheme" })).map(([k, v]) => kv.str(k, v)),
  fc.tuple(fc.string(), fc.array(fc.string(), { maxLength: 20 })).map(([k, v]) => kv.strArr(k, v)),
  fc
    .tuple(fc.string(), fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 20 }))
    .map(([k, v]) => kv.u32Arr(k, v)),
);
const tensorArb: fc.Arbitrary<Omit<GgufTensorInput, "name">> = fc
  .tuple(
    fc.constantFrom(GgmlType.F32, GgmlType.F16, GgmlType.Q8_0, GgmlType.Q4_K),
    fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 0, maxLength: 3 }),
  )
  .map(([type, rest]) => {
    const block = type === GgmlType.Q8_0 ? 32 : type === GgmlType.Q4_K ? 256 : 1;
    const dims = [block, ...rest];
    const typeSize = type === GgmlType.F32 ? 4 : type === GgmlType.F16 ? 2 : type === GgmlType.Q8_0 ? 34 : 144;
    const size = (dims.reduce((a, b) => a * b, 1) / block) * typeSize;
    return { type, dims, data: new Uint8Array(size) };
  });
const validFileArb = fc
  .record({
    version: fc.constantFrom(2 as const, 3 as const),
    alignment: fc.constantFrom(1, 8, 32, 64),
    metadata: fc.uniqueArray(scalarEntryArb, { maxLength: 8, selector: (e) => e.key }),
    tensors: fc.array(tensorArb, { maxLength: 5 }),
  })
  .filter((r) => !r.metadata.some((e) => e.key === "general.alignment"))
  .map((r) => ({ ...r, tensors: r.tensors.map((t, i) => ({ ...t, name: `t${i}` })) }));

describe("readGgufHeader under fuzzing", () => {
  it("settles with a header or a GgufError on random bytes", async () => {
    const prefix = fc.constantFrom(
      new Uint8Array(0),
      new TextEncoder().encode("GGUF"),
      new GgufByteWriter().magic().u32(3).finish(),
      new GgufByteWriter().magic().u32(2).u64(1).u64(1).finish(),
    );
    await fc.assert(
      fc.asyncProperty(prefix, fc.uint8Array({ maxLength: 600 }), async (head, tail) => {
        await readAndCheck(concat(head, tail));
      }),
      { numRuns: 3000, seed: SEED, timeout: CASE_TIMEOUT_MS },
    );
  });

  it("settles with a header or a GgufError on mutated valid files", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...BASES),
        fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
        async (base, mutations) => {
          await readAndCheck(mutate(base, mutations));
        },
      ),
      { numRuns: 5000, seed: SEED, timeout: CASE_TIMEOUT_MS },
    );
  });

  it("reads random valid files exactly, and refuses every truncation of their header", async () => {
    await fc.assert(
      fc.asyncProperty(validFileArb, fc.nat(), async (input, cutSeed) => {
        const bytes = writeGguf(input);
        const header = await readAndCheck(bytes);
        if (header instanceof GgufError) throw header;
        expect(header.entries.map((e) => e.key)).toEqual([
          ...input.metadata.map((e) => e.key),
          ...(input.alignment === 32 ? [] : ["general.alignment"]),
        ]);
        for (const e of input.metadata) {
          const expected = e.type === GgufValueType.UINT64 ? BigInt(e.value as bigint) : e.value;
          expect(header.metadata[e.key]).toEqual(expected);
        }
        expect(header.tensors.map((t) => [t.name, t.type, t.dims])).toEqual(
          input.tensors.map((t) => [t.name, t.type, t.dims]),
        );
        const truncated = await readAndCheck(bytes.subarray(0, cutSeed % header.headerBytes));
        expect(truncated).toBeInstanceOf(GgufError);
      }),
      { numRuns: 2000, seed: SEED, timeout: CASE_TIMEOUT_MS },
    );
  });
});
