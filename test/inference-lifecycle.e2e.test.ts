/**
 * Embeddings, model lifecycle (load, unload, /api/ps, keep_alive expiry) and tenancy under inference, through
 * the running stack with the official `ollama` client. The tests of one file run in order: the ones that read
 * /api/ps use a model (`scripted-tools`) that no other test here keeps loaded.
 */
import { createHash } from "node:crypto";
import { describe, expect, inject, it } from "vitest";
import { TINY_MODEL_DEFAULT_SEED, writeTinyModel } from "../gpu-runner/src/tiny-model/index";
import { api, client, cosine, eventually, l2norm, SCRIPTED_SENTENCE } from "./inference-support";

const { url, key, adminKey } = inject("stack");
const ollama = client(url, key);

async function psNames(api: ReturnType<typeof client>): Promise<string[]> {
  return (await api.ps()).models.map((m) => m.name);
}

/**
 * /api/ps reads the fleet's state from runner heartbeats. An explicit load or unload answers only once the edge has
 * its heartbeat, so ps shows it at once, as in Ollama; a keep_alive expiry shows within a beat's round trip.
 */
function unlisted(name: string, deadlineMs: number): Promise<boolean> {
  return eventually(async () => !(await psNames(ollama)).includes(name), deadlineMs, 100);
}

/** The raw /api/ps entry for `name` right now. */
async function psEntry(name: string): Promise<Record<string, unknown> | undefined> {
  const models = (await api(url, key, "GET", "/api/ps")).body.models as Record<string, unknown>[];
  return models.find((m) => m.name === name);
}

/** The raw /api/ps entry for `name` once it appears (undefined if it never does within the deadline). */
async function listed(name: string): Promise<Record<string, unknown> | undefined> {
  let found: Record<string, unknown> | undefined;
  await eventually(
    async () => {
      found = await psEntry(name);
      return found !== undefined;
    },
    30_000,
    100,
  );
  return found;
}

const expiresAt = (entry: Record<string, unknown> | undefined) => Date.parse(String(entry?.expires_at));

describe("embed", () => {
  it("embeds one input as an L2-normalised vector with counts and durations", async () => {
    const res = await ollama.embed({ model: "tiny", input: "The sky is blue." });
    expect(res.model).toBe("tiny");
    expect(res.embeddings).toHaveLength(1);
    const [vector] = res.embeddings;
    expect(vector?.length).toBeGreaterThan(8);
    expect(l2norm(vector ?? [])).toBeCloseTo(1, 5);
    expect(res.prompt_eval_count).toBeGreaterThan(0);
    expect(res.total_duration).toBeGreaterThan(0);
  });

  it("embeds a batch in order, one vector per input, all the same size", async () => {
    const inputs = ["red", "green", "blue"];
    const res = await ollama.embed({ model: "tiny", input: inputs });
    expect(res.embeddings).toHaveLength(3);
    const dims = new Set(res.embeddings.map((v) => v.length));
    expect(dims.size).toBe(1);
    for (const v of res.embeddings) expect(l2norm(v)).toBeCloseTo(1, 5);
    expect(res.embeddings[0]).not.toEqual(res.embeddings[1]);
    // Order is the input's: the batch's second vector is "green" embedded alone.
    const green = await ollama.embed({ model: "tiny", input: "green" });
    expect(cosine(res.embeddings[1] ?? [], green.embeddings[0] ?? [])).toBeCloseTo(1, 4);
  });

  it("truncates to `dimensions` and normalises again", async () => {
    const full = await ollama.embed({ model: "tiny", input: "hello" });
    const short = await ollama.embed({ model: "tiny", input: "hello", dimensions: 8 });
    const [vector] = short.embeddings;
    expect(vector).toHaveLength(8);
    expect(l2norm(vector ?? [])).toBeCloseTo(1, 5);
    expect(cosine(vector ?? [], (full.embeddings[0] ?? []).slice(0, 8))).toBeCloseTo(1, 5);
  });

  it("refuses an over-long input when truncate is false", async () => {
    const input = "hello world ".repeat(3000);
    await expect(ollama.embed({ model: "tiny", input, truncate: false })).rejects.toMatchObject({ status_code: 400 });
    const truncated = await ollama.embed({ model: "tiny", input });
    expect(truncated.embeddings).toHaveLength(1);
  });

  it("answers the legacy /api/embeddings with the same direction, not normalised", async () => {
    const legacy = await ollama.embeddings({ model: "tiny", prompt: "hello" });
    const modern = await ollama.embed({ model: "tiny", input: "hello" });
    expect(legacy.embedding).toHaveLength(modern.embeddings[0]?.length ?? -1);
    expect(cosine(legacy.embedding, modern.embeddings[0] ?? [])).toBeCloseTo(1, 4);
  });
});

