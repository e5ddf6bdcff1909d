import { describe, expect, it } from "vitest";
import type { InferenceCall } from "./call";
import { type PromptFormat, resolveThink } from "./prompt";

const call = (relaxThinking?: boolean) => ({ model: { name: "m" }, relaxThinking }) as unknown as InferenceCall;
const format = (thinking: boolean) => ({ capabilities: { insert: false, tools: false, thinking } }) as PromptFormat;

describe("resolveThink", () => {
  it.each([
    {
      name: "thinking model, unset: thinks",
      thinking: true,
      think: undefined,
      relax: false,
      enabled: true,
      value: true,
    },
    { name: "thinking model, a level", thinking: true, think: "high", relax: false, enabled: true, value: "high" },
    { name: "thinking model, false", thinking: true, think: false, relax: false, enabled: false, value: false },
    { name: "plain model, unset", thinking: false, think: undefined, relax: false, enabled: false, value: undefined },
    {
      name: "plain model, relaxed: dropped",
      thinking: false,
      think: true,
      relax: true,
      enabled: false,
      value: undefined,
    },
  ])("$name", ({ thinking, think, relax, enabled, value }) => {
    expect(resolveThink(call(relax), format(thinking), think)).toEqual({ enabled, value });
  });

  it("refuses think on a model without thinking unless relaxed", () => {
    expect(() => resolveThink(call(), format(false), true)).toThrow(
      expect.objectContaining({ status: 400, message: '"m" does not support thinking' }),
    );
  });
});
