import { describe, expect, it } from "vitest";
import { encodeTensorData, float32ToFloat16Bits, mulberry32, uniformValues } from "./tensor-data";

describe("float32ToFloat16Bits", () => {
  it.each([
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [1 / 3, 0x3555],
    [65504, 0x7bff],
    [65520, 0x7c00], // rounds up past the largest finite half
    [Number.POSITIVE_INFINITY, 0x7c00],
    [Number.NEGATIVE_INFINITY, 0xfc00],
    [Number.NaN, 0x7e00],
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -26, 0x0000], // underflows
    [3 * 2 ** -25, 0x0002], // subnormal tie rounds to even
    [1 + 2 ** -11, 0x3c00], // tie between 1 and the next half rounds to even (down)
    [1 + 3 * 2 ** -11, 0x3c02], // tie rounds to even (up)
    [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just past the tie rounds up
  ])("%d → %s", (value, bits) => {
    expect(float32ToFloat16Bits(value)).toBe(bits);
  });
});

describe("mulberry32", () => {
  it("is reproducible per seed and differs between seeds", () => {
    const draw = (seed: number) => Array.from({ length: 8 }, mulberry32(seed));
    expect(draw(1)).toEqual(draw(1));
    expect(draw(1)).not.toEqual(draw(2));
    for (const x of draw(3)) expect(x >= 0 && x < 1).toBe(true);
  });

  it("uniformValues stays within the scale", () => {
    const values = uniformValues(mulberry32(9), 1000, 0.25);
    expect(Math.max(...values)).toBeLessThanOrEqual(0.25);
    expect(Math.min(...values)).toBeGreaterThanOrEqual(-0.25);
    expect(new Set(values).size).toBeGreaterThan(990);
  });
});

describe("encodeTensorData", () => {
  it("writes F32 and F16 little-endian", () => {
    const values = Float32Array.of(1, -2);
    expect([...encodeTensorData(values, "f32")]).toEqual([0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]);
    expect([...encodeTensorData(values, "f16")]).toEqual([0x00, 0x3c, 0x00, 0xc0]);
  });

  it("writes Q8_0 blocks: f16 scale = max|x|/127, then rounded int8 quants", () => {
    const values = Float32Array.from({ length: 64 }, (_, i) => (i < 32 ? i - 16 : 0) * 0.5);
    const bytes = encodeTensorData(values, "q8_0");
    expect(bytes.length).toBe(2 * 34);
    const view = new DataView(bytes.buffer);
    expect(view.getUint16(0, true)).toBe(float32ToFloat16Bits(8 / 127));
    expect(view.getInt8(2)).toBe(-127); // -8 is the block's largest magnitude
    expect(view.getInt8(2 + 16)).toBe(0);
    expect(view.getInt8(2 + 17)).toBe(Math.round(0.5 * (127 / 8)));
    // An all-zero block has scale 0 and zero quants.
    expect([...bytes.subarray(34)]).toEqual(new Array(34).fill(0));
  });

  it("refuses Q8_0 data that is not whole blocks", () => {
    expect(() => encodeTensorData(new Float32Array(33), "q8_0")).toThrow(/multiple of 32/);
  });
});
