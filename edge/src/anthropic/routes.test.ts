/**
 * /v1/messages inside workerd with the real app, D1, scheduler and relay; only the runner is an in-test fake
 * (edge/test/relay-fixtures), so these check what reaches the runner and what an Anthropic client gets back.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { call, newTenant } from "../../test/helpers";
import {
  eventually,
  fakeRunners,
  heartbeat,
  loaded,
  ndjsonLine,
  type RunnerHandler,
  resetFleet,
  runnerStatus,
  seedModel,
  usageRows,
} from "../../test/relay-fixtures";

let restore: (() => void) | undefined;
let tenant: { id: string; key: string };

beforeEach(async () => {
  await resetFleet();
  tenant = await newTenant(`anthropic-${crypto.randomUUID().slice(0, 8)}`);
  const model = await seedModel(tenant.id, "tiny");
  await heartbeat(runnerStatus("r1", { loaded: [loaded(model.modelBlob)] }));
});
afterEach(() => {
  restore?.();
  restore = undefined;
});

function runner(handler: RunnerHandler) {
  const fake = fakeRunners({ r1: handler });
  restore = fake.restore;
  return fake;
}

const sentRequest = (fake: ReturnType<typeof runner>) =>
  (fake.received[0]!.body as { request: Record<string, unknown> }).request;

const post = (path: string, body: unknown, headers: Record<string, string> = { "x-api-key": tenant.key }) =>
  call("POST", `/v1/messages${path}`, { body, headers });

const final = { done: true, done_reason: "stop", prompt_eval_count: 7, eval_count: 3, total_duration: 1 };

/** A chat runner streaming `messages` (partial assistant messages) then the final line, or one object. */
const chatRunner =
  (messages: Record<string, unknown>[], over: Record<string, unknown> = {}): RunnerHandler =>
  async (request) => {
    const body = (await request.json()) as { model: { name: string }; request: { stream?: boolean } };
    const head = { model: body.model.name, created_at: "2024-05-01T12:00:00Z" };
    if (body.request.stream === false) {
      const join = (key: string) => messages.map((m) => (m[key] as string) ?? "").join("");
      const tool_calls = messages.flatMap((m) => (m.tool_calls as unknown[]) ?? []);
      const message = { role: "assistant", content: join("content"), thinking: join("thinking"), tool_calls };
      return Response.json({ ...head, message, ...final, ...over });
    }
    const lines = [
      ...messages.map((m) => ndjsonLine({ ...head, message: { role: "assistant", content: "", ...m }, done: false })),
      ndjsonLine({ ...head, message: { role: "assistant", content: "" }, ...final, ...over }),
    ];
    return new Response(new Blob(lines).stream(), { headers: { "content-type": "application/x-ndjson" } });
  };

/** Server-sent events as [event name, data]. */
const sseEvents = (text: string) =>
  text
    .split("\n\n")
    .filter(Boolean)
    .map((e) => {
      const [name, data] = e.split("\n");
      return [name?.replace(/^event: /, ""), JSON.parse(data?.replace(/^data: /, "") ?? "")] as const;
    });

const ask = { model: "tiny", max_tokens: 16, messages: [{ role: "user", content: "hi" }] };

