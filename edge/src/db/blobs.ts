/**
 * Blob metadata: one row per digest (bytes stored once in R2, whoever uploaded them), ownership rows per tenant
 * (visibility and storage quota), and pins that keep GC away from digests a writer is about to use.
 */
import { ApiError } from "@corral/protocol";

export interface BlobRow {
  digest: string;
  size: number;
  created_at: number;
  content: string | null;
  gguf: string | null;
}

export async function getBlob(db: D1Database, digest: string): Promise<BlobRow | null> {
  return db.prepare("SELECT * FROM blobs WHERE digest = ?").bind(digest).first<BlobRow>();
}

/** A blob is visible to a tenant that owns it or has a model using it; to anyone else it does not exist. */
export async function visibleBlob(db: D1Database, tenantId: string, digest: string): Promise<BlobRow | null> {
  return db
    .prepare(
      `SELECT b.* FROM blobs b WHERE b.digest = ?1 AND (
         EXISTS (SELECT 1 FROM blob_owners o WHERE o.digest = ?1 AND o.tenant_id = ?2) OR
         EXISTS (SELECT 1 FROM model_layers l WHERE l.digest = ?1 AND l.tenant_id = ?2))`,
    )
    .bind(digest, tenantId)
    .first<BlobRow>();
}

/** Bytes a tenant is charged for: every blob it owns, counted once. */
export async function storageUsed(db: D1Database, tenantId: string): Promise<number> {
  const row = await db
    .prepare(
      "SELECT COALESCE(SUM(b.size), 0) AS used FROM blob_owners o JOIN blobs b ON b.digest = o.digest WHERE o.tenant_id = ?",
    )
    .bind(tenantId)
    .first<{ used: number }>();
  return row?.used ?? 0;
}

/**
 * Refuses, before any byte is stored, an upload that would take the tenant past its storage quota. A blob the
 * tenant already owns costs nothing more.
 */
export async function assertStorageQuota(
  db: D1Database,
  tenantId: string,
  digest: string,
  size: number,
): Promise<void> {
  const row = await db
    .prepare(
      `SELECT t.quota_storage_bytes AS quota,
         (SELECT COALESCE(SUM(b.size), 0) FROM blob_owners o JOIN blobs b ON b.digest = o.digest WHERE o.tenant_id = t.id) AS used,
         EXISTS (SELECT 1 FROM blob_owners o WHERE o.tenant_id = t.id AND o.digest = ?) AS owned
       FROM tenants t WHERE t.id = ?`,
    )
    .bind(digest, tenantId)
    .first<{ quota: number | null; used: number; owned: number }>();
  if (!row || row.quota === null || row.owned) return;
  if (row.used + size > row.quota) {
    throw new ApiError(
      413,
      `storage quota exceeded: ${row.used} of ${row.quota} bytes used, this blob needs ${size} more`,
    );
  }
}

/** Records a stored, verified blob and the tenant's ownership of it (idempotent). */
export function recordBlobStatements(
  db: D1Database,
  blob: { digest: string; size: number; content?: string | null },
  tenantId: string,
  now: number,
): D1PreparedStatement[] {
  return [
    db
      .prepare(
        `INSERT INTO blobs (digest, size, created_at, content) VALUES (?, ?, ?, ?)
         ON CONFLICT (digest) DO UPDATE SET content = COALESCE(blobs.content, excluded.content)`,
      )
      .bind(blob.digest, blob.size, now, blob.content ?? null),
    db
      .prepare(
        `INSERT INTO blob_owners (tenant_id, digest, created_at) VALUES (?, ?, ?)
         ON CONFLICT (tenant_id, digest) DO UPDATE SET created_at = excluded.created_at`,
      )
      .bind(tenantId, blob.digest, now),
  ];
}

/**
 * Records bytes a runner stored, owned by no tenant yet (the sweep collects the row unless a create adopts it).
 * Idempotent; true when the row is new.
 */
export async function recordOwnerlessBlob(db: D1Database, digest: string, size: number): Promise<boolean> {
  const inserted = await db
    .prepare(
      "INSERT INTO blobs (digest, size, created_at, content) VALUES (?, ?, ?, NULL) ON CONFLICT (digest) DO NOTHING",
    )
    .bind(digest, size, Date.now())
    .run();
  return (inserted.meta.changes ?? 0) > 0;
}

/** Caches a blob's GGUF summary (JSON) unless one is cached already. */
export function ggufSummaryStatement(db: D1Database, digest: string, summary: string): D1PreparedStatement {
  return db.prepare("UPDATE blobs SET gguf = ? WHERE digest = ? AND gguf IS NULL").bind(summary, digest);
}

