/**
 * `POST /api/blobs/:digest` without a Content-Length: how Ollama's own clients send blobs (the Go CLI streams the
 * file as a chunked body, the Python client a generator). R2 stores a stream only when its length is known, so an
 * unknown-length body goes into an R2 multipart upload on the blob's final key, buffered a part at a time:
 *
 * - bytes are hashed as they arrive (the runtime's native DigestStream: no state has to outlive the request);
 * - before each part is handed to R2 the tenant's storage quota is checked against the bytes received so far, so an
 *   over-quota upload stops early (abort, 413) instead of after the whole body;
 * - parts are all `partSize` bytes except the last, which R2 requires; one part uploads while the next fills;
 * - the multipart upload is completed only after the full digest matched; a mismatch, an error or a vanished
 *   client aborts it, so nothing becomes an object, a row, or visible. A body that fits in one part skips the
 *   multipart machinery: it is `put` once verified.
 *
 * While it runs, the upload holds a write pin on the digest (GC keeps away) and an `uploads` row (id prefix
 * `chunked_`, never served by the multipart API) whose expiry is renewed per part: if the Worker dies mid-body,
 * the sweep finds the row once it expires and aborts the R2 upload, so no parts are left behind forever.
 */
import { ApiError } from "@corral/protocol";
import {
  assertStorageQuota,
  extendPinsStatement,
  pinForWriteOrWait,
  recordBlobStatements,
  unpin,
  unpinStatement,
  visibleBlob,
  WRITE_PIN_MS,
} from "../db/blobs";
import { chunkedUploadProgressStatement, deleteUploadStatement, insertUpload } from "../db/uploads";
import type { Env } from "../env";
import { TurnBudget } from "../turns";
import { MAX_PARTS } from "./multipart";
import { blobKey } from "./store";
import { digestMismatch, keepVisibleBlob, type StoreOutcome, storedBlob } from "./upload";

const MiB = 1024 * 1024;
/** Within R2's limits (≥ 5 MiB, equal sizes); two buffers of it are held at most. */
export const CHUNKED_PART_SIZE = 8 * MiB;

/** Stores a blob from a body of unknown length; outcomes as for the Content-Length path (storeBlob). */
export async function storeChunkedBlob(
  env: Env,
  tenantId: string,
  digest: string,
  body: ReadableStream<Uint8Array> | null,
  partSize = CHUNKED_PART_SIZE,
): Promise<StoreOutcome> {
  const visible = await visibleBlob(env.DB, tenantId, digest);
  if (visible) return keepVisibleBlob(env, tenantId, digest, visible.size, body);
  // Refuses a tenant already at its quota before reading anything; the real checks come per part.
  await assertStorageQuota(env.DB, tenantId, digest, 0);

  const holder = `put-${crypto.randomUUID()}`;
  await pinForWriteOrWait(env.DB, [digest], holder);
  const writer = new ChunkedWriter(env, tenantId, digest, holder, partSize);
  try {
    const stored = await storedBlob(env, digest);
    // Bytes another tenant stored already are only hashed (and counted against the quota, part by part).
    const sink: BodySink = stored ? quotaCounter(env, tenantId, digest, partSize) : writer;
    const { size, hex } = await readBody(body ?? emptyStream(), sink);
    if (`sha256:${hex}` !== digest || (stored && stored.size !== size)) throw digestMismatch(digest, hex);
    if (stored) await assertStorageQuota(env.DB, tenantId, digest, size);
    else await writer.finish(hex);
    await env.DB.batch([
      ...recordBlobStatements(env.DB, { digest, size }, tenantId, Date.now()),
      unpinStatement(env.DB, holder),
      ...writer.forgetStatements(),
    ]);
    return "created";
  } catch (err) {
    if (body && !body.locked) await body.cancel().catch(() => {});
    await writer.abort();
    await unpin(env.DB, holder);
    throw err;
  }
}

interface BodySink {
  write(chunk: Uint8Array): Promise<void>;
}

/**
 * Reads the whole body into `sink`, hashing it, in bounded turns (turns.ts); on any failure the body is cancelled
 * (the client stops sending).
 */
