/**
 * `POST /api/blobs/:digest` with a Content-Length: one request carries the whole blob (up to the platform's body
 * cap; bigger blobs use the multipart API in multipart.ts, bodies without a length chunked-upload.ts).
 *
 * The body streams into R2 at the blob's final key while being hashed; it is never buffered. R2 is given the
 * expected SHA-256 (`put(..., { sha256 })`) and refuses to store an object whose bytes do not match, so a mismatch
 * leaves nothing behind without a temporary key or a second copy: one class-A operation per upload.
 *
 * A tenant that cannot see the blob yet must prove it holds the bytes even when another tenant stored them
 * already: the body is hashed (and discarded) before ownership is granted. Otherwise knowing a digest would be
 * enough to read someone else's private weights.
 */
import { ApiError } from "@corral/protocol";
import { discardBody } from "../body";
import {
  assertStorageQuota,
  type BlobRow,
  getBlob,
  pinForWriteOrWait,
  recordBlobStatements,
  unpin,
  unpinStatement,
  visibleBlob,
} from "../db/blobs";
import type { Env } from "../env";
import { TurnBudget } from "../turns";
import { ResumableSha256 } from "./resumable-sha256";
import { blobKey } from "./store";

/** Workers refuse request bodies over 100 MB; bigger blobs go through the multipart upload API. */
export const SIMPLE_UPLOAD_MAX_BYTES = 100 * 1000 * 1000;

/** Ollama's text: `digest mismatch, expected "sha256:…", got "sha256:…"`. */
export function digestMismatch(expected: string, gotHex: string): ApiError {
  return new ApiError(400, `digest mismatch, expected ${JSON.stringify(expected)}, got "sha256:${gotHex}"`);
}

/**
 * Pipes `body` through `hasher` into a stream of exactly `length` bytes (what R2 needs to accept a stream).
 * `done` rejects with a 400 when the body is shorter or longer than promised. Hashing goes in `budget`'s turns
 * (turns.ts): the pipe waits while other requests run, whatever sizes the chunks come in.
 */
export function hashedFixedLength(
  body: ReadableStream<Uint8Array>,
  hasher: ResumableSha256,
  length: number,
  budget = new TurnBudget(),
): { stream: ReadableStream<Uint8Array>; done: Promise<void> } {
  const fixed = new FixedLengthStream(length);
  let seen = 0;
  const hashing = new TransformStream<Uint8Array, Uint8Array>({
    async transform(chunk, controller) {
      seen += chunk.length;
      if (seen > length) throw new ApiError(400, "request body is longer than its Content-Length");
      await budget.slice(chunk, (slice) => hasher.update(slice));
      controller.enqueue(chunk);
    },
    flush() {
      if (seen !== length) throw new ApiError(400, "request body is shorter than its Content-Length");
    },
  });
  const done = body.pipeThrough(hashing).pipeTo(fixed.writable);
  done.catch(() => {});
  return { stream: fixed.readable, done };
}

/** Reads a stream to its end, hashing it in bounded turns, storing nothing. */
async function hashOnly(body: ReadableStream<Uint8Array>, hasher: ResumableSha256, length: number): Promise<void> {
  const budget = new TurnBudget();
  let seen = 0;
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    seen += chunk.length;
    if (seen > length) throw new ApiError(400, "request body is longer than its Content-Length");
    await budget.slice(chunk, (slice) => hasher.update(slice));
  }
  if (seen !== length) throw new ApiError(400, "request body is shorter than its Content-Length");
}

/** Parses a Content-Length header; the upload APIs need it to check quota before storing a byte. */
export function requireContentLength(header: string | undefined): number {
  if (header === undefined) throw new ApiError(411, "Content-Length is required");
  if (!/^\d{1,16}$/.test(header)) throw new ApiError(400, "invalid Content-Length");
  return Number(header);
}

export type StoreOutcome = "created" | "exists";

/** The tenant sees the blob already: its bytes are not needed, only its ownership row is touched. */
export async function keepVisibleBlob(
  env: Env,
  tenantId: string,
  digest: string,
  size: number,
  body: ReadableStream<Uint8Array> | null,
): Promise<StoreOutcome> {
  await discardBody(body);
  await env.DB.batch(recordBlobStatements(env.DB, { digest, size }, tenantId, Date.now()).slice(1));
  return "exists";
}

/** The blob's row when its bytes are in R2 already (any tenant's); null when they still have to be written. */
export async function storedBlob(env: Env, digest: string): Promise<BlobRow | null> {
  const existing = await getBlob(env.DB, digest);
  return existing !== null && (await env.BLOBS.head(blobKey(digest))) !== null ? existing : null;
}

/**
 * Stores a blob from a request body after checking quota; `created` when the blob is new to this tenant (even
 * if another tenant stored the same bytes: that is nobody else's business), `exists` when the tenant could
 * already see it.
 */
export async function storeBlob(
  env: Env,
  tenantId: string,
  digest: string,
  body: ReadableStream<Uint8Array> | null,
  length: number,
): Promise<StoreOutcome> {
  if (await visibleBlob(env.DB, tenantId, digest)) return keepVisibleBlob(env, tenantId, digest, length, body);
  if (length > SIMPLE_UPLOAD_MAX_BYTES) {
    throw new ApiError(413, `blob larger than ${SIMPLE_UPLOAD_MAX_BYTES} bytes: use the multipart upload API`);
  }
  await assertStorageQuota(env.DB, tenantId, digest, length);

  const holder = `put-${crypto.randomUUID()}`;
  await pinForWriteOrWait(env.DB, [digest], holder);
  try {
    const hasher = new ResumableSha256();
    const stored = await storedBlob(env, digest);
    if (stored) {
      await hashOnly(body ?? emptyStream(), hasher, length);
      const actual = hasher.hexDigest();
      if (`sha256:${actual}` !== digest || stored.size !== length) throw digestMismatch(digest, actual);
    } else {
      await putVerified(env, digest, body ?? emptyStream(), hasher, length);
    }
    await env.DB.batch([
      ...recordBlobStatements(env.DB, { digest, size: length }, tenantId, Date.now()),
      unpinStatement(env.DB, holder),
    ]);
    return "created";
  } catch (err) {
    await unpin(env.DB, holder);
    throw err;
  }
}

/** Streams into R2 with R2's own SHA-256 check; our hash decides what the client is told. */
export async function putVerified(
  env: Env,
  digest: string,
  body: ReadableStream<Uint8Array>,
  hasher: ResumableSha256,
  length: number,
): Promise<void> {
  const expectedHex = digest.slice("sha256:".length);
  const { stream, done } = hashedFixedLength(body, hasher, length);
  const [put, pumped] = await Promise.allSettled([
    env.BLOBS.put(blobKey(digest), stream, { sha256: expectedHex }),
    done,
  ]);
  if (pumped.status === "rejected") throw pumped.reason;
  const actual = hasher.hexDigest();
  if (actual !== expectedHex) {
    // R2 refused the object; if a store ever accepted it regardless, remove it (our write pin keeps GC away).
    if (put.status === "fulfilled") await env.BLOBS.delete(blobKey(digest));
    throw digestMismatch(digest, actual);
  }
  if (put.status === "rejected") throw put.reason;
}

export function emptyStream(): ReadableStream<Uint8Array> {
  return new ReadableStream({ start: (c) => c.close() });
}
