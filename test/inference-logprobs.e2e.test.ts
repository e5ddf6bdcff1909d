/**
 * `logprobs` / `top_logprobs` through the running stack with the official `ollama` and `openai` clients: every
 * streamed chunk carries the entries of the tokens that made its text, the final object carries them all, the
 * tokens concatenate to the text, and the values come from the distribution the sampler drew from.
 */
import OpenAI from "openai";
import { describe, expect, inject, it } from "vitest";
import { client, collect, SCRIPTED_SENTENCE } from "./inference-support";

const { url, key } = inject("stack");
const ollama = client(url, key);
const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0 });

interface Entry {
  token: string;
  logprob: number;
  bytes?: number[];
  top_logprobs?: { token: string; logprob: number; bytes?: number[] }[];
}

/** What holds for every entry whatever the model: a log-probability, its token's bytes, alternatives sorted. */
function checkEntry(entry: Entry, top: number) {
  expect(entry.logprob).toBeLessThanOrEqual(0);
  expect(entry.bytes).toEqual([...Buffer.from(entry.token, "utf8")]);
  const alternatives = entry.top_logprobs ?? [];
  expect(alternatives.length).toBeLessThanOrEqual(top);
  expect(alternatives.length).toBeGreaterThan(0);
  const values = alternatives.map((a) => a.logprob);
  expect(values).toEqual([...values].sort((a, b) => b - a));
  // A distribution: the alternatives' probabilities never add up to more than one.
  expect(values.reduce((sum, v) => sum + Math.exp(v), 0)).toBeLessThanOrEqual(1 + 1e-6);
  // The sampled token is at most as likely as the most likely one.
  expect(entry.logprob).toBeLessThanOrEqual((values[0] ?? 0) + 1e-6);
}

describe("logprobs on the native API", () => {
  it("streams generate chunks that each carry their tokens' entries, concatenating to the text", async () => {
    const stream = await ollama.generate({
      model: "scripted",
      prompt: "Say it.",
      stream: true,
      logprobs: true,
      top_logprobs: 3,
    });
    const { chunks } = await collect(stream);
    const text = chunks.map((c) => c.response).join("");
    expect(text).toBe(SCRIPTED_SENTENCE);
    for (const chunk of chunks.filter((c) => c.response)) {
      const entries = (chunk.logprobs ?? []) as Entry[];
      expect(entries.map((e) => e.token).join("")).toBe(chunk.response);
      for (const entry of entries) checkEntry(entry, 3);
    }
    // The scripted model leads by 32 logits: its tokens are all but certain.
    const all = chunks.flatMap((c) => (c.logprobs ?? []) as Entry[]);
    expect(all.length).toBeGreaterThanOrEqual(10);
    for (const entry of all) expect(entry.logprob).toBeGreaterThan(-1e-3);
  });

  it("folds every entry into a non-streamed chat answer; real values from the sampled distribution", async () => {
    const res = await ollama.chat({
      model: "tiny",
      messages: [{ role: "user", content: "Hello" }],
      stream: false,
      logprobs: true,
      top_logprobs: 5,
      options: { temperature: 1, seed: 7, num_predict: 12, top_k: 40 },
    });
    const entries = (res.logprobs ?? []) as Entry[];
    expect(entries.map((e) => e.token).join("")).toBe(res.message.content);
    expect(entries.length).toBe(res.eval_count);
    for (const entry of entries) checkEntry(entry, 5);
    // The gibberish model at temperature 1 is not certain of its tokens: the values are not all zero.
    expect(entries.some((e) => e.logprob < -0.01)).toBe(true);
  });

  it("sends no logprobs unless asked", async () => {
    const res = await ollama.generate({ model: "scripted", prompt: "Say it.", stream: false });
    expect(res.logprobs).toBeUndefined();
  });
});

describe("logprobs on OpenAI chat completions", () => {
  it("answers choices[0].logprobs.content whose tokens make the message", async () => {
    const completion = await openai.chat.completions.create({
      model: "scripted",
      messages: [{ role: "user", content: "Say it." }],
      logprobs: true,
      top_logprobs: 2,
    });
    const content = completion.choices[0]?.logprobs?.content ?? [];
    expect(content.map((c) => c.token).join("")).toBe(SCRIPTED_SENTENCE);
    expect(content.every((c) => c.top_logprobs.length > 0 && c.top_logprobs.length <= 2)).toBe(true);
  });
});
