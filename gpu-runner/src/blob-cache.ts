/**
 * Disk cache of blobs keyed by digest. A miss downloads into a temp file, checks the sha256 and only then
 * renames it into place, so a cached file is always a verified one. Concurrent misses for one digest share
 * one download; large blobs come as parallel ranged GETs. Least-recently-used blobs are evicted when the
 * cache outgrows its limit, except blobs leased by loaded models.
 */
import { createHash, randomUUID } from "node:crypto";
import { mkdir, open, readdir, rename, rm, stat, utimes } from "node:fs/promises";
import { join } from "node:path";
import { digestToFileName, parseDigest } from "@corral/protocol/digest";
import { ApiError } from "@corral/protocol/errors";
import type { BlobSource, ByteRange } from "./blob-source";
import { type Clock, systemClock } from "./clock";
import { busy } from "./errors";

const MiB = 1024 * 1024;
const FILE_NAME = /^sha256-[0-9a-f]{64}$/;
const PARTIAL_SUFFIX = ".partial";

export interface BlobCacheOptions {
  dir: string;
  maxBytes: number;
  source: BlobSource;
  clock?: Clock;
  /** Size of one ranged GET. Default 8 MiB. */
  partSize?: number;
  /** Ranged GETs in flight at once. Default 4. */
  concurrency?: number;
  /** Blobs at least this big (when their size is known up front) are fetched in ranges. Default 32 MiB. */
  parallelThreshold?: number;
  /** Attempts per range before the download fails. Default 3. */
  attempts?: number;
}

interface Entry {
  size: number;
  lastUsed: number;
  leases: number;
}

/** A cached blob held in place: it is not evicted until released. `release` is idempotent. */
export interface BlobLease {
  readonly digest: string;
  readonly path: string;
  readonly size: number;
  release(): void;
}

class RangeNotHonoured extends Error {}

export class BlobCache {
  private readonly entries = new Map<string, Entry>();
  private readonly downloads = new Map<string, Promise<void>>();
  private readonly clock: Clock;
  private readonly partSize: number;
  private readonly concurrency: number;
  private readonly parallelThreshold: number;
  private readonly attempts: number;
  /** Bytes promised to downloads in progress, so parallel misses do not overfill the disk together. */
  private reserved = 0;

  constructor(private readonly options: BlobCacheOptions) {
    this.clock = options.clock ?? systemClock;
    this.partSize = options.partSize ?? 8 * MiB;
    this.concurrency = Math.max(1, options.concurrency ?? 4);
    this.parallelThreshold = options.parallelThreshold ?? 32 * MiB;
    this.attempts = Math.max(1, options.attempts ?? 3);
  }

  /** Creates the directory, indexes the blobs already there and removes leftovers of interrupted downloads. */
  async init(): Promise<void> {
    await mkdir(this.options.dir, { recursive: true });
    for (const name of await readdir(this.options.dir)) {
      const path = join(this.options.dir, name);
      if (name.endsWith(PARTIAL_SUFFIX)) {
        await rm(path, { force: true });
        continue;
      }
      if (!FILE_NAME.test(name)) continue;
      const info = await stat(path);
      if (!info.isFile()) continue;
      this.entries.set(name.replace("-", ":"), { size: info.size, lastUsed: info.mtimeMs, leases: 0 });
    }
  }

  get totalBytes(): number {
    let total = 0;
    for (const entry of this.entries.values()) total += entry.size;
    return total;
  }

  get blobCount(): number {
    return this.entries.size;
  }

  has(digest: string): boolean {
    const canonical = parseDigest(digest);
    return canonical !== null && this.entries.has(canonical);
  }

  /**
   * Returns the blob on disk, downloading and verifying it first on a miss, and holds it until released.
   * `expectedSize` (from the manifest) lets big blobs be fetched in parallel ranges and is checked.
   */
  async acquire(digest: string, expectedSize?: number): Promise<BlobLease> {
    const canonical = parseDigest(digest);
    if (canonical === null) throw new ApiError(400, "invalid digest format");
    for (;;) {
      const entry = this.entries.get(canonical);
      if (entry) return this.lease(canonical, entry);
      let download = this.downloads.get(canonical);
      if (!download) {
        download = this.download(canonical, expectedSize).finally(() => this.downloads.delete(canonical));
        this.downloads.set(canonical, download);
      }
      await download;
    }
  }

