/**
 * Blobs a runner produced (a quantize job's output), stored through the edge in the local stack; in production
 * runners write to the bucket through the S3 API and the edge only records the blob when a create uses it.
 *
 * No tenant owns such a blob yet: the create that asked for it takes ownership in its commit batch. Until then
 * a write pin keeps the GC away. The pin deliberately outlives this request (it expires by itself after
 * WRITE_PIN_MS): the create pins the digest again as soon as the runner reports it, and releasing ours first
 * would open a window in which the sweep could collect the ownerless row.
 */
import { ApiError } from "@corral/protocol";
import { pinForWriteOrWait, unpin } from "../db/blobs";
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
      await body?.cancel();
      if (stored.size !== length) throw new ApiError(400, `blob ${digest} is stored with another size`);
      return "exists";
    }
    await putVerified(env, digest, body ?? emptyStream(), new ResumableSha256(), length);
    await env.DB.prepare(
      "INSERT INTO blobs (digest, size, created_at, content) VALUES (?, ?, ?, NULL) ON CONFLICT (digest) DO NOTHING",
    )
      .bind(digest, length, Date.now())
      .run();
    return "created";
  } catch (err) {
    await unpin(env.DB, holder);
    throw err;
  }
}
