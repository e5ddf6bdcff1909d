import { env } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { sweepBlobs } from "../src/store/gc";
import { INTENT_PIN_MS } from "../src/store/runner-blobs";
import { blobKey } from "../src/store/store";
import { ADMIN, call, newTenant } from "./helpers";
import { digest, ggufModel, json, ndjsonLines, snapshot, upload } from "./registry-fixtures";
import {
  bindings,
  fakeRunners,
  heartbeat,
  ndjsonLine,
  RUNNER_SECRET,
  type RunnerHandler,
  resetFleet,
  runnerStatus,
} from "./relay-fixtures";

let restore: (() => void) | undefined;
let tenant: { id: string; key: string };
/** An F32 source and what the fake runners "produce" from it: a Q8_0 GGUF of the same family. */
const source = ggufModel({ salt: 41, fileType: 0 });
const quantized = ggufModel({ salt: 42, fileType: 7 });
const wrongType = ggufModel({ salt: 44, fileType: 1 });

beforeEach(async () => {
  await resetFleet();
  tenant = await newTenant(`quantize-${crypto.randomUUID().slice(0, 8)}`);
  expect((await upload(tenant.key, source)).status).toBe(201);
});
afterEach(() => {
  restore?.();
  restore = undefined;
});

function runners(handlers: Record<string, RunnerHandler>) {
  const fake = fakeRunners(handlers);
  restore = fake.restore;
  return fake;
}

const create = (body: Record<string, unknown>, key = tenant.key) =>
  call("POST", "/api/create", { key, body: { model: "q", files: { "m.gguf": digest(source) }, ...body } });

const events = (...values: unknown[]) =>
  new Response(
    new ReadableStream({
      start(c) {
        for (const v of values) c.enqueue(ndjsonLine(v));
        c.close();
      },
    }),
    { headers: { "content-type": "application/x-ndjson" } },
  );

/** A runner that stores `bytes` as its result the way a production runner does (straight into the bucket). */
function producing(bytes: Uint8Array): RunnerHandler {
  return async () => {
    await env.BLOBS.put(blobKey(digest(bytes)), bytes);
    return events(
      { event: "progress", phase: "quantize", completed: 1, total: 2 },
      { event: "progress", phase: "quantize", completed: 2, total: 2 },
      { event: "progress", phase: "upload", completed: bytes.length, total: bytes.length },
      { event: "done", digest: digest(bytes), size: bytes.length },
    );
  };
}

const tagsOf = async (key = tenant.key) =>
  (
    await json<{ models: { name: string; details: Record<string, unknown> }[] }>(
      await call("GET", "/api/tags", { key }),
    )
  ).models;

describe("create with quantize: what is refused before anything runs", () => {
  it.each([
    ["q3_x", "unsupported quantization type Q3_X - supported types are F32, F16, Q4_K_S, Q4_K_M, Q8_0"],
    ["", null],
  ])("answers quantize %j with Ollama's text and changes nothing", async (type, message) => {
    if (message === null) return; // an empty quantize means none: covered by every other create test
    const before = await snapshot();
    const res = await create({ quantize: type });
    expect(res.status).toBe(400);
    expect((await json<{ error: string }>(res)).error).toBe(message);
    expect(await snapshot()).toBe(before);
  });

  it("refuses weights that are already quantized", async () => {
    const q4 = ggufModel({ salt: 43, fileType: 2 });
    await upload(tenant.key, q4);
    const before = await snapshot();
    const res = await call("POST", "/api/create", {
      key: tenant.key,
      body: { model: "q", files: { "m.gguf": digest(q4) }, quantize: "q8_0" },
    });
    expect(res.status).toBe(400);
    expect((await json<{ error: string }>(res)).error).toBe(
      "quantization is only supported for F16, BF16 and F32 models",
    );
    expect(await snapshot()).toBe(before);
  });

  it("skips the job when the weights already have the wanted type (no runner needed)", async () => {
    const fake = runners({});
    const res = await create({ quantize: "f32", stream: false });
    expect(await json(res)).toEqual({ status: "success" });
    expect(fake.received).toHaveLength(0);
    expect((await tagsOf())[0]?.details.quantization_level).toBe("F32");
  });
});

