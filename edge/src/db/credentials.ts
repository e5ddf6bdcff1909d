/**
 * registry_credentials: a tenant's login per registry host; `secret` is the password sealed by
 * registry-client/credentials.ts (never stored or listed in the clear).
 */

export interface StoredCredentialInfo {
  registry: string;
  username: string;
  updated_at: string;
}

export async function putCredentialRow(
  db: D1Database,
  row: { tenantId: string; registry: string; username: string; sealed: string; now: number },
): Promise<void> {
  await db
    .prepare(
      `INSERT INTO registry_credentials (tenant_id, registry, username, secret, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (tenant_id, registry) DO UPDATE SET username = excluded.username, secret = excluded.secret,
         updated_at = excluded.updated_at`,
    )
    .bind(row.tenantId, row.registry, row.username, row.sealed, row.now)
    .run();
}

export async function getCredentialRow(
  db: D1Database,
  tenantId: string,
  registry: string,
): Promise<{ username: string; secret: string } | null> {
  return db
    .prepare("SELECT username, secret FROM registry_credentials WHERE tenant_id = ? AND registry = ?")
    .bind(tenantId, registry)
    .first<{ username: string; secret: string }>();
}

export async function listCredentials(db: D1Database, tenantId: string): Promise<StoredCredentialInfo[]> {
  const { results } = await db
    .prepare("SELECT registry, username, updated_at FROM registry_credentials WHERE tenant_id = ? ORDER BY registry")
    .bind(tenantId)
    .all<{ registry: string; username: string; updated_at: number }>();
  return results.map((r) => ({ ...r, updated_at: new Date(r.updated_at).toISOString() }));
}

export async function deleteCredentials(db: D1Database, tenantId: string, registry: string): Promise<boolean> {
  const res = await db
    .prepare("DELETE FROM registry_credentials WHERE tenant_id = ? AND registry = ?")
    .bind(tenantId, registry)
    .run();
  return res.meta.changes > 0;
}
