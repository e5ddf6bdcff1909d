/**
 * Where a runner stores a blob it produced (a quantize job's output): the edge's internal blob route (local stack)
 * or the bucket through the S3 API (production), the same store blob-source.ts reads from. The caller has hashed
 * the file; both sinks make the store check that hash again while it takes the bytes, so a blob is never stored
 * under a digest its bytes do not have.
 */
import { createHash } from "node:crypto";
import { type FileHandle, open } from "node:fs/promises";
import { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { digestHex, digestToFileName } from "@corral/protocol/digest";
import { type S3BlobSourceOptions, s3ClientFor } from "./blob-source";

export interface BlobSink {
  /**
   * Stores the file at `path` (`size` bytes hashing to `digest`) under `digest`. Resolves once the store holds it
   * (or already held it); rejects when the store refuses the bytes or `signal` aborts. `onProgress` reports the
   * bytes handed to the store so far.
   */
  put(
    digest: string,
    size: number,
    path: string,
    signal?: AbortSignal,
    onProgress?: (sent: number) => void,
  ): Promise<void>;
}

const READ_CHUNK = 1024 * 1024;
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Opens the file and checks it still has the size the caller hashed. */
async function openExact(path: string, size: number): Promise<FileHandle> {
  const handle = await open(path, "r");
  const actual = (await handle.stat()).size;
  if (actual !== size) {
    await handle.close();
    throw new Error(`blob file ${path} has ${actual} bytes, expected ${size}`);
  }
  return handle;
}

/** Reads `length` bytes at `position` into memory (one multipart part). */
async function readAt(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const bytes = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(bytes, filled, length - filled, position + filled);
    if (bytesRead === 0) throw new Error(`blob file ended at ${position + filled} bytes, expected more`);
    filled += bytesRead;
  }
  return bytes;
}

/** The file's bytes in order, reporting the running count as each chunk is handed out. */
async function* fileChunks(handle: FileHandle, onRead: (sent: number) => void): AsyncGenerator<Uint8Array> {
  let sent = 0;
  for (;;) {
    const chunk = Buffer.allocUnsafe(READ_CHUNK);
    const { bytesRead } = await handle.read(chunk, 0, READ_CHUNK, null);
    if (bytesRead === 0) return;
    sent += bytesRead;
    onRead(sent);
    yield chunk.subarray(0, bytesRead);
  }
}

/** A web stream over an async iterator (fetch's body). */
function webStream(chunks: AsyncGenerator<Uint8Array>): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await chunks.next();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    async cancel() {
      await chunks.return(undefined);
    },
  });
}

/** The error text of a store's answer: Ollama's `{"error": "..."}` when it sent one, else the status. */
async function answerText(response: Response): Promise<string> {
  const text = await response.text().catch(() => "");
  try {
    const body = JSON.parse(text) as { error?: unknown };
    if (typeof body.error === "string") return body.error;
  } catch {
    // not JSON
  }
  return text.trim().slice(0, 200) || `HTTP ${response.status}`;
}

/**
 * The local stack's store: `PUT {edge}/internal/blobs/:digest` with the runner secret. The edge hashes the body
 * while storing it and answers 400 `digest mismatch` (storing nothing) when the bytes are not the digest's;
 * 201 created, 200 already stored.
 */
export class EdgeBlobSink implements BlobSink {
  constructor(
    private readonly edgeUrl: string,
    private readonly secret: string,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  async put(
    digest: string,
    size: number,
    path: string,
    signal?: AbortSignal,
    onProgress?: (sent: number) => void,
  ): Promise<void> {
    // Validates the digest before it becomes a path segment.
    digestHex(digest);
    const url = `${this.edgeUrl.replace(/\/+$/, "")}/internal/blobs/${encodeURIComponent(digest)}`;
    const handle = await openExact(path, size);
    try {
      const response = await this.fetchImpl(url, {
        method: "PUT",
        headers: {
          authorization: `Bearer ${this.secret}`,
          "content-type": "application/octet-stream",
          "content-length": String(size),
        },
        body: webStream(fileChunks(handle, (sent) => onProgress?.(sent))),
        // Node's fetch sends a stream body only half-duplex (not in TypeScript's RequestInit).
        duplex: "half",
        signal,
      } as RequestInit);
      if (response.status === 200 || response.status === 201) {
        await response.body?.cancel();
        return;
      }
      throw new Error(`storing blob ${digest} failed: HTTP ${response.status} ${await answerText(response)}`);
    } finally {
      await handle.close();
    }
  }
}

export interface S3BlobSinkOptions extends S3BlobSourceOptions {
  /** Blobs at least this big go up as a multipart upload. Default 4 GiB (S3's single PUT stops at 5 GiB). */
  multipartThreshold?: number;
  /** Size of one part (raised when a blob would need more than 10,000). Default 64 MiB. */
  partSize?: number;
  /** Parts uploading at once; each holds one part in memory. Default 4. */
  concurrency?: number;
  /**
   * Called before any byte goes to the bucket: the edge records the blob (`POST /internal/blobs/:digest/intent`) so
   * its GC can collect it if no create ever adopts it; an object without a row would stay in the bucket forever.
   */
  announce?: (digest: string, size: number, signal?: AbortSignal) => Promise<void>;
}

/** The edge's blob intent endpoint, as S3BlobSink's `announce`. */
export function edgeBlobIntent(edgeUrl: string, secret: string, fetchImpl: typeof fetch = fetch) {
  return async (digest: string, size: number, signal?: AbortSignal): Promise<void> => {
    digestHex(digest);
    const url = `${edgeUrl.replace(/\/+$/, "")}/internal/blobs/${encodeURIComponent(digest)}/intent`;
    const response = await fetchImpl(url, {
      method: "POST",
      headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
      body: JSON.stringify({ size }),
      signal,
    });
    const text = await response.text().catch(() => "");
    if (response.status !== 200 && response.status !== 201) {
      throw new Error(`announcing blob ${digest} failed: HTTP ${response.status} ${text}`.trim());
    }
  };
}

const MAX_PARTS = 10_000;

const base64Sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("base64");

/**
 * Production's store: the bucket, under the key S3BlobSource reads (`blobs/sha256-<hex>`). A single PutObject
 * carries the blob's own sha256 (x-amz-checksum-sha256) so the store rejects bytes that do not match it; a multipart
 * upload carries each part's sha256 instead (S3 has no whole-object SHA-256 for multipart objects) and is aborted
 * when any part fails, so no half-written object or orphaned parts remain.
 */
export class S3BlobSink implements BlobSink {
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly keyPrefix: string;
  private readonly multipartThreshold: number;
  private readonly partSize: number;
  private readonly concurrency: number;
  private readonly announce: S3BlobSinkOptions["announce"];

