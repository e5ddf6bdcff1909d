import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LoadedModelSchema } from "@corral/protocol/runner";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { BlobCache } from "./blob-cache";
import { EdgeBlobSource } from "./blob-source";
import { FakeClock } from "./clock";
import { ModelPool, type ModelSpec } from "./model-pool";
import { type BlobServer, blobOf, startBlobServer, TEST_SECRET, testLlama, tinyModelBlob } from "./test-support";
import { writeRandomLlamaModel } from "./tiny-model/random-llama";

let dir: string;
let server: BlobServer;
let pools: ModelPool[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "corral-pool-"));
  server = await startBlobServer([tinyModelBlob(), smallLlama]);
});
afterEach(async () => {
  await Promise.all(pools.map((pool) => pool.dispose()));
  pools = [];
});
afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

// llama.cpp estimates this model's context at 4 sequences x 4096 as a fraction of a byte (193636467.2).
const smallLlama = blobOf(
  writeRandomLlamaModel({
    name: "fractional",
    description: "a context estimate that is not whole",
    hyperparameters: { embedding: 64, layers: 2, heads: 4, kvHeads: 2, feedForward: 128 },
  }),
);

const tiny = (): ModelSpec => ({
  modelBlob: tinyModelBlob().digest,
  modelSize: tinyModelBlob().bytes.length,
  adapters: [],
});

interface PoolOptions {
  memoryBudgetBytes?: number;
  parallel?: number;
  maxWaiting?: number;
  /** How far the fake clock moves while a model loads (it moves only when told to). */
  loadTakesMs?: number;
}

async function makePool(options: PoolOptions = {}) {
  const clock = new FakeClock();
  const blobs = new BlobCache({ dir, maxBytes: 1 << 30, source: new EdgeBlobSource(server.url, TEST_SECRET), clock });
  await blobs.init();
  let changes = 0;
  const events: string[] = [];
  const pool = new ModelPool({
    llama: await testLlama(),
    blobs,
    clock,
    threads: 1,
    parallel: options.parallel ?? 1,
    defaultNumCtx: 256,
    memoryBudgetBytes: options.memoryBudgetBytes ?? 1 << 30,
    maxWaiting: options.maxWaiting,
    onChange: () => changes++,
    onLoad: () => {
      events.push("load");
      if (options.loadTakesMs) clock.advance(options.loadTakesMs);
    },
    onUnload: (reason) => events.push(`unload:${reason}`),
  });
  pools.push(pool);
  return { pool, clock, changes: () => changes, events };
}

describe("ModelPool load_duration", () => {
  it("is the time the load took for the request that loaded the model, and zero for one that found it loaded", async () => {
    const { pool } = await makePool({ loadTakesMs: 40 });
    const cold = await pool.acquire(tiny(), undefined, null);
    expect(cold.loadDurationNs).toBe(40_000_000);
    const warm = await pool.acquire(tiny(), undefined, null);
    expect(warm.loadDurationNs).toBe(0);
    cold.release();
    warm.release();
  });
});

describe("ModelPool keep_alive", () => {
  it("keeps a model for the default 5 minutes after its last request, then unloads it", async () => {
    const { pool, clock, changes } = await makePool();
    const lease = await pool.acquire(tiny(), undefined, null);
    expect(pool.ps()).toMatchObject([{ model_blob: tinyModelBlob().digest, context_length: 256, sequences: 1 }]);
    lease.release();
    expect(pool.ps()[0]!.expires_at).toBe(new Date(clock.now() + 300_000).toISOString());
    clock.advance(299_000);
    expect(pool.ps()).toHaveLength(1);
    clock.advance(1_000);
    await new Promise((resolve) => setImmediate(resolve));
    expect(pool.ps()).toHaveLength(0);
    expect(changes()).toBeGreaterThanOrEqual(2);
  });

  it("unloads right after the request with keep_alive 0", async () => {
    const { pool, events } = await makePool();
    const lease = await pool.acquire(tiny(), undefined, 0);
    expect(pool.ps()).toHaveLength(1);
    lease.release();
    await new Promise((resolve) => setImmediate(resolve));
    expect(pool.ps()).toHaveLength(0);
    // What the runner's load/unload counters are fed with.
    expect(events).toEqual(["load", "unload:expired"]);
  });

  it("keeps the model forever with a negative keep_alive", async () => {
    const { pool, clock } = await makePool();
    (await pool.acquire(tiny(), undefined, Number.POSITIVE_INFINITY)).release();
    clock.advance(365 * 24 * 3600_000);
    expect(pool.ps()).toMatchObject([{ expires_at: "9999-12-31T23:59:59.999Z" }]);
  });

  it("a new request resets the countdown with its own keep_alive", async () => {
    const { pool, clock } = await makePool();
    (await pool.acquire(tiny(), undefined, 60_000)).release();
    clock.advance(50_000);
    const again = await pool.acquire(tiny(), undefined, 120_000);
    clock.advance(100_000); // busy: never expires while in use
    expect(pool.ps()).toHaveLength(1);
    again.release();
    clock.advance(119_000);
    expect(pool.ps()).toHaveLength(1);
    clock.advance(1_000);
    await new Promise((resolve) => setImmediate(resolve));
    expect(pool.ps()).toHaveLength(0);
  });

  it("expireModel unloads idle instances now and busy ones when their request ends", async () => {
    const { pool } = await makePool();
    (await pool.acquire(tiny(), 128, null)).release();
    const busy = await pool.acquire(tiny(), 256, null);
    await pool.expireModel(tinyModelBlob().digest);
    expect(pool.ps().map((m) => m.context_length)).toEqual([256]);
    busy.release();
    await new Promise((resolve) => setImmediate(resolve));
    expect(pool.ps()).toHaveLength(0);
  });

  it("clamps num_ctx to the model's training context and keys instances by it", async () => {
    const { pool } = await makePool();
    const a = await pool.acquire(tiny(), 100_000, null);
    const b = await pool.acquire(tiny(), 512, null);
    expect(a.instance.spec.numCtx).toBe(8192);
    expect(b.instance).not.toBe(a.instance);
    expect(b.instance.model).toBe(a.instance.model); // weights are shared
    a.release();
    b.release();
  });
});