describe("/v1/messages", () => {
  it("sends the runner an Ollama chat request and answers one Anthropic message, metered once", async () => {
    const fake = runner(chatRunner([{ content: "The quick " }, { content: "brown fox." }]));
    const res = await post("", {
      ...ask,
      system: [
        { type: "text", text: "Be " },
        { type: "text", text: "brief." },
      ],
      stop_sequences: ["\n\n"],
      temperature: 0,
      top_k: 5,
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      type: "message",
      role: "assistant",
      model: "tiny",
      content: [{ type: "text", text: "The quick brown fox." }],
      stop_reason: "end_turn",
      stop_sequence: null,
      usage: { input_tokens: 7, output_tokens: 3 },
    });
    expect(body.id).toMatch(/^msg_/);
    // As Ollama's Anthropic middleware: `think` on a model that cannot think is dropped by the runner, not refused.
    expect(fake.received[0]!.body).toMatchObject({ relax_thinking: true });
    expect(sentRequest(fake)).toEqual({
      model: "tiny",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "hi" },
      ],
      stream: false,
      options: { num_predict: 16, temperature: 0, top_k: 5, stop: ["\n\n"] },
    });
    const rows = await eventually(async () => {
      const r = await usageRows(tenant.id);
      expect(r).toHaveLength(1);
      return r;
    });
    expect(rows[0]).toMatchObject({ endpoint: "chat", prompt_tokens: 7, output_tokens: 3, status: "ok" });
  });

  it("streams Anthropic's event sequence: thinking, text, then a tool_use block", async () => {
    const toolCall = { function: { index: 0, name: "get_weather", arguments: { city: "Paris" } } };
    runner(chatRunner([{ thinking: "Hmm" }, { content: "Let me " }, { content: "look." }, { tool_calls: [toolCall] }]));
    const res = await post("", { ...ask, stream: true, thinking: { type: "enabled", budget_tokens: 1024 } });
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const events = sseEvents(await res.text());
    expect(events.map(([name]) => name)).toEqual([
      "message_start",
      "ping",
      "content_block_start",
      "content_block_delta",
      "content_block_stop",
      "content_block_start",
      "content_block_delta",
      "content_block_delta",
      "content_block_stop",
      "content_block_start",
      "content_block_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    expect(events[0]?.[1]).toMatchObject({ message: { model: "tiny", content: [], usage: { output_tokens: 0 } } });
    expect(events[2]?.[1]).toEqual({
      type: "content_block_start",
      index: 0,
      content_block: { type: "thinking", thinking: "", signature: "" },
    });
    expect(events[3]?.[1]).toMatchObject({ index: 0, delta: { type: "thinking_delta", thinking: "Hmm" } });
    expect(events[7]?.[1]).toMatchObject({ index: 1, delta: { type: "text_delta", text: "look." } });
    expect(events[9]?.[1]).toMatchObject({ index: 2, content_block: { type: "tool_use", name: "get_weather" } });
    expect(events[10]?.[1]).toMatchObject({ delta: { type: "input_json_delta", partial_json: '{"city":"Paris"}' } });
    expect(events[12]?.[1]).toEqual({
      type: "message_delta",
      delta: { stop_reason: "tool_use", stop_sequence: null },
      usage: { input_tokens: 7, output_tokens: 3 },
    });
  });

  it("turns tool_use and tool_result blocks into Ollama tool calls and tool messages", async () => {
    const fake = runner(chatRunner([{ content: "Sunny." }]));
    const tools = [{ name: "get_weather", description: "Weather", input_schema: { type: "object" } }];
    await post("", {
      ...ask,
      tools,
      tool_choice: { type: "auto" },
      messages: [
        { role: "user", content: "Weather in Paris?" },
        {
          role: "assistant",
          content: [{ type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } }],
        },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "toolu_1", content: [{ type: "text", text: "sunny" }] },
            { type: "text", text: "And so?" },
          ],
        },
      ],
    });
    const sent = sentRequest(fake);
    expect(sent.messages).toEqual([
      { role: "user", content: "Weather in Paris?" },
      {
        role: "assistant",
        content: "",
        tool_calls: [{ id: "toolu_1", function: { name: "get_weather", arguments: { city: "Paris" } } }],
      },
      { role: "tool", content: "sunny", tool_call_id: "toolu_1" },
      { role: "user", content: "And so?" },
    ]);
    expect(sent.tools).toEqual([
      { type: "function", function: { name: "get_weather", description: "Weather", parameters: { type: "object" } } },
    ]);
  });

  it("ends a stream that fails midway with an error event", async () => {
    runner(async () => {
      const lines = [
        ndjsonLine({ model: "tiny", message: { role: "assistant", content: "Hi" }, done: false }),
        ndjsonLine({ error: "runner lost its GPU" }),
      ];
      return new Response(new Blob(lines).stream(), { headers: { "content-type": "application/x-ndjson" } });
    });
    const events = sseEvents(await (await post("", { ...ask, stream: true })).text());
    expect(events.at(-1)).toEqual([
      "error",
      { type: "error", error: { type: "api_error", message: "runner lost its GPU" } },
    ]);
  });

  it("counts tokens with Ollama's estimate", async () => {
    const res = await post("/count_tokens", {
      model: "tiny",
      system: "You are brief.",
      messages: [{ role: "user", content: "What is the weather in Paris?" }],
    });
    expect(res.status).toBe(200);
    // (14 system + 4 role + 29 text) / 4
    expect(await res.json()).toEqual({ input_tokens: 11 });
  });
});

describe("/v1/messages errors take Anthropic's shape", () => {
  const cases: {
    name: string;
    body?: unknown;
    headers?: () => Record<string, string>;
    status: number;
    type: string;
    message: string | RegExp;
  }[] = [
    { name: "no key", headers: () => ({}), status: 401, type: "authentication_error", message: "unauthorized" },
    {
      name: "a wrong key",
      headers: () => ({ "x-api-key": "nope" }),
      status: 401,
      type: "authentication_error",
      message: "unauthorized",
    },
    {
      name: "no max_tokens",
      body: { model: "tiny", messages: ask.messages },
      status: 400,
      type: "invalid_request_error",
      message: "max_tokens is required and must be positive",
    },
    {
      name: "no messages",
      body: { model: "tiny", max_tokens: 5, messages: [] },
      status: 400,
      type: "invalid_request_error",
      message: "messages is required",
    },
    {
      name: "an image by URL",
      body: {
        ...ask,
        messages: [
          { role: "user", content: [{ type: "image", source: { type: "url", url: "https://x.test/a.png" } }] },
        ],
      },
      status: 400,
      type: "invalid_request_error",
      message: "invalid image source type: url. Only base64 images are supported.",
    },
    {
      name: "a missing model",
      body: { ...ask, model: "nothing-here" },
      status: 404,
      type: "not_found_error",
      message: /model "nothing-here" not found/,
    },
  ];
  for (const c of cases) {
    it(`answers ${c.name} with ${c.status} ${c.type}`, async () => {
      const fake = runner(chatRunner([{ content: "x" }]));
      const res = await post("", c.body ?? ask, c.headers?.() ?? { "x-api-key": tenant.key });
      expect(res.status).toBe(c.status);
      const body = (await res.json()) as { type: string; error: { type: string; message: string }; request_id: string };
      expect(body.type).toBe("error");
      expect(body.error.type).toBe(c.type);
      expect(body.error.message).toMatch(c.message);
      expect(body.request_id).toMatch(/^req_/);
      expect(fake.received).toHaveLength(0);
    });
  }

  it("takes a Bearer key too", async () => {
    runner(chatRunner([{ content: "x" }]));
    const res = await post("", ask, { authorization: `Bearer ${tenant.key}` });
    expect(res.status).toBe(200);
  });

  it("keeps the runner's status and text for a request the runner refuses", async () => {
    runner(() => Response.json({ error: '"tiny" does not support thinking' }, { status: 400 }));
    const res = await post("", { ...ask, thinking: { type: "enabled", budget_tokens: 1024 } });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      error: { type: "invalid_request_error", message: '"tiny" does not support thinking' },
    });
  });
});
