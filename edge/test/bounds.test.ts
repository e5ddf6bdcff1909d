/**
 * The bound table (edge/src/bounds.ts) through the real routes: each tenant-controlled number one past its bound is
 * a 400 naming the bound, before anything is scheduled (the fake runner sees nothing); at the bound it goes through.
 * Limits are per tenant (admin API), defaults where the operator set none.
 */
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { REQUEST_LIMIT_DEFAULTS } from "../src/bounds";
import { ADMIN, call, newTenant } from "./helpers";
import {
  bindings,
  fakeRunners,
  heartbeat,
  loaded,
  resetFleet,
  runnerStatus,
  seedModel,
  streamingRunner,
} from "./relay-fixtures";

const TRAINED_CONTEXT = 4096;
const BODY_BYTES = 4096;
let tenant: { id: string; key: string };
let restore: (() => void) | undefined;

beforeAll(async () => {
  await resetFleet();
  tenant = await newTenant(`bounds-${crypto.randomUUID().slice(0, 8)}`);
  const limits = { num_ctx: 8192, num_predict: 1000, num_batch: 512, top_k: 100, prompt_bytes: 64, images: 2 };
  const res = await call("PUT", `/admin/tenants/${tenant.id}/limits`, {
    key: ADMIN,
    body: { ...limits, embed_inputs: 3, keep_alive_s: 600, create_files: 2, body_bytes: BODY_BYTES },
  });
  expect(res.status).toBe(200);
  const model = await seedModel(tenant.id, "tiny");
  // The GGUF summary create caches for the weights: a llama trained on 4096 tokens.
  const summary = { family: "llama", context_length: TRAINED_CONTEXT, model_info: { "llama.block_count": 2 } };
  await bindings.DB.prepare("UPDATE blobs SET gguf = ? WHERE digest = ?")
    .bind(JSON.stringify(summary), model.modelBlob)
    .run();
  await heartbeat(runnerStatus("r1", { loaded: [loaded(model.modelBlob)] }));
});
afterEach(() => restore?.());

const generate = (over: Record<string, unknown>) => ({ model: "tiny", prompt: "hi", stream: false, ...over });
const image = "aGVsbG8=";

describe("request bounds", () => {
  it.each([
    [
      "num_ctx past the tenant's limit",
      "/api/generate",
      generate({ options: { num_ctx: 8193 } }),
      /^num_ctx 8193 exceeds this tenant's limit of 8192$/,
    ],
    [
      "num_ctx 2^31 (issue #9)",
      "/api/generate",
      generate({ options: { num_ctx: 2147483648 } }),
      /^num_ctx 2147483648 exceeds/,
    ],
    [
      "num_ctx past the trained context",
      "/api/generate",
      generate({ options: { num_ctx: 4097 } }),
      /^num_ctx 4097 exceeds the model's trained context length of 4096$/,
    ],
    [
      "num_predict",
      "/api/generate",
      generate({ options: { num_predict: 1001 } }),
      /^num_predict 1001 exceeds this tenant's limit of 1000$/,
    ],
    ["num_batch", "/api/generate", generate({ options: { num_batch: 513 } }), /^num_batch 513 exceeds/],
    ["top_k", "/api/generate", generate({ options: { top_k: 101 } }), /^top_k 101 exceeds this tenant's limit of 100$/],
    [
      "num_keep past the context bound",
      "/api/generate",
      generate({ options: { num_keep: 4097 } }),
      /^num_keep 4097 exceeds this tenant's limit of 4096$/,
    ],
    [
      "repeat_last_n past the context bound",
      "/api/generate",
      generate({ options: { repeat_last_n: 4097 } }),
      /^repeat_last_n 4097 exceeds/,
    ],
    [
      "the prompt's bytes",
      "/api/generate",
      generate({ prompt: "é".repeat(33) }),
      /^prompt size \(66 bytes\) exceeds this tenant's limit of 64 bytes$/,
    ],
    [
      "the system prompt's bytes",
      "/api/generate",
      generate({ prompt: "a".repeat(40), system: "b".repeat(25) }),
      /^prompt size \(65 bytes\)/,
    ],
    [
      "the messages' bytes",
      "/api/chat",
      { model: "tiny", stream: false, messages: [{ role: "user", content: "x".repeat(65) }] },
      /^prompt size \(65 bytes\)/,
    ],
    [
      "images per request",
      "/api/generate",
      generate({ images: [image, image, image] }),
      /^3 images exceeds this tenant's limit of 2 images per request$/,
    ],
    [
      "images across messages",
      "/api/chat",
      {
        model: "tiny",
        messages: [
          { role: "user", content: "", images: [image, image] },
          { role: "user", content: "", images: [image] },
        ],
      },
      /^3 images exceeds/,
    ],
    [
      "embed inputs per batch",
      "/api/embed",
      { model: "tiny", input: ["a", "b", "c", "d"] },
      /^4 embed inputs exceeds this tenant's limit of 3 inputs per request$/,
    ],
    [
      "keep_alive",
      "/api/generate",
      generate({ keep_alive: "11m" }),
      /^keep_alive 660s exceeds this tenant's limit of 600s$/,
    ],
    [
      "the prompt bytes on the OpenAI route",
      "/v1/chat/completions",
      { model: "tiny", messages: [{ role: "user", content: "x".repeat(100) }] },
      /prompt size \(100 bytes\)/,
    ],
  ])("refuses %s with a 400 naming the bound, before scheduling", async (_label, path, body, message) => {
    const fleet = fakeRunners({ r1: streamingRunner(["x"]) });
    restore = fleet.restore;
    const res = await call("POST", path, { key: tenant.key, body });
    expect(res.status).toBe(400);
    const error = ((await res.json()) as { error: string | { message: string } }).error;
    expect(typeof error === "string" ? error : error.message).toMatch(message);
    expect(fleet.received).toEqual([]);
  });

  it("lets a request at every bound through", async () => {
    const fleet = fakeRunners({ r1: streamingRunner(["x"]) });
    restore = fleet.restore;
    const options = {
      num_ctx: 4096,
      num_predict: 1000,
      num_batch: 512,
      top_k: 100,
      num_keep: 4096,
      repeat_last_n: 4096,
    };
    const body = generate({ prompt: "a".repeat(64), images: [image, image], keep_alive: "10m", options });
    const res = await call("POST", "/api/generate", { key: tenant.key, body });
    expect(res.status).toBe(200);
    expect(fleet.received).toHaveLength(1);
  });

  it("holds keep_alive forever (negative) to the tenant's limit instead of refusing it", async () => {
    const fleet = fakeRunners({ r1: streamingRunner(["x"]) });
    restore = fleet.restore;
    const res = await call("POST", "/api/generate", { key: tenant.key, body: generate({ keep_alive: -1 }) });
    expect(res.status).toBe(200);
    expect(fleet.received).toHaveLength(1);
    const sent = fleet.received[0]?.body as { request: { keep_alive: unknown } } | undefined;
    expect(sent?.request.keep_alive).toBe("600s");
  });

  it("refuses a create with more files than the tenant's limit", async () => {
    const digest = `sha256:${"a".repeat(64)}`;
    const files = { "a.gguf": digest, "b.gguf": digest, "c.gguf": digest };
    const res = await call("POST", "/api/create", { key: tenant.key, body: { model: "many", files } });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: "3 files exceeds this tenant's limit of 2 files per create" });
  });
});

