import type { Token } from "node-llama-cpp";
import { describe, expect, it } from "vitest";
import type { ModelInstance } from "../model-instance";
import { fitPrompt, reportedEvalCount, tokenLimit } from "./completion";
import type { InferenceSettings } from "./options";

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

describe("fitPrompt", () => {
  // BOS is token 1 and prepended by node-llama-cpp: it counts as evaluated but is not passed on.
  const instance = { model: { tokens: { bos: 1, shouldPrependBosToken: true } } } as unknown as ModelInstance;
  const prompt = (n: number) => [1, ...Array.from({ length: n }, (_, i) => 100 + i)] as Token[];

  it.each([
    { name: "fits as is", n: 10, numCtx: 64, truncate: true, evaluated: 11, first: 100 },
    // 64 cells less a shift's room (6): 58 evaluated, BOS included; the oldest tokens go.
    { name: "is cut to leave a shift's room", n: 100, numCtx: 64, truncate: true, evaluated: 58, first: 143 },
    {
      name: "stays whole without truncate when one cell is left",
      n: 62,
      numCtx: 64,
      truncate: false,
      evaluated: 63,
      first: 100,
    },
  ])("$name", ({ n, numCtx, truncate, evaluated, first }) => {
    const fitted = fitPrompt(instance, prompt(n), numCtx, truncate);
    expect(fitted.evaluated).toBe(evaluated);
    expect(fitted.tokens.length).toBe(evaluated - 1);
    expect(fitted.tokens[0]).toBe(first);
  });

  it("refuses a prompt that fills the context when truncate is false", () => {
    expect(() => fitPrompt(instance, prompt(63), 64, false)).toThrow(
      expect.objectContaining({ status: 400, message: "the input length exceeds the context length" }),
    );
  });
});

describe("tokenLimit", () => {
  const settings = (maxTokens: number | undefined, fillContext = false) =>
    ({ numCtx: 64, maxTokens, fillContext }) as InferenceSettings;
  it.each([
    { name: "shift on: num_predict alone", s: settings(undefined), evaluated: 60, shift: true, limit: undefined },
    { name: "shift on: num_predict 8", s: settings(8), evaluated: 60, shift: true, limit: 8 },
    { name: "shift off: the room left", s: settings(undefined), evaluated: 60, shift: false, limit: 4 },
    { name: "shift off: num_predict when smaller", s: settings(2), evaluated: 60, shift: false, limit: 2 },
    { name: "num_predict -2 fills the context", s: settings(undefined, true), evaluated: 50, shift: true, limit: 14 },
  ])("$name", ({ s, evaluated, shift, limit }) => {
    expect(tokenLimit(s, evaluated, shift)).toBe(limit);
  });
});
