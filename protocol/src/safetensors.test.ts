import { describe, expect, it } from "vitest";
import { isApiError } from "./errors";
import { parseSafetensorsHeader, SAFETENSORS_MAX_HEADER_BYTES, safetensorsHeaderLength } from "./safetensors";
import { writeSafetensors } from "./safetensors-testkit";

const tensor = (name: string, dtype: string, shape: number[]) => ({
  name,
  dtype,
  shape,
  data: new Uint8Array(shape.reduce((a, b) => a * b, 1) * (dtype === "F32" ? 4 : 2)),
});

/** Parses a whole file's header as the edge and the runner do. */
function parse(file: Uint8Array, size = file.length) {
  const length = safetensorsHeaderLength(file.subarray(0, 8), size, "m.safetensors");
  return parseSafetensorsHeader(file.subarray(8, 8 + length), size, "m.safetensors");
}
const withHeader = (header: unknown, dataBytes = 16) => {
  const head = writeSafetensors([], { header: typeof header === "string" ? header : JSON.stringify(header) });
  const out = new Uint8Array(head.length + dataBytes);
  out.set(head);
  return out;
};

describe("safetensors header", () => {
  it("reads tensors with absolute offsets, skipping __metadata__", () => {
    const file = writeSafetensors([tensor("a", "F32", [2, 2]), tensor("b", "BF16", [3])], {
      metadata: { format: "pt" },
    });
    const header = parse(file);
    const dataStart = 8 + header.headerLength;
    expect(header.tensors).toEqual([
      { name: "a", dtype: "F32", shape: [2, 2], start: dataStart, end: dataStart + 16 },
      { name: "b", dtype: "BF16", shape: [3], start: dataStart + 16, end: dataStart + 22 },
    ]);
  });

  it.each<[string, () => Uint8Array, number | undefined, string]>([
    ["shorter than 8 bytes", () => new Uint8Array(4), undefined, "shorter than its 8-byte header length"],
    [
      "length past the end",
      () => writeSafetensors([], { headerLength: 1n << 40n }),
      undefined,
      "past the end of the file",
    ],
    [
      "length over the cap",
      () => writeSafetensors([], { headerLength: BigInt(SAFETENSORS_MAX_HEADER_BYTES + 1) }),
      SAFETENSORS_MAX_HEADER_BYTES * 2,
      "over the limit",
    ],
    ["not JSON", () => withHeader("{not json"), undefined, "not valid JSON"],
    ["JSON array", () => withHeader([1, 2]), undefined, "not a JSON object"],
    ["tensor not an object", () => withHeader({ a: 3 }), undefined, "tensor a is not an object"],
    [
      "unknown dtype",
      () => withHeader({ a: { dtype: "F12", shape: [1], data_offsets: [0, 2] } }),
      undefined,
      'unknown dtype "F12"',
    ],
    [
      "negative dim",
      () => withHeader({ a: { dtype: "F16", shape: [-1], data_offsets: [0, 2] } }),
      undefined,
      "invalid shape",
    ],
    [
      "offsets out of bounds",
      () => withHeader({ a: { dtype: "F16", shape: [16], data_offsets: [0, 32] } }),
      undefined,
      "out of bounds",
    ],
    [
      "begin after end",
      () => withHeader({ a: { dtype: "F16", shape: [0], data_offsets: [4, 2] } }),
      undefined,
      "out of bounds",
    ],
    [
      "size not shape × dtype",
      () => withHeader({ a: { dtype: "F16", shape: [3], data_offsets: [0, 8] } }),
      undefined,
      "do not match",
    ],
    [
      "overlap",
      () =>
        withHeader({
          a: { dtype: "F16", shape: [4], data_offsets: [0, 8] },
          b: { dtype: "F16", shape: [4], data_offsets: [6, 14] },
        }),
      undefined,
      "tensors a and b overlap",
    ],
  ])("refuses %s with a 400 naming the file", (_label, file, size, message) => {
    let error: unknown;
    try {
      const bytes = file();
      parse(bytes, size ?? bytes.length);
    } catch (err) {
      error = err;
    }
    expect(isApiError(error) && error.status).toBe(400);
    expect((error as Error).message).toMatch(/^invalid safetensors file m\.safetensors: /);
    expect((error as Error).message).toContain(message);
  });

  it("takes invalid UTF-8 as invalid JSON", () => {
    const head = writeSafetensors([], { header: "{}" });
    head[8] = 0xff;
    expect(() => parse(head)).toThrow("not valid JSON");
  });
});
