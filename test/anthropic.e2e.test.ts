/**
 * Anthropic's Messages API of the running stack, driven by the official `@anthropic-ai/sdk` unmodified, as an
 * application would point it at Ollama (docs/api/anthropic-compatibility): baseURL the host, the tenant key as apiKey.
 */
import Anthropic from "@anthropic-ai/sdk";
import { describe, expect, inject, it } from "vitest";
import { client, SCRIPTED_SENTENCE, uniqueName } from "./inference-support";

const { url, key } = inject("stack");
// No retries: a failure must show as itself, not as three slower ones.
const anthropic = new Anthropic({ baseURL: url, apiKey: key, maxRetries: 0 });

// The scripted models lead by 32 logits: their sampled output is their greedy one at any temperature (this SDK
// version no longer sends temperature at all).
const ask = [{ role: "user" as const, content: "Say the sentence." }];
const weatherTool = {
  name: "get_weather",
  description: "Current weather in a city",
  input_schema: { type: "object" as const, properties: { city: { type: "string" } }, required: ["city"] },
};

describe("Anthropic messages", () => {
  it("answers the scripted sentence as one text block", async () => {
    const message = await anthropic.messages.create({
      model: "scripted",
      max_tokens: 64,
      system: "You say sentences.",
      messages: ask,
    });
    expect(message.type).toBe("message");
    expect(message.id).toMatch(/^msg_/);
    expect(message.content).toEqual([{ type: "text", text: SCRIPTED_SENTENCE }]);
    expect(message.stop_reason).toBe("end_turn");
    expect(message.usage.input_tokens).toBeGreaterThan(0);
    expect(message.usage.output_tokens).toBeGreaterThan(0);
  });

  it("streams Anthropic's event sequence, which the SDK accumulates into the same message", async () => {
    const stream = anthropic.messages.stream({ model: "scripted", max_tokens: 64, messages: ask });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    const message = await stream.finalMessage();
    expect(message.content).toEqual([{ type: "text", text: SCRIPTED_SENTENCE }]);
    expect(message.stop_reason).toBe("end_turn");
    expect(message.usage.output_tokens).toBeGreaterThan(0);
    expect(types.slice(0, 2)).toEqual(["message_start", "content_block_start"]);
    expect(types.slice(-3)).toEqual(["content_block_stop", "message_delta", "message_stop"]);
    expect(types.filter((t) => t === "content_block_delta").length).toBeGreaterThan(5);
  });

  it("stops at max_tokens and at a stop sequence", async () => {
    const short = await anthropic.messages.create({ model: "scripted", max_tokens: 3, messages: ask });
    expect(short.stop_reason).toBe("max_tokens");
    expect(short.usage.output_tokens).toBe(3);
    const stopped = await anthropic.messages.create({
      model: "scripted",
      max_tokens: 64,
      messages: ask,
      stop_sequences: [" fox"],
    });
    expect(stopped.content).toEqual([{ type: "text", text: "The quick brown" }]);
  });

  it("calls a tool, then takes its result back as a tool_result block", async () => {
    const first = await anthropic.messages.create({
      model: "scripted-tools",
      max_tokens: 64,
      messages: [{ role: "user", content: "What is the weather in Paris?" }],
      tools: [weatherTool],
    });
    expect(first.stop_reason).toBe("tool_use");
    const call = first.content.find((b) => b.type === "tool_use");
    if (call?.type !== "tool_use") throw new Error("expected a tool_use block");
    expect(call.name).toBe("get_weather");
    expect(call.input).toEqual({ city: "Paris" });
    expect(call.id).toMatch(/^toolu_|^call_/);

    const second = await anthropic.messages.create({
      model: "scripted-tools",
      max_tokens: 64,
      tools: [weatherTool],
      messages: [
        { role: "user", content: "What is the weather in Paris?" },
        { role: "assistant", content: first.content },
        { role: "user", content: [{ type: "tool_result", tool_use_id: call.id, content: "Sunny, 21°C" }] },
      ],
    });
    expect(second.type).toBe("message");
    // Anthropic counts cache reads apart: the whole prompt is input_tokens plus cache_read_input_tokens.
    const promptOf = (u: { input_tokens: number; cache_read_input_tokens?: number | null }) =>
      u.input_tokens + (u.cache_read_input_tokens ?? 0);
    expect(promptOf(second.usage)).toBeGreaterThan(promptOf(first.usage));
  });

  it("streams a tool call as one tool_use block with its input", async () => {
    const stream = anthropic.messages.stream({
      model: "scripted-tools",
      max_tokens: 64,
      messages: [{ role: "user", content: "What is the weather in Paris?" }],
      tools: [weatherTool],
    });
    const message = await stream.finalMessage();
    expect(message.stop_reason).toBe("tool_use");
    expect(message.content.filter((b) => b.type === "tool_use")).toMatchObject([
      { name: "get_weather", input: { city: "Paris" } },
    ]);
  });

  it("counts a request's tokens", async () => {
    const count = await anthropic.messages.countTokens({ model: "scripted", system: "You are brief.", messages: ask });
    expect(count.input_tokens).toBeGreaterThan(0);
  });
});

