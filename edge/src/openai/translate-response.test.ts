import type { ChatResponse } from "@corral/protocol/types";
import { describe, expect, it } from "vitest";
import { usageOf } from "../anthropic/translate-response";
import { responsesUsage } from "./responses-response";
import {
  completionLogprobs,
  finishReason,
  floatsToBase64,
  ownerOf,
  randomId,
  toChatCompletion,
  toCompletion,
  toEmbeddingList,
  toModelList,
  toToolCalls,
  toUsage,
  unixSeconds,
} from "./translate-response";

const created_at = "2024-05-01T12:00:00.5Z";
const createdUnix = 1714564800;
const metrics = { prompt_eval_count: 11, eval_count: 4 };
const chat = (fields: Partial<ChatResponse>): ChatResponse => ({
  model: "m",
  created_at,
  message: { role: "assistant", content: "" },
  done: true,
  ...fields,
});

describe("toChatCompletion", () => {
  it("maps a plain answer", () => {
    const out = toChatCompletion("chatcmpl-1", {
      model: "scripted:latest",
      created_at,
      message: { role: "assistant", content: "The quick brown fox." },
      done: true,
      done_reason: "stop",
      ...metrics,
    });
    expect(out).toEqual({
      id: "chatcmpl-1",
      object: "chat.completion",
      created: createdUnix,
      model: "scripted:latest",
      system_fingerprint: "fp_ollama",
      choices: [{ index: 0, message: { role: "assistant", content: "The quick brown fox." }, finish_reason: "stop" }],
      usage: { prompt_tokens: 11, completion_tokens: 4, total_tokens: 15 },
    });
  });

  it.each([
    ["stop", [], "stop"],
    ["length", [], "length"],
    ["stop", [{ id: "call_a", function: { name: "f", arguments: {} } }], "tool_calls"],
    [undefined, [], null],
  ])("done_reason %s with %j tool calls → finish_reason %s", (done_reason, tool_calls, expected) => {
    const out = toChatCompletion("x", chat({ message: { role: "assistant", content: "", tool_calls }, done_reason }));
    expect(out.choices[0]?.finish_reason).toBe(expected);
  });

  it("carries thinking as reasoning, tool calls with JSON-text arguments, and logprobs", () => {
    const logprobs = [{ token: "a", logprob: -0.5 }];
    const out = toChatCompletion(
      "x",
      chat({
        message: {
          role: "assistant",
          content: "",
          thinking: "hmm",
          tool_calls: [{ id: "call_abc", function: { name: "get_weather", arguments: { city: "Paris" } } }],
        },
        done_reason: "stop",
        logprobs,
      }),
    );
    expect(out.choices[0]).toEqual({
      index: 0,
      message: {
        role: "assistant",
        content: "",
        reasoning: "hmm",
        tool_calls: [
          {
            id: "call_abc",
            index: 0,
            type: "function",
            function: { name: "get_weather", arguments: '{"city":"Paris"}' },
          },
        ],
      },
      finish_reason: "tool_calls",
      logprobs: { content: logprobs },
    });
  });

  it("treats missing or malformed metrics as zero", () => {
    // What a misbehaving runner could send: the wire type is not trusted at run time.
    const malformed = { message: {}, prompt_eval_count: "7", eval_count: -3 } as unknown as ChatResponse;
    const out = toChatCompletion("x", malformed);
    expect(out.usage).toEqual({ prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 });
    expect(out.choices[0]?.message).toEqual({ role: "assistant", content: "" });
  });
});

describe("toToolCalls", () => {
  it("gives calls without an id one, and numbers them from firstIndex unless they carry an index", () => {
    const calls = toToolCalls(
      [{ function: { name: "a", arguments: { x: 1 } } }, { id: "call_keep", function: { name: "b", index: 7 } }],
      3,
    );
    expect(calls[0]?.id).toMatch(/^call_[A-Za-z0-9]{8}$/);
    expect(calls.map((c) => [c.index, c.function.name, c.function.arguments])).toEqual([
      [3, "a", '{"x":1}'],
      [7, "b", "{}"],
    ]);
    expect(calls[1]?.id).toBe("call_keep");
  });

  it.each([[undefined], ["nope"], [{}]])("reads %j as no calls", (value) => {
    expect(toToolCalls(value)).toEqual([]);
  });
});

describe("small mappings", () => {
  it.each([
    ["", false, null],
    ["stop", false, "stop"],
    ["length", true, "tool_calls"],
    [7, false, null],
  ])("finishReason(%j, %s) = %j", (reason, called, expected) => {
    expect(finishReason(reason, called)).toBe(expected);
  });

  it.each([
    [created_at, createdUnix],
    ["not a time", 1000],
    [undefined, 1000],
  ])("unixSeconds(%j)", (value, expected) => {
    expect(unixSeconds(value, 1_000_999)).toBe(expected);
  });

  it.each([
    ["tiny:latest", "library"],
    ["me/model:v1", "me"],
    ["example.com/team/model:v1", "team"],
    ["bad name!", ""],
  ])("ownerOf(%s) = %s", (name, owner) => {
    expect(ownerOf(name)).toBe(owner);
  });

  it("makes distinct ids with the prefix", () => {
    const a = randomId("chatcmpl-");
    expect(a).toMatch(/^chatcmpl-[A-Za-z0-9]{24}$/);
    expect(randomId("chatcmpl-")).not.toBe(a);
  });
});

