/**
 * Downloading one blob from a registry into the bucket, resumably.
 *
 * The bytes go into a multipart upload of the registry module (edge/src/store/multipart.ts): the same
 * machinery a client uses for big uploads, with the running SHA-256 carried in the uploads row from part to part.
 * Parts are fetched with parallel ranged GETs (each buffered until its turn), uploaded strictly in order, and each
 * finished part is durable at once. An interrupted pull finds its upload again through `pull_uploads` and asks
 * the registry only for the parts that are missing. The upload is completed (verified) by the caller, after every
 * blob of the manifest is in: Ollama's `verifying sha256 digest` step.
 */
import { ApiError } from "@corral/protocol";
import { visibleDigests } from "../db/blobs";
import { forgetPullUpload, forgetPullUploadsBefore, pullUploadId, savePullUpload } from "../db/pull-uploads";
import { completeUpload, startUpload, type UploadStatus, uploadPart, uploadStatus } from "../store/multipart";
import { storeBlob } from "../store/upload";
import { isRetryableFailure, RegistryClient, type RegistryRef } from "./client";
import type { OciEnv, PullSettings } from "./config";
import { sleep } from "./http";

export interface BlobJob {
  tenantId: string;
  digest: string;
  size: number;
  registry: RegistryRef;
  settings: PullSettings;
}

/** R2 multipart uploads have at most this many parts; huge blobs get bigger parts. */
const MAX_PARTS = 10_000;

export function partSizeFor(size: number, configured: number): number {
  const needed = Math.ceil(size / MAX_PARTS / 64) * 64;
  return Math.max(configured, needed);
}

class StallError extends Error {}

/** Finds the upload an earlier pull of this blob left behind, if it is still alive and matches. */
async function existingUpload(env: OciEnv, job: BlobJob): Promise<UploadStatus | null> {
  const uploadId = await pullUploadId(env.DB, job.tenantId, job.digest);
  if (!uploadId) return null;
  try {
    const status = await uploadStatus(env, job.tenantId, job.digest, uploadId);
    if (status.size === job.size) return status;
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) throw err;
  }
  await forgetUpload(env, job.tenantId, job.digest);
  return null;
}

export async function forgetUpload(env: OciEnv, tenantId: string, digest: string): Promise<void> {
  await forgetPullUpload(env.DB, tenantId, digest);
}

/** Mappings older than this point at uploads the sweep has long aborted (they idle out after a day). */
const STALE_MAPPING_MS = 7 * 24 * 60 * 60_000;

async function openUpload(env: OciEnv, job: BlobJob): Promise<UploadStatus> {
  await forgetPullUploadsBefore(env.DB, Date.now() - STALE_MAPPING_MS);
  const found = await existingUpload(env, job);
  if (found) return found;
  const status = await startUpload(env, job.tenantId, job.digest, {
    size: job.size,
    part_size: partSizeFor(job.size, job.settings.partSize),
  });
  await savePullUpload(env.DB, job.tenantId, job.digest, status.upload_id);
  return status;
}

/**
 * Fetches every missing part of the blob into its multipart upload. Reports cumulative bytes (parts stored by
 * earlier attempts included) through `onProgress`. Returns the upload id, or null for an empty blob (nothing to
 * upload: the caller stores it directly). Rejects with the abort reason when `signal` fires.
 */
export async function downloadBlob(
  env: OciEnv,
  job: BlobJob,
  onProgress: (completed: number) => void,
  signal: AbortSignal,
  fetcher?: typeof fetch,
): Promise<string | null> {
  if (job.size === 0) return null;
  const status = await openUpload(env, job);
  const { part_size: partSize, part_count: partCount, upload_id: uploadId } = status;
  let completed = Math.min(job.size, status.parts_done.length * partSize);
  onProgress(completed);
  if (status.next_part === null) return uploadId;

  const client = new RegistryClient(job.registry, fetcher);
  const report = (delta: number) => {
    completed += delta;
    onProgress(Math.min(completed, job.size));
  };
  const partRange = (n: number) => {
    const start = (n - 1) * partSize;
    return { start, length: Math.min(partSize, job.size - start) };
  };

  const inFlight = new Map<number, Promise<Uint8Array>>();
  let nextToFetch = status.next_part;
  const fill = () => {
    while (nextToFetch <= partCount && inFlight.size < job.settings.concurrency) {
      const n = nextToFetch++;
      const { start, length } = partRange(n);
      const bytes = fetchPartWithRetries(client, job, start, length, report, signal);
      bytes.catch(() => {});
      inFlight.set(n, bytes);
    }
  };

  try {
    for (let n = status.next_part; n <= partCount; n++) {
      fill();
      const bytes = await inFlight.get(n)!;
      inFlight.delete(n);
      // The freed slot is refilled only once this part is stored, so a part is requested only when every part
      // before the window is durable: an interruption then costs at most the window.
      await uploadInOrder(env, job, uploadId, n, bytes, signal);
    }
  } finally {
    inFlight.clear();
  }
  return uploadId;
}

