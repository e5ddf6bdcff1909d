import { describe, expect, it } from "vitest";
import { ApiError } from "./errors";
import {
  chatRequestSchema,
  generateRequestSchema,
  parseChatRequest,
  parseEmbeddingRequest,
  parseEmbedRequest,
  parseGenerateRequest,
  parseRequest,
  requestSchemas,
} from "./schemas";

function errorOf(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error("expected an ApiError");
}

const expect400 = (fn: () => unknown, message: string) => {
  const err = errorOf(fn);
  expect({ status: err.status, message: err.message }).toEqual({ status: 400, message });
};

const PNG_BASE64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

describe("generate", () => {
  it("fills Ollama's defaults", () => {
    expect(parseGenerateRequest({ model: "llama3.1", prompt: "为什么草是绿的?" })).toEqual({
      model: "llama3.1",
      prompt: "为什么草是绿的?",
      stream: true,
    });
  });

  it("keeps every documented field, typed", () => {
    const request = parseGenerateRequest({
      model: "llava",
      prompt: "describe",
      suffix: "end",
      system: "sys",
      template: "{{ .Prompt }}",
      context: [1, 2, 3],
      stream: false,
      format: { type: "object", properties: { a: { type: "string" } } },
      keep_alive: "5m",
      images: [PNG_BASE64],
      options: { seed: 1001, temperature: 0, unknown_option: 1 },
      think: "high",
      truncate: true,
      logprobs: true,
      top_logprobs: 5,
      extra_field_ignored: true,
    });
    expect(request).toEqual({
      model: "llava",
      prompt: "describe",
      suffix: "end",
      system: "sys",
      template: "{{ .Prompt }}",
      context: [1, 2, 3],
      stream: false,
      format: { type: "object", properties: { a: { type: "string" } } },
      keep_alive: "5m",
      images: [PNG_BASE64],
      options: { seed: 1001, temperature: 0 },
      think: "high",
      truncate: true,
      logprobs: true,
      top_logprobs: 5,
    });
  });

  it("treats null fields as absent, like Go's decoder", () => {
    expect(
      parseGenerateRequest({
        model: "m",
        prompt: null,
        format: null,
        images: null,
        options: null,
        keep_alive: null,
        stream: null,
        think: null,
      }),
    ).toEqual({ model: "m", prompt: "", stream: true });
  });

  it('reads format "json", and an empty format as none', () => {
    expect(parseGenerateRequest({ model: "m", format: "json" }).format).toBe("json");
    expect(parseGenerateRequest({ model: "m", format: "" }).format).toBeUndefined();
  });

  it("keeps keep_alive as sent (numbers and durations)", () => {
    expect(parseGenerateRequest({ model: "m", keep_alive: 0 }).keep_alive).toBe(0);
    expect(parseGenerateRequest({ model: "m", keep_alive: -1 }).keep_alive).toBe(-1);
  });

  it.each<[unknown, string]>([
    [{}, "model is required"],
    [{ model: "" }, "model is required"],
    [null, "model is required"],
    [[], "json: cannot unmarshal array into Go value of type api.GenerateRequest"],
    ["hi", "json: cannot unmarshal string into Go value of type api.GenerateRequest"],
    [{ model: 1 }, "json: cannot unmarshal number into Go struct field GenerateRequest.model of type string"],
    [
      { model: "m", prompt: ["a"] },
      "json: cannot unmarshal array into Go struct field GenerateRequest.prompt of type string",
    ],
    [
      { model: "m", stream: "no" },
      "json: cannot unmarshal string into Go struct field GenerateRequest.stream of type bool",
    ],
    [
      { model: "m", context: [1.5] },
      "json: cannot unmarshal number 1.5 into Go struct field GenerateRequest.context of type int",
    ],
    [
      { model: "m", context: "1,2" },
      "json: cannot unmarshal string into Go struct field GenerateRequest.context of type []int",
    ],
    [
      { model: "m", options: "fast" },
      "json: cannot unmarshal string into Go struct field GenerateRequest.options of type map[string]interface {}",
    ],
    [
      { model: "m", images: [42] },
      "json: cannot unmarshal number into Go struct field GenerateRequest.images of type api.ImageData",
    ],
    [{ model: "m", images: ["data:image/png;base64,AAAA"] }, "illegal base64 data at input byte 4"],
    [{ model: "m", images: ["abc"] }, "illegal base64 data at input byte 0"],
    [{ model: "m", options: { temperature: "hot" } }, 'option "temperature" must be of type float32'],
    [{ model: "m", options: { stop: "\n" } }, 'option "stop" must be of type array'],
    [{ model: "m", keep_alive: "forever" }, 'time: invalid duration "forever"'],
    [{ model: "m", keep_alive: true }, "Unsupported type: 'bool'"],
    [{ model: "m", format: "xml" }, 'invalid format: "\\"xml\\""; expected "json" or a valid JSON Schema object'],
    [{ model: "m", format: ["json"] }, 'invalid format: "[\\"json\\"]"; expected "json" or a valid JSON Schema object'],
    [
      { model: "m", think: "extreme" },
      'invalid think value: "extreme" (must be "high", "medium", "low", "max", true, or false)',
    ],
    [{ model: "m", think: 1 }, 'think must be a boolean or string ("high", "medium", "low", "max", true, or false)'],
    [{ model: "m", top_logprobs: 21 }, "top_logprobs must be between 0 and 20"],
    [{ model: "m", top_logprobs: -1 }, "top_logprobs must be between 0 and 20"],
    [{ model: "m", raw: true, system: "s" }, "raw mode does not support template, system, or context"],
    [{ model: "m", raw: true, context: [1] }, "raw mode does not support template, system, or context"],
  ])("refuses %j", (body, message) => {
    expect400(() => parseGenerateRequest(body), message);
  });

  it("an undefined body (nothing parsed) is `missing request body`", () => {
    expect400(() => parseRequest(generateRequestSchema, undefined), "missing request body");
  });
});

