/**
 * Resumable, part-by-part blob uploads for blobs beyond the platform's request-body cap (see edge/UPLOADS.md).
 *
 * Each part request streams into an R2 multipart upload on the blob's final key while the running SHA-256 is
 * carried from part to part in the uploads row. Parts must therefore arrive in order; the row records which are
 * done, so a client resumes by asking. `complete` checks the full digest and only then completes the R2 upload:
 * an unverified blob never becomes an object, a row, or visible.
 *
 * Concurrency: every row update is compare-and-set on the previous hash state, and R2 checks each part's etag on
 * completion, so two clients racing on one upload can break only that upload (it then fails), never store bytes
 * under a digest they do not hash to.
 */
import { ApiError } from "@corral/protocol";
import { z } from "zod";
import { assertStorageQuota, recordBlobStatements, visibleBlob } from "../db/blobs";
import {
  deleteUploadStatement,
  expiredUploads,
  getUpload,
  insertUpload,
  recordUploadPart,
  type UploadRow,
} from "../db/uploads";
import type { Env } from "../env";
import { ResumableSha256 } from "./resumable-sha256";
import { blobKey } from "./store";
import { digestMismatch, hashedFixedLength } from "./upload";

const MiB = 1024 * 1024;
/** R2's minimum part size (all parts but the last). */
export const MIN_PART_SIZE = 5 * MiB;
/** Below the 100 MB request cap with room for headers. */
export const MAX_PART_SIZE = 95 * MiB;
export const DEFAULT_PART_SIZE = 64 * MiB;
export const MAX_PARTS = 10_000;
/** An upload untouched this long is aborted by the sweep. */
export const UPLOAD_IDLE_MS = 24 * 60 * 60_000;

export const StartUploadSchema = z.object({
  size: z.number().int().positive(),
  part_size: z
    .number()
    .int()
    .min(MIN_PART_SIZE)
    .max(MAX_PART_SIZE)
    .refine((n) => n % 64 === 0, "must be a multiple of 64")
    .optional(),
});

interface DonePart {
  part: number;
  etag: string;
}

export interface UploadStatus {
  upload_id: string;
  digest: string;
  size: number;
  part_size: number;
  part_count: number;
  parts_done: number[];
  next_part: number | null;
  expires_at: string;
}

const partCount = (row: Pick<UploadRow, "size" | "part_size">) => Math.ceil(row.size / row.part_size);

function expectedPartLength(row: UploadRow, n: number): number {
  return n < partCount(row) ? row.part_size : row.size - (partCount(row) - 1) * row.part_size;
}

function statusOf(row: UploadRow): UploadStatus {
  const done = (JSON.parse(row.parts) as DonePart[]).map((p) => p.part);
  const total = partCount(row);
  return {
    upload_id: row.id,
    digest: row.digest,
    size: row.size,
    part_size: row.part_size,
    part_count: total,
    parts_done: done,
    next_part: done.length < total ? done.length + 1 : null,
    expires_at: new Date(row.expires_at).toISOString(),
  };
}

const uploadNotFound = () => new ApiError(404, "upload not found");

async function loadUpload(env: Env, tenantId: string, digest: string, id: string, now: number): Promise<UploadRow> {
  // Rows of other kinds (chunked POSTs in progress, see chunked-upload.ts) are not this API's to touch.
  if (!id.startsWith("up_")) throw uploadNotFound();
  const row = await getUpload(env.DB, id, tenantId, digest);
  if (!row || row.expires_at <= now) throw uploadNotFound();
  return row;
}

export async function startUpload(
  env: Env,
  tenantId: string,
  digest: string,
  request: z.infer<typeof StartUploadSchema>,
  now = Date.now(),
): Promise<UploadStatus> {
  const partSize = request.part_size ?? DEFAULT_PART_SIZE;
  if (Math.ceil(request.size / partSize) > MAX_PARTS) {
    throw new ApiError(400, `blob too large: at most ${MAX_PARTS} parts of ${partSize} bytes`);
  }
  if (!(await visibleBlob(env.DB, tenantId, digest))) {
    await assertStorageQuota(env.DB, tenantId, digest, request.size);
  }
  const key = blobKey(digest);
  const r2 = await env.BLOBS.createMultipartUpload(key);
  const id = `up_${crypto.randomUUID().replace(/-/g, "")}`;
  // Refused while the GC is deleting this digest's object, so that delete cannot land after our completion.
  const inserted = await insertUpload(env.DB, {
    id,
    tenant_id: tenantId,
    digest,
    size: request.size,
    r2_upload_id: r2.uploadId,
    r2_key: key,
    part_size: partSize,
    created_at: now,
    expires_at: now + UPLOAD_IDLE_MS,
  });
  if (!inserted) {
    await r2.abort();
    throw new ApiError(503, "blob is being removed, please retry");
  }
  const row = await loadUpload(env, tenantId, digest, id, now);
  return statusOf(row);
}