describe("load, unload and ps", () => {
  it("loads on an empty prompt and lists the model in ps with all of Ollama's fields", async () => {
    const loaded = await ollama.generate({ model: "scripted-tools", prompt: "" });
    expect(loaded).toMatchObject({ done: true, done_reason: "load", response: "" });
    const rawEntry = await psEntry("scripted-tools:latest");
    expect((await ollama.ps()).models.map((m) => m.name)).toContain("scripted-tools:latest");
    expect(rawEntry).toMatchObject({
      name: "scripted-tools:latest",
      model: "scripted-tools:latest",
      details: { format: "gguf", family: "llama" },
    });
    expect(rawEntry?.size).toBeGreaterThan(0);
    expect(rawEntry?.size_vram).toBeTypeOf("number");
    expect(rawEntry?.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(rawEntry?.context_length).toBeGreaterThan(0);
    // Default keep_alive is five minutes.
    const expires = expiresAt(rawEntry);
    expect(expires).toBeGreaterThan(Date.now() + 60_000);
    expect(expires).toBeLessThan(Date.now() + 10 * 60_000);
    const tags = await ollama.list();
    expect(rawEntry?.digest).toBe(tags.models.find((m) => m.name === "scripted-tools:latest")?.digest);
  });

  it("loads on an empty message list too", async () => {
    const res = await ollama.chat({ model: "scripted-tools", messages: [] });
    expect(res).toMatchObject({ done: true, done_reason: "load" });
  });

  it("unloads on an empty prompt with keep_alive 0, and ps no longer lists it", async () => {
    const res = await ollama.generate({ model: "scripted-tools", prompt: "", keep_alive: 0 });
    expect(res).toMatchObject({ done: true, done_reason: "unload" });
    expect(await psNames(ollama)).not.toContain("scripted-tools:latest");
  });

  it("expires a model after its keep_alive", async () => {
    // ps must be seen listing the model before it expires: 10 s leaves a loaded machine time for the heartbeat and
    // the ps round trips, and stays far below the five-minute default the expiry is told apart from.
    const res = await ollama.chat({
      model: "scripted-tools",
      messages: [{ role: "user", content: "hi" }],
      keep_alive: "10s",
      options: { temperature: 0, num_predict: 4 },
    });
    expect(res.done).toBe(true);
    const entry = await listed("scripted-tools:latest");
    expect(entry).toBeDefined();
    expect(expiresAt(entry)).toBeLessThan(Date.now() + 30_000);
    expect(await unlisted("scripted-tools:latest", 60_000)).toBe(true);
  });

  it("keeps a model with a negative keep_alive as long as the tenant may (24 h by default), then unloads it on request", async () => {
    await ollama.generate({ model: "scripted-tools", prompt: "", keep_alive: -1 });
    const hour = 3600_000;
    const expires = expiresAt(await psEntry("scripted-tools:latest"));
    expect(expires).toBeGreaterThan(Date.now() + 23 * hour);
    expect(expires).toBeLessThanOrEqual(Date.now() + 24 * hour);
    await ollama.generate({ model: "scripted-tools", prompt: "", keep_alive: 0 });
    expect(await psNames(ollama)).not.toContain("scripted-tools:latest");
  });
});

describe("two tenants", () => {
  it("serve both at once, each seeing only its own models", async () => {
    const tenantName = `inference-b-${Date.now().toString(36)}`;
    const tenant = await api(url, adminKey, "POST", "/admin/tenants", { name: tenantName });
    expect(tenant.status).toBe(201);
    const issued = await api(url, adminKey, "POST", `/admin/tenants/${tenant.body.id}/keys`, { label: "e2e" });
    expect(issued.status).toBe(201);
    const keyB = String(issued.body.key);
    const b = client(url, keyB);

    // Blobs are visible per tenant: B must upload tiny's weights itself even though the bucket has them.
    const gguf = writeTinyModel({ seed: TINY_MODEL_DEFAULT_SEED });
    const digest = `sha256:${createHash("sha256").update(gguf).digest("hex")}`;
    const auth = { authorization: `Bearer ${keyB}` };
    expect((await fetch(`${url}/api/blobs/${digest}`, { method: "HEAD", headers: auth })).status).toBe(404);
    const upload = await fetch(`${url}/api/blobs/${digest}`, { method: "POST", headers: auth, body: gguf });
    expect(upload.status).toBe(201);
    const created = await api(url, keyB, "POST", "/api/create", {
      model: "b-only",
      files: { "model.gguf": digest },
      stream: false,
    });
    expect(created).toMatchObject({ status: 200, body: { status: "success" } });

    const [fromA, fromB] = await Promise.all([
      ollama.generate({ model: "scripted", prompt: "Say it.", options: { temperature: 0, num_predict: 32 } }),
      b.generate({ model: "b-only", prompt: "Hello", options: { temperature: 0, num_predict: 8 } }),
    ]);
    expect(fromA.response).toBe(SCRIPTED_SENTENCE);
    expect(fromB).toMatchObject({ done: true, model: "b-only" });
    expect(fromB.eval_count).toBeGreaterThan(0);

    expect((await b.list()).models.map((m) => m.name)).toEqual(["b-only:latest"]);
    let bRunning: string[] = [];
    await eventually(
      async () => {
        bRunning = await psNames(b);
        return bRunning.includes("b-only:latest");
      },
      30_000,
      100,
    );
    expect(bRunning).toContain("b-only:latest");
    expect(bRunning.every((name) => name === "b-only:latest")).toBe(true);
    for (const call of [
      () => b.show({ model: "scripted" }),
      () => b.generate({ model: "scripted", prompt: "Say it." }),
      () => b.chat({ model: "tiny", messages: [{ role: "user", content: "hi" }] }),
      () => b.embed({ model: "tiny", input: "hi" }),
    ]) {
      await expect(call()).rejects.toMatchObject({ status_code: 404 });
    }
    // And the other way round.
    expect((await ollama.list()).models.map((m) => m.name)).not.toContain("b-only:latest");
    expect(await psNames(ollama)).not.toContain("b-only:latest");
    await expect(ollama.generate({ model: "b-only", prompt: "hi" })).rejects.toMatchObject({ status_code: 404 });
  });
});