describe("toCompletion", () => {
  it("maps text, finish_reason, usage and legacy logprobs", () => {
    const out = toCompletion("cmpl-1", {
      model: "tiny:latest",
      created_at,
      response: "ab",
      done: true,
      done_reason: "length",
      logprobs: [
        {
          token: "a",
          logprob: -1,
          top_logprobs: [
            { token: "a", logprob: -1 },
            { token: "z", logprob: -2 },
          ],
        },
        { token: "b", logprob: -0.5 },
      ],
      ...metrics,
    });
    expect(out).toEqual({
      id: "cmpl-1",
      object: "text_completion",
      created: createdUnix,
      model: "tiny:latest",
      system_fingerprint: "fp_ollama",
      choices: [
        {
          text: "ab",
          index: 0,
          finish_reason: "length",
          logprobs: {
            tokens: ["a", "b"],
            token_logprobs: [-1, -0.5],
            top_logprobs: [{ a: -1, z: -2 }, {}],
            text_offset: [0, 1],
          },
        },
      ],
      usage: { prompt_tokens: 11, completion_tokens: 4, total_tokens: 15 },
    });
  });

  it("offsets logprobs by where the chunk starts", () => {
    expect(
      completionLogprobs(
        [
          { token: "xy", logprob: 0 },
          { token: "z", logprob: 0 },
        ],
        10,
      )?.text_offset,
    ).toEqual([10, 12]);
    expect(completionLogprobs([])).toBeUndefined();
  });
});

describe("embeddings", () => {
  const decode = (b64: string) => {
    const bin = atob(b64);
    const bytes = Uint8Array.from(bin, (ch) => ch.charCodeAt(0));
    return Array.from(new Float32Array(bytes.buffer));
  };

  it.each([[[]], [[0.5, -1.25, 3]], [[1e-8, 123456.5, -0.0001]]])(
    "base64 of %j decodes to the same float32 values",
    (values) => {
      expect(decode(floatsToBase64(values))).toEqual(Array.from(Float32Array.from(values)));
    },
  );

  it("encodes little-endian float32", () => {
    // 1.0f is 0x3f800000: bytes 00 00 80 3f.
    expect(floatsToBase64([1])).toBe("AACAPw==");
  });

  it("builds the list in either format", () => {
    const response = {
      model: "tiny:latest",
      embeddings: [
        [0.5, 0.25],
        [1, 2],
      ],
      prompt_eval_count: 6,
    };
    expect(toEmbeddingList("tiny", response, "float")).toEqual({
      object: "list",
      data: [
        { object: "embedding", embedding: [0.5, 0.25], index: 0 },
        { object: "embedding", embedding: [1, 2], index: 1 },
      ],
      model: "tiny",
      usage: { prompt_tokens: 6, total_tokens: 6 },
    });
    const b64 = toEmbeddingList("tiny", response, "base64");
    expect(b64.data.map((d) => decode(d.embedding as string))).toEqual([
      [0.5, 0.25],
      [1, 2],
    ]);
  });
});

it("lists models with owner and creation time", () => {
  expect(
    toModelList([
      { display_name: "tiny:latest", modified_at: 1_714_564_800_999 },
      { display_name: "me/tools:v2", modified_at: 0 },
    ]),
  ).toEqual({
    object: "list",
    data: [
      { id: "tiny:latest", object: "model", created: createdUnix, owned_by: "library" },
      { id: "me/tools:v2", object: "model", created: 0, owned_by: "me" },
    ],
  });
});

describe("cached prompt tokens in each dialect's usage", () => {
  const line = { prompt_eval_count: 120, prompt_cached_count: 100, eval_count: 7 };
  it.each([
    { dialect: "chat completions", usage: toUsage(line), want: { prompt_tokens_details: { cached_tokens: 100 } } },
    { dialect: "responses", usage: responsesUsage(line), want: { input_tokens_details: { cached_tokens: 100 } } },
    // Anthropic counts cache reads apart from input_tokens.
    { dialect: "anthropic", usage: usageOf(line), want: { input_tokens: 20, cache_read_input_tokens: 100 } },
  ])("$dialect", ({ usage, want }) => {
    expect(usage).toMatchObject(want);
  });

  it("says nothing of a cache that served nothing, and never more than the prompt", () => {
    expect(toUsage({ prompt_eval_count: 5, eval_count: 1 })).not.toHaveProperty("prompt_tokens_details");
    expect(usageOf({ prompt_eval_count: 5, eval_count: 1 })).toEqual({ input_tokens: 5, output_tokens: 1 });
    expect(toUsage({ prompt_eval_count: 5, prompt_cached_count: 9 }).prompt_tokens_details).toEqual({
      cached_tokens: 5,
    });
  });
});