export async function uploadStatus(env: Env, tenantId: string, digest: string, id: string): Promise<UploadStatus> {
  return statusOf(await loadUpload(env, tenantId, digest, id, Date.now()));
}

export async function uploadPart(
  env: Env,
  tenantId: string,
  digest: string,
  id: string,
  n: number,
  body: ReadableStream<Uint8Array> | null,
  length: number,
  now = Date.now(),
): Promise<UploadStatus> {
  const row = await loadUpload(env, tenantId, digest, id, now);
  const done = JSON.parse(row.parts) as DonePart[];
  const total = partCount(row);
  if (!Number.isInteger(n) || n < 1 || n > total) throw new ApiError(400, `part number must be 1..${total}`);
  if (n <= done.length) throw new ApiError(409, `part ${n} is already uploaded; next part is ${done.length + 1}`);
  if (n !== done.length + 1) throw new ApiError(409, `parts must be sent in order; next part is ${done.length + 1}`);
  const expected = expectedPartLength(row, n);
  if (length !== expected) throw new ApiError(400, `part ${n} must be exactly ${expected} bytes`);

  const hasher = row.hash_state === null ? new ResumableSha256() : ResumableSha256.fromState(row.hash_state);
  if (!hasher || hasher.bytes !== (n - 1) * row.part_size) throw new ApiError(500, "upload state is corrupt");
  const { stream, done: pumped } = hashedFixedLength(
    body ?? new ReadableStream({ start: (c) => c.close() }),
    hasher,
    length,
  );
  const r2 = env.BLOBS.resumeMultipartUpload(row.r2_key, row.r2_upload_id);
  const [uploaded, pump] = await Promise.allSettled([r2.uploadPart(n, stream), pumped]);
  if (pump.status === "rejected") throw pump.reason;
  if (uploaded.status === "rejected") throw uploaded.reason;

  // The last part leaves the hash mid-block, so it is finished now and its digest kept instead of the state.
  const nextState = n === total ? `final:${hasher.hexDigest()}` : hasher.exportState();
  const parts = JSON.stringify([...done, { part: n, etag: uploaded.value.etag }]);
  const recorded = await recordUploadPart(env.DB, row, {
    hash_state: nextState,
    parts,
    expires_at: now + UPLOAD_IDLE_MS,
  });
  if (!recorded) throw new ApiError(409, `part ${n} was uploaded concurrently; ask for the status`);
  return statusOf({ ...row, hash_state: nextState, parts, expires_at: now + UPLOAD_IDLE_MS });
}

/** Verifies the whole digest and only then completes the R2 object and records the blob. */
export async function completeUpload(
  env: Env,
  tenantId: string,
  digest: string,
  id: string,
  now = Date.now(),
): Promise<"created" | "exists"> {
  const row = await loadUpload(env, tenantId, digest, id, now);
  const done = JSON.parse(row.parts) as DonePart[];
  if (done.length !== partCount(row)) {
    throw new ApiError(400, `upload incomplete: ${done.length} of ${partCount(row)} parts received`);
  }
  const r2 = env.BLOBS.resumeMultipartUpload(row.r2_key, row.r2_upload_id);
  const actual = row.hash_state?.startsWith("final:") ? row.hash_state.slice("final:".length) : "";
  if (actual !== digest.slice("sha256:".length)) {
    await abortRow(env, row);
    throw digestMismatch(digest, actual);
  }
  const wasVisible = (await visibleBlob(env.DB, tenantId, digest)) !== null;
  try {
    await r2.complete(done.map((p) => ({ partNumber: p.part, etag: p.etag })));
  } catch {
    await abortRow(env, row);
    throw new ApiError(409, "upload parts do not match what was recorded; start the upload again");
  }
  await env.DB.batch([
    ...recordBlobStatements(env.DB, { digest, size: row.size }, tenantId, now),
    deleteUploadStatement(env.DB, id),
  ]);
  return wasVisible ? "exists" : "created";
}

export async function abortUpload(env: Env, tenantId: string, digest: string, id: string): Promise<void> {
  await abortRow(env, await loadUpload(env, tenantId, digest, id, Date.now()));
}

async function abortRow(env: Env, row: UploadRow): Promise<void> {
  try {
    await env.BLOBS.resumeMultipartUpload(row.r2_key, row.r2_upload_id).abort();
  } catch {
    // Already completed or aborted in R2: the row is all that is left to remove.
  }
  await deleteUploadStatement(env.DB, row.id).run();
}

/** Aborts uploads nobody touched within UPLOAD_IDLE_MS (called by the GC sweep). */
export async function abortExpiredUploads(env: Env, now: number, limit: number): Promise<number> {
  const results = await expiredUploads(env.DB, now, limit);
  for (const row of results) await abortRow(env, row);
  return results.length;
}
