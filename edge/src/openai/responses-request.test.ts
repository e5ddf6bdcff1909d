import { describe, expect, it } from "vitest";
import { translateResponsesRequest } from "./responses-request";

describe("translateResponsesRequest", () => {
  it("maps text input, instructions, limits, tools and reasoning to one Ollama chat request", () => {
    const { ollama } = translateResponsesRequest({
      model: "m",
      input: "hi",
      instructions: "be brief",
      max_output_tokens: 9,
      top_p: 0.5,
      stream: true,
      reasoning: { effort: "max" },
      tools: [{ type: "function", name: "f", description: "d", parameters: { type: "object" } }],
      text: { format: { type: "json_schema", name: "s", schema: { type: "object" } } },
    });
    expect(ollama).toEqual({
      model: "m",
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: "hi" },
      ],
      stream: true,
      options: { temperature: 1, top_p: 0.5, num_predict: 9 },
      tools: [{ type: "function", function: { name: "f", description: "d", parameters: { type: "object" } } }],
      think: "max",
      format: { type: "object" },
    });
  });

  it("maps items: developer messages, reasoning onto the next call, calls and their outputs", () => {
    const { ollama } = translateResponsesRequest({
      model: "m",
      input: [
        { role: "developer", content: "rules" },
        { type: "message", role: "user", content: [{ type: "input_text", text: "weather?" }] },
        { type: "reasoning", encrypted_content: "think", summary: [] },
        { type: "function_call", call_id: "call_1", name: "f", arguments: '{"city":"Paris"}' },
        { type: "function_call_output", call_id: "call_1", output: [{ type: "input_text", text: "sunny" }] },
      ],
    });
    expect(ollama.messages).toEqual([
      { role: "system", content: "rules" },
      { role: "user", content: "weather?" },
      {
        role: "assistant",
        content: "",
        thinking: "think",
        tool_calls: [{ id: "call_1", function: { name: "f", arguments: { city: "Paris" } } }],
      },
      { role: "tool", content: "sunny", tool_call_id: "call_1" },
    ]);
  });

  const refused: [string, Record<string, unknown>, string, string][] = [
    ["stored conversations", { previous_response_id: "resp_1" }, "previous_response_id", "not supported"],
    ["an unknown item", { input: [{ type: "web_search_call" }] }, "input[0].type", "unknown input item type"],
    ["an item without type", { input: [{ content: "x" }] }, "input[0]", "missing required 'type'"],
    [
      "files",
      { input: [{ role: "user", content: [{ type: "input_file", file_id: "f" }] }] },
      "input[0].content[0]",
      "file inputs",
    ],
    ["a bad effort", { reasoning: { effort: "huge" } }, "reasoning.effort", "invalid reasoning value"],
    ["built-in tools", { tools: [{ type: "web_search" }] }, "tools[0].type", "only function tools"],
    [
      "bad call arguments",
      { input: [{ type: "function_call", name: "f", arguments: "{" }] },
      "",
      "invalid tool call arguments",
    ],
  ];
  it.each(refused)("refuses %s with a 400 naming the field", (_, fields, param, message) => {
    const attempt = () => translateResponsesRequest({ model: "m", input: "x", ...fields });
    expect(attempt).toThrow(expect.objectContaining({ status: 400, message: expect.stringContaining(message) }));
    if (param) expect(attempt).toThrow(expect.objectContaining({ param }));
  });
});