describe("the request body bound", () => {
  const oversized = JSON.stringify(generate({ prompt: "x".repeat(BODY_BYTES) }));
  /** The oversized body in 1 KiB chunks without a length (chunked). */
  function chunkedBody(): ReadableStream<Uint8Array> {
    const bytes = new TextEncoder().encode(oversized);
    let offset = 0;
    return new ReadableStream({
      pull(controller) {
        if (offset >= bytes.length) return controller.close();
        controller.enqueue(bytes.slice(offset, offset + 1024));
        offset += 1024;
      },
    });
  }

  it.each([
    ["/api/generate", "length", `request body (${oversized.length} bytes) exceeds`],
    ["/api/generate", "chunked", "request body exceeds"],
    ["/v1/chat/completions", "length", `request body (${oversized.length} bytes) exceeds`],
    ["/v1/messages", "chunked", "request body exceeds"],
  ] as const)("refuses a body past the bound on %s (%s) with a 400 naming it", async (path, how, start) => {
    const fleet = fakeRunners({ r1: streamingRunner(["x"]) });
    restore = fleet.restore;
    const res = await call("POST", path, {
      key: tenant.key,
      headers: { "content-type": "application/json" },
      raw: how === "length" ? oversized : chunkedBody(),
    });
    expect(res.status).toBe(400);
    const error = ((await res.json()) as { error: string | { message: string } }).error;
    // Each endpoint's own dialect: Ollama's string, OpenAI's and Anthropic's objects.
    expect(typeof error === "string").toBe(path === "/api/generate");
    expect(typeof error === "string" ? error : error.message).toBe(
      `${start} this tenant's limit of ${BODY_BYTES} bytes`,
    );
    expect(fleet.received).toEqual([]);
  });

  it("takes a body at the bound", async () => {
    const fleet = fakeRunners({ r1: streamingRunner(["x"]) });
    restore = fleet.restore;
    const body = JSON.stringify(generate({ images: [image] }));
    const atBound = `${body}${" ".repeat(BODY_BYTES - body.length)}`;
    const res = await call("POST", "/api/generate", { key: tenant.key, raw: atBound });
    expect(res.status).toBe(200);
    expect(fleet.received).toHaveLength(1);
  });
});

describe("limits through the admin API", () => {
  it("shows the defaults, changes one, and sets it back with null", async () => {
    const fresh = await newTenant(`limits-${crypto.randomUUID().slice(0, 8)}`);
    const shown = await call("GET", `/admin/tenants/${fresh.id}`, { key: ADMIN });
    expect(((await shown.json()) as { limits: unknown }).limits).toEqual(REQUEST_LIMIT_DEFAULTS);
    const set = await call("PUT", `/admin/tenants/${fresh.id}/limits`, { key: ADMIN, body: { num_ctx: 2048 } });
    expect(((await set.json()) as { limits: unknown }).limits).toEqual({ ...REQUEST_LIMIT_DEFAULTS, num_ctx: 2048 });
    const reset = await call("PUT", `/admin/tenants/${fresh.id}/limits`, { key: ADMIN, body: { num_ctx: null } });
    expect(((await reset.json()) as { limits: unknown }).limits).toEqual(REQUEST_LIMIT_DEFAULTS);
  });

  it.each([
    ["an unknown limit", { num_threads: 4 }],
    ["zero", { num_ctx: 0 }],
    ["a fraction", { top_k: 1.5 }],
  ])("refuses %s", async (_label, body) => {
    const res = await call("PUT", `/admin/tenants/${tenant.id}/limits`, { key: ADMIN, body });
    expect(res.status).toBe(400);
  });
});
