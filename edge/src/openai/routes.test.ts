/**
 * The /v1 routes inside workerd with the real app, D1, scheduler and relay; only the runner is an in-test fake
 * (edge/test/relay-fixtures), so these check what reaches the runner and what the client gets back.
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
  type SeededModel,
  seedModel,
  usageRows,
} from "../../test/relay-fixtures";

let restore: (() => void) | undefined;
let tenant: { id: string; key: string };
let model: SeededModel;

beforeEach(async () => {
  await resetFleet();
  tenant = await newTenant(`openai-${crypto.randomUUID().slice(0, 8)}`);
  model = await seedModel(tenant.id, "tiny");
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

/** The Ollama request body the runner received for the test's one inference. */
const sentRequest = (fake: ReturnType<typeof runner>) =>
  (fake.received[0]!.body as { request: Record<string, unknown> }).request;

const post = (path: string, body: unknown, key = tenant.key) => call("POST", `/v1${path}`, { key, body });

const final = { done: true, done_reason: "stop", prompt_eval_count: 7, eval_count: 3, total_duration: 1 };

/** A chat runner: streams `pieces` then the final line, or folds them into one object for stream:false. */
const chatRunner =
  (pieces: Record<string, unknown>[], over: Record<string, unknown> = {}): RunnerHandler =>
  async (request) => {
    const body = (await request.json()) as { model: { name: string }; request: { stream?: boolean } };
    const head = { model: body.model.name, created_at: "2024-05-01T12:00:00Z" };
    const last = { ...head, message: { role: "assistant", content: "" }, ...final, ...over };
    if (body.request.stream === false) {
      const content = pieces.map((p) => p.content ?? "").join("");
      const tool_calls = pieces.flatMap((p) => (p.tool_calls as unknown[]) ?? []);
      const message = { role: "assistant", content, ...(tool_calls.length ? { tool_calls } : {}) };
      return Response.json({ ...last, message });
    }
    const lines = [
      ...pieces.map((message) => ndjsonLine({ ...head, message: { role: "assistant", ...message }, done: false })),
      ndjsonLine(last),
    ];
    return new Response(new Blob(lines).stream(), { headers: { "content-type": "application/x-ndjson" } });
  };

const sseData = (text: string) =>
  text
    .split("\n\n")
    .filter(Boolean)
    .map((e) => e.replace(/^data: /, ""))
    .map((d) => (d === "[DONE]" ? d : JSON.parse(d)));

describe("/v1/chat/completions", () => {
  it("sends the runner an Ollama chat request and answers one chat.completion", async () => {
    const fake = runner(chatRunner([{ content: "The quick " }, { content: "brown fox." }]));
    const res = await post("/chat/completions", {
      model: "tiny",
      messages: [{ role: "user", content: "hi" }],
      temperature: 0,
      max_tokens: 16,
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      object: "chat.completion",
      model: "tiny",
      choices: [{ index: 0, message: { role: "assistant", content: "The quick brown fox." }, finish_reason: "stop" }],
      usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 },
    });
    expect(body.id).toMatch(/^chatcmpl-/);
    expect(sentRequest(fake)).toEqual({
      model: "tiny",
      messages: [{ role: "user", content: "hi" }],
      stream: false,
      options: { temperature: 0, top_p: 1, num_predict: 16 },
    });
    // Metered once, by the same pipeline as /api/chat.
    const rows = await eventually(async () => {
      const r = await usageRows(tenant.id);
      expect(r).toHaveLength(1);
      return r;
    });
    expect(rows[0]).toMatchObject({ endpoint: "chat", prompt_tokens: 7, output_tokens: 3, status: "ok" });
    // The answer names its usage row, as /api/chat's does.
    expect(res.headers.get("x-corral-request-id")).toBe(rows[0]!.request_id);
  });

  it("streams SSE with usage, and records the request as ok", async () => {
    runner(chatRunner([{ content: "Hel" }, { content: "lo" }]));
    const res = await post("/chat/completions", {
      model: "tiny",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const events = sseData(await res.text());
    expect(events.at(-1)).toBe("[DONE]");
    const chunks = events.slice(0, -1) as { id: string; choices: { delta: { content: string } }[]; usage: unknown }[];
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? null)).toEqual(["Hel", "lo", "", null]);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(chunks.at(-1)?.usage).toEqual({ prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 });
    const rows = await eventually(async () => {
      const r = await usageRows(tenant.id);
      expect(r).toHaveLength(1);
      return r;
    });
    expect(rows[0]).toMatchObject({ status: "ok", output_tokens: 3 });
    expect(res.headers.get("x-corral-request-id")).toBe(rows[0]!.request_id);
  });

  it("answers tool calls with ids and finish_reason tool_calls", async () => {
    const call = { id: "call_x1y2z3w4", function: { index: 0, name: "get_weather", arguments: { city: "Paris" } } };
    runner(chatRunner([{ content: "", tool_calls: [call] }]));
    const res = await post("/chat/completions", {
      model: "tiny",
      messages: [{ role: "user", content: "weather?" }],
      tools: [{ type: "function", function: { name: "get_weather", parameters: { type: "object" } } }],
    });
    const body = (await res.json()) as { choices: { message: { tool_calls: unknown[] }; finish_reason: string }[] };
    expect(body.choices[0]?.finish_reason).toBe("tool_calls");
    expect(body.choices[0]?.message.tool_calls).toEqual([
      {
        id: "call_x1y2z3w4",
        index: 0,
        type: "function",
        function: { name: "get_weather", arguments: '{"city":"Paris"}' },
      },
    ]);
  });

  it.each([
    ["a missing model", { model: "nope", messages: [{ role: "user", content: "x" }] }, 404, "not_found_error"],
    ["no messages", { model: "tiny", messages: [] }, 400, "invalid_request_error"],
    [
      "more than one choice",
      { model: "tiny", messages: [{ role: "user", content: "x" }], n: 3 },
      400,
      "invalid_request_error",
    ],
    [
      "a wrongly typed option",
      { model: "tiny", messages: [{ role: "user", content: "x" }], top_p: "x" },
      400,
      "invalid_request_error",
    ],
  ])("answers %s with OpenAI's error body", async (_name, body, status, type) => {
    runner(chatRunner([]));
    const res = await post("/chat/completions", body);
    expect(res.status).toBe(status);
    const json = (await res.json()) as { error: Record<string, unknown> };
    expect(json.error).toMatchObject({ type, code: null });
    expect(typeof json.error.message).toBe("string");
  });

  it("answers malformed JSON with a 400 error object", async () => {
    const res = await call("POST", "/v1/chat/completions", { key: tenant.key, raw: "{nope" });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { type: "invalid_request_error" } });
  });

  it("passes a runner's refusal through with its status", async () => {
    runner(() => Response.json({ error: '"tiny" does not support tools' }, { status: 400 }));
    const res = await post("/chat/completions", { model: "tiny", messages: [{ role: "user", content: "x" }] });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: { message: '"tiny" does not support tools', type: "invalid_request_error", param: null, code: null },
    });
  });
});

