/**
 * Structured output through the running stack with the official `ollama` client: tool calls parsed out of the
 * scripted tool model's text, and grammar-constrained `format` ("json" and a JSON schema) on the gibberish `tiny`
 * model, whose only way to produce valid JSON is the grammar.
 */
import { describe, expect, inject, it } from "vitest";
import {
  client,
  collect,
  QWEN_STYLE_TEMPLATE,
  SCRIPTED_TOOL_CALL_FUNCTION,
  uniqueName,
  WEATHER_TOOL,
} from "./inference-support";

const { url, key } = inject("stack");
const ollama = client(url, key);
const ask = [{ role: "user", content: "What is the weather in Paris?" }];

describe("tools", () => {
  it("returns the model's call as message.tool_calls, not as text", async () => {
    const res = await ollama.chat({
      model: "scripted-tools",
      messages: ask,
      tools: [WEATHER_TOOL],
      stream: false,
      options: { temperature: 0, num_predict: 64 },
    });
    expect(res.message.role).toBe("assistant");
    expect(res.message.content).toBe("");
    expect(res.message.tool_calls).toHaveLength(1);
    expect(res.message.tool_calls?.[0]?.function).toMatchObject(SCRIPTED_TOOL_CALL_FUNCTION);
    expect(res.done_reason).toBe("stop");
  });

  it("streams the call in a chunk and never leaks the <tool_call> markup as content", async () => {
    const stream = await ollama.chat({
      model: "scripted-tools",
      messages: ask,
      tools: [WEATHER_TOOL],
      stream: true,
      options: { temperature: 0, num_predict: 64 },
    });
    const { chunks, last } = await collect(stream);
    const calls = chunks.flatMap((c) => c.message.tool_calls ?? []);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.function).toMatchObject(SCRIPTED_TOOL_CALL_FUNCTION);
    expect(chunks.map((c) => c.message.content).join("")).not.toMatch(/tool_call/);
    expect(last.done).toBe(true);
  });

  it("takes the tool's result back in a tool message with tool_name", async () => {
    const first = await ollama.chat({
      model: "scripted-tools",
      messages: ask,
      tools: [WEATHER_TOOL],
      options: { temperature: 0, num_predict: 64 },
    });
    const followUp = await ollama.chat({
      model: "scripted-tools",
      messages: [
        ...ask,
        first.message,
        { role: "tool", content: '{"temperature": 18, "sky": "clear"}', tool_name: "get_weather" },
      ],
      tools: [WEATHER_TOOL],
      options: { temperature: 0, num_predict: 64 },
    });
    expect(followUp.done).toBe(true);
    expect(followUp.message.role).toBe("assistant");
    // The call and its result are part of the prompt now.
    expect(followUp.prompt_eval_count).toBeGreaterThan(first.prompt_eval_count + 20);
  });

  it("parses calls the same way for a model whose Go template writes Hermes tool calls", async () => {
    const name = uniqueName("tools-go");
    await ollama.create({ model: name, from: "scripted-tools", template: QWEN_STYLE_TEMPLATE });
    try {
      const first = await ollama.chat({
        model: name,
        messages: ask,
        tools: [WEATHER_TOOL],
        options: { temperature: 0, num_predict: 64 },
      });
      expect(first.message.content).toBe("");
      expect(first.message.tool_calls).toHaveLength(1);
      expect(first.message.tool_calls?.[0]?.function).toMatchObject(SCRIPTED_TOOL_CALL_FUNCTION);
      const followUp = await ollama.chat({
        model: name,
        messages: [...ask, first.message, { role: "tool", content: "18 degrees", tool_name: "get_weather" }],
        tools: [WEATHER_TOOL],
        options: { temperature: 0, num_predict: 64 },
      });
      expect(followUp.done).toBe(true);
      expect(followUp.prompt_eval_count).toBeGreaterThan(first.prompt_eval_count + 20);
    } finally {
      await ollama.delete({ model: name });
    }
  });

  it("leaves a tool-shaped reply as text when the request has no tools", async () => {
    const res = await ollama.chat({
      model: "scripted-tools",
      messages: ask,
      options: { temperature: 0, num_predict: 64 },
    });
    expect(res.message.tool_calls ?? []).toEqual([]);
    expect(res.message.content).toContain("get_weather");
  });
});

describe("format", () => {
  it('constrains generate to JSON with format "json"', async () => {
    // Gibberish rarely closes a string, so some seeds run out of tokens; every output that ends must parse.
    let parsed: unknown;
    for (let seed = 1; seed <= 10 && parsed === undefined; seed++) {
      const res = await ollama.generate({
        model: "tiny",
        prompt: "Reply in JSON.",
        format: "json",
        options: { seed, temperature: 0.7, num_predict: 400 },
      });
      const text = res.response ?? "";
      expect(text.trimStart().startsWith("{")).toBe(true);
      if (res.done_reason === "stop") parsed = JSON.parse(text);
    }
    expect(parsed).toBeTypeOf("object");
    expect(parsed).not.toBeNull();
  });

  it("constrains chat to a JSON schema: required properties with their types", async () => {
    const schema = {
      type: "object",
      properties: {
        color: { type: "string", enum: ["red", "green", "blue"] },
        ok: { type: "boolean" },
        sizes: { type: "array", items: { type: "boolean" }, maxItems: 3 },
      },
      required: ["color", "ok", "sizes"],
    };
    for (const seed of [1, 2]) {
      const res = await ollama.chat({
        model: "tiny",
        messages: [{ role: "user", content: "Describe the sky." }],
        format: schema,
        options: { seed, temperature: 0.8, num_predict: 200 },
      });
      expect(res.done_reason).toBe("stop");
      const value = JSON.parse(res.message.content) as Record<string, unknown>;
      expect(Object.keys(value).sort()).toEqual(["color", "ok", "sizes"]);
      expect(["red", "green", "blue"]).toContain(value.color);
      expect(value.ok).toBeTypeOf("boolean");
      expect(Array.isArray(value.sizes)).toBe(true);
      expect((value.sizes as unknown[]).every((s) => typeof s === "boolean")).toBe(true);
    }
  });

  it("constrains generate to a JSON schema too (greedy)", async () => {
    const schema = {
      type: "object",
      properties: { answer: { type: "boolean" }, mood: { enum: ["calm", "angry"] } },
      required: ["answer", "mood"],
    };
    const res = await ollama.generate({
      model: "tiny",
      prompt: "Is the sky blue?",
      format: schema,
      stream: false,
      options: { temperature: 0, num_predict: 100 },
    });
    const value = JSON.parse(res.response ?? "") as Record<string, unknown>;
    expect(value.answer).toBeTypeOf("boolean");
    expect(["calm", "angry"]).toContain(value.mood);
  });

  it("refuses a format that is neither json nor a schema", async () => {
    await expect(ollama.generate({ model: "tiny", prompt: "hi", format: "yaml" })).rejects.toMatchObject({
      status_code: 400,
    });
  });
});