describe("create with quantize: the job on a runner", () => {
  it("relays progress, adopts the runner's blob as the weights layer and gives the tenant ownership", async () => {
    await heartbeat(runnerStatus("r1"));
    const fake = runners({ r1: producing(quantized) });
    const res = await create({ quantize: "Q8_0" });
    expect(res.status).toBe(200);
    const lines = await ndjsonLines(res);
    expect(lines[0]).toEqual({ status: "parsing GGUF" });
    const progress = lines.filter((l) => l.status === "quantizing F32 model to Q8_0");
    expect(progress.map((l) => l.completed)).toEqual([source.length / 2, source.length]);
    expect(progress[0]).toMatchObject({ digest: "0000000000000000000", total: source.length });
    expect(lines.map((l) => l.status)).toContain("verifying conversion");
    expect(lines.map((l) => l.status)).toContain(`creating new layer ${digest(quantized)}`);
    expect(lines.at(-1)).toEqual({ status: "success" });

    expect(fake.received).toHaveLength(1);
    expect(fake.received[0]).toMatchObject({
      path: "/v1/quantize",
      body: { source: { digest: digest(source), size: source.length }, file_type: "Q8_0" },
    });
    expect(fake.received[0]!.headers.get("authorization")).toBe(`Bearer ${RUNNER_SECRET}`);

    const [model] = await tagsOf();
    expect(model).toMatchObject({ name: "q:latest", details: { quantization_level: "Q8_0" } });
    const show = await json<{ details: Record<string, unknown> }>(
      await call("POST", "/api/show", { key: tenant.key, body: { model: "q" } }),
    );
    expect(show.details.quantization_level).toBe("Q8_0");
    expect((await call("HEAD", `/api/blobs/${digest(quantized)}`, { key: tenant.key })).status).toBe(200);
    const other = await newTenant(`quantize-other-${crypto.randomUUID().slice(0, 8)}`);
    expect((await call("HEAD", `/api/blobs/${digest(quantized)}`, { key: other.key })).status).toBe(404);
  });

  it("tries another runner when the first refuses or cannot be reached", async () => {
    await heartbeat(runnerStatus("busy"));
    await heartbeat(runnerStatus("gone"));
    await heartbeat(runnerStatus("ok"));
    const fake = runners({
      busy: () => Response.json({ error: "runner is draining" }, { status: 503 }),
      ok: producing(quantized),
    });
    const res = await create({ quantize: "q8_0", stream: false });
    expect(await json(res)).toEqual({ status: "success" });
    expect(fake.received.map((r) => r.runner)).toContain("ok");
  });

  it("answers 503 without writing anything when no runner can take the job", async () => {
    const before = await snapshot();
    const res = await create({ quantize: "q8_0", stream: false });
    expect(res.status).toBe(503);
    expect((await json<{ error: string }>(res)).error).toMatch(/^cannot quantize right now/);
    expect(await tagsOf()).toEqual([]);
    expect(await snapshot()).toBe(before);
  });

  it.each([
    [
      "an error event",
      () => events({ event: "error", error: "llama.cpp: failed to quantize", status: 500 }),
      "llama.cpp: failed to quantize",
    ],
    [
      "a digest the store does not hold",
      () => events({ event: "done", digest: `sha256:${"e".repeat(64)}`, size: 10 }),
      `the runner reported sha256:${"e".repeat(64)}, but the blob store does not hold it`,
    ],
    ["a stream without a result", () => events({ event: "progress", phase: "quantize", completed: 1, total: 2 }), null],
    ["a file of the wrong type", producing(wrongType), "is not a Q8_0 model"],
  ])("ends with an error line and no model when the runner sends %s", async (_label, handler, message) => {
    await heartbeat(runnerStatus("r1"));
    runners({ r1: handler });
    const res = await create({ quantize: "q8_0" });
    expect(res.status).toBe(200);
    const last = (await ndjsonLines(res)).at(-1) as { error?: string };
    expect(last.error).toBeDefined();
    if (message) expect(last.error).toContain(message);
    expect(await tagsOf()).toEqual([]);
    // Whatever a failed job left in the bucket has no owner and no model: the sweep collects it.
    await sweepBlobs(bindings, Date.now() + 1);
    expect(await env.DB.prepare("SELECT 1 FROM blobs WHERE digest = ?").bind(digest(wrongType)).first()).toBeNull();
    expect(await env.BLOBS.head(blobKey(digest(wrongType)))).toBeNull();
  });
});