  /**
   * Holds `bytes` of the cache's budget for a file that is being written into the cache directory outside of a
   * download (a quantize job's output), evicting unleased blobs to make room; 503 when it cannot. Release is
   * idempotent; call it before `adopt` (which counts the file as a blob).
   */
  async reserve(bytes: number): Promise<() => void> {
    await this.makeRoom(bytes);
    this.reserved += bytes;
    let held = bytes;
    return () => {
      this.reserved -= held;
      held = 0;
    };
  }

  /**
   * Takes a file this runner produced and hashed itself (a quantize job's output, inside the cache directory) into
   * the cache, so a model made from it loads without fetching it back. The file is moved; when the blob is cached
   * already or there is no room, nothing happens and the caller still owns the file.
   */
  async adopt(digest: string, path: string, size: number): Promise<boolean> {
    const canonical = parseDigest(digest);
    if (canonical === null || this.entries.has(canonical) || this.downloads.has(canonical)) return false;
    try {
      await this.makeRoom(size);
    } catch {
      return false;
    }
    await rename(path, this.pathFor(canonical));
    this.entries.set(canonical, { size, lastUsed: this.clock.now(), leases: 0 });
    return true;
  }

  private lease(digest: string, entry: Entry): BlobLease {
    entry.leases++;
    entry.lastUsed = this.clock.now();
    const path = this.pathFor(digest);
    // The file's mtime carries the LRU order across restarts; failing to set it only loses that.
    const seconds = entry.lastUsed / 1000;
    utimes(path, seconds, seconds).catch(() => {});
    let released = false;
    return {
      digest,
      path,
      size: entry.size,
      release: () => {
        if (released) return;
        released = true;
        entry.leases--;
        entry.lastUsed = this.clock.now();
      },
    };
  }

  private pathFor(digest: string): string {
    // Only the validated digest names files: nothing a client sent reaches the filesystem.
    return join(this.options.dir, digestToFileName(digest));
  }

  /** Evicts unleased blobs, least recently used first, until `incoming` more bytes fit. */
  private async makeRoom(incoming: number): Promise<void> {
    const limit = this.options.maxBytes;
    let total = this.totalBytes + this.reserved;
    if (total + incoming <= limit) return;
    const candidates = [...this.entries]
      .filter(([, e]) => e.leases === 0)
      .sort(([, a], [, b]) => a.lastUsed - b.lastUsed);
    for (const [digest, entry] of candidates) {
      if (total + incoming <= limit) break;
      // Leased or already removed while an earlier deletion was awaited.
      if (entry.leases > 0 || this.entries.get(digest) !== entry) continue;
      this.entries.delete(digest);
      total -= entry.size;
      await rm(this.pathFor(digest), { force: true });
    }
    if (total + incoming > limit) {
      throw busy(`runner blob cache is full: ${incoming} more bytes do not fit in ${limit} (blobs in use)`);
    }
  }

  private async download(digest: string, expectedSize: number | undefined): Promise<void> {
    let reservation = expectedSize ?? 0;
    await this.makeRoom(reservation);
    this.reserved += reservation;
    const unreserve = () => {
      this.reserved -= reservation;
      reservation = 0;
    };
    const temp = `${this.pathFor(digest)}.${randomUUID()}${PARTIAL_SUFFIX}`;
    try {
      let result: { size: number; hex: string };
      if (expectedSize !== undefined && expectedSize >= this.parallelThreshold) {
        try {
          result = await this.downloadInRanges(digest, expectedSize, temp);
        } catch (err) {
          if (!(err instanceof RangeNotHonoured)) throw err;
          result = await this.downloadWhole(digest, temp);
        }
      } else {
        result = await this.downloadWhole(digest, temp);
      }
      const actual = `sha256:${result.hex}`;
      if (actual !== digest) throw new Error(`blob ${digest} failed verification: its bytes hash to ${actual}`);
      if (expectedSize !== undefined && result.size !== expectedSize) {
        throw new Error(`blob ${digest} has ${result.size} bytes, expected ${expectedSize}`);
      }
      const reserved = reservation;
      unreserve();
      if (result.size > reserved) await this.makeRoom(result.size - reserved);
      await rename(temp, this.pathFor(digest));
      this.entries.set(digest, { size: result.size, lastUsed: this.clock.now(), leases: 0 });
    } catch (err) {
      unreserve();
      await rm(temp, { force: true });
      throw err;
    }
  }