describe("chat", () => {
  it("normalises messages, tool calls and tools", () => {
    const request = parseChatRequest({
      model: "llama3.1",
      messages: [
        { role: "System", content: "be brief" },
        { role: "user", content: "weather?", images: [PNG_BASE64] },
        {
          role: "assistant",
          content: "",
          tool_calls: [{ function: { name: "get_weather", arguments: { city: "Paris" } } }],
        },
        { role: "tool", content: "22°C", tool_name: "get_weather" },
        { role: "user" },
      ],
      tools: [
        {
          type: "function",
          function: {
            name: "get_weather",
            description: "Weather for a city",
            parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
          },
        },
      ],
      stream: false,
      think: true,
    });
    expect(request.messages).toEqual([
      { role: "system", content: "be brief" },
      { role: "user", content: "weather?", images: [PNG_BASE64] },
      {
        role: "assistant",
        content: "",
        tool_calls: [{ function: { name: "get_weather", arguments: { city: "Paris" } } }],
      },
      { role: "tool", content: "22°C", tool_name: "get_weather" },
      { role: "user", content: "" },
    ]);
    expect(request.tools?.[0]?.function.parameters).toEqual({
      type: "object",
      properties: { city: { type: "string" } },
      required: ["city"],
    });
    expect(request.stream).toBe(false);
    expect(request.think).toBe(true);
  });

  it("defaults messages to an empty list (a load request)", () => {
    expect(parseChatRequest({ model: "m" })).toEqual({ model: "m", messages: [], stream: true });
  });

  it.each<[unknown, string]>([
    [{ messages: [] }, "model is required"],
    [
      { model: "m", messages: [{ role: "user", content: [{ type: "text", text: "hi" }] }] },
      "json: cannot unmarshal array into Go struct field ChatRequest.messages.content of type string",
    ],
    [
      { model: "m", messages: {} },
      "json: cannot unmarshal object into Go struct field ChatRequest.messages of type []api.Message",
    ],
    [
      { model: "m", messages: ["hi"] },
      "json: cannot unmarshal string into Go struct field ChatRequest.messages of type api.Message",
    ],
    [
      { model: "m", messages: [{ role: "assistant", tool_calls: [{ function: { name: "f", arguments: "{}" } }] }] },
      "json: cannot unmarshal string into Go struct field ChatRequest.messages.tool_calls.function.arguments of type map[string]interface {}",
    ],
    [{ model: "m", messages: [{ role: "user", images: ["%%%"] }] }, "illegal base64 data at input byte 0"],
    [
      { model: "m", tools: [{ type: "function", function: { description: "no name" } }] },
      "tools.function.name is required",
    ],
    [{ model: "m", tools: [{ type: "function" }] }, "tools.function is required"],
  ])("refuses %j", (body, message) => {
    expect400(() => parseChatRequest(body), message);
  });
});

describe("embed / embeddings", () => {
  it.each<[unknown, string[]]>([
    ["为什么草是绿的?", ["为什么草是绿的?"]],
    [
      ["a", "b"],
      ["a", "b"],
    ],
    ["", []],
    [[], []],
    [null, []],
    [undefined, []],
  ])("input %j → %j", (input, expected) => {
    expect(parseEmbedRequest({ model: "m", input }).input).toEqual(expected);
  });

  it("keeps truncate, dimensions, keep_alive and options", () => {
    expect(
      parseEmbedRequest({
        model: "m",
        input: "x",
        truncate: false,
        dimensions: 256,
        keep_alive: "1m",
        options: { num_ctx: 512 },
      }),
    ).toEqual({
      model: "m",
      input: ["x"],
      truncate: false,
      dimensions: 256,
      keep_alive: "1m",
      options: { num_ctx: 512 },
    });
  });

  it.each<[unknown, string]>([
    [{ input: "x" }, "model is required"],
    [{ model: "m", input: 3 }, "invalid input type"],
    [{ model: "m", input: ["a", 3] }, "invalid input type"],
    [{ model: "m", input: [[1, 2]] }, "invalid input type"],
  ])("embed refuses %j", (body, message) => {
    expect400(() => parseEmbedRequest(body), message);
  });

  it("the legacy /api/embeddings takes a prompt", () => {
    expect(parseEmbeddingRequest({ model: "m", prompt: "hi" })).toEqual({ model: "m", prompt: "hi" });
    expect400(() => parseEmbeddingRequest({ prompt: "hi" }), "model is required");
  });
});

describe("requestSchemas", () => {
  it("names each schema after Ollama's Go type", () => {
    expect(Object.fromEntries(Object.entries(requestSchemas).map(([k, s]) => [k, s.description]))).toEqual({
      generate: "GenerateRequest",
      chat: "ChatRequest",
      embed: "EmbedRequest",
      embeddings: "EmbeddingRequest",
      create: "CreateRequest",
      copy: "CopyRequest",
      delete: "DeleteRequest",
      show: "ShowRequest",
      pull: "PullRequest",
      push: "PushRequest",
    });
    expect(chatRequestSchema.description).toBe("ChatRequest");
  });
});
