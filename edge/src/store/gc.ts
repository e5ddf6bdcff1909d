/**
 * Blob garbage collection.
 *
 * A blob's bytes may be deleted only when nothing needs them: no model of any tenant references it
 * (model_layers), no tenant owns it (blob_owners: uploaded and not yet released), no multipart upload of it is in
 * progress (uploads) and no writer holds a live pin on it (blob_pins 'write': an upload storing it or a create
 * about to reference it). D1 and R2 share no transaction, so the protocol is:
 *
 * 1. one D1 batch (a transaction): take a 'delete' pin on the digest only if all of the above hold, and delete
 *    the blobs row only if that pin was taken. D1 serialises writes, so a writer either pinned first (and GC skips
 *    the digest) or finds the blob row gone (and stores the bytes anew).
 * 2. delete the R2 object. Writers refuse to pin a digest under a live 'delete' pin, so no upload can write the
 *    key between the row delete and the object delete.
 * 3. drop the 'delete' pin.
 *
 * A create that loses the race fails cleanly: its layer rows take their digest from the blobs row (NOT NULL), so
 * its batch rolls back instead of leaving a manifest that points at nothing.
 */
import { unpin } from "../db/blobs";
import { claimUnneededBlobs, dropExpiredPins, orphanBlobs, releaseOwnership, releaseUnusedOwnership } from "../db/gc";
import type { Env } from "../env";
import { abortExpiredUploads } from "./multipart";
import { blobKey } from "./store";

/** Unused uploads are kept this long for a create to reference them, then released. */
export const UNUSED_BLOB_GRACE_MS = 24 * 60 * 60_000;

/** Deletes every candidate digest nothing needs any more; returns those deleted. */
export async function collectBlobs(env: Env, candidates: readonly string[], now = Date.now()): Promise<string[]> {
  const unique = [...new Set(candidates)];
  if (unique.length === 0) return [];
  const holder = `gc-${crypto.randomUUID()}`;
  const deleted = await claimUnneededBlobs(env.DB, unique, holder, now);
  try {
    if (deleted.length > 0) await env.BLOBS.delete(deleted.map(blobKey));
  } finally {
    await unpin(env.DB, holder);
  }
  return deleted;
}

/**
 * After a model is deleted: the tenant stops owning the blobs that model used unless another of its models uses
 * them, the tenant re-uploaded them after the model was written, or a create running now has pinned them (it is
 * about to use them); then whatever nothing needs is collected.
 */
export async function releaseModelBlobs(
  env: Env,
  tenantId: string,
  digests: readonly string[],
  modelWrittenAt: number,
): Promise<string[]> {
  if (digests.length === 0) return [];
  await releaseOwnership(env.DB, tenantId, digests, modelWrittenAt, Date.now());
  return collectBlobs(env, digests);
}

/**
 * Housekeeping for what no request will ever come back for: uploads that expired, blobs uploaded but never used
 * within the grace period, and blob rows orphaned by a crash between steps. Bounded per call; cheap to run on
 * every delete and from a scheduled handler (`scheduled` → `sweepBlobs(env)`).
 */
export async function sweepBlobs(env: Env, now = Date.now(), limit = 50): Promise<string[]> {
  await abortExpiredUploads(env, now, limit);
  await releaseUnusedOwnership(env.DB, now - UNUSED_BLOB_GRACE_MS, limit);
  const orphans = await orphanBlobs(env.DB, now, limit);
  await dropExpiredPins(env.DB, now);
  return collectBlobs(env, orphans, now);
}