  constructor(options: S3BlobSinkOptions) {
    this.bucket = options.bucket;
    this.keyPrefix = options.keyPrefix ?? "blobs/";
    this.multipartThreshold = options.multipartThreshold ?? 4 * GiB;
    this.partSize = Math.max(1, options.partSize ?? 64 * MiB);
    this.concurrency = Math.max(1, options.concurrency ?? 4);
    this.announce = options.announce;
    this.client = s3ClientFor(options);
  }

  /** The same key S3BlobSource.keyFor gives. */
  keyFor(digest: string): string {
    return `${this.keyPrefix}${digestToFileName(digest)}`;
  }

  async put(
    digest: string,
    size: number,
    path: string,
    signal?: AbortSignal,
    onProgress?: (sent: number) => void,
  ): Promise<void> {
    const key = this.keyFor(digest);
    await this.announce?.(digest, size, signal);
    const handle = await openExact(path, size);
    try {
      if (size >= this.multipartThreshold) {
        await this.putMultipart(key, size, handle, signal, onProgress);
        return;
      }
      const checksum = Buffer.from(digestHex(digest), "hex").toString("base64");
      // Streamed with its length declared (the SDK's HTTP handler takes a Node stream, not a web one).
      const body = Readable.from(fileChunks(handle, (sent) => onProgress?.(sent)));
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentLength: size,
          ContentType: "application/octet-stream",
          ChecksumSHA256: checksum,
        }),
        { abortSignal: signal },
      );
    } finally {
      await handle.close();
    }
  }

  private async putMultipart(
    key: string,
    size: number,
    handle: FileHandle,
    signal: AbortSignal | undefined,
    onProgress: ((sent: number) => void) | undefined,
  ): Promise<void> {
    const partSize = Math.max(this.partSize, Math.ceil(size / MAX_PARTS));
    const partCount = Math.max(1, Math.ceil(size / partSize));
    const created = await this.client.send(
      new CreateMultipartUploadCommand({
        Bucket: this.bucket,
        Key: key,
        ContentType: "application/octet-stream",
        ChecksumAlgorithm: "SHA256",
      }),
      { abortSignal: signal },
    );
    const uploadId = created.UploadId;
    if (!uploadId) throw new Error(`multipart upload of ${key} got no upload id`);
    const parts: CompletedPart[] = new Array(partCount);
    let next = 0;
    let sent = 0;
    let failure: unknown;
    const worker = async () => {
      while (failure === undefined && next < partCount && !signal?.aborted) {
        const index = next++;
        const start = index * partSize;
        const length = Math.min(size, start + partSize) - start;
        const bytes = await readAt(handle, start, length);
        const checksum = base64Sha256(bytes);
        const result = await this.client.send(
          new UploadPartCommand({
            Bucket: this.bucket,
            Key: key,
            UploadId: uploadId,
            PartNumber: index + 1,
            Body: bytes,
            ContentLength: length,
            ChecksumSHA256: checksum,
          }),
          { abortSignal: signal },
        );
        parts[index] = { PartNumber: index + 1, ETag: result.ETag, ChecksumSHA256: result.ChecksumSHA256 ?? checksum };
        sent += length;
        onProgress?.(sent);
      }
    };
    try {
      await Promise.all(
        Array.from({ length: Math.min(this.concurrency, partCount) }, () =>
          worker().catch((err) => {
            failure ??= err;
          }),
        ),
      );
      if (failure !== undefined) throw failure;
      signal?.throwIfAborted();
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
        }),
        { abortSignal: signal },
      );
    } catch (err) {
      // Not under the job's signal: the abort must reach the store even when the job was cancelled.
      await this.client
        .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }))
        .catch(() => {});
      throw err;
    }
  }

  destroy(): void {
    this.client.destroy();
  }
}