export async function saveGgufSummary(db: D1Database, digest: string, summary: string): Promise<void> {
  await ggufSummaryStatement(db, digest, summary).run();
}

/** How long a write pin protects a digest; longer than any single request may take. */
export const WRITE_PIN_MS = 15 * 60_000;
/** How long the GC may take to delete one object from R2 before its claim lapses. */
export const DELETE_PIN_MS = 60_000;

/**
 * Pins digests for writing (an upload storing it, or a create about to reference it), unless the GC is deleting
 * one of them right now. Returns the digests that could not be pinned. Pins are released with {@link unpin}.
 */
export async function pinForWrite(
  db: D1Database,
  digests: readonly string[],
  holder: string,
  now = Date.now(),
  ttlMs = WRITE_PIN_MS,
): Promise<string[]> {
  if (digests.length === 0) return [];
  const unique = [...new Set(digests)];
  const results = await db.batch(
    unique.map((digest) =>
      db
        .prepare(
          `INSERT INTO blob_pins (digest, holder, kind, expires_at) SELECT ?1, ?2, 'write', ?3
           WHERE NOT EXISTS (SELECT 1 FROM blob_pins WHERE digest = ?1 AND kind = 'delete' AND expires_at > ?4)
           ON CONFLICT (digest, holder) DO UPDATE SET expires_at = excluded.expires_at`,
        )
        .bind(digest, holder, now + ttlMs, now),
    ),
  );
  return unique.filter((_, i) => (results[i]?.meta.changes ?? 0) === 0);
}

/** Pins with retries: the GC holds a delete pin only for one R2 delete, so a short wait normally clears it. */
export async function pinForWriteOrWait(
  db: D1Database,
  digests: readonly string[],
  holder: string,
  ttlMs = WRITE_PIN_MS,
): Promise<void> {
  let blocked = digests;
  for (let attempt = 0; attempt < 20; attempt++) {
    blocked = await pinForWrite(db, blocked, holder, Date.now(), ttlMs);
    if (blocked.length === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 50 * (attempt + 1)));
  }
  await unpin(db, holder);
  throw new ApiError(503, "blob is being removed, please retry");
}

/** Pushes back the expiry of every pin a holder has (a create waiting on a long quantize job). */
export async function extendPins(db: D1Database, holder: string, now = Date.now()): Promise<void> {
  await extendPinsStatement(db, holder, now).run();
}

export function extendPinsStatement(db: D1Database, holder: string, now = Date.now()): D1PreparedStatement {
  return db
    .prepare("UPDATE blob_pins SET expires_at = ? WHERE holder = ? AND kind = 'write'")
    .bind(now + WRITE_PIN_MS, holder);
}

export function unpinStatement(db: D1Database, holder: string): D1PreparedStatement {
  return db.prepare("DELETE FROM blob_pins WHERE holder = ?").bind(holder);
}

export async function unpin(db: D1Database, holder: string): Promise<void> {
  await unpinStatement(db, holder).run();
}

/** Blob rows for many digests at once (missing ones are absent from the map). */
export async function blobRows(db: D1Database, digests: readonly string[]): Promise<Map<string, BlobRow>> {
  const unique = [...new Set(digests)];
  const out = new Map<string, BlobRow>();
  if (unique.length === 0) return out;
  const results = await db.batch(unique.map((d) => db.prepare("SELECT * FROM blobs WHERE digest = ?").bind(d)));
  for (const r of results) {
    const row = r.results[0] as BlobRow | undefined;
    if (row) out.set(row.digest, row);
  }
  return out;
}

/** Which of `digests` the tenant can see (owns, or a model of its uses). */
export async function visibleDigests(
  db: D1Database,
  tenantId: string,
  digests: readonly string[],
): Promise<Set<string>> {
  const unique = [...new Set(digests)];
  if (unique.length === 0) return new Set();
  const results = await db.batch(
    unique.map((d) =>
      db
        .prepare(
          `SELECT ?1 AS digest WHERE EXISTS (SELECT 1 FROM blobs WHERE digest = ?1) AND (
             EXISTS (SELECT 1 FROM blob_owners WHERE digest = ?1 AND tenant_id = ?2) OR
             EXISTS (SELECT 1 FROM model_layers WHERE digest = ?1 AND tenant_id = ?2))`,
        )
        .bind(d, tenantId),
    ),
  );
  return new Set(results.flatMap((r) => (r.results as { digest: string }[]).map((row) => row.digest)));
}