/** What the tiny model's weights and one 256-token context take, measured on a pool of its own. */
async function oneInstanceBytes(): Promise<number> {
  const probe = await makePool();
  (await probe.pool.acquire(tiny(), 256, null)).release();
  const bytes = probe.pool.memoryUsed;
  await probe.pool.dispose();
  return bytes;
}

describe("ModelPool memory budget", () => {
  it("unloads idle instances in expiry order to make room", async () => {
    const oneInstance = await oneInstanceBytes();

    // Room for the weights and about two small contexts, not three.
    const { pool } = await makePool({ memoryBudgetBytes: Math.floor(oneInstance * 1.9) });
    (await pool.acquire(tiny(), 256, 600_000)).release(); // expires later
    (await pool.acquire(tiny(), 240, 60_000)).release(); // expires sooner
    expect(pool.ps()).toHaveLength(2);
    (await pool.acquire(tiny(), 224, null)).release();
    expect(
      pool
        .ps()
        .map((m) => m.context_length)
        .sort(),
    ).toEqual([224, 256]);
  });

  it("unloads the loading tenant's own idle instance before another tenant's, past its fair share", async () => {
    const oneInstance = await oneInstanceBytes();

    // Room for about two instances; each tenant's fair share is half of it.
    const { pool } = await makePool({ memoryBudgetBytes: Math.floor(oneInstance * 1.9) });
    (await pool.acquire(tiny(), 256, 60_000, "tenant-b")).release(); // expires sooner: keep_alive order's victim
    (await pool.acquire(tiny(), 240, 600_000, "tenant-a")).release();
    (await pool.acquire(tiny(), 224, null, "tenant-a")).release();
    const loaded = pool.ps().map((m) => [m.context_length, m.tenant]);
    expect(loaded.sort()).toEqual([
      [224, "tenant-a"],
      [256, "tenant-b"],
    ]);
  });

  it("answers 503 when the memory is held by running requests", async () => {
    const oneInstance = await oneInstanceBytes();

    const { pool } = await makePool({ memoryBudgetBytes: Math.floor(oneInstance * 1.2) });
    const held = await pool.acquire(tiny(), 256, null);
    await expect(pool.acquire(tiny(), 512, null)).rejects.toMatchObject({ status: 503 });
    held.release();
  });
});

describe("ModelPool reports whole bytes", () => {
  it("rounds llama.cpp's fractional estimates up, so the heartbeat carries whole numbers (issue #9)", async () => {
    const { pool } = await makePool({ parallel: 4 });
    const spec = { modelBlob: smallLlama.digest, modelSize: smallLlama.bytes.length, adapters: [] };
    const lease = await pool.acquire(spec, 4096, null);
    expect(Number.isInteger(pool.memoryUsed)).toBe(true);
    for (const entry of pool.ps()) expect(LoadedModelSchema.safeParse(entry).success).toBe(true);
    lease.release();
  });
});

describe("ModelInstance sequences", () => {
  it("queues requests when every sequence is busy and hands sequences over in order", async () => {
    const { pool } = await makePool({ parallel: 1, maxWaiting: 1 });
    const lease = await pool.acquire(tiny(), undefined, null);
    const first = await lease.instance.acquireSequence(undefined);
    expect(lease.instance.busySequences).toBe(1);
    const waiting = lease.instance.acquireSequence(undefined);
    await expect(lease.instance.acquireSequence(undefined)).rejects.toMatchObject({ status: 503 });
    first.release();
    const second = await waiting;
    expect(second.sequence).toBe(first.sequence);
    second.release();
    second.release(); // idempotent
    expect(lease.instance.busySequences).toBe(0);
    lease.release();
  });

  it("a waiting request that is aborted leaves the queue with 499", async () => {
    const { pool } = await makePool({ parallel: 1 });
    const lease = await pool.acquire(tiny(), undefined, null);
    const held = await lease.instance.acquireSequence(undefined);
    const controller = new AbortController();
    const waiting = lease.instance.acquireSequence(undefined, controller.signal);
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ status: 499 });
    expect(lease.instance.waiting).toBe(0);
    held.release();
    lease.release();
  });

  it("dispose is idempotent", async () => {
    const { pool } = await makePool();
    const lease = await pool.acquire(tiny(), undefined, null);
    lease.release();
    await Promise.all([lease.instance.dispose(), lease.instance.dispose()]);
    await pool.dispose();
    await pool.dispose();
    expect(lease.instance.disposed).toBe(true);
  });
});
