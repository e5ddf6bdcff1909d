import { describe, expect, it } from "vitest";
import { reportedEvalCount } from "./completion";

describe("reportedEvalCount", () => {
  it.each([
    { generated: 48, reason: "length", max: 48, expected: 48 },
    // One token past the limit to finish a split UTF-8 character: num_predict still bounds the count.
    { generated: 49, reason: "length", max: 48, expected: 48 },
    { generated: 37, reason: "stop", max: 48, expected: 37 },
    { generated: 120, reason: "stop", max: undefined, expected: 120 },
    { generated: 5, reason: "length", max: undefined, expected: 5 },
  ] as const)("$generated tokens, $reason, limit $max → $expected", ({ generated, reason, max, expected }) => {
    expect(reportedEvalCount(generated, reason, max)).toBe(expected);
  });
});
