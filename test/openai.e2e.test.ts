/**
 * The OpenAI-compatible API of the running stack, driven by the official `openai` npm client exactly as an
 * application would use it against Ollama's /v1 (docs/openai.md): baseURL `<host>/v1`, the tenant key as apiKey.
 */
import OpenAI from "openai";
import { describe, expect, inject, it } from "vitest";

const { url, key } = inject("stack");
// No retries: a failure must show as itself, not as three slower ones.
const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0 });

const SENTENCE = "The quick brown fox jumps over the lazy dog.";
const ask = [{ role: "user" as const, content: "Say the sentence." }];
const weatherTool = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "Current weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

/** Decodes OpenAI's base64 embedding (little-endian float32) back to numbers. */
function decodeBase64Floats(b64: string): number[] {
  const bytes = Buffer.from(b64, "base64");
  return Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4));
}

describe("OpenAI chat completions", () => {
  it("answers with the scripted sentence (temperature 0)", async () => {
    const completion = await openai.chat.completions.create({ model: "scripted", messages: ask, temperature: 0 });
    expect(completion.object).toBe("chat.completion");
    expect(completion.id).toMatch(/^chatcmpl-/);
    expect(completion.choices).toHaveLength(1);
    expect(completion.choices[0]?.message.role).toBe("assistant");
    expect(completion.choices[0]?.message.content).toBe(SENTENCE);
    expect(completion.choices[0]?.finish_reason).toBe("stop");
    expect(completion.usage?.completion_tokens).toBeGreaterThan(0);
    expect(completion.usage?.total_tokens).toBe(
      (completion.usage?.prompt_tokens ?? 0) + (completion.usage?.completion_tokens ?? 0),
    );
  });

  it("streams the same sentence, one id for every chunk", async () => {
    const stream = await openai.chat.completions.create({
      model: "scripted",
      messages: ask,
      temperature: 0,
      stream: true,
    });
    let text = "";
    const ids = new Set<string>();
    const finishReasons: (string | null)[] = [];
    for await (const chunk of stream) {
      ids.add(chunk.id);
      text += chunk.choices[0]?.delta.content ?? "";
      finishReasons.push(chunk.choices[0]?.finish_reason ?? null);
    }
    expect(text).toBe(SENTENCE);
    expect(ids.size).toBe(1);
    expect(finishReasons.at(-1)).toBe("stop");
    expect(finishReasons.slice(0, -1).every((r) => r === null)).toBe(true);
  });

  it("sends a final usage chunk with stream_options.include_usage", async () => {
    const stream = await openai.chat.completions.create({
      model: "scripted",
      messages: ask,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    const last = chunks.at(-1);
    expect(last?.choices).toEqual([]);
    expect(last?.usage?.completion_tokens).toBeGreaterThan(0);
    expect(last?.usage?.prompt_tokens).toBeGreaterThan(0);
    // Only the last chunk carries the usage.
    expect(chunks.slice(0, -1).every((c) => !c.usage)).toBe(true);
  });

  it("returns a tool call with an id and finish_reason tool_calls", async () => {
    const completion = await openai.chat.completions.create({
      model: "scripted-tools",
      messages: [{ role: "user", content: "What is the weather in Paris?" }],
      tools: [weatherTool],
      temperature: 0,
    });
    const choice = completion.choices[0];
    expect(choice?.finish_reason).toBe("tool_calls");
    const call = choice?.message.tool_calls?.[0];
    expect(call?.type).toBe("function");
    expect(call?.id).toMatch(/^call_/);
    if (call?.type !== "function") throw new Error("expected a function call");
    expect(call.function.name).toBe("get_weather");
    expect(JSON.parse(call.function.arguments)).toEqual({ city: "Paris" });
  });

  it("streams a tool call and ends with tool_calls", async () => {
    const stream = await openai.chat.completions.create({
      model: "scripted-tools",
      messages: [{ role: "user", content: "What is the weather in Paris?" }],
      tools: [weatherTool],
      temperature: 0,
      stream: true,
    });
    const calls: { id?: string; name?: string; arguments?: string }[] = [];
    let finish: string | null = null;
    for await (const chunk of stream) {
      for (const call of chunk.choices[0]?.delta.tool_calls ?? []) {
        calls.push({ id: call.id, name: call.function?.name, arguments: call.function?.arguments });
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(calls).toHaveLength(1);
    expect(calls[0]?.id).toMatch(/^call_/);
    expect(calls[0]?.name).toBe("get_weather");
    expect(JSON.parse(calls[0]?.arguments ?? "")).toEqual({ city: "Paris" });
    expect(finish).toBe("tool_calls");
  });

  it("stops at max_tokens with finish_reason length", async () => {
    const completion = await openai.chat.completions.create({
      model: "scripted",
      messages: ask,
      temperature: 0,
      max_tokens: 3,
    });
    expect(completion.choices[0]?.finish_reason).toBe("length");
    expect(completion.usage?.completion_tokens).toBe(3);
    expect(SENTENCE.startsWith(completion.choices[0]?.message.content ?? "x")).toBe(true);
  });

  it("honours max_completion_tokens the same way", async () => {
    const completion = await openai.chat.completions.create({
      model: "scripted",
      messages: ask,
      temperature: 0,
      max_completion_tokens: 2,
    });
    expect(completion.choices[0]?.finish_reason).toBe("length");
    expect(completion.usage?.completion_tokens).toBe(2);
  });

  it("answers valid JSON for response_format json_object", async () => {
    // Grammar-constrained gibberish rarely closes its object within a budget; sampling is deterministic per seed,
    // and seed 2 is one whose sample does. What is asserted holds for any seed that stops: the text parses.
    const completion = await openai.chat.completions.create({
      model: "tiny",
      messages: [{ role: "user", content: "Reply in JSON." }],
      response_format: { type: "json_object" },
      temperature: 1,
      seed: 2,
      max_tokens: 400,
    });
    expect(completion.choices[0]?.finish_reason).toBe("stop");
    const parsed = JSON.parse(completion.choices[0]?.message.content ?? "");
    expect(typeof parsed).toBe("object");
  });

  it("answers JSON matching the schema for response_format json_schema", async () => {
    const completion = await openai.chat.completions.create({
      model: "tiny",
      messages: [{ role: "user", content: "Yes or no?" }],
      response_format: {
        type: "json_schema",
        json_schema: {
          name: "answer",
          schema: {
            type: "object",
            properties: { answer: { type: "string", enum: ["yes", "no"] } },
            required: ["answer"],
            additionalProperties: false,
          },
        },
      },
      temperature: 0,
      max_tokens: 100,
    });
    expect(completion.choices[0]?.finish_reason).toBe("stop");
    const parsed = JSON.parse(completion.choices[0]?.message.content ?? "");
    expect(Object.keys(parsed)).toEqual(["answer"]);
    expect(["yes", "no"]).toContain(parsed.answer);
  });
});

describe("OpenAI completions", () => {
  it("completes a prompt, streamed and not, with the same text at temperature 0", async () => {
    const once = await openai.completions.create({ model: "tiny", prompt: "Once", max_tokens: 8, temperature: 0 });
    expect(once.object).toBe("text_completion");
    expect(once.choices[0]?.finish_reason).toBe("length");
    const stream = await openai.completions.create({
      model: "tiny",
      prompt: "Once",
      max_tokens: 8,
      temperature: 0,
      stream: true,
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? "";
    expect(text).toBe(once.choices[0]?.text);
  });
});

describe("OpenAI embeddings", () => {
  it("returns float vectors, one per input, in order", async () => {
    const res = await openai.embeddings.create({ model: "tiny", input: ["hello", "world"], encoding_format: "float" });
    expect(res.object).toBe("list");
    expect(res.data.map((d) => d.index)).toEqual([0, 1]);
    const [a, b] = res.data.map((d) => d.embedding);
    expect(a?.length).toBeGreaterThan(0);
    expect(b?.length).toBe(a?.length);
    expect(a?.every((x) => typeof x === "number" && Number.isFinite(x))).toBe(true);
    expect(res.usage.prompt_tokens).toBeGreaterThan(0);
  });

  it("returns base64 that decodes to the float vector", async () => {
    const floats = await openai.embeddings.create({ model: "tiny", input: "hello", encoding_format: "float" });
    const b64 = await openai.embeddings.create({ model: "tiny", input: "hello", encoding_format: "base64" });
    const encoded = b64.data[0]?.embedding as unknown as string;
    expect(typeof encoded).toBe("string");
    const decoded = decodeBase64Floats(encoded);
    const expected = Array.from(Float32Array.from(floats.data[0]?.embedding ?? []));
    expect(decoded).toEqual(expected);
  });

  it("decodes the client's default (base64 asked for implicitly) to the same vector", async () => {
    const floats = await openai.embeddings.create({ model: "tiny", input: "hello", encoding_format: "float" });
    const implicit = await openai.embeddings.create({ model: "tiny", input: "hello" });
    expect(Array.from(implicit.data[0]?.embedding ?? [])).toEqual(
      Array.from(Float32Array.from(floats.data[0]?.embedding ?? [])),
    );
  });
});

describe("OpenAI models", () => {
  it("lists the built-in models", async () => {
    const ids: string[] = [];
    for await (const model of openai.models.list()) {
      expect(model.object).toBe("model");
      expect(model.owned_by).toBe("library");
      ids.push(model.id);
    }
    expect(ids).toContain("tiny:latest");
  });

  it("retrieves one model", async () => {
    const model = await openai.models.retrieve("tiny");
    expect(model).toMatchObject({ id: "tiny", object: "model", owned_by: "library" });
    expect(model.created).toBeGreaterThan(1_600_000_000);
  });

  it("answers a missing model with a 404 error object", async () => {
    const err = await openai.models.retrieve("no-such-model").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect(err).toMatchObject({
      status: 404,
      type: "not_found_error",
      error: { message: "model 'no-such-model' not found" },
    });
  });

  it("answers chat with a missing model with a 404 error object", async () => {
    const err = await openai.chat.completions
      .create({ model: "no-such-model", messages: ask })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect(err).toMatchObject({ status: 404, type: "not_found_error" });
  });
});

describe("OpenAI errors", () => {
  it("refuses a bad key with a 401 error object", async () => {
    const stranger = new OpenAI({ baseURL: `${url}/v1`, apiKey: "corral-not-a-real-key", maxRetries: 0 });
    const err = await stranger.models.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(err).toMatchObject({ status: 401, type: "invalid_request_error", code: "invalid_api_key" });
  });

  it("refuses an empty message list with a 400 naming the field", async () => {
    const err = await openai.chat.completions.create({ model: "tiny", messages: [] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err).toMatchObject({ status: 400, type: "invalid_request_error", param: "messages" });
  });
});