async function readBody(body: ReadableStream<Uint8Array>, sink: BodySink): Promise<{ size: number; hex: string }> {
  const digestStream = new crypto.DigestStream("SHA-256");
  const hashing = digestStream.getWriter();
  const reader = body.getReader();
  const budget = new TurnBudget();
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (value.length === 0) continue;
      await budget.spend(value.length);
      await hashing.write(value);
      size += value.length;
      await sink.write(value);
    }
  } catch (err) {
    await reader.cancel().catch(() => {});
    throw err;
  }
  await hashing.close();
  const hex = [...new Uint8Array(await digestStream.digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return { size, hex };
}

/** A sink that stores nothing and checks the quota each time another part's worth of bytes has passed. */
function quotaCounter(env: Env, tenantId: string, digest: string, partSize: number): BodySink {
  let seen = 0;
  return {
    async write(chunk) {
      const before = seen;
      seen += chunk.length;
      if (Math.floor(seen / partSize) > Math.floor(before / partSize)) {
        await assertStorageQuota(env.DB, tenantId, digest, seen);
      }
    },
  };
}

function emptyStream(): ReadableStream<Uint8Array> {
  return new ReadableStream({ start: (c) => c.close() });
}

/** Buffers bytes into fixed-size parts and ships full parts to an R2 multipart upload, created lazily. */
class ChunkedWriter implements BodySink {
  private received = 0;
  /** Parts handed to R2 so far (the one in flight included). */
  private shipped = 0;
  private buffer: Uint8Array;
  private filled = 0;
  private upload: R2MultipartUpload | null = null;
  private readonly rowId = `chunked_${crypto.randomUUID().replace(/-/g, "")}`;
  private readonly parts: R2UploadedPart[] = [];
  private inFlight: Promise<R2UploadedPart> | null = null;

  constructor(
    private readonly env: Env,
    private readonly tenantId: string,
    private readonly digest: string,
    private readonly holder: string,
    private readonly partSize: number,
  ) {
    this.buffer = new Uint8Array(partSize);
  }

  async write(chunk: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < chunk.length) {
      // A full buffer is shipped only once more bytes arrive: the last part is whatever remains at the end.
      if (this.filled === this.partSize) await this.shipPart();
      const take = Math.min(chunk.length - offset, this.partSize - this.filled);
      this.buffer.set(chunk.subarray(offset, offset + take), this.filled);
      this.filled += take;
      offset += take;
      this.received += take;
    }
  }

  /** Stores what was buffered, once the caller has verified the digest (`hex`). */
  async finish(hex: string): Promise<void> {
    await assertStorageQuota(this.env.DB, this.tenantId, this.digest, this.received);
    const last = this.buffer.subarray(0, this.filled);
    if (!this.upload) {
      await this.env.BLOBS.put(blobKey(this.digest), last, { sha256: hex });
      return;
    }
    const upload = this.upload;
    await this.drain();
    this.parts.push(await upload.uploadPart(this.shipped + 1, last));
    await upload.complete(this.parts);
  }

  /** Statements dropping the bookkeeping row, for the caller's final batch. */
  forgetStatements(): D1PreparedStatement[] {
    return this.upload ? [deleteUploadStatement(this.env.DB, this.rowId)] : [];
  }

  async abort(): Promise<void> {
    if (!this.upload) return;
    await this.inFlight?.catch(() => {});
    await this.upload.abort().catch(() => {});
    await deleteUploadStatement(this.env.DB, this.rowId).run();
  }

  private async shipPart(): Promise<void> {
    // This part cannot be the last, so the last one would be past R2's limit.
    if (this.shipped + 1 >= MAX_PARTS) {
      throw new ApiError(413, "blob too large for a single request: use the multipart upload API");
    }
    // The bytes in this part count against the quota before R2 receives them.
    await assertStorageQuota(this.env.DB, this.tenantId, this.digest, this.received);
    const upload = this.upload ?? (await this.begin());
    await this.renew();
    await this.drain();
    const part = upload.uploadPart(++this.shipped, this.buffer);
    part.catch(() => {});
    this.inFlight = part;
    this.buffer = new Uint8Array(this.partSize);
    this.filled = 0;
  }

  private async drain(): Promise<void> {
    if (!this.inFlight) return;
    const part = this.inFlight;
    this.inFlight = null;
    this.parts.push(await part);
  }

  private async begin(): Promise<R2MultipartUpload> {
    const upload = await this.env.BLOBS.createMultipartUpload(blobKey(this.digest));
    this.upload = upload;
    const now = Date.now();
    const inserted = await insertUpload(this.env.DB, {
      id: this.rowId,
      tenant_id: this.tenantId,
      digest: this.digest,
      size: 0,
      r2_upload_id: upload.uploadId,
      r2_key: upload.key,
      part_size: this.partSize,
      created_at: now,
      expires_at: now + WRITE_PIN_MS,
    });
    // Our write pin keeps the GC away, so this is refused only if the pin lapsed: stop rather than race it.
    if (!inserted) throw new ApiError(503, "blob is being removed, please retry");
    return upload;
  }

  /** Keeps the write pin and the row alive for as long as parts keep coming. */
  private async renew(): Promise<void> {
    const now = Date.now();
    await this.env.DB.batch([
      extendPinsStatement(this.env.DB, this.holder, now),
      chunkedUploadProgressStatement(this.env.DB, this.rowId, this.received, now + WRITE_PIN_MS),
    ]);
  }
}
