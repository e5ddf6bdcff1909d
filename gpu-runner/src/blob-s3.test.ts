/**
 * The runner's S3 blob path against a real S3-compatible server (s3rver, started here as a child process): the sink
 * stores a quantize output as one PutObject or as a multipart upload with per-part SHA-256 checksums, and the cache
 * reads it back through S3BlobSource in parallel ranged GETs and verifies the digest; a corrupted or missing object
 * is refused and leaves nothing in the cache. s3rver does not check `x-amz-checksum-sha256` (R2 and S3 do), so the
 * store-side checksum refusal is covered only by blob-sink.test.ts's recorder, which checks the header is sent.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlobCache } from "./blob-cache";
import { S3BlobSink } from "./blob-sink";
import {
  type BlobBody,
  type BlobSource,
  type ByteRange,
  S3BlobSource,
  type S3BlobSourceOptions,
  s3ClientFor,
} from "./blob-source";
import { blobOf } from "./test-support";

const MiB = 1024 * 1024;
const BUCKET = "corral-blobs";

interface S3rver {
  endpoint: string;
  stop(): Promise<void>;
}

/**
 * s3rver on an ephemeral port. It runs under `--openssl-legacy-provider` (its signature code uses a digest newer
 * OpenSSL only has there), so as its own process; it prints its address once listening.
 */
async function startS3rver(dir: string): Promise<S3rver> {
  const bin = createRequire(import.meta.url).resolve("s3rver/bin/s3rver.js");
  const child: ChildProcess = spawn(
    process.execPath,
    [
      "--openssl-legacy-provider",
      bin,
      "-d",
      dir,
      "-a",
      "127.0.0.1",
      "-p",
      "0",
      "--silent",
      "--configure-bucket",
      BUCKET,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  const endpoint = await new Promise<string>((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`s3rver did not start within 60 s: ${output}`)), 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const m = /listening on ([\d.]+):(\d+)/.exec(output);
      if (m) {
        clearTimeout(deadline);
        resolve(`http://${m[1]}:${m[2]}`);
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(deadline);
      reject(new Error(`s3rver exited with ${code}: ${output}`));
    });
  });
  return {
    endpoint,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

/** Records the ranges the cache asks for, and passes every request on to the real source. */
class RecordingSource implements BlobSource {
  readonly ranges: (ByteRange | undefined)[] = [];
  constructor(private readonly inner: BlobSource) {}
  open(digest: string, range: ByteRange | undefined, signal?: AbortSignal): Promise<BlobBody> {
    this.ranges.push(range);
    return this.inner.open(digest, range, signal);
  }
}

const bytes = (n: number, seed: number) =>
  Uint8Array.from({ length: n }, (_, i) => (i * 131 + seed + (i >> 10)) & 0xff);

let dir: string;
let s3: S3rver;
let options: S3BlobSourceOptions;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "corral-s3-"));
  s3 = await startS3rver(join(dir, "bucket"));
  options = {
    bucket: BUCKET,
    endpoint: s3.endpoint,
    region: "us-east-1",
    accessKeyId: "S3RVER",
    secretAccessKey: "S3RVER",
    forcePathStyle: true,
  };
}, 90_000);

afterAll(async () => {
  await s3?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function cacheOver(source: BlobSource, name: string) {
  const cache = new BlobCache({
    dir: join(dir, name),
    maxBytes: 1 << 30,
    source,
    partSize: 1 * MiB,
    parallelThreshold: 1 * MiB,
    concurrency: 4,
  });
  await cache.init();
  return cache;
}

async function fileOf(name: string, content: Uint8Array): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}

describe("S3 blob sink and source against s3rver", () => {
  it("stores a blob as a multipart upload and reads it back in parallel ranges, verified", async () => {
    const blob = blobOf(bytes(12 * MiB + 5, 1));
    const sink = new S3BlobSink({ ...options, multipartThreshold: 1 * MiB, partSize: 5 * MiB, concurrency: 2 });
    const progress: number[] = [];
    await sink.put(blob.digest, blob.bytes.length, await fileOf("multi.bin", blob.bytes), undefined, (n) =>
      progress.push(n),
    );
    sink.destroy();
    expect(progress.at(-1)).toBe(blob.bytes.length);

    const source = new RecordingSource(new S3BlobSource(options));
    const cache = await cacheOver(source, "cache-multi");
    const lease = await cache.acquire(blob.digest, blob.bytes.length);
    expect(Buffer.compare(await readFile(lease.path), Buffer.from(blob.bytes))).toBe(0);
    lease.release();
    // 13 ranged GETs of 1 MiB, none for the whole object.
    expect(source.ranges).toHaveLength(13);
    expect(source.ranges.every((r) => r !== undefined && r.end - r.start + 1 <= MiB)).toBe(true);
    expect(source.ranges.map((r) => r!.start).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 13 }, (_, i) => i * MiB),
    );
  });

  it("never completes an object from a multipart upload cancelled midway", async () => {
    const blob = blobOf(bytes(15 * MiB, 5));
    const sink = new S3BlobSink({ ...options, multipartThreshold: 1 * MiB, partSize: 5 * MiB, concurrency: 1 });
    const cancel = new AbortController();
    const put = sink.put(
      blob.digest,
      blob.bytes.length,
      await fileOf("cancelled.bin", blob.bytes),
      cancel.signal,
      (n) => {
        if (n >= 5 * MiB) cancel.abort(new Error("job cancelled"));
      },
    );
    await expect(put).rejects.toThrow();
    await expect(
      s3ClientFor(options).send(new GetObjectCommand({ Bucket: BUCKET, Key: sink.keyFor(blob.digest) })),
    ).rejects.toMatchObject({ name: "NoSuchKey" });
    sink.destroy();
  });

  it("stores a small blob as one PutObject under the key the source reads", async () => {
    const blob = blobOf(bytes(300_000, 2));
    const sink = new S3BlobSink(options);
    await sink.put(blob.digest, blob.bytes.length, await fileOf("single.bin", blob.bytes));
    const stored = await s3ClientFor(options).send(
      new GetObjectCommand({ Bucket: BUCKET, Key: sink.keyFor(blob.digest) }),
    );
    expect(Buffer.from(await stored.Body!.transformToByteArray()).equals(Buffer.from(blob.bytes))).toBe(true);
    sink.destroy();
  });

  it("refuses an object whose bytes are not its digest's, and keeps nothing", async () => {
    const blob = blobOf(bytes(3 * MiB, 3));
    const corrupted = blob.bytes.slice();
    corrupted[2 * MiB] = corrupted[2 * MiB]! ^ 0xff;
    const source = new S3BlobSource(options);
    await s3ClientFor(options).send(
      new PutObjectCommand({ Bucket: BUCKET, Key: source.keyFor(blob.digest), Body: corrupted }),
    );
    const cache = await cacheOver(source, "cache-corrupt");
    await expect(cache.acquire(blob.digest, blob.bytes.length)).rejects.toThrow(
      `blob ${blob.digest} failed verification: its bytes hash to ${blobOf(corrupted).digest}`,
    );
    expect(await readdir(join(dir, "cache-corrupt"))).toEqual([]);
  });

  it("answers a missing object with the runner's 404", async () => {
    const cache = await cacheOver(new S3BlobSource(options), "cache-missing");
    await expect(cache.acquire(blobOf(bytes(10, 4)).digest)).rejects.toMatchObject({ status: 404 });
  });
});
