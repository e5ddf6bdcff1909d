/**
 * The statements of blob garbage collection; the protocol they implement (and why it is safe against concurrent
 * writers) is described in store/gc.ts.
 */
import { DELETE_PIN_MS } from "./blobs";

/**
 * Step 1 of a collection, one batch: for each digest nothing needs, take a 'delete' pin under `holder` and delete
 * its blobs row. Returns the digests whose row was deleted (their objects are the caller's to delete next).
 */
export async function claimUnneededBlobs(
  db: D1Database,
  digests: readonly string[],
  holder: string,
  now: number,
): Promise<string[]> {
  const statements: D1PreparedStatement[] = [];
  for (const digest of digests) {
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
  return digests.filter((_, i) => (results[i * 2 + 1]?.meta.changes ?? 0) > 0);
}

/**
 * The tenant stops owning `digests` (written into a model at `writtenAt`) unless another of its models uses one,
 * it re-uploaded one since, or a writer holds a live pin on it.
 */
export async function releaseOwnership(
  db: D1Database,
  tenantId: string,
  digests: readonly string[],
  writtenAt: number,
  now: number,
): Promise<void> {
  await db.batch(
    [...new Set(digests)].map((digest) =>
      db
        .prepare(
          `DELETE FROM blob_owners WHERE tenant_id = ?1 AND digest = ?2 AND created_at <= ?3
             AND NOT EXISTS (SELECT 1 FROM model_layers WHERE tenant_id = ?1 AND digest = ?2)
             AND NOT EXISTS (SELECT 1 FROM blob_pins WHERE digest = ?2 AND kind = 'write' AND expires_at > ?4)`,
        )
        .bind(tenantId, digest, writtenAt, now),
    ),
  );
}

/** Ownerships of blobs uploaded before `before` that no model of the owner uses: they are dropped. */
export async function releaseUnusedOwnership(db: D1Database, before: number, limit: number): Promise<void> {
  const stale = await db
    .prepare(
      `SELECT o.tenant_id, o.digest FROM blob_owners o
       WHERE o.created_at < ? AND NOT EXISTS (
         SELECT 1 FROM model_layers l WHERE l.tenant_id = o.tenant_id AND l.digest = o.digest)
       LIMIT ?`,
    )
    .bind(before, limit)
    .all<{ tenant_id: string; digest: string }>();
  if (stale.results.length === 0) return;
  await db.batch(
    stale.results.map((r) =>
      db
        .prepare(
          `DELETE FROM blob_owners WHERE tenant_id = ?1 AND digest = ?2 AND created_at < ?3
           AND NOT EXISTS (SELECT 1 FROM model_layers WHERE tenant_id = ?1 AND digest = ?2)`,
        )
        .bind(r.tenant_id, r.digest, before),
    ),
  );
}

/** Blob rows written before `before` that no model uses and no tenant owns (left by a crash between steps). */
export async function orphanBlobs(db: D1Database, before: number, limit: number): Promise<string[]> {
  const orphans = await db
    .prepare(
      `SELECT b.digest FROM blobs b WHERE b.created_at < ?
         AND NOT EXISTS (SELECT 1 FROM model_layers l WHERE l.digest = b.digest)
         AND NOT EXISTS (SELECT 1 FROM blob_owners o WHERE o.digest = b.digest)
       LIMIT ?`,
    )
    .bind(before, limit)
    .all<{ digest: string }>();
  return orphans.results.map((r) => r.digest);
}

export async function dropExpiredPins(db: D1Database, now: number): Promise<void> {
  await db.prepare("DELETE FROM blob_pins WHERE expires_at < ?").bind(now).run();
}
