import { describe, expect, it } from "vitest";
import { OpenAIRequestError } from "./request-error";
import { translateChatRequest, translateCompletionRequest, translateEmbeddingRequest } from "./translate-request";

const user = (content: unknown) => ({ role: "user", content });
const chat = (over: Record<string, unknown>) => translateChatRequest({ model: "m", messages: [user("hi")], ...over });

describe("translateChatRequest: options", () => {
  it.each([
    ["defaults: temperature and top_p 1 (OpenAI's, replacing the model's)", {}, { temperature: 1, top_p: 1 }],
    ["max_tokens → num_predict", { max_tokens: 7 }, { num_predict: 7, temperature: 1, top_p: 1 }],
    ["max_completion_tokens → num_predict", { max_completion_tokens: 9 }, { num_predict: 9, temperature: 1, top_p: 1 }],
    [
      "max_completion_tokens wins",
      { max_tokens: 3, max_completion_tokens: 9 },
      { num_predict: 9, temperature: 1, top_p: 1 },
    ],
    [
      "sampling fields",
      { temperature: 0, top_p: 0.5, seed: 42, frequency_penalty: 0.25, presence_penalty: -0.5 },
      { temperature: 0, top_p: 0.5, seed: 42, frequency_penalty: 0.25, presence_penalty: -0.5 },
    ],
    ["stop string → list", { stop: "END" }, { stop: ["END"], temperature: 1, top_p: 1 }],
    ["stop list", { stop: ["a", "b"] }, { stop: ["a", "b"], temperature: 1, top_p: 1 }],
    ["null counts as unset", { max_tokens: null, temperature: null, stop: null }, { temperature: 1, top_p: 1 }],
  ])("%s", (_name, over, options) => {
    expect(chat(over).ollama.options).toEqual(options);
  });

  it.each([
    [
      "temperature",
      { temperature: "hot" },
      "Invalid type for 'temperature': expected a decimal, but got a string instead.",
    ],
    [
      "max_tokens",
      { max_tokens: 1.5 },
      "Invalid type for 'max_tokens': expected an integer, but got a decimal instead.",
    ],
    ["seed", { seed: "1" }, "Invalid type for 'seed': expected an integer, but got a string instead."],
    ["stop", { stop: ["a", 1] }, "Invalid type for 'stop': expected a string, but got an integer instead."],
    ["stream", { stream: "yes" }, "Invalid type for 'stream': expected a boolean, but got a string instead."],
    ["n", { n: 2 }, "n must be 1: only one choice is supported"],
    ["messages", { messages: [] }, "[] is too short - 'messages'"],
  ])("refuses a bad %s with a 400 naming it", (param, over, message) => {
    let thrown: unknown;
    try {
      chat(over);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(OpenAIRequestError);
    expect(thrown).toMatchObject({ status: 400, message, param });
  });
});

describe("translateChatRequest: request fields", () => {
  it.each([
    ["stream off by default", {}, { stream: false, includeUsage: false }],
    [
      "stream with usage",
      { stream: true, stream_options: { include_usage: true } },
      { stream: true, includeUsage: true },
    ],
  ])("%s", (_name, over, settings) => {
    const out = chat(over);
    expect({ stream: out.stream, includeUsage: out.includeUsage }).toEqual(settings);
    expect(out.ollama.stream).toBe(settings.stream);
  });

  it.each([
    ["json_object → json", { type: "json_object" }, "json"],
    ["type is trimmed and case-folded", { type: " JSON_Object " }, "json"],
    [
      "json_schema → its schema",
      { type: "json_schema", json_schema: { name: "x", schema: { type: "object" } } },
      { type: "object" },
    ],
    ["json_schema without a schema → none", { type: "json_schema" }, undefined],
    ["text → none", { type: "text" }, undefined],
  ])("response_format %s", (_name, response_format, format) => {
    expect(chat({ response_format }).ollama.format).toEqual(format);
  });

  it.each([
    [{ reasoning_effort: "high" }, "high"],
    [{ reasoning_effort: "none" }, false],
    [{ reasoning: { effort: "low" } }, "low"],
    [{}, undefined],
  ])("reasoning %j → think %j", (over, value) => {
    expect(chat(over).ollama.think).toEqual(value);
  });

  it("refuses an unknown reasoning effort with Ollama's text", () => {
    expect(() => chat({ reasoning_effort: "extreme" })).toThrow(
      `invalid reasoning value: 'extreme' (must be "high", "medium", "low", or "none")`,
    );
  });

  it("passes tools through, and drops them for tool_choice none", () => {
    const tool = { type: "function", function: { name: "get_weather", parameters: { type: "object" } } };
    expect(chat({ tools: [tool] }).ollama.tools).toEqual([tool]);
    expect(chat({ tools: [tool], tool_choice: "none" }).ollama.tools).toBeUndefined();
    expect(chat({ tools: [] }).ollama.tools).toBeUndefined();
  });

  it("maps logprobs and top_logprobs only when logprobs is on", () => {
    expect(chat({ logprobs: true, top_logprobs: 3 }).ollama).toMatchObject({ logprobs: true, top_logprobs: 3 });
    expect(chat({ logprobs: false, top_logprobs: 3 }).ollama.logprobs).toBeUndefined();
  });

  it("keeps the model name as written", () => {
    expect(chat({ model: "me/Model:v1" }).ollama.model).toBe("me/Model:v1");
  });
});

describe("translateChatRequest: messages", () => {
  const png = "iVBORw0KGgo=";
  it.each([
    ["text content", [user("hello")], [{ role: "user", content: "hello" }]],
    [
      "roles are lower-cased; developer means system",
      [{ role: "Developer", content: "be brief" }],
      [{ role: "system", content: "be brief" }],
    ],
    [
      "content parts become one message each",
      [
        user([
          { type: "text", text: "look" },
          { type: "image_url", image_url: { url: `data:image/png;base64,${png}` } },
        ]),
      ],
      [
        { role: "user", content: "look" },
        { role: "user", content: "", images: [png] },
      ],
    ],
    [
      "image_url may be a bare string; a blank mime type is accepted",
      [user([{ type: "image_url", image_url: `data:;base64,${png}` }])],
      [{ role: "user", content: "", images: [png] }],
    ],
    [
      "assistant tool calls: JSON-text arguments become objects, reasoning becomes thinking",
      [
        {
          role: "assistant",
          content: null,
          reasoning: "need weather",
          tool_calls: [
            { id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
          ],
        },
      ],
      [
        {
          role: "assistant",
          content: "",
          thinking: "need weather",
          tool_calls: [{ id: "call_1", function: { name: "get_weather", arguments: { city: "Paris" } } }],
        },
      ],
    ],
    [
      "a tool result is named after the call it answers",
      [
        { role: "assistant", tool_calls: [{ id: "c9", function: { name: "get_weather", arguments: "{}" } }] },
        { role: "tool", tool_call_id: "c9", content: "sunny" },
      ],
      [
        {
          role: "assistant",
          content: "",
          tool_calls: [{ id: "c9", function: { name: "get_weather", arguments: {} } }],
        },
        { role: "tool", content: "sunny", tool_name: "get_weather", tool_call_id: "c9" },
      ],
    ],
    [
      "a tool result's own name wins",
      [{ role: "tool", name: "lookup", tool_call_id: "zz", content: "42" }],
      [{ role: "tool", content: "42", tool_name: "lookup", tool_call_id: "zz" }],
    ],
    [
      "empty arguments text means no arguments",
      [{ role: "assistant", content: "", tool_calls: [{ function: { name: "now", arguments: "" } }] }],
      [{ role: "assistant", content: "", tool_calls: [{ function: { name: "now", arguments: {} } }] }],
    ],
  ])("%s", (_name, messages, expected) => {
    expect(translateChatRequest({ model: "m", messages }).ollama.messages).toEqual(expected);
  });

  it.each([
    ["missing content without tool calls", [{ role: "user" }], "invalid message content type: <nil>"],
    ["numeric content", [user(3)], "invalid message content type: float64"],
    ["a part that is not an object", [user(["hi"])], "invalid message format"],
    ["an unknown part type", [user([{ type: "audio" }])], "invalid message format"],
    [
      "an http image",
      [user([{ type: "image_url", image_url: { url: "https://x/y.png" } }])],
      "image URLs are not currently supported, please use base64 encoded data instead",
    ],
    [
      "a non-image data URI",
      [user([{ type: "image_url", image_url: "data:text/plain;base64,aGk=" }])],
      "invalid image input",
    ],
    ["bad base64", [user([{ type: "image_url", image_url: "data:image/png;base64,@@@" }])], "invalid image input"],
    [
      "arguments that are not a JSON object",
      [{ role: "assistant", tool_calls: [{ function: { name: "f", arguments: "[1]" } }] }],
      "invalid tool call arguments",
    ],
    [
      "a message that is not an object",
      ["hi"],
      "Invalid type for 'messages[0]': expected an object, but got a string instead.",
    ],
  ])("refuses %s", (_name, messages, message) => {
    expect(() => translateChatRequest({ model: "m", messages })).toThrow(message);
  });
});

describe("translateCompletionRequest", () => {
  it.each([
    [
      "defaults, penalties always sent (0), top_p 0 read as unset",
      { prompt: "Once", top_p: 0 },
      {
        model: "m",
        prompt: "Once",
        stream: false,
        options: { temperature: 1, top_p: 1, frequency_penalty: 0, presence_penalty: 0 },
      },
    ],
    [
      "all mapped fields",
      { prompt: ["Once"], suffix: "end", max_tokens: 5, temperature: 0, seed: 1, stop: ".", stream: true, logprobs: 2 },
      {
        model: "m",
        prompt: "Once",
        suffix: "end",
        stream: true,
        logprobs: true,
        top_logprobs: 2,
        options: {
          num_predict: 5,
          temperature: 0,
          seed: 1,
          stop: ["."],
          top_p: 1,
          frequency_penalty: 0,
          presence_penalty: 0,
        },
      },
    ],
    [
      "missing prompt is empty",
      {},
      {
        model: "m",
        prompt: "",
        stream: false,
        options: { temperature: 1, top_p: 1, frequency_penalty: 0, presence_penalty: 0 },
      },
    ],
  ])("%s", (_name, over, ollama) => {
    expect(translateCompletionRequest({ model: "m", ...over }).ollama).toEqual(ollama);
  });

  it.each([
    [{ prompt: ["a", "b"] }, "prompt must be a single string: lists of prompts are not supported"],
    [{ prompt: [1, 2] }, "prompt must be a single string: lists of prompts are not supported"],
    [{ prompt: 5 }, "Invalid type for 'prompt': expected a string, but got an integer instead."],
  ])("refuses %j", (over, message) => {
    expect(() => translateCompletionRequest({ model: "m", ...over })).toThrow(message);
  });
});

describe("translateEmbeddingRequest", () => {
  it.each([
    ["a string", { input: "hi" }, { model: "m", input: ["hi"] }, "float"],
    ["an empty string is one empty input", { input: "" }, { model: "m", input: [""] }, "float"],
    [
      "a list, base64, dimensions",
      { input: ["a", "b"], encoding_format: "BASE64", dimensions: 8 },
      { model: "m", input: ["a", "b"], dimensions: 8 },
      "base64",
    ],
    ["float explicitly", { input: "x", encoding_format: "float" }, { model: "m", input: ["x"] }, "float"],
  ])("%s", (_name, over, ollama, format) => {
    const out = translateEmbeddingRequest({ model: "m", ...over });
    expect(out.ollama).toEqual(ollama);
    expect(out.encodingFormat).toBe(format);
  });

  it.each([
    [{}, "invalid input"],
    [{ input: [] }, "invalid input"],
    [{ input: [1, 2] }, "invalid input type: expected a string or an array of strings"],
    [
      { input: "x", encoding_format: "int8" },
      "Invalid value for 'encoding_format' = int8. Supported values: ['float', 'base64'].",
    ],
  ])("refuses %j", (over, message) => {
    expect(() => translateEmbeddingRequest({ model: "m", ...over })).toThrow(message);
  });
});

it("refuses a body that is not an object", () => {
  expect(() => translateChatRequest([1])).toThrow(
    "Invalid type for 'body': expected an object, but got an array instead.",
  );
});