/**
 * A qwen3-style thinking template (Ollama infers the `<think>` tags from `.Thinking` inside the message range) on
 * the tiny model: with thinking on, the prompt opens the block, and the gibberish never closes it within the
 * budget, so everything generated is thinking.
 */
const THINKING_TEMPLATE = `{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 -}}
<|im_start|>{{ .Role }}
{{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}{{ .Content }}<|im_end|>
{{ if $last }}<|im_start|>assistant
{{ if $.Think }}<think>
{{ end }}{{ end }}
{{- end }}`;

describe("Anthropic thinking", () => {
  it("answers thinking blocks, streamed as thinking deltas, for a model whose template thinks", async () => {
    const name = uniqueName("thinker");
    const ollama = client(url, key);
    await ollama.create({ model: name, from: "tiny", template: THINKING_TEMPLATE });
    try {
      const request = {
        model: name,
        max_tokens: 8,
        // Greedy: the tiny model's gibberish then depends only on the prompt, not on a random seed.
        temperature: 0,
        messages: ask,
        thinking: { type: "enabled" as const, budget_tokens: 1024 },
      };
      const message = await anthropic.messages.create(request);
      // Everything generated is thinking, whether the budget or the model's end token stops it.
      expect(["max_tokens", "end_turn"]).toContain(message.stop_reason);
      expect(message.content.every((b) => b.type === "thinking")).toBe(true);
      const thinking = message.content.find((b) => b.type === "thinking");
      if (thinking?.type !== "thinking") throw new Error("expected a thinking block");
      expect(thinking.thinking.length).toBeGreaterThan(0);

      const stream = anthropic.messages.stream(request);
      const deltas: string[] = [];
      for await (const event of stream) {
        if (event.type === "content_block_delta" && event.delta.type === "thinking_delta") {
          deltas.push(event.delta.thinking);
        }
      }
      const streamed = await stream.finalMessage();
      expect(deltas.length).toBeGreaterThan(0);
      expect(streamed.content[0]).toMatchObject({ type: "thinking", thinking: deltas.join("") });
    } finally {
      await ollama.delete({ model: name });
    }
  });

  it("answers without thinking, as Ollama does, when the model cannot think", async () => {
    // The native API refuses this with a 400; Ollama's Anthropic endpoint relaxes it for clients that always ask.
    const message = await anthropic.messages.create({
      model: "scripted",
      max_tokens: 64,
      messages: ask,
      thinking: { type: "enabled", budget_tokens: 1024 },
    });
    expect(message.content).toEqual([{ type: "text", text: SCRIPTED_SENTENCE }]);
  });
});

describe("Anthropic errors", () => {
  it("raises the SDK's typed errors with Anthropic's error bodies", async () => {
    const stranger = new Anthropic({ baseURL: url, apiKey: "not-a-key", maxRetries: 0 });
    await expect(stranger.messages.create({ model: "scripted", max_tokens: 8, messages: ask })).rejects.toMatchObject({
      status: 401,
      error: { type: "error", error: { type: "authentication_error" } },
    });
    await expect(
      anthropic.messages.create({ model: "no-such-model", max_tokens: 8, messages: ask }),
    ).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    await expect(
      anthropic.messages.create({
        model: "tiny",
        max_tokens: 8,
        messages: [
          {
            role: "user",
            content: [{ type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } }],
          },
        ],
      }),
    ).rejects.toMatchObject({
      status: 400,
      error: { error: { type: "invalid_request_error", message: expect.stringMatching(/does not support images/) } },
    });
  });
});
