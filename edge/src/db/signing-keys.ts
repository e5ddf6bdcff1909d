/**
 * Tenants' Ed25519 signing keys (requests signed by the stock Ollama client) and the replay record of the
 * signatures accepted so far. Keys are labelled and revocable like API keys; an active key belongs to one tenant.
 */
import { ApiError } from "@corral/protocol";
import { randomId } from "../crypto";
import type { KeyIdentity } from "./key-cache";
import { identityOf, TENANT_IDENTITY_COLUMNS, type TenantIdentityColumns } from "./tenants";

export interface SigningKeyInfo {
  id: string;
  tenant_id: string;
  public_key: string;
  label: string | null;
  created_at: number;
  revoked_at: number | null;
}

/** Registers `publicKey` (base64 SSH wire blob) for the tenant; 409 when it is active anywhere already. */
export async function registerSigningKey(
  db: D1Database,
  tenantId: string,
  publicKey: string,
  label: string | null,
  now = Date.now(),
): Promise<SigningKeyInfo> {
  const id = `sk_${randomId()}`;
  const res = await db
    .prepare(
      `INSERT INTO signing_keys (id, tenant_id, public_key, label, created_at)
       SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS
         (SELECT 1 FROM signing_keys WHERE public_key = ? AND revoked_at IS NULL)`,
    )
    .bind(id, tenantId, publicKey, label, now, publicKey)
    .run();
  if (res.meta.changes === 0) throw new ApiError(409, "public key is already registered");
  return { id, tenant_id: tenantId, public_key: publicKey, label, created_at: now, revoked_at: null };
}

export async function listSigningKeys(db: D1Database, tenantId: string): Promise<SigningKeyInfo[]> {
  const { results } = await db
    .prepare(
      "SELECT id, tenant_id, public_key, label, created_at, revoked_at FROM signing_keys WHERE tenant_id = ? ORDER BY created_at",
    )
    .bind(tenantId)
    .all<SigningKeyInfo>();
  return results;
}

export async function revokeSigningKey(db: D1Database, keyId: string, now = Date.now()): Promise<boolean> {
  const res = await db
    .prepare("UPDATE signing_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
    .bind(now, keyId)
    .run();
  return res.meta.changes > 0;
}

/** The tenant an active key belongs to, with the tenant's quotas, as API keys resolve. */
export async function resolveSigningKey(db: D1Database, publicKey: string): Promise<KeyIdentity | null> {
  const row = await db
    .prepare(
      `SELECT k.id, k.tenant_id, ${TENANT_IDENTITY_COLUMNS}
       FROM signing_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.public_key = ? AND k.revoked_at IS NULL`,
    )
    .bind(publicKey)
    .first<{ id: string } & TenantIdentityColumns>();
  return row ? identityOf(row.id, row) : null;
}

/**
 * Records a signature as used until `expiresAt` (epoch ms); false when it was used already (a replay). Expired
 * records are dropped in the same batch, so the table holds at most one window of signatures.
 */
export async function recordSignature(
  db: D1Database,
  signature: string,
  expiresAt: number,
  now = Date.now(),
): Promise<boolean> {
  const [, inserted] = await db.batch([
    db.prepare("DELETE FROM signed_request_replays WHERE expires_at < ?").bind(now),
    db
      .prepare("INSERT INTO signed_request_replays (signature, expires_at) VALUES (?, ?) ON CONFLICT DO NOTHING")
      .bind(signature, expiresAt),
  ]);
  return (inserted?.meta.changes ?? 0) > 0;
}
