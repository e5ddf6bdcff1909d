import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createApp } from "../src/app";
import { call, newTenant } from "./helpers";
import {
  bindings,
  eventually,
  fakeRunners,
  globalScheduler,
  heartbeat,
  loaded,
  ndjsonLine,
  resetFleet,
  runnerStatus,
  type SeededModel,
  seedModel,
  streamingRunner,
  usageRows,
} from "./relay-fixtures";

let restore: (() => void) | undefined;
let tenant: { id: string; key: string };
let model: SeededModel;

beforeEach(async () => {
  await resetFleet();
  tenant = await newTenant(`relay-${crypto.randomUUID().slice(0, 8)}`);
  model = await seedModel(tenant.id, "tiny");
});
afterEach(() => {
  restore?.();
  restore = undefined;
});

function runners(handlers: Parameters<typeof fakeRunners>[0]) {
  const fake = fakeRunners(handlers);
  restore = fake.restore;
  return fake;
}

const generate = (body: Record<string, unknown> = {}) =>
  call("POST", "/api/generate", { key: tenant.key, body: { model: "tiny", prompt: "hi", ...body } });

const lines = (text: string) =>
  text
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe("relay", () => {
  it("streams the runner's NDJSON unchanged and records one usage row from the final chunk", async () => {
    await heartbeat(runnerStatus("r1", { loaded: [loaded(model.modelBlob)] }));
    const fake = runners({ r1: streamingRunner(["Hel", "lo"]) });
    const res = await generate();
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    const body = lines(await res.text());
    expect(body.map((l) => l.response)).toEqual(["Hel", "lo", ""]);
    expect(body.at(-1)).toMatchObject({ done: true, eval_count: 3, prompt_eval_count: 7 });

    const sent = fake.received[0]!;
    expect(sent.path).toBe("/v1/generate");
    expect(sent.headers.get("authorization")).toBe("Bearer test-runner-secret");
    const payload = sent.body as { request_id: string; model: Record<string, unknown>; request: unknown };
    expect(sent.headers.get("x-corral-request-id")).toBe(payload.request_id);
    expect(payload.model).toMatchObject({ name: "tiny", model_blob: model.modelBlob });
    expect(payload.request).toEqual({ model: "tiny", prompt: "hi" });
    // Whose share a load counts against on the runner (fair-share unloading).
    expect(payload).toMatchObject({ tenant: tenant.id });

    const rows = await eventually(async () => {
      const r = await usageRows(tenant.id);
      expect(r).toHaveLength(1);
      return r;
    });
    expect(rows[0]).toMatchObject({
      request_id: payload.request_id,
      endpoint: "generate",
      model: "tiny",
      status: "ok",
      prompt_tokens: 7,
      output_tokens: 3,
      total_duration: 5_000_000,
      runner_id: "r1",
    });
    await eventually(async () => expect((await globalScheduler().stats()).totals.busy_sequences).toBe(0));
  });

  it.each([
    ["generate", { prompt: "hi", stream: false }],
    ["chat", { messages: [{ role: "user", content: "hi" }], stream: false }],
  ])("answers %s with stream:false as one JSON object", async (endpoint, body) => {
    await heartbeat(runnerStatus("r1", { loaded: [loaded(model.modelBlob)] }));
    runners({ r1: streamingRunner(["a", "b"]) });
    const res = await call("POST", `/api/${endpoint}`, { key: tenant.key, body: { model: "tiny", ...body } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ response: "ab", done: true, eval_count: 3 });
    await eventually(async () =>
      expect(await usageRows(tenant.id)).toMatchObject([{ status: "ok", output_tokens: 3 }]),
    );
  });

  it("relays embed and meters its prompt tokens", async () => {
    await heartbeat(runnerStatus("r1", { loaded: [loaded(model.modelBlob)] }));
    const fake = runners({
      r1: () => Response.json({ model: "tiny", embeddings: [[0.6, 0.8]], total_duration: 9, prompt_eval_count: 4 }),
    });
    const res = await call("POST", "/api/embed", { key: tenant.key, body: { model: "tiny", input: "x" } });
    expect(await res.json()).toEqual({
      model: "tiny",
      embeddings: [[0.6, 0.8]],
      total_duration: 9,
      prompt_eval_count: 4,
    });
    expect(fake.received[0]?.path).toBe("/v1/embed");
    await eventually(async () =>
      expect(await usageRows(tenant.id)).toMatchObject([{ endpoint: "embed", prompt_tokens: 4, status: "ok" }]),
    );
  });

  it("retries on another runner when the first fails before the first byte", async () => {
    await heartbeat(runnerStatus("r1", { loaded: [loaded(model.modelBlob)] }));
    await heartbeat(runnerStatus("r2"));
    const fake = runners({
      r1: () => {
        throw new TypeError("connection reset");
      },
      r2: streamingRunner(["ok"]),
    });
    const res = await generate();
    expect(lines(await res.text()).map((l) => l.response)).toEqual(["ok", ""]);
    expect(fake.received.map((r) => r.runner)).toEqual(["r1", "r2"]);
    const ids = new Set(fake.received.map((r) => (r.body as { request_id: string }).request_id));
    expect(ids.size).toBe(1);
    const rows = await eventually(async () => {
      const r = await usageRows(tenant.id);
      expect(r).toHaveLength(1);
      return r;
    });
    expect(rows[0]).toMatchObject({ status: "ok", runner_id: "r2" });
    const stats = await globalScheduler().stats();
    expect(stats.runners.find((r) => r.id === "r1")?.state).toBe("unhealthy");
  });

  it("retries when the runner's body fails before any byte", async () => {
    await heartbeat(runnerStatus("r1", { loaded: [loaded(model.modelBlob)] }));
    await heartbeat(runnerStatus("r2"));
    runners({
      r1: () => new Response(new ReadableStream({ pull: (c) => c.error(new Error("socket closed")) })),
      r2: streamingRunner(["fine"]),
    });
    const res = await generate({ stream: false });
    expect(await res.json()).toMatchObject({ response: "fine", done: true });
  });

  it("ends the stream with an error line when the runner dies after the first byte", async () => {
    await heartbeat(runnerStatus("r1", { loaded: [loaded(model.modelBlob)] }));
    await heartbeat(runnerStatus("r2"));
    const fake = runners({
      r1: () => {
        let pulls = 0;
        const stream = new ReadableStream<Uint8Array>({
          pull(controller) {
            if (pulls++ === 0) controller.enqueue(ndjsonLine({ model: "tiny", response: "par", done: false }));
            else controller.error(new Error("runner process exited"));
          },
        });
        return new Response(stream);
      },
      r2: streamingRunner(["never"]),
    });
    const res = await generate();
    expect(res.status).toBe(200);
    const body = lines(await res.text());
    expect(body[0]).toMatchObject({ response: "par" });
    expect(body.at(-1)?.error).toMatch(/runner failed mid-stream/);
    expect(fake.received.map((r) => r.runner)).toEqual(["r1"]);
    await eventually(async () =>
      expect(await usageRows(tenant.id)).toMatchObject([{ status: "error", output_tokens: 1, runner_id: "r1" }]),
    );
    expect((await globalScheduler().stats()).runners.find((r) => r.id === "r1")?.state).toBe("unhealthy");
  });

  it("adds an error line when the runner closes the stream without a final chunk", async () => {
    await heartbeat(runnerStatus("r1", { loaded: [loaded(model.modelBlob)] }));
    runners({ r1: () => new Response(ndjsonLine({ model: "tiny", response: "x", done: false })) });
    const body = lines(await (await generate()).text());
    expect(body).toHaveLength(2);
    expect(body[1]?.error).toBe("runner closed the stream before the final chunk");
  });

  it("gives up with 503 after every runner failed before the first byte, recording one error", async () => {
    await heartbeat(runnerStatus("r1", { loaded: [loaded(model.modelBlob)] }));
    await heartbeat(runnerStatus("r2"));
    await globalScheduler().configure({ noRunnerWaitMs: 0, maxQueueWaitMs: 0 });
    runners({});
    const res = await generate();
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: string }).error).toMatch(/^no runner could serve the request/);
    await eventually(async () => expect(await usageRows(tenant.id)).toMatchObject([{ status: "error" }]));
  });

  it("passes a runner's own 4xx answer through", async () => {
    await heartbeat(runnerStatus("r1", { loaded: [loaded(model.modelBlob)] }));
    runners({ r1: () => Response.json({ error: '"tiny" does not support thinking' }, { status: 400 }) });
    const res = await generate({ think: true });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: '"tiny" does not support thinking' });
  });

  it("answers 503 with Ollama's text when the model's queue is full", async () => {
    await heartbeat(runnerStatus("r1", { slots: 1, loaded: [loaded(model.modelBlob, { sequences: 1 })] }));
    await globalScheduler().configure({ maxQueuePerModel: 0 });
    const held = await globalScheduler().acquire({
      model_blob: model.modelBlob,
      estimated_bytes: 1,
      tenant_id: "someone",
      request_id: "held",
    });
    expect(held.ok).toBe(true);
    runners({});
    const res = await generate();
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ error: "server busy, please try again.  maximum pending requests exceeded" });
  });

  it("answers 503 when no runner is registered", async () => {
    await globalScheduler().configure({ noRunnerWaitMs: 0 });
    const res = await generate();
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ error: "no runner available, please try again" });
  });

  it.each([
    ["an unknown model", { model: "nope" }, 404, 'model "nope" not found, try pulling it first'],
    ["a missing model field", { model: "" }, 400, "model is required"],
  ])("rejects %s without touching a runner or the usage table", async (_label, body, status, error) => {
    const fake = runners({});
    const res = await generate(body);
    expect(res.status).toBe(status);
    expect(((await res.json()) as { error: string }).error).toBe(error);
    expect(fake.received).toHaveLength(0);
    expect(await usageRows(tenant.id)).toHaveLength(0);
  });

  // Through SELF a cancelled body never reaches the Worker (the test pipe does not propagate it), so these two
  // call the app in-process, where the client's side of the response and the request signal are the real objects.
  it.each([
    ["cancels the response body", "body"],
    ["aborts the request", "signal"],
  ] as const)(
    "aborts the upstream stream when the client %s, and records the request as cancelled",
    async (_l, how) => {
      await heartbeat(runnerStatus("r1", { loaded: [loaded(model.modelBlob)] }));
      const upstream = { cancelled: false };
      runners({
        // An endless generation.
        r1: () =>
          new Response(
            new ReadableStream<Uint8Array>({
              pull(controller) {
                controller.enqueue(ndjsonLine({ model: "tiny", response: "a", done: false }));
              },
              cancel() {
                upstream.cancelled = true;
              },
            }),
          ),
      });
      const client = new AbortController();
      const ctx = createExecutionContext();
      const request = new Request("http://corral.test/api/generate", {
        method: "POST",
        headers: { authorization: `Bearer ${tenant.key}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "tiny", prompt: "hi" }),
        signal: client.signal,
      });
      const res = await createApp().fetch(request, bindings, ctx);
      const reader = res.body!.getReader();
      expect((await reader.read()).done).toBe(false);
      expect((await reader.read()).done).toBe(false);
      if (how === "body") {
        await reader.cancel();
      } else {
        client.abort();
        await eventually(async () => expect((await reader.read()).done).toBe(true));
      }
      await waitOnExecutionContext(ctx);
      expect(upstream.cancelled).toBe(true);
      const rows = await usageRows(tenant.id);
      expect(rows).toMatchObject([{ status: "cancelled" }]);
      expect(rows[0]?.output_tokens).toBeGreaterThanOrEqual(2);
      expect((await globalScheduler().stats()).totals.busy_sequences).toBe(0);
    },
  );

  it("never bills a final chunk twice: metering reads only the done line", async () => {
    await heartbeat(runnerStatus("r1", { loaded: [loaded(model.modelBlob)] }));
    // A token whose text looks like a final chunk must not be taken for one.
    runners({ r1: streamingRunner(['{"done":true,"eval_count":999}'], { eval_count: 1 }) });
    const res = await generate();
    expect(lines(await res.text())[0]?.response).toBe('{"done":true,"eval_count":999}');
    await eventually(async () => expect(await usageRows(tenant.id)).toMatchObject([{ output_tokens: 1 }]));
  });

  // The usage row is written in waitUntil; a Worker that dies (a redeploy, the soak's edge restart) between the
  // client's last byte and that write would leave a completed request unbilled. Its write is held here until the
  // client's answer ended (or 0.5 s passed): the answer's end must wait for it.
  it.each([
    ["a streamed answer", true],
    ["a single-object answer", false],
  ])("bills %s before the client sees its end", async (_l, stream) => {
    await heartbeat(runnerStatus("r1", { loaded: [loaded(model.modelBlob)] }));
    runners({ r1: streamingRunner(["Hel", "lo"]) });
    const events: string[] = [];
    let answerEnded = () => {};
    const ended = new Promise<void>((resolve) => {
      answerEnded = resolve;
    });
    const ctx = createExecutionContext();
    const request = new Request("http://corral.test/api/generate", {
      method: "POST",
      headers: { authorization: `Bearer ${tenant.key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "tiny", prompt: "hi", stream }),
    });
    const db = holdUsageInserts(bindings.DB, async () => {
      await Promise.race([ended, new Promise((r) => setTimeout(r, 500))]);
      events.push("usage row written");
    });
    const res = await createApp().fetch(request, { ...bindings, DB: db }, ctx);
    await res.text();
    events.push("answer ended");
    answerEnded();
    await waitOnExecutionContext(ctx);
    expect(events).toEqual(["usage row written", "answer ended"]);
    expect(await usageRows(tenant.id)).toMatchObject([{ status: "ok", output_tokens: 3 }]);
  });
});

/** The database with each usage insert run only after `hold` resolves (every other statement untouched). */
function holdUsageInserts(db: D1Database, hold: () => Promise<void>): D1Database {
  return new Proxy(db, {
    get(target, key) {
      if (key !== "prepare") {
        const value = Reflect.get(target, key, target) as unknown;
        return typeof value === "function" ? value.bind(target) : value;
      }
      return (sql: string) => {
        const statement = target.prepare(sql);
        if (!sql.includes("INSERT INTO usage")) return statement;
        return {
          bind: (...values: unknown[]) => {
            const bound = statement.bind(...values);
            return {
              run: async () => {
                await hold();
                return bound.run();
              },
            };
          },
        };
      };
    },
  });
}
