/**
 * pull_uploads: which multipart upload a pull of (tenant, blob) is filling, so an interrupted pull resumes it.
 */

export async function pullUploadId(db: D1Database, tenantId: string, digest: string): Promise<string | null> {
  const row = await db
    .prepare("SELECT upload_id FROM pull_uploads WHERE tenant_id = ? AND digest = ?")
    .bind(tenantId, digest)
    .first<{ upload_id: string }>();
  return row?.upload_id ?? null;
}

export async function savePullUpload(db: D1Database, tenantId: string, digest: string, uploadId: string) {
  await db
    .prepare(
      `INSERT INTO pull_uploads (tenant_id, digest, upload_id, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (tenant_id, digest) DO UPDATE SET upload_id = excluded.upload_id, updated_at = excluded.updated_at`,
    )
    .bind(tenantId, digest, uploadId, Date.now())
    .run();
}

export async function forgetPullUpload(db: D1Database, tenantId: string, digest: string): Promise<void> {
  await db.prepare("DELETE FROM pull_uploads WHERE tenant_id = ? AND digest = ?").bind(tenantId, digest).run();
}

/** Drops mappings not touched since `before` (their uploads were aborted by the sweep long ago). */
export async function forgetPullUploadsBefore(db: D1Database, before: number): Promise<void> {
  await db.prepare("DELETE FROM pull_uploads WHERE updated_at < ?").bind(before).run();
}