describe("create with quantize: runners that fail, quotas, and what is left behind", () => {
  it("tries the next runner when one cannot take jobs (401, 404, 501), and reports the busy fleet as 503", async () => {
    await heartbeat(runnerStatus("old"));
    await heartbeat(runnerStatus("ok"));
    const fake = runners({
      old: () => Response.json({ error: "404 page not found" }, { status: 404 }),
      ok: producing(quantized),
    });
    expect(await json(await create({ quantize: "q8_0", stream: false }))).toEqual({ status: "success" });
    // Equally idle runners are tried in the order they registered.
    expect(fake.received.map((r) => r.runner)).toEqual(["old", "ok"]);
  });

  it("answers 503 at once when no runner is able to take the job, without writing anything", async () => {
    await heartbeat(runnerStatus("locked"));
    const fake = runners({ locked: () => Response.json({ error: "unauthorized" }, { status: 401 }) });
    const before = await snapshot();
    const res = await create({ quantize: "q8_0", stream: false });
    expect(res.status).toBe(503);
    expect((await json<{ error: string }>(res)).error).toMatch(
      /^cannot quantize right now \(runner locked: unauthorized\)/,
    );
    expect(fake.received).toHaveLength(1);
    expect(await snapshot()).toBe(before);
  });

  it("waits for a runner that is busy with another job, then runs there", async () => {
    await heartbeat(runnerStatus("r1"));
    const produce = producing(quantized);
    let calls = 0;
    runners({
      r1: (request) =>
        ++calls === 1 ? Response.json({ error: "runner is busy with another job" }, { status: 503 }) : produce(request),
    });
    expect(await json(await create({ quantize: "q8_0", stream: false }))).toEqual({ status: "success" });
    expect(calls).toBe(2);
  });

  it("refuses up front when the estimated result would exceed the storage quota (no runner asked)", async () => {
    await call("PUT", `/admin/tenants/${tenant.id}/quotas`, {
      key: ADMIN,
      body: { storage_bytes: source.length + 10 },
    });
    await heartbeat(runnerStatus("r1"));
    const fake = runners({ r1: producing(quantized) });
    const res = await create({ quantize: "q8_0" });
    expect(res.status).toBe(413);
    expect((await json<{ error: string }>(res)).error).toMatch(/^storage quota exceeded/);
    expect(fake.received).toHaveLength(0);
  });

  it("keeps the client's spelling in the progress text and says 'using existing layer' for bytes it already has", async () => {
    const q4 = ggufModel({ salt: 46, fileType: 15 });
    await upload(tenant.key, q4);
    await heartbeat(runnerStatus("r1"));
    runners({ r1: producing(q4) });
    const lines = await ndjsonLines(await create({ quantize: "q4_K" }));
    expect(lines.map((l) => l.status)).toContain("quantizing F32 model to Q4_K");
    expect(lines.map((l) => l.status)).toContain(`using existing layer ${digest(q4)}`);
    expect((await tagsOf())[0]?.details.quantization_level).toBe("Q4_K_M");
  });

  it("collects a result the runner announced and stored over S3 when the job then fails", async () => {
    const orphan = ggufModel({ salt: 47, fileType: 7 });
    await heartbeat(runnerStatus("r1"));
    runners({
      r1: async () => {
        // What S3BlobSink does: announce through the edge, then write the bucket directly.
        const intent = await call("POST", `/internal/blobs/${digest(orphan)}/intent`, {
          body: { size: orphan.length },
          headers: { authorization: `Bearer ${RUNNER_SECRET}` },
        });
        expect(intent.status).toBe(201);
        await env.BLOBS.put(blobKey(digest(orphan)), orphan);
        return events({ event: "progress", phase: "upload", completed: 1, total: 2 }); // the connection then drops
      },
    });
    const last = (await ndjsonLines(await create({ quantize: "q8_0" }))).at(-1) as { error?: string };
    expect(last.error).toBeDefined();
    // The announcement's pin outlives any upload; once it has lapsed, the sweep removes the row and the bytes.
    await sweepBlobs(bindings, Date.now() + 1);
    expect(await env.BLOBS.head(blobKey(digest(orphan)))).not.toBeNull();
    await sweepBlobs(bindings, Date.now() + INTENT_PIN_MS + 1);
    expect(await env.DB.prepare("SELECT 1 FROM blobs WHERE digest = ?").bind(digest(orphan)).first()).toBeNull();
    expect(await env.BLOBS.head(blobKey(digest(orphan)))).toBeNull();
  });
});