describe("/v1/completions", () => {
  it("runs a generate request and streams text_completion chunks", async () => {
    const fake = runner(async (request) => {
      const body = (await request.json()) as { model: { name: string } };
      const head = { model: body.model.name, created_at: "2024-05-01T12:00:00Z" };
      const lines = [
        ndjsonLine({ ...head, response: "Once", done: false }),
        ndjsonLine({ ...head, response: "", ...final, done_reason: "length" }),
      ];
      return new Response(new Blob(lines).stream(), { headers: { "content-type": "application/x-ndjson" } });
    });
    const res = await post("/completions", { model: "tiny", prompt: "Tell", max_tokens: 1, stream: true });
    const events = sseData(await res.text()) as (
      | { object: string; choices: { text: string; finish_reason: string | null }[] }
      | string
    )[];
    expect(events.at(-1)).toBe("[DONE]");
    expect(events.slice(0, -1).map((e) => (e as { choices: { text: string }[] }).choices[0]?.text)).toEqual([
      "Once",
      "",
    ]);
    expect(events[1]).toMatchObject({ object: "text_completion", choices: [{ finish_reason: "length" }] });
    expect(fake.received[0]?.path).toBe("/v1/generate");
    expect(sentRequest(fake)).toMatchObject({
      prompt: "Tell",
      stream: true,
      options: { num_predict: 1 },
    });
  });
});

describe("/v1/embeddings", () => {
  it.each(["float", "base64"] as const)("answers an embedding list (%s)", async (encoding_format) => {
    const fake = runner(() => Response.json({ model: "tiny", embeddings: [[0.5, -2]], prompt_eval_count: 2 }));
    const res = await post("/embeddings", { model: "tiny", input: "hello", encoding_format });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { data: { embedding: unknown }[]; usage: unknown; model: string };
    expect(body.model).toBe("tiny");
    expect(body.usage).toEqual({ prompt_tokens: 2, total_tokens: 2 });
    expect(body.data[0]?.embedding).toEqual(encoding_format === "float" ? [0.5, -2] : "AAAAPwAAAMA=");
    expect(fake.received[0]?.path).toBe("/v1/embed");
    expect(sentRequest(fake)).toEqual({ model: "tiny", input: ["hello"] });
  });
});

describe("/v1/models", () => {
  it("lists only the tenant's models", async () => {
    const other = await newTenant(`openai-other-${crypto.randomUUID().slice(0, 8)}`);
    await seedModel(other.id, "secret-model");
    const res = await call("GET", "/v1/models", { key: tenant.key });
    const body = (await res.json()) as { object: string; data: { id: string; owned_by: string; object: string }[] };
    expect(body.object).toBe("list");
    expect(body.data).toEqual([
      { id: "tiny:latest", object: "model", created: expect.any(Number), owned_by: "library" },
    ]);
  });

  it.each([
    ["tiny", 200],
    ["tiny:latest", 200],
    ["library/tiny", 200],
    ["nope", 404],
    ["bad name!", 404],
  ])("retrieves %s → %i", async (name, status) => {
    const res = await call("GET", `/v1/models/${encodeURIComponent(name)}`, { key: tenant.key });
    expect(res.status).toBe(status);
    const body = (await res.json()) as Record<string, unknown>;
    if (status === 200) expect(body).toMatchObject({ id: name, object: "model", owned_by: "library" });
    else
      expect(body).toEqual({
        error: { message: `model '${name}' not found`, type: "not_found_error", param: "model", code: null },
      });
  });

  it("does not reveal another tenant's model", async () => {
    const other = await newTenant(`openai-other-${crypto.randomUUID().slice(0, 8)}`);
    await seedModel(other.id, "private");
    const res = await call("GET", "/v1/models/private", { key: tenant.key });
    expect(res.status).toBe(404);
  });
});

it("refuses a bad key with 401", async () => {
  const res = await call("GET", "/v1/models", { key: "corral-not-a-key" });
  expect(res.status).toBe(401);
});

it("answers unknown /v1 paths with an OpenAI 404", async () => {
  const res = await call("GET", "/v1/nothing-here", { key: tenant.key });
  expect(res.status).toBe(404);
  expect(await res.json()).toMatchObject({ error: { type: "not_found_error" } });
});
