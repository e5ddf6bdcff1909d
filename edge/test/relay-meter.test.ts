import { describe, expect, it } from "vitest";
import { StreamMeter, scanUsage, usageOfJson, zeroUsage } from "../src/relay/meter";

const encoder = new TextEncoder();
const final = {
  model: "m",
  done: true,
  done_reason: "stop",
  context: [1, 2, 3],
  total_duration: 900,
  load_duration: 100,
  prompt_eval_count: 12,
  prompt_cached_count: 9,
  prompt_eval_duration: 200,
  eval_count: 34,
  eval_duration: 500,
};
const expected = {
  prompt_tokens: 12,
  prompt_cached_tokens: 9,
  output_tokens: 34,
  load_duration: 100,
  prompt_eval_duration: 200,
  eval_duration: 500,
  total_duration: 900,
};
const stream = [
  { model: "m", response: "héllo ✓", done: false },
  { model: "m", response: '{"done":true,"eval_count":1}', done: false },
  final,
]
  .map((v) => `${JSON.stringify(v)}\n`)
  .join("");

/** Feeds `text` to a meter cut into pieces of `size` bytes (splitting lines and multibyte characters). */
function meter(text: string, size: number): StreamMeter {
  const bytes = encoder.encode(text);
  const m = new StreamMeter();
  for (let i = 0; i < bytes.length; i += size) m.observe(bytes.subarray(i, i + size));
  m.end();
  return m;
}

describe("StreamMeter", () => {
  it.each([1, 2, 7, 64, 1 << 20])("reads the final chunk with %i-byte pieces", (size) => {
    const m = meter(stream, size);
    expect(m.done).toBe(true);
    expect(m.usage).toEqual(expected);
    expect(m.lines).toBe(2);
  });

  it("reads a final line without a trailing newline", () => {
    expect(meter(stream.trimEnd(), 5).usage).toEqual(expected);
  });

  it("bills the lines seen so far when the stream is cut short", () => {
    const m = meter(stream.split("\n").slice(0, 2).join("\n"), 3);
    expect(m.done).toBe(false);
    expect(m.partialUsage()).toEqual({ ...zeroUsage(), output_tokens: 2 });
  });

  it("never meters more cached prompt tokens than prompt tokens", () => {
    const m = meter(`${JSON.stringify({ ...final, prompt_cached_count: 99 })}\n`, 16);
    expect(m.usage).toEqual({ ...expected, prompt_cached_tokens: 12 });
  });

  it("notes the runner's own error line", () => {
    const m = meter(`${JSON.stringify({ response: "a", done: false })}\n{"error":"model crashed"}\n`, 4);
    expect(m.error).toBe("model crashed");
    expect(m.done).toBe(false);
  });

  it("reads the metrics of a final line too long to parse from its tail", () => {
    const huge = { ...final, context: Array.from({ length: 400_000 }, (_, i) => i % 50_000) };
    const m = meter(`${JSON.stringify(huge)}\n`, 64 << 10);
    expect(m.done).toBe(true);
    expect(m.usage).toEqual(expected);
  });
});

describe("usage from JSON text", () => {
  it.each([
    ["a generate object", JSON.stringify(final), expected],
    [
      "an embed object",
      JSON.stringify({ embeddings: [[1]], total_duration: 5, prompt_eval_count: 3 }),
      { ...zeroUsage(), total_duration: 5, prompt_tokens: 3 },
    ],
    ["an object without metrics", JSON.stringify({ embedding: [0.1] }), zeroUsage()],
  ])("reads %s", (_label, text, usage) => {
    expect(usageOfJson(text)).toEqual({ usage });
  });

  it("reports an error object", () => {
    expect(usageOfJson('{"error":"nope"}')).toEqual({ usage: zeroUsage(), error: "nope" });
  });

  it("ignores metric-looking keys inside strings when scanning", () => {
    const text = JSON.stringify({ response: 'say "eval_count": 999', eval_count: 4 });
    expect(scanUsage(text).output_tokens).toBe(4);
    expect(scanUsage(JSON.stringify({ response: '"eval_count":7' })).output_tokens).toBe(0);
  });
});
