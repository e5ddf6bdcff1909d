/**
 * Blobs a runner produced (a quantize job's output). In the local stack the runner stores them through the edge
 * (`PUT /internal/blobs/:digest`); in production it writes to the bucket over the S3 API, after announcing the
 * digest (`POST /internal/blobs/:digest/intent`) so that the GC knows of the object even if nobody ever adopts it:
 * the GC only deletes what has a row.
 *
 * No tenant owns such a blob yet: the create that asked for it takes ownership in its commit batch. Until then
 * a write pin keeps the GC away. The pin deliberately outlives this request (it expires by itself after
 * WRITE_PIN_MS): the create pins the digest again as soon as the runner reports it, and releasing ours first
 * would open a window in which the sweep could collect the ownerless row.
 */
import { ApiError } from "@corral/protocol";
import { discardBody } from "../body";
import { getBlob, pinForWriteOrWait, recordOwnerlessBlob, unpin } from "../db/blobs";
import type { Env } from "../env";
import { ResumableSha256 } from "./resumable-sha256";
import { emptyStream, putVerified, type StoreOutcome, storedBlob } from "./upload";

/** What one request body may carry (the Workers body cap); bigger results go to the bucket over S3. */
export const RUNNER_UPLOAD_MAX_BYTES = 100 * 1000 * 1000;

export async function storeRunnerBlob(
  env: Env,
  digest: string,
  body: ReadableStream<Uint8Array> | null,
  length: number,
): Promise<StoreOutcome> {
  if (length > RUNNER_UPLOAD_MAX_BYTES) {
    throw new ApiError(413, `blob larger than ${RUNNER_UPLOAD_MAX_BYTES} bytes: configure the runner's S3 blob store`);
  }
  const holder = `runner-put-${crypto.randomUUID()}`;
  await pinForWriteOrWait(env.DB, [digest], holder);
  try {
    const stored = await storedBlob(env, digest);
    if (stored) {
      await discardBody(body);
      if (stored.size !== length) throw new ApiError(400, `blob ${digest} is stored with another size`);
      return "exists";
    }
    await putVerified(env, digest, body ?? emptyStream(), new ResumableSha256(), length);
    await recordOwnerlessBlob(env.DB, digest, length);
    return "created";
  } catch (err) {
    await unpin(env.DB, holder);
    throw err;
  }
}

/** How long an announced upload keeps the GC away: longer than any single upload of a result takes. */
export const INTENT_PIN_MS = 6 * 60 * 60_000;

/**
 * A runner is about to write `digest` to the bucket itself: an ownerless row (collected by the sweep unless a create
 * adopts the blob) and a pin that outlives the upload. Idempotent; a row recorded with another size is a conflict.
 */
export async function announceRunnerBlob(env: Env, digest: string, size: number): Promise<"created" | "exists"> {
  await pinForWriteOrWait(env.DB, [digest], `runner-put-${crypto.randomUUID()}`, INTENT_PIN_MS);
  if (await recordOwnerlessBlob(env.DB, digest, size)) return "created";
  const row = await getBlob(env.DB, digest);
  if (row && row.size !== size) throw new ApiError(409, `blob ${digest} is recorded with another size`);
  return "exists";
}
