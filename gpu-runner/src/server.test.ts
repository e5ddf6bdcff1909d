/**
 * The runner end to end on an ephemeral port, with real llama.cpp inference on the built-in models (one thread,
 * small contexts, few tokens) and blobs fetched from a local stand-in for the edge.
 */
import type { ResolvedModel } from "@corral/protocol/runner";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ndjsonLines as lines,
  resolvedModel,
  sentenceModelBlob,
  startTestRunner,
  TEST_SECRET,
  type TestRunner,
  tinyModelBlob,
  toolModelBlob,
} from "./test-support";
import { SCRIPTED_SENTENCE, SCRIPTED_TOOL_CALL_FUNCTION } from "./tiny-model/index";
import { noisePng, pngHeader } from "./tiny-model/png";

let t: TestRunner;
let base: string;
/** The heartbeat's pulse as the tests set it: resolves at once unless a test holds it. */
let announce: () => Promise<void> = () => Promise.resolve();

beforeAll(async () => {
  t = await startTestRunner({ announceModels: () => announce() });
  base = t.base;
});
afterAll(() => t.stop());

const tiny = (extra?: Partial<ResolvedModel>) => resolvedModel(tinyModelBlob(), "tiny", extra);
const sentence = (extra?: Partial<ResolvedModel>) => resolvedModel(sentenceModelBlob(), "sentence", extra);
const toolModel = () => resolvedModel(toolModelBlob(), "tool");
const post = (...args: Parameters<TestRunner["post"]>) => t.post(...args);
const json = (...args: Parameters<TestRunner["json"]>) => t.json(...args);
const status = () => t.status();
const modelFor = resolvedModel;

const greedy = { temperature: 0 };

describe("runner auth", () => {
  it.each([undefined, "Bearer wrong", `Basic ${TEST_SECRET}`, `Bearer ${TEST_SECRET}x`])("401 for %s", async (auth) => {
    const headers: Record<string, string> = auth ? { authorization: auth } : {};
    for (const [path, method] of [
      ["/v1/ps", "GET"],
      ["/v1/generate", "POST"],
      ["/metrics", "GET"],
    ] as const) {
      const res = await fetch(`${base}${path}`, { method, headers, body: method === "POST" ? "{}" : undefined });
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ error: "unauthorized" });
    }
  });
});