  private async downloadWhole(digest: string, temp: string): Promise<{ size: number; hex: string }> {
    const hash = createHash("sha256");
    const file = await open(temp, "w");
    let size = 0;
    try {
      const body = await this.options.source.open(digest, undefined);
      for await (const chunk of body.chunks) {
        hash.update(chunk);
        await file.write(chunk);
        size += chunk.length;
      }
    } finally {
      await file.close();
    }
    return { size, hex: hash.digest("hex") };
  }

  /**
   * Parallel ranged GETs written at their offsets. The hash must see bytes in order, so finished parts wait in
   * memory until the parts before them are hashed; a part may not start more than `2 × concurrency` parts
   * ahead of the hashing, which bounds that memory.
   */
  private async downloadInRanges(digest: string, size: number, temp: string): Promise<{ size: number; hex: string }> {
    const partCount = Math.ceil(size / this.partSize);
    const window = this.concurrency * 2;
    const hash = createHash("sha256");
    const finished = new Map<number, Uint8Array>();
    let nextToHash = 0;
    let nextToStart = 0;
    let failure: unknown;
    const waiters: (() => void)[] = [];
    const wake = () => {
      for (const resolve of waiters.splice(0)) resolve();
    };
    const abort = new AbortController();

    const file = await open(temp, "w");
    const worker = async () => {
      while (failure === undefined && nextToStart < partCount) {
        if (nextToStart >= nextToHash + window) {
          await new Promise<void>((resolve) => waiters.push(resolve));
          continue;
        }
        const index = nextToStart++;
        const start = index * this.partSize;
        const range = { start, end: Math.min(size, start + this.partSize) - 1 };
        const bytes = await this.fetchRange(digest, range, abort.signal);
        await file.write(bytes, 0, bytes.length, start);
        finished.set(index, bytes);
        for (let part = finished.get(nextToHash); part; part = finished.get(nextToHash)) {
          hash.update(part);
          finished.delete(nextToHash++);
        }
        wake();
      }
    };
    try {
      await Promise.all(
        Array.from({ length: Math.min(this.concurrency, partCount) }, () =>
          worker().catch((err) => {
            failure ??= err;
            abort.abort();
            wake();
          }),
        ),
      );
    } finally {
      await file.close();
    }
    if (failure !== undefined) throw failure;
    return { size, hex: hash.digest("hex") };
  }

  private async fetchRange(digest: string, range: ByteRange, signal: AbortSignal): Promise<Uint8Array> {
    const length = range.end - range.start + 1;
    for (let attempt = 1; ; attempt++) {
      try {
        const body = await this.options.source.open(digest, range, signal);
        if (body.start !== range.start) {
          await body.chunks[Symbol.asyncIterator]().return?.();
          throw new RangeNotHonoured();
        }
        const bytes = new Uint8Array(length);
        let filled = 0;
        for await (const chunk of body.chunks) {
          const take = Math.min(chunk.length, length - filled);
          bytes.set(chunk.subarray(0, take), filled);
          filled += take;
          // A source that sent more than asked (or the whole blob) is cut off at the range's end.
          if (filled === length) break;
        }
        if (filled !== length) throw new Error(`range ${range.start}-${range.end} of ${digest} ended early`);
        return bytes;
      } catch (err) {
        const permanent = err instanceof RangeNotHonoured || err instanceof ApiError || signal.aborted;
        if (permanent || attempt >= this.attempts) throw err;
      }
    }
  }
}