async function uploadInOrder(
  env: OciEnv,
  job: BlobJob,
  uploadId: string,
  n: number,
  bytes: Uint8Array,
  signal: AbortSignal,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    signal.throwIfAborted();
    try {
      await uploadPart(env, job.tenantId, job.digest, uploadId, n, new Response(bytes).body, bytes.byteLength);
      return;
    } catch (err) {
      // The row is updated only after R2 took the part, so a storage hiccup can simply be retried; an ApiError
      // (conflict, corrupt state) cannot.
      if (err instanceof ApiError || attempt >= 3) throw err;
      await sleep(250 * attempt, signal);
    }
  }
}

async function fetchPartWithRetries(
  client: RegistryClient,
  job: BlobJob,
  start: number,
  length: number,
  report: (delta: number) => void,
  signal: AbortSignal,
): Promise<Uint8Array> {
  let lastError: unknown;
  for (let attempt = 0; attempt < job.settings.retries; attempt++) {
    if (attempt > 0) await sleep(Math.min(10_000, 500 * 2 ** (attempt - 1)), signal);
    let received = 0;
    try {
      return await fetchPart(client, job, start, length, signal, (delta) => {
        received += delta;
        report(delta);
      });
    } catch (err) {
      report(-received);
      signal.throwIfAborted();
      if (!isRetryableFailure(err)) throw err;
      lastError = err;
    }
  }
  const why = lastError instanceof Error ? lastError.message : String(lastError);
  throw new ApiError(502, `downloading ${job.digest} failed after ${job.settings.retries} attempts: ${why}`);
}

/** One ranged GET, read to exactly `length` bytes; gives up when no byte arrives for `stallMs`. */
async function fetchPart(
  client: RegistryClient,
  job: BlobJob,
  start: number,
  length: number,
  jobSignal: AbortSignal,
  onBytes: (delta: number) => void,
): Promise<Uint8Array> {
  const controller = new AbortController();
  const onAbort = () => controller.abort(jobSignal.reason);
  jobSignal.addEventListener("abort", onAbort, { once: true });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stopStallTimer = () => {
    if (timer !== undefined) clearTimeout(timer);
  };
  const armStallTimer = () => {
    stopStallTimer();
    timer = setTimeout(() => controller.abort(new StallError("part stalled")), job.settings.stallMs);
  };
  try {
    armStallTimer();
    const res = await client.getBlobRange(job.digest, start, start + length - 1, job.size, controller.signal);
    if (!res.body) throw new Error("registry sent no body");
    const out = new Uint8Array(length);
    let offset = 0;
    const reader = res.body.getReader();
    try {
      for (;;) {
        armStallTimer();
        const { done, value } = await reader.read();
        if (done) break;
        if (offset + value.byteLength > length) {
          throw new ApiError(502, `registry sent more than the ${length} bytes asked for of ${job.digest}`);
        }
        out.set(value, offset);
        offset += value.byteLength;
        onBytes(value.byteLength);
      }
    } finally {
      reader.cancel().catch(() => {});
    }
    if (offset !== length) throw new Error(`registry sent ${offset} of ${length} bytes`);
    return out;
  } catch (err) {
    // An abort for a stall surfaces as the abort reason; report it as the stall it is.
    if (controller.signal.reason instanceof StallError && !jobSignal.aborted) throw controller.signal.reason;
    throw err;
  } finally {
    stopStallTimer();
    jobSignal.removeEventListener("abort", onAbort);
  }
}

export interface CommitJob {
  tenantId: string;
  digest: string;
  size: number;
  /** From downloadBlob; null for an empty blob. */
  uploadId: string | null;
}

/** Ollama's wording for a blob whose bytes do not hash to its digest. */
function pullDigestMismatch(err: ApiError, digest: string): ApiError {
  const got = /got "?(sha256:[0-9a-f]{64})"?/.exec(err.message)?.[1] ?? "a different digest";
  return new ApiError(400, `digest mismatch, file must be downloaded again: want ${digest}, got ${got}`);
}

/**
 * The verify step: completes the blob's upload, which the registry module does only when the full SHA-256
 * matches; a mismatch discards the upload, so the next pull downloads the blob again.
 */
export async function commitUpload(env: OciEnv, job: CommitJob): Promise<void> {
  if (job.uploadId === null) {
    await storeBlob(env, job.tenantId, job.digest, new ReadableStream({ start: (c) => c.close() }), 0);
    return;
  }
  try {
    await completeUpload(env, job.tenantId, job.digest, job.uploadId);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    if (err.message.startsWith("digest mismatch")) {
      await forgetUpload(env, job.tenantId, job.digest);
      throw pullDigestMismatch(err, job.digest);
    }
    // Completed already (a retried commit): fine once the blob is the tenant's.
    const visible = await visibleDigests(env.DB, job.tenantId, [job.digest]);
    if (!visible.has(job.digest)) throw err;
  }
  await forgetUpload(env, job.tenantId, job.digest);
}