describe("POST /internal/blobs/:digest/intent (runners about to write the bucket over S3)", () => {
  const intent = (body: unknown, as = `sha256:${"c".repeat(64)}`, secret = RUNNER_SECRET) =>
    call("POST", `/internal/blobs/${as}/intent`, { body, headers: { authorization: `Bearer ${secret}` } });

  it("records an ownerless row once, and refuses another size for it", async () => {
    const d = `sha256:${crypto.randomUUID().replaceAll("-", "").padEnd(64, "0")}`;
    expect((await intent({ size: 5 }, d)).status).toBe(201);
    expect((await intent({ size: 5 }, d)).status).toBe(200);
    expect((await intent({ size: 6 }, d)).status).toBe(409);
    const owners = await env.DB.prepare("SELECT * FROM blob_owners WHERE digest = ?").bind(d).all();
    expect(owners.results).toEqual([]);
    expect((await call("HEAD", `/api/blobs/${d}`, { key: tenant.key })).status).toBe(404);
  });

  it.each([
    ["a negative size", () => intent({ size: -1 }), 400],
    ["no size", () => intent({}), 400],
    ["a bad digest", () => intent({ size: 1 }, "sha256:zz"), 400],
    ["a tenant key", () => intent({ size: 1 }, undefined, tenant.key), 401],
  ])("refuses %s and records nothing", async (_label, send, status) => {
    const before = await snapshot();
    expect((await send()).status).toBe(status);
    expect(await snapshot()).toBe(before);
  });
});

describe("PUT /internal/blobs/:digest (runners storing a result through the edge)", () => {
  const put = (bytes: Uint8Array, as = digest(bytes), secret = RUNNER_SECRET) =>
    call("PUT", `/internal/blobs/${as}`, {
      raw: bytes,
      headers: { authorization: `Bearer ${secret}`, "content-length": String(bytes.length) },
    });

  it("stores verified bytes as an ownerless blob, then answers 200 for the same bytes", async () => {
    const bytes = ggufModel({ salt: 45, fileType: 7 });
    expect((await put(bytes)).status).toBe(201);
    expect(await (await env.BLOBS.get(blobKey(digest(bytes))))?.arrayBuffer()).toEqual(bytes.buffer);
    const row = await env.DB.prepare("SELECT size FROM blobs WHERE digest = ?").bind(digest(bytes)).first();
    expect(row).toEqual({ size: bytes.length });
    const owners = await env.DB.prepare("SELECT * FROM blob_owners WHERE digest = ?").bind(digest(bytes)).all();
    expect(owners.results).toEqual([]);
    expect((await put(bytes)).status).toBe(200);
    // No tenant can see it until a create adopts it.
    expect((await call("HEAD", `/api/blobs/${digest(bytes)}`, { key: tenant.key })).status).toBe(404);
  });

  it.each([
    ["bytes that do not match the digest", () => put(new Uint8Array([1, 2, 3]), `sha256:${"a".repeat(64)}`), 400],
    ["a bad digest", () => put(new Uint8Array([1]), "sha256:../../x"), 400],
    ["a tenant key instead of the runner secret", () => put(new Uint8Array([1]), undefined, tenant.key), 401],
  ])("refuses %s and stores nothing", async (_label, send, status) => {
    const before = await snapshot();
    expect((await send()).status).toBe(status);
    expect(await snapshot()).toBe(before);
  });
});
