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
import { DELETE_PIN_MS } from "../db/blobs";
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
  const db = env.DB;
  const statements: D1PreparedStatement[] = [];
  for (const digest of unique) {
    statements.push(
      db
        .prepare(
          `INSERT INTO blob_pins (digest, holder, kind, expires_at) SELECT ?1, ?2, 'delete', ?3
           WHERE EXISTS (SELECT 1 FROM blobs WHERE digest = ?1)
             AND NOT EXISTS (SELECT 1 FROM model_layers WHERE digest = ?1)
             AND NOT EXISTS (SELECT 1 FROM blob_owners WHERE digest = ?1)
             AND NOT EXISTS (SELECT 1 FROM uploads WHERE digest = ?1 AND expires_at > ?4)
             AND NOT EXISTS (SELECT 1 FROM blob_pins WHERE digest = ?1 AND kind = 'write' AND expires_at > ?4)`,
        )
        .bind(digest, holder, now + DELETE_PIN_MS, now),
      db
        .prepare(
          "DELETE FROM blobs WHERE digest = ?1 AND EXISTS (SELECT 1 FROM blob_pins WHERE digest = ?1 AND holder = ?2)",
        )
        .bind(digest, holder),
    );
  }
  const results = await db.batch(statements);
  const deleted = unique.filter((_, i) => (results[i * 2 + 1]?.meta.changes ?? 0) > 0);
  try {
    if (deleted.length > 0) await env.BLOBS.delete(deleted.map(blobKey));
  } finally {
    await db.prepare("DELETE FROM blob_pins WHERE holder = ?").bind(holder).run();
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
  await env.DB.batch(
    [...new Set(digests)].map((digest) =>
      env.DB.prepare(
        `DELETE FROM blob_owners WHERE tenant_id = ?1 AND digest = ?2 AND created_at <= ?3
           AND NOT EXISTS (SELECT 1 FROM model_layers WHERE tenant_id = ?1 AND digest = ?2)
           AND NOT EXISTS (SELECT 1 FROM blob_pins WHERE digest = ?2 AND kind = 'write' AND expires_at > ?4)`,
      ).bind(tenantId, digest, modelWrittenAt, Date.now()),
    ),
  );
  return collectBlobs(env, digests);
}

/**
 * Housekeeping for what no request will ever come back for: uploads that expired, blobs uploaded but never used
 * within the grace period, and blob rows orphaned by a crash between steps. Bounded per call; cheap to run on
 * every delete and from a scheduled handler (`scheduled` → `sweepBlobs(env)`).
 */
export async function sweepBlobs(env: Env, now = Date.now(), limit = 50): Promise<string[]> {
  await abortExpiredUploads(env, now, limit);
  const db = env.DB;
  const stale = await db
    .prepare(
      `SELECT o.tenant_id, o.digest FROM blob_owners o
       WHERE o.created_at < ? AND NOT EXISTS (
         SELECT 1 FROM model_layers l WHERE l.tenant_id = o.tenant_id AND l.digest = o.digest)
       LIMIT ?`,
    )
    .bind(now - UNUSED_BLOB_GRACE_MS, limit)
    .all<{ tenant_id: string; digest: string }>();
  if (stale.results.length > 0) {
    await db.batch(
      stale.results.map((r) =>
        db
          .prepare(
            `DELETE FROM blob_owners WHERE tenant_id = ?1 AND digest = ?2 AND created_at < ?3
             AND NOT EXISTS (SELECT 1 FROM model_layers WHERE tenant_id = ?1 AND digest = ?2)`,
          )
          .bind(r.tenant_id, r.digest, now - UNUSED_BLOB_GRACE_MS),
      ),
    );
  }
  const orphans = await db
    .prepare(
      `SELECT b.digest FROM blobs b WHERE b.created_at < ?
         AND NOT EXISTS (SELECT 1 FROM model_layers l WHERE l.digest = b.digest)
         AND NOT EXISTS (SELECT 1 FROM blob_owners o WHERE o.digest = b.digest)
       LIMIT ?`,
    )
    .bind(now, limit)
    .all<{ digest: string }>();
  await db.prepare("DELETE FROM blob_pins WHERE expires_at < ?").bind(now).run();
  return collectBlobs(
    env,
    orphans.results.map((r) => r.digest),
    now,
  );
}
