/**
 * Prompt formats through the runner: a model's Go template layer (Ollama's qwen2.5 template), a request's
 * template override, raw mode, fill-in-the-middle and thinking, on the scripted models.
 */
import type { ResolvedModel } from "@corral/protocol/runner";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  QWEN_STYLE_TEMPLATE,
  resolvedModel,
  sentenceModelBlob,
  startTestRunner,
  type TestRunner,
  toolModelBlob,
} from "./test-support";
import { SCRIPTED_SENTENCE, SCRIPTED_TOOL_CALL_FUNCTION } from "./tiny-model/index";

const FIM_TEMPLATE = "<|fim_prefix|>{{ .Prompt }}<|fim_suffix|>{{ .Suffix }}<|fim_middle|>";

const THINKING_TEMPLATE = `{{- range $i, $_ := .Messages }}<|im_start|>{{ .Role }}
{{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
{{ if .Think }}<think>{{ end }}`;

const weatherTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

let t: TestRunner;
beforeAll(async () => {
  t = await startTestRunner();
});
afterAll(() => t.stop());

const sentence = (extra?: Partial<ResolvedModel>) => resolvedModel(sentenceModelBlob(), "sentence", extra);
const greedy = { temperature: 0, num_ctx: 2048 };

describe("Go template layer", () => {
  it("formats generate and chat with the model's template", async () => {
    const model = sentence({ template: QWEN_STYLE_TEMPLATE, system: "You are terse." });
    const generated = await t.json("/v1/generate", model, { prompt: "hi", options: greedy });
    expect(generated.body).toMatchObject({ response: SCRIPTED_SENTENCE, done_reason: "stop" });
    const chatted = await t.json("/v1/chat", model, { messages: [{ role: "user", content: "hi" }], options: greedy });
    expect(chatted.body.message.content).toBe(SCRIPTED_SENTENCE);
    // The template wrote the system prompt and ChatML turns: more prompt tokens than the bare question.
    expect(chatted.body.prompt_eval_count).toBeGreaterThan(20);
  });

  it("tool calls come back as message.tool_calls, streamed as one chunk", async () => {
    const model = resolvedModel(toolModelBlob(), "tool", { template: QWEN_STYLE_TEMPLATE });
    const res = await t.post("/v1/chat", model, {
      messages: [{ role: "user", content: "weather in Paris?" }],
      tools: [weatherTool],
      options: greedy,
    });
    const chunks = (await res.text())
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    const withCalls = chunks.filter((c) => c.message.tool_calls);
    expect(withCalls).toHaveLength(1);
    expect(withCalls[0].message).toMatchObject({
      role: "assistant",
      content: "",
      tool_calls: [{ function: { index: 0, ...SCRIPTED_TOOL_CALL_FUNCTION } }],
    });
    expect(chunks.map((c) => c.message.content).join("")).toBe("");
  });

  it("a template without .Tools refuses tools", async () => {
    const model = sentence({ template: "{{ .Prompt }}" });
    const { status, body } = await t.json("/v1/chat", model, {
      messages: [{ role: "user", content: "x" }],
      tools: [weatherTool],
    });
    expect(status).toBe(400);
    expect(body.error).toBe('"sentence" does not support tools');
  });

  it("a request template overrides the model's, and a broken one is a 400", async () => {
    const ok = await t.json("/v1/generate", sentence({ template: QWEN_STYLE_TEMPLATE }), {
      prompt: "hi",
      template: "{{ .System }} {{ .Prompt }}",
      options: greedy,
    });
    expect(ok.body.response).toBe(SCRIPTED_SENTENCE);
    // The override has no ChatML: the prompt is just " hi" (plus BOS), far shorter than the model's format.
    expect(ok.body.prompt_eval_count).toBeLessThan(8);
    const broken = await t.json("/v1/generate", sentence(), { prompt: "hi", template: "{{ .Prompt" });
    expect(broken.status).toBe(400);
    expect(broken.body.error).toMatch(/^template: /);
  });

  it("raw mode skips the template", async () => {
    const { body } = await t.json("/v1/generate", sentence({ template: QWEN_STYLE_TEMPLATE }), {
      prompt: "ab",
      raw: true,
      options: greedy,
    });
    expect(body.response).toBe(SCRIPTED_SENTENCE);
    expect(body.prompt_eval_count).toBeLessThan(4);
    expect(body.context).toBeUndefined();
  });

  it("suffix works with a fill-in-the-middle template", async () => {
    const { status, body } = await t.json("/v1/generate", sentence({ template: FIM_TEMPLATE }), {
      prompt: "def f():",
      suffix: "return x",
      options: greedy,
    });
    expect(status).toBe(200);
    expect(body.response).toBe(SCRIPTED_SENTENCE);
  });

  it("thinking templates accept think and default it on; others refuse it", async () => {
    const model = sentence({ template: THINKING_TEMPLATE });
    const { status, body } = await t.json("/v1/chat", model, {
      messages: [{ role: "user", content: "x" }],
      think: true,
      options: greedy,
    });
    expect(status).toBe(200);
    // The prompt ended with <think>, so the scripted text is the model's thinking.
    expect(body.message.thinking).toBe(SCRIPTED_SENTENCE);
    expect(body.message.content).toBe("");
    const plain = await t.json("/v1/chat", sentence({ template: QWEN_STYLE_TEMPLATE }), {
      messages: [{ role: "user", content: "x" }],
      think: true,
    });
    expect(plain).toEqual({ status: 400, body: { error: '"sentence" does not support thinking' } });
  });

  it("the messages layer comes before the history", async () => {
    const layer = [
      { role: "user", content: "earlier question" },
      { role: "assistant", content: "earlier answer" },
    ];
    const bare = await t.json("/v1/chat", sentence({ template: QWEN_STYLE_TEMPLATE }), {
      messages: [{ role: "user", content: "now" }],
      options: greedy,
    });
    const layered = await t.json("/v1/chat", sentence({ template: QWEN_STYLE_TEMPLATE, messages: layer }), {
      messages: [{ role: "user", content: "now" }],
      options: greedy,
    });
    expect(layered.body.prompt_eval_count).toBeGreaterThan(bare.body.prompt_eval_count + 20);
  });
});
