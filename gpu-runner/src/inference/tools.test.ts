import { describe, expect, it } from "vitest";
import { parseToolCalls, ToolCallParser, toolCallId, toolCallTagFromJinja, toolCallTagFromTemplate } from "./tools";

const names = ["get_weather", "get_time"];
const calls = (text: string, tag: string) =>
  parseToolCalls(text, tag, names).calls.map((c) => ({
    index: c.function.index,
    name: c.function.name,
    args: c.function.arguments,
  }));

describe("tool-call parsing", () => {
  it.each([
    [
      "hermes",
      '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
      "<tool_call>",
      [{ index: 0, name: "get_weather", args: { city: "Paris" } }],
    ],
    [
      "hermes, two calls",
      '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>\n<tool_call>{"name": "get_time", "arguments": {}}</tool_call>',
      "<tool_call>",
      [
        { index: 0, name: "get_weather", args: { city: "Oslo" } },
        { index: 1, name: "get_time", args: {} },
      ],
    ],
    [
      "arguments as a JSON string (OpenAI style)",
      '<tool_call>{"name": "get_weather", "arguments": "{\\"city\\": \\"Rome\\"}"}</tool_call>',
      "<tool_call>",
      [{ index: 0, name: "get_weather", args: { city: "Rome" } }],
    ],
    [
      "llama3 bare JSON with parameters",
      '{"name": "get_weather", "parameters": {"city": "Lima"}}',
      "{",
      [{ index: 0, name: "get_weather", args: { city: "Lima" } }],
    ],
    [
      "mistral array",
      '[TOOL_CALLS] [{"name": "get_time", "arguments": {"tz": "UTC"}}]',
      "[TOOL_CALLS]",
      [{ index: 0, name: "get_time", args: { tz: "UTC" } }],
    ],
    [
      "braces inside strings",
      '<tool_call>{"name": "get_weather", "arguments": {"city": "{weird} \\"town\\""}}</tool_call>',
      "<tool_call>",
      [{ index: 0, name: "get_weather", args: { city: '{weird} "town"' } }],
    ],
    ["unknown tool name", '<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>', "<tool_call>", []],
  ])("%s", (_name, text, tag, expected) => {
    expect(calls(text, tag)).toEqual(expected);
  });

  it.each([
    ["plain text passes through", "Hello there", "<tool_call>", "Hello there"],
    [
      "content before the tag is kept",
      'Sure. <tool_call>{"name": "get_time", "arguments": {}}</tool_call>',
      "<tool_call>",
      "Sure. ",
    ],
    ["a JSON answer that is not a call is content", '{"answer": 42}', "{", '{"answer": 42}'],
    [
      "bare JSON after text is content",
      'I think {"name": "get_time", "arguments": {}}',
      "{",
      'I think {"name": "get_time", "arguments": {}}',
    ],
    [
      "an unfinished tagged call comes back as text",
      '<tool_call>{"name": "get_w',
      "<tool_call>",
      '<tool_call>{"name": "get_w',
    ],
  ])("content: %s", (_name, text, tag, content) => {
    expect(parseToolCalls(text, tag, names).content).toBe(content);
  });

  it("streams: holds back a partial tag, emits content before it and the call once complete", () => {
    const parser = new ToolCallParser("<tool_call>", names, () => "call_fixed");
    expect(parser.add("Let me check<tool")).toEqual({ content: "Let me check", calls: [] });
    expect(parser.add('_call>\n{"name": "get_weather", ')).toEqual({ content: "", calls: [] });
    expect(parser.add('"arguments": {"city": "Paris"}}\n</tool_call>')).toEqual({
      content: "",
      calls: [{ id: "call_fixed", function: { index: 0, name: "get_weather", arguments: { city: "Paris" } } }],
    });
    expect(parser.finish()).toEqual({ content: "", calls: [] });
  });

  it("streams: a partial tag that turns out to be text is released", () => {
    const parser = new ToolCallParser("<tool_call>", names);
    expect(parser.add("a <to").content).toBe("a ");
    expect(parser.add("day").content).toBe("<today");
  });

  it("makes Ollama-shaped ids", () => {
    expect(toolCallId()).toMatch(/^call_[a-z0-9]{8}$/);
  });

  it.each([
    [
      "qwen2.5",
      '{{- else if .ToolCalls }}<tool_call>\n{{ range .ToolCalls }}{"name": "{{ .Function.Name }}", "arguments": {{ .Function.Arguments }}}\n{{ end }}</tool_call>',
      "<tool_call>",
    ],
    [
      "llama3.1",
      '{{- if .ToolCalls }}{{ range .ToolCalls }}{"name": "{{ .Function.Name }}", "parameters": {{ .Function.Arguments }}}{{ end }}',
      "{",
    ],
    [
      "mistral",
      '{{- if .ToolCalls }}[TOOL_CALLS] [{{ range .ToolCalls }}{"name": "{{ .Function.Name }}"}{{ end }}]',
      "[TOOL_CALLS] [",
    ],
    ["no tool calls", "{{ .Prompt }}", "{"],
  ])("tag of the %s template", (_name, template, tag) => {
    expect(toolCallTagFromTemplate(template)).toBe(tag);
  });

  it("finds the tag in a Jinja chat template", () => {
    expect(toolCallTagFromJinja("{{ '<tool_call>' }}")).toBe("<tool_call>");
    expect(toolCallTagFromJinja("{{ messages }}")).toBe("{");
  });
});
