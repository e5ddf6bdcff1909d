import { describe, expect, it } from "vitest";
import { formatKeepAlive, parseGoDuration, parseKeepAlive } from "./duration";
import { ApiError } from "./errors";

describe("parseGoDuration", () => {
  it.each([
    ["0", 0],
    ["5s", 5e9],
    ["-5s", -5e9],
    ["+5s", 5e9],
    ["300ms", 300e6],
    ["1.5h", 5400e9],
    ["1h30m", 5400e9],
    ["1h30m15s", 5415e9],
    [".5s", 5e8],
    ["1.s", 1e9],
    ["10us", 10e3],
    ["10µs", 10e3],
    ["10μs", 10e3],
    ["7ns", 7],
    ["2562047h", 2562047 * 3600e9],
  ])("%j → %d ns", (text, nanos) => {
    expect(parseGoDuration(text)).toBeCloseTo(nanos, -3);
  });

  it.each([
    ["", 'time: invalid duration ""'],
    ["-", 'time: invalid duration "-"'],
    ["s", 'time: invalid duration "s"'],
    [".s", 'time: invalid duration ".s"'],
    ["5", 'time: missing unit in duration "5"'],
    ["1h5", 'time: missing unit in duration "1h5"'],
    ["5x", 'time: unknown unit "x" in duration "5x"'],
    ["5 s", 'time: unknown unit " s" in duration "5 s"'],
    ["3000000h", 'time: invalid duration "3000000h"'],
  ])("%j → %s", (text, message) => {
    expect(() => parseGoDuration(text)).toThrow(new ApiError(400, message));
  });
});

describe("parseKeepAlive", () => {
  it.each<[unknown, number | null]>([
    [undefined, null],
    [null, null],
    [0, 0],
    [300, 300_000],
    [1.5, 1500],
    [-1, Number.POSITIVE_INFINITY],
    [-0.001, Number.POSITIVE_INFINITY],
    [1e300, Number.POSITIVE_INFINITY],
    ["10m", 600_000],
    ["1h30m", 5_400_000],
    ["300ms", 300],
    ["0", 0],
    ["0s", 0],
    ["-1m", Number.POSITIVE_INFINITY],
    // Bare numbers in strings are seconds (OLLAMA_KEEP_ALIVE's form), beyond what Ollama's API accepts.
    ["-1", Number.POSITIVE_INFINITY],
    ["300", 300_000],
  ])("%j → %s ms", (value, millis) => {
    expect(parseKeepAlive(value)).toBe(millis);
  });

  it.each<[unknown, string]>([
    [true, "Unsupported type: 'bool'"],
    [{}, "Unsupported type: 'map[string]interface {}'"],
    [[], "Unsupported type: '[]interface {}'"],
    ["soon", 'time: invalid duration "soon"'],
    ["10 minutes", 'time: unknown unit " minutes" in duration "10 minutes"'],
  ])("refuses %j with %j", (value, message) => {
    expect(() => parseKeepAlive(value)).toThrow(new ApiError(400, message));
  });

  it("formatKeepAlive writes values parseKeepAlive reads back", () => {
    for (const millis of [0, 1, 300, 600_000, Number.POSITIVE_INFINITY]) {
      expect(parseKeepAlive(formatKeepAlive(millis))).toBe(millis);
    }
  });
});
