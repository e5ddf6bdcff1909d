/**
 * What happens at the edge of the context, through the running stack with the official `ollama` client:
 * `truncate` (default true; false makes an over-long input a 400 with Ollama's text and generates nothing) and
 * `shift` (default true; false ends a generation that fills the context with done_reason "length").
 * The client's types predate these fields; it sends what it is given, so the requests are widened.
 */
import type { ChatRequest, GenerateRequest } from "ollama";
import { describe, expect, inject, it } from "vitest";
import { client, SCRIPTED_SENTENCE } from "./inference-support";

const { url, key } = inject("stack");
const ollama = client(url, key);

const TOO_LONG = "the input length exceeds the context length";
const NUM_CTX = 64;
/** Hundreds of byte-level tokens: well past a 64-token context. */
const longText = "the quick brown fox jumps over the lazy dog ".repeat(30);

type Widened<T> = T & { truncate?: boolean; shift?: boolean };
const generate = (request: Widened<GenerateRequest>) => ollama.generate({ ...request, stream: false });
const chat = (request: Widened<ChatRequest>) => ollama.chat({ ...request, stream: false });

describe("truncate", () => {
  it("refuses an over-long prompt with truncate: false, and cuts it to fit by default", async () => {
    const options = { num_ctx: NUM_CTX, num_predict: 2, temperature: 0 };
    await expect(generate({ model: "tiny", prompt: longText, truncate: false, options })).rejects.toMatchObject({
      status_code: 400,
      error: TOO_LONG,
    });
    const cut = await generate({ model: "tiny", prompt: longText, options });
    expect(cut.done_reason).toBe("length");
    expect(cut.prompt_eval_count).toBeLessThan(NUM_CTX);
  });

  it("refuses an over-long chat with truncate: false, and drops old messages by default", async () => {
    const options = { num_ctx: NUM_CTX, num_predict: 2, temperature: 0 };
    const messages = [
      { role: "user", content: longText },
      { role: "assistant", content: "ok" },
      { role: "user", content: "Hi" },
    ];
    await expect(chat({ model: "tiny", messages, truncate: false, options })).rejects.toMatchObject({
      status_code: 400,
      error: TOO_LONG,
    });
    const fitted = await chat({ model: "tiny", messages, options });
    expect(fitted.prompt_eval_count).toBeLessThan(NUM_CTX);
  });

  it("refuses an over-long embed input with truncate: false", async () => {
    await expect(
      ollama.embed({ model: "tiny", input: longText, truncate: false, options: { num_ctx: NUM_CTX } }),
    ).rejects.toMatchObject({ status_code: 400, error: TOO_LONG });
    const cut = await ollama.embed({ model: "tiny", input: longText, options: { num_ctx: NUM_CTX } });
    expect(cut.embeddings).toHaveLength(1);
  });
});

describe("shift", () => {
  it("stops with length when the context fills with shift: false, and shifts on by default", async () => {
    const probe = await generate({ model: "scripted", prompt: "Say it.", options: { num_ctx: NUM_CTX } });
    expect(probe.response).toBe(SCRIPTED_SENTENCE);
    // Room for only four generated tokens: the sentence (ten) does not fit.
    const options = { num_ctx: probe.prompt_eval_count + 5 };
    const stopped = await generate({ model: "scripted", prompt: "Say it.", shift: false, options });
    expect(stopped.done_reason).toBe("length");
    expect(stopped.eval_count).toBeLessThan(SCRIPTED_SENTENCE.split(" ").length);
    expect(SCRIPTED_SENTENCE.startsWith(stopped.response ?? "x")).toBe(true);
    const shifted = await generate({ model: "scripted", prompt: "Say it.", options });
    expect(shifted.done_reason).toBe("stop");
    expect(shifted.response).toBe(SCRIPTED_SENTENCE);
  });
});