describe("generate", () => {
  it("streams NDJSON chunks and a final chunk with Ollama's stats and context", async () => {
    const res = await post("/v1/generate", tiny(), { prompt: "hello", options: { num_predict: 5, seed: 1 } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    const chunks = await lines(res);
    const last = chunks.at(-1)!;
    for (const chunk of chunks.slice(0, -1)) {
      expect(chunk).toMatchObject({ model: "tiny", done: false });
      expect(typeof chunk.response).toBe("string");
      expect(Number.isNaN(Date.parse(chunk.created_at))).toBe(false);
    }
    expect(last).toMatchObject({ model: "tiny", response: "", done: true, done_reason: "length" });
    // node-llama-cpp finishes a multi-byte character split across tokens before it stops: 5 or 6 tokens.
    expect(last.eval_count).toBeGreaterThanOrEqual(5);
    expect(last.eval_count).toBeLessThanOrEqual(6);
    for (const field of [
      "total_duration",
      "load_duration",
      "prompt_eval_count",
      "prompt_eval_duration",
      "eval_duration",
    ]) {
      expect(last[field]).toBeGreaterThan(0);
    }
    expect(last.total_duration).toBeGreaterThanOrEqual(last.prompt_eval_duration + last.eval_duration);
    expect(Array.isArray(last.context)).toBe(true);
    expect(last.context.length).toBeGreaterThan(last.prompt_eval_count - 1);
  });

  it("returns the exact text of the scripted model, streamed or not", async () => {
    const { status: code, body } = await json("/v1/generate", sentence(), { prompt: "Say it", options: greedy });
    expect(code).toBe(200);
    expect(body).toMatchObject({ model: "sentence", response: SCRIPTED_SENTENCE, done: true, done_reason: "stop" });
    const streamed = await lines(await post("/v1/generate", sentence(), { prompt: "Say it", options: greedy }));
    expect(streamed.map((c) => c.response).join("")).toBe(SCRIPTED_SENTENCE);
    expect(streamed.length).toBeGreaterThan(3);
  });

  it("stops at a stop string without including it", async () => {
    const { body } = await json("/v1/generate", sentence(), { prompt: "x", options: { ...greedy, stop: [" fox"] } });
    expect(body).toMatchObject({ response: "The quick brown", done_reason: "stop" });
  });

  it("num_predict ends with done_reason length", async () => {
    const { body } = await json("/v1/generate", sentence(), { prompt: "x", options: { ...greedy, num_predict: 3 } });
    expect(body).toMatchObject({ response: "The quick brown", done_reason: "length", eval_count: 3 });
  });

  it("is deterministic for a seed", async () => {
    const run = (seed: number) =>
      json("/v1/generate", tiny(), { prompt: "seeded", options: { seed, temperature: 0.9, num_predict: 12 } });
    const [a, b, c] = await Promise.all([run(7), run(7), run(8)]);
    expect(a.body.response).toBe(b.body.response);
    expect(a.body.response).not.toBe(c.body.response);
  });

  it("constrains output to a JSON schema", async () => {
    const schema = {
      type: "object",
      properties: { ok: { type: "boolean" }, n: { type: "integer" } },
      required: ["ok", "n"],
    };
    const { body } = await json("/v1/generate", tiny(), {
      prompt: "json please",
      format: schema,
      options: { seed: 3, num_predict: 40 },
    });
    expect(body.done_reason).toBe("stop");
    const value = JSON.parse(body.response);
    expect(typeof value.ok).toBe("boolean");
    expect(Number.isInteger(value.n)).toBe(true);
  });

  it('format "json" produces one complete JSON object', async () => {
    // Room enough for the grammar to close the object: a response cut by num_predict would prove nothing.
    const { body } = await json("/v1/generate", tiny(), {
      prompt: "json",
      format: "json",
      options: { seed: 5, num_predict: 256 },
    });
    expect(body.done_reason).toBe("stop");
    expect(JSON.parse(body.response)).toBeTypeOf("object");
  });

  it("continues from a returned context", async () => {
    const first = await json("/v1/generate", sentence(), { prompt: "one", options: { ...greedy, num_predict: 2 } });
    const second = await json("/v1/generate", sentence(), {
      prompt: "two",
      context: first.body.context,
      options: { ...greedy, num_predict: 2 },
    });
    expect(second.body.prompt_eval_count).toBeGreaterThan(first.body.context.length);
    expect(second.body.context.slice(0, first.body.context.length)).toEqual(first.body.context);
  });

  it("loads on an empty prompt and unloads with keep_alive 0", async () => {
    const load = await json("/v1/generate", sentence(), { prompt: "" });
    expect(load.body).toMatchObject({ model: "sentence", response: "", done: true, done_reason: "load" });
    expect((await status()).loaded.some((m) => m.model_blob === sentenceModelBlob().digest)).toBe(true);
    const unload = await json("/v1/generate", sentence(), { prompt: "", keep_alive: 0 });
    expect(unload.body).toMatchObject({ done: true, done_reason: "unload" });
    expect((await status()).loaded.some((m) => m.model_blob === sentenceModelBlob().digest)).toBe(false);
  });

  it.each([
    { reason: "load", request: { prompt: "" }, loaded: true },
    { reason: "unload", request: { prompt: "", keep_alive: 0 }, loaded: false },
  ])("answers a $reason only once the edge has acknowledged the new state", async ({ reason, request, loaded }) => {
    const loadedNow = () => t.pool.ps().some((m) => m.model_blob === sentenceModelBlob().digest);
    const announced: boolean[] = [];
    let acknowledge!: () => void;
    let firstAnnounce!: () => void;
    const announcedOnce = new Promise<void>((resolve) => (firstAnnounce = resolve));
    announce = () => {
      announced.push(loadedNow());
      firstAnnounce();
      return new Promise((resolve) => (acknowledge = resolve));
    };
    try {
      let answered = false;
      const answer = json("/v1/generate", sentence(), request).then((res) => {
        answered = true;
        return res;
      });
      // The runner announces once the model is loaded (or unloaded): however long that takes on a loaded machine.
      await Promise.race([announcedOnce, answer]);
      expect(announced).toEqual([loaded]);
      // A negative check: an answer sent before the acknowledgement would show here; slowness can only hide it.
      await new Promise((r) => setTimeout(r, 50));
      expect(answered).toBe(false);
      acknowledge();
      expect((await answer).body).toMatchObject({ done: true, done_reason: reason });
    } finally {
      announce = () => Promise.resolve();
    }
  });

  it.each([
    [{ prompt: "x", raw: true, system: "s" }, 400, "raw mode does not support template, system, or context"],
    [{ prompt: "x", suffix: "y" }, 400, '"tiny" does not support insert'],
    [{ prompt: "x", think: true }, 400, '"tiny" does not support thinking'],
    [{ prompt: "x", images: ["aGVsbG8="] }, 400, '"tiny" does not support images'],
    [{ prompt: "x", options: { temperature: "hot" } }, 400, 'option "temperature" must be of type float32'],
    [{ prompt: "x", keep_alive: "5 minutes" }, 400, "time: unknown unit"],
  ])("rejects %j", async (request, code, message) => {
    const { status: got, body } = await json("/v1/generate", tiny(), request);
    expect(got).toBe(code);
    expect(body.error).toContain(message);
  });

  // This runner has no llama-server: a projector model loads for text, and its images are refused cleanly.
  const withProjector = () => tiny({ projector: { digest: `sha256:${"c".repeat(64)}`, size: 1000 } });
  it.each([
    ["bytes that are not an image", ["aGVsbG8="], "image 0: unsupported or invalid image format"],
    ["a decompression bomb", [pngHeader(50_000, 50_000).toString("base64")], "50000x50000 is too large"],
    ["an image, on a runner without llama-server", [noisePng(1).toString("base64")], "no vision backend"],
  ])("a model with a projector: %s → 400", async (_, images, message) => {
    const { status: got, body } = await json("/v1/generate", withProjector(), { prompt: "x", images });
    expect(got).toBe(400);
    expect(body.error).toContain(message);
    const chat = await json("/v1/chat", withProjector(), { messages: [{ role: "user", content: "x", images }] });
    expect(chat.status).toBe(400);
    expect(chat.body.error).toContain(message);
    expect((await json("/v1/generate", withProjector(), { prompt: "x", options: { num_predict: 2 } })).status).toBe(
      200,
    );
  });

  it("404 when the model blob is missing from the blob store", async () => {
    const missing = { digest: `sha256:${"b".repeat(64)}`, bytes: new Uint8Array(10) };
    const { status: got, body } = await json("/v1/generate", modelFor(missing, "ghost"), { prompt: "x" });
    expect(got).toBe(404);
    expect(body.error).toContain("not found");
  });
});

describe("chat", () => {
  it("answers with the scripted sentence, streamed and not", async () => {
    const messages = [
      { role: "user", content: "hi" },
      { role: "assistant", content: "hello" },
      { role: "user", content: "say the sentence" },
    ];
    const { body } = await json("/v1/chat", sentence({ system: "be brief" }), { messages, options: greedy });
    expect(body).toMatchObject({
      model: "sentence",
      message: { role: "assistant", content: SCRIPTED_SENTENCE },
      done: true,
      done_reason: "stop",
    });
    expect(body.prompt_eval_count).toBeGreaterThan(10);
    const chunks = await lines(await post("/v1/chat", sentence(), { messages, options: greedy }));
    expect(chunks.slice(0, -1).every((c) => c.message.role === "assistant" && c.done === false)).toBe(true);
    expect(chunks.map((c) => c.message.content).join("")).toBe(SCRIPTED_SENTENCE);
    expect(chunks.at(-1)).toMatchObject({ message: { role: "assistant", content: "" }, done: true });
  });

  it("turns the model's tool call into message.tool_calls", async () => {
    const tools = [
      {
        type: "function",
        function: {
          name: "get_weather",
          description: "Weather in a city",
          parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
        },
      },
    ];
    const request = {
      messages: [{ role: "user", content: "weather in Paris?" }],
      tools,
      options: { ...greedy, num_ctx: 2048 },
    };
    const { body } = await json("/v1/chat", toolModel(), request);
    expect(body.message.content).toBe("");
    expect(body.message.tool_calls).toHaveLength(1);
    expect(body.message.tool_calls[0]).toMatchObject({ function: { index: 0, ...SCRIPTED_TOOL_CALL_FUNCTION } });
    expect(body.message.tool_calls[0].id).toMatch(/^call_/);

    // The call and its result go back in through the template on the next turn.
    const next = await json("/v1/chat", sentence(), {
      messages: [
        ...request.messages,
        { role: "assistant", content: "", tool_calls: body.message.tool_calls },
        { role: "tool", content: "sunny", tool_name: "get_weather" },
      ],
      tools,
      options: request.options,
    });
    expect(next.status).toBe(200);
    expect(next.body.message.content).toBe(SCRIPTED_SENTENCE);
  });

  it("loads on no messages", async () => {
    const { body } = await json("/v1/chat", sentence(), { messages: [] });
    expect(body).toMatchObject({ message: { role: "assistant", content: "" }, done: true, done_reason: "load" });
  });
});

describe("embed", () => {
  const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

  it("returns one L2-normalised vector per input with counts", async () => {
    const { status: code, body } = await json("/v1/embed", tiny(), { input: ["first text", "second"] });
    expect(code).toBe(200);
    expect(body.model).toBe("tiny");
    expect(body.embeddings).toHaveLength(2);
    for (const vector of body.embeddings) {
      expect(vector).toHaveLength(64);
      expect(norm(vector)).toBeCloseTo(1, 5);
    }
    expect(body.embeddings[0]).not.toEqual(body.embeddings[1]);
    expect(body.prompt_eval_count).toBeGreaterThan(4);
    expect(body.total_duration).toBeGreaterThan(0);
  });

  it("cuts to `dimensions` and normalises again", async () => {
    const { body } = await json("/v1/embed", tiny(), { input: "dims", dimensions: 8 });
    expect(body.embeddings[0]).toHaveLength(8);
    expect(norm(body.embeddings[0])).toBeCloseTo(1, 5);
  });

  it("truncates long input by default and refuses it with truncate:false", async () => {
    const input = "word ".repeat(200);
    const options = { num_ctx: 64 };
    expect((await json("/v1/embed", tiny(), { input, options })).status).toBe(200);
    const refused = await json("/v1/embed", tiny(), { input, options, truncate: false });
    expect(refused).toEqual({ status: 400, body: { error: "the input length exceeds the context length" } });
  });

  it("legacy embeddings return the raw vector", async () => {
    const { body } = await json("/v1/embeddings", tiny(), { prompt: "first text" });
    const modern = await json("/v1/embed", tiny(), { input: "first text" });
    expect(Object.keys(body)).toEqual(["embedding"]);
    expect(norm(body.embedding)).not.toBeCloseTo(1, 3);
    const scaled = body.embedding.map((x: number) => x / norm(body.embedding));
    for (const [i, x] of scaled.entries()) expect(x).toBeCloseTo(modern.body.embeddings[0][i], 5);
  });
});

describe("parallel sequences", () => {
  it("serves more concurrent requests than sequences: two at a time, the rest queued, all complete", async () => {
    const answers = await Promise.all(
      Array.from({ length: 5 }, (_, i) => json("/v1/generate", sentence(), { prompt: `q${i}`, options: greedy })),
    );
    for (const { status: code, body } of answers) {
      expect(code).toBe(200);
      expect(body.response).toBe(SCRIPTED_SENTENCE);
    }
  });
});

describe("cancellation and status", () => {
  it("a client that goes away mid-stream frees its sequence", async () => {
    const controller = new AbortController();
    const res = await post(
      "/v1/generate",
      tiny(),
      { prompt: "go on forever", options: { num_predict: 100_000, seed: 1 } },
      { signal: controller.signal },
    );
    const reader = res.body!.getReader();
    await reader.read();
    expect((await status()).busy_slots).toBeGreaterThan(0);
    controller.abort();
    // Bounded by time, generously: the runner notices the abort at its next write, late on a loaded machine.
    let busy = 1;
    for (const deadline = Date.now() + 30_000; busy > 0 && Date.now() < deadline; ) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      busy = (await status()).busy_slots;
    }
    expect(busy).toBe(0);
    const after = await json("/v1/generate", tiny(), { prompt: "still fine", options: { num_predict: 2 } });
    expect(after.body.done).toBe(true);
  });

  it("/v1/ps reports the runner and its loaded models", async () => {
    await json("/v1/generate", tiny(), { prompt: "", keep_alive: -1 });
    const s = await status();
    expect(s).toMatchObject({ id: "test-runner", url: "http://127.0.0.1:1", draining: false });
    const loaded = s.loaded.find((m) => m.model_blob === tinyModelBlob().digest && m.context_length === 512)!;
    expect(loaded).toMatchObject({
      sequences: 2,
      busy_sequences: 0,
      size_vram: 0,
      expires_at: "9999-12-31T23:59:59.999Z",
    });
    expect(loaded.size).toBeGreaterThan(tinyModelBlob().bytes.length / 2);
  });

  it("an edge drain refuses new work without being echoed in the status, so the edge can lift it", async () => {
    t.runner.setEdgeDraining(true);
    try {
      const refused = await json("/v1/generate", tiny(), { prompt: "x", options: { num_predict: 1 } });
      expect(refused).toMatchObject({ status: 503, body: { error: "runner is draining" } });
      expect((await status()).draining).toBe(false);
    } finally {
      t.runner.setEdgeDraining(false);
    }
    const served = await json("/v1/generate", tiny(), { prompt: "x", options: { num_predict: 1 } });
    expect(served.status).toBe(200);
  });

  it("/metrics exposes counters and gauges", async () => {
    const res = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TEST_SECRET}` } });
    const text = await res.text();
    expect(text).toMatch(/corral_runner_requests_total\{endpoint="generate",status="200"\} \d+/);
    expect(text).toMatch(/corral_runner_generated_tokens_total\{endpoint="generate"\} \d+/);
    expect(text).toMatch(/corral_runner_loaded_models [1-9]/);
  });
});
