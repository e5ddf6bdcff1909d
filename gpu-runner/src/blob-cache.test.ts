import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BlobCache } from "./blob-cache";
import { EdgeBlobSource } from "./blob-source";
import { FakeClock } from "./clock";
import { type BlobServer, blobOf, startBlobServer, TEST_SECRET, type TestBlob } from "./test-support";

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

let dir: string;
let server: BlobServer | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "corral-blob-cache-"));
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function cacheFor(
  blobs: TestBlob[],
  options: { maxBytes?: number; honourRanges?: boolean; corrupt?: string; delayMs?: number; clock?: FakeClock } = {},
) {
  server = await startBlobServer(blobs, options);
  const cache = new BlobCache({
    dir,
    maxBytes: options.maxBytes ?? 1 << 30,
    source: new EdgeBlobSource(server.url, TEST_SECRET),
    clock: options.clock,
    partSize: 1000,
    parallelThreshold: 4000,
    concurrency: 3,
  });
  await cache.init();
  return cache;
}

describe("BlobCache", () => {
  it("downloads, verifies and then serves from disk", async () => {
    const blob = blobOf(bytes(3000, 1));
    const cache = await cacheFor([blob]);
    const lease = await cache.acquire(blob.digest);
    expect(new Uint8Array(await readFile(lease.path))).toEqual(blob.bytes);
    expect(lease.path.endsWith(blob.digest.replace(":", "-"))).toBe(true);
    lease.release();
    await (await cache.acquire(blob.digest)).release();
    expect(server!.requests).toHaveLength(1);
  });

  it("adopts a file the runner produced, serving it without a download, unless there is no room", async () => {
    const made = blobOf(bytes(1500, 7));
    const cache = await cacheFor([], { maxBytes: 2000 });
    const file = join(dir, "made.partial");
    await writeFile(file, made.bytes);
    expect(await cache.adopt(made.digest, file, made.bytes.length)).toBe(true);
    const lease = await cache.acquire(made.digest);
    expect(new Uint8Array(await readFile(lease.path))).toEqual(made.bytes);
    expect(server!.requests).toHaveLength(0);
    // Leased, so it cannot be evicted: a second file does not fit and stays with the caller.
    const other = blobOf(bytes(1000, 8));
    const otherFile = join(dir, "other.partial");
    await writeFile(otherFile, other.bytes);
    expect(await cache.adopt(other.digest, otherFile, other.bytes.length)).toBe(false);
    expect(new Uint8Array(await readFile(otherFile))).toEqual(other.bytes);
    expect(cache.has(other.digest)).toBe(false);
    lease.release();
  });

  it("holds reserved room: evicts for it, refuses what no longer fits, and frees it on release", async () => {
    const a = blobOf(bytes(800, 9));
    const b = blobOf(bytes(800, 10));
    const cache = await cacheFor([a, b], { maxBytes: 2000 });
    (await cache.acquire(a.digest)).release();
    const release = await cache.reserve(1500);
    expect(cache.has(a.digest)).toBe(false); // evicted to make room for the reservation
    await expect(cache.acquire(b.digest, 800)).rejects.toThrow(/cache is full/);
    release();
    release(); // idempotent: releasing twice must not free room it never held
    const held = await cache.acquire(b.digest, 800);
    // A leased blob is never evicted for a reservation.
    await expect(cache.reserve(1500)).rejects.toThrow(/cache is full/);
    held.release();
  });

  it("rejects bytes that do not match the digest and keeps nothing", async () => {
    const blob = blobOf(bytes(2000, 2));
    const cache = await cacheFor([blob], { corrupt: blob.digest });
    await expect(cache.acquire(blob.digest)).rejects.toThrow(/failed verification/);
    expect(cache.has(blob.digest)).toBe(false);
    expect(await readdir(dir)).toEqual([]);
  });

  it("answers 404 for a blob the source does not have, and 400 for a malformed digest", async () => {
    const cache = await cacheFor([]);
    await expect(cache.acquire(`sha256:${"0".repeat(64)}`)).rejects.toMatchObject({ status: 404 });
    await expect(cache.acquire("../../etc/passwd")).rejects.toMatchObject({ status: 400 });
    expect(server!.requests).toHaveLength(1);
  });

  it("shares one download between concurrent requests for a digest", async () => {
    const blob = blobOf(bytes(2500, 3));
    const cache = await cacheFor([blob], { delayMs: 30 });
    const leases = await Promise.all([1, 2, 3, 4].map(() => cache.acquire(blob.digest)));
    expect(new Set(leases.map((l) => l.path)).size).toBe(1);
    expect(server!.requests).toHaveLength(1);
  });

  it("fetches large blobs as parallel ranges and still verifies them", async () => {
    const blob = blobOf(bytes(9500, 4));
    const cache = await cacheFor([blob]);
    const lease = await cache.acquire(blob.digest, blob.bytes.length);
    expect(new Uint8Array(await readFile(lease.path))).toEqual(blob.bytes);
    const ranges = server!.requests.map((r) => r.range).sort();
    expect(ranges).toHaveLength(10);
    expect(ranges).toContain("bytes=9000-9499");
  });

  it("falls back to one GET when the source ignores ranges", async () => {
    const blob = blobOf(bytes(6000, 5));
    const cache = await cacheFor([blob], { honourRanges: false });
    const lease = await cache.acquire(blob.digest, blob.bytes.length);
    expect(new Uint8Array(await readFile(lease.path))).toEqual(blob.bytes);
    expect(server!.requests.at(-1)?.range).toBeUndefined();
  });

  it("refuses a blob whose size differs from the manifest", async () => {
    const blob = blobOf(bytes(1500, 6));
    const cache = await cacheFor([blob]);
    await expect(cache.acquire(blob.digest, 1499)).rejects.toThrow(/1500 bytes, expected 1499/);
  });

  it("evicts the least recently used blob, never a leased one", async () => {
    const clock = new FakeClock();
    const [a, b, c, d] = [7, 8, 9, 10].map((seed) => blobOf(bytes(1000, seed))) as [
      TestBlob,
      TestBlob,
      TestBlob,
      TestBlob,
    ];
    const cache = await cacheFor([a, b, c, d], { maxBytes: 2500, clock });
    const leaseA = await cache.acquire(a.digest);
    clock.advance(10);
    (await cache.acquire(b.digest)).release();
    clock.advance(10);
    // a is older but leased (a loaded model uses it): b goes.
    (await cache.acquire(c.digest)).release();
    expect([cache.has(a.digest), cache.has(b.digest), cache.has(c.digest)]).toEqual([true, false, true]);
    leaseA.release();
    clock.advance(10);
    (await cache.acquire(c.digest)).release(); // c is now the most recent
    clock.advance(10);
    (await cache.acquire(d.digest)).release();
    expect([cache.has(a.digest), cache.has(c.digest), cache.has(d.digest)]).toEqual([false, true, true]);
    expect(cache.totalBytes).toBe(2000);
  });

  it("answers 503 when leased blobs leave no room", async () => {
    const [a, b] = [11, 12].map((seed) => blobOf(bytes(1000, seed))) as [TestBlob, TestBlob];
    const cache = await cacheFor([a, b], { maxBytes: 1500 });
    await cache.acquire(a.digest);
    await expect(cache.acquire(b.digest, 1000)).rejects.toMatchObject({ status: 503 });
  });

  it("indexes verified files at start and removes interrupted downloads", async () => {
    const blob = blobOf(bytes(800, 13));
    await writeFile(join(dir, blob.digest.replace(":", "-")), blob.bytes);
    await writeFile(join(dir, `${blob.digest.replace(":", "-")}.abc.partial`), "half");
    await writeFile(join(dir, "notes.txt"), "ignored");
    const cache = await cacheFor([]);
    expect(cache.has(blob.digest)).toBe(true);
    expect(cache.totalBytes).toBe(800);
    expect((await readdir(dir)).sort()).toEqual(["notes.txt", blob.digest.replace(":", "-")]);
    await cache.acquire(blob.digest);
    expect(server!.requests).toHaveLength(0);
  });
});
