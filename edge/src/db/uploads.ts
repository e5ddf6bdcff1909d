/**
 * uploads: multipart blob uploads in progress (store/multipart.ts). A row lives until the upload completes, is
 * aborted, or idles past `expires_at`; while it lives the GC keeps away from its digest.
 */

export interface UploadRow {
  id: string;
  tenant_id: string;
  digest: string;
  size: number;
  r2_upload_id: string;
  r2_key: string;
  part_size: number;
  hash_state: string | null;
  parts: string;
  created_at: number;
  expires_at: number;
}

export async function getUpload(db: D1Database, id: string, tenantId: string, digest: string) {
  return db
    .prepare("SELECT * FROM uploads WHERE id = ? AND tenant_id = ? AND digest = ?")
    .bind(id, tenantId, digest)
    .first<UploadRow>();
}

/**
 * Inserts the row unless the GC is deleting the digest right now (a live 'delete' pin); false when refused. A chunked
 * upload (store/chunked-upload.ts) starts at size 0 and grows as parts arrive.
 */
export async function insertUpload(db: D1Database, row: Omit<UploadRow, "hash_state" | "parts">): Promise<boolean> {
  const inserted = await db
    .prepare(
      `INSERT INTO uploads (id, tenant_id, digest, size, r2_upload_id, r2_key, part_size, hash_state, parts, created_at, expires_at)
       SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, '[]', ?8, ?9
       WHERE NOT EXISTS (SELECT 1 FROM blob_pins WHERE digest = ?3 AND kind = 'delete' AND expires_at > ?8)`,
    )
    .bind(
      row.id,
      row.tenant_id,
      row.digest,
      row.size,
      row.r2_upload_id,
      row.r2_key,
      row.part_size,
      row.created_at,
      row.expires_at,
    )
    .run();
  return inserted.meta.changes > 0;
}

/** A chunked upload's progress: bytes received so far, and a later expiry. */
export function chunkedUploadProgressStatement(
  db: D1Database,
  id: string,
  size: number,
  expiresAt: number,
): D1PreparedStatement {
  return db.prepare("UPDATE uploads SET size = ?, expires_at = ? WHERE id = ?").bind(size, expiresAt, id);
}

/**
 * Records a stored part, only if nobody recorded another since `previous` was read (compare-and-set on the parts
 * and hash state); false when someone did.
 */
export async function recordUploadPart(
  db: D1Database,
  previous: Pick<UploadRow, "id" | "parts" | "hash_state">,
  next: Pick<UploadRow, "parts" | "hash_state" | "expires_at">,
): Promise<boolean> {
  const updated = await db
    .prepare(
      "UPDATE uploads SET hash_state = ?, parts = ?, expires_at = ? WHERE id = ? AND parts = ? AND hash_state IS ?",
    )
    .bind(next.hash_state, next.parts, next.expires_at, previous.id, previous.parts, previous.hash_state)
    .run();
  return updated.meta.changes > 0;
}

export function deleteUploadStatement(db: D1Database, id: string): D1PreparedStatement {
  return db.prepare("DELETE FROM uploads WHERE id = ?").bind(id);
}

export async function expiredUploads(db: D1Database, now: number, limit: number): Promise<UploadRow[]> {
  const { results } = await db
    .prepare("SELECT * FROM uploads WHERE expires_at <= ? LIMIT ?")
    .bind(now, limit)
    .all<UploadRow>();
  return results;
}
