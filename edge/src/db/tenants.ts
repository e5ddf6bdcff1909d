import { ApiError } from "@corral/protocol";
import { effectiveLimits, patchLimits, type RequestLimits, type RequestLimitsPatch } from "../bounds";
import { hexEqual, randomId, randomToken, sha256Hex } from "../crypto";
import { type KeyCache, type KeyIdentity, keyCache } from "./key-cache";

export type { KeyIdentity } from "./key-cache";

export interface Quotas {
  storage_bytes: number | null;
  requests_per_minute: number | null;
  concurrent_requests: number | null;
}

export interface Tenant {
  id: string;
  name: string;
  created_at: number;
  quotas: Quotas;
  /** Request bounds in effect (defaults where the operator set none). */
  limits: RequestLimits;
}

interface TenantRow {
  id: string;
  name: string;
  created_at: number;
  quota_storage_bytes: number | null;
  quota_requests_per_minute: number | null;
  quota_concurrent_requests: number | null;
  limits: string | null;
}

const toTenant = (r: TenantRow): Tenant => ({
  id: r.id,
  name: r.name,
  created_at: r.created_at,
  quotas: {
    storage_bytes: r.quota_storage_bytes,
    requests_per_minute: r.quota_requests_per_minute,
    concurrent_requests: r.quota_concurrent_requests,
  },
  limits: effectiveLimits(r.limits),
});

/** The tenant columns a key lookup joins in (`t.quota_*`, `t.limits`), as the request identity carries them. */
export type TenantIdentityColumns = Omit<TenantRow, "id" | "name" | "created_at"> & { tenant_id: string };
export const TENANT_IDENTITY_COLUMNS =
  "t.quota_storage_bytes, t.quota_requests_per_minute, t.quota_concurrent_requests, t.limits";

/** The identity a request carries, for key `keyId` (an API key or a signing key) of the tenant in `row`. */
export function identityOf(keyId: string, row: TenantIdentityColumns): KeyIdentity {
  const { quotas, limits } = toTenant({ ...row, id: row.tenant_id, name: "", created_at: 0 });
  return { tenantId: row.tenant_id, keyId, quotas, limits };
}

/** The index column: enough of the hash to find the row; the full hash is then compared in constant time. */
const lookupOf = (hash: string) => hash.slice(0, 16);

export async function createTenant(db: D1Database, name: string, now = Date.now()): Promise<Tenant> {
  const id = `t_${randomId()}`;
  const res = await db
    .prepare("INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?) ON CONFLICT(name) DO NOTHING")
    .bind(id, name, now)
    .run();
  if (res.meta.changes === 0) throw new ApiError(409, `tenant "${name}" already exists`);
  return {
    id,
    name,
    created_at: now,
    quotas: { storage_bytes: null, requests_per_minute: null, concurrent_requests: null },
    limits: effectiveLimits(null),
  };
}

export async function getTenant(db: D1Database, idOrName: string): Promise<Tenant | null> {
  const row = await db
    .prepare("SELECT * FROM tenants WHERE id = ? OR name = ?")
    .bind(idOrName, idOrName)
    .first<TenantRow>();
  return row ? toTenant(row) : null;
}

export async function listTenants(db: D1Database): Promise<Tenant[]> {
  const { results } = await db.prepare("SELECT * FROM tenants ORDER BY created_at").all<TenantRow>();
  return results.map(toTenant);
}

export async function setQuotas(db: D1Database, tenantId: string, q: Partial<Quotas>): Promise<Tenant> {
  const current = await getTenant(db, tenantId);
  if (!current) throw new ApiError(404, "tenant not found");
  const next = { ...current.quotas, ...q };
  await db
    .prepare(
      "UPDATE tenants SET quota_storage_bytes = ?, quota_requests_per_minute = ?, quota_concurrent_requests = ? WHERE id = ?",
    )
    .bind(next.storage_bytes, next.requests_per_minute, next.concurrent_requests, current.id)
    .run();
  keyCache.forgetTenant(current.id);
  return { ...current, quotas: next };
}

/** Changes a tenant's request limits (null: back to the default). */
export async function setLimits(db: D1Database, tenantId: string, patch: RequestLimitsPatch): Promise<Tenant> {
  const row = await db
    .prepare("SELECT limits FROM tenants WHERE id = ?")
    .bind(tenantId)
    .first<{ limits: string | null }>();
  if (!row) throw new ApiError(404, "tenant not found");
  const stored = patchLimits(row.limits, patch);
  await db.prepare("UPDATE tenants SET limits = ? WHERE id = ?").bind(stored, tenantId).run();
  keyCache.forgetTenant(tenantId);
  const tenant = await getTenant(db, tenantId);
  if (!tenant) throw new ApiError(404, "tenant not found");
  return tenant;
}

export interface IssuedKey {
  id: string;
  key: string;
  display_prefix: string;
  tenant_id: string;
}

/** Issues an API key. `explicitKey` exists for the local stack's CORRAL_DEV_KEY; production keys are random. */
export async function issueKey(
  db: D1Database,
  tenantId: string,
  label: string | null,
  explicitKey?: string,
  now = Date.now(),
): Promise<IssuedKey> {
  const id = `k_${randomId()}`;
  const key = explicitKey ?? `corral-${randomToken(32)}`;
  const hash = await sha256Hex(key);
  const displayPrefix = `${key.slice(0, Math.min(10, Math.floor(key.length / 3)))}…`;
  await db
    .prepare(
      "INSERT INTO api_keys (id, tenant_id, lookup, secret_hash, display_prefix, label, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(id, tenantId, lookupOf(hash), hash, displayPrefix, label, now)
    .run();
  return { id, key, display_prefix: displayPrefix, tenant_id: tenantId };
}

export interface KeyInfo {
  id: string;
  tenant_id: string;
  display_prefix: string;
  label: string | null;
  created_at: number;
  revoked_at: number | null;
}

export async function listKeys(db: D1Database, tenantId: string): Promise<KeyInfo[]> {
  const { results } = await db
    .prepare(
      "SELECT id, tenant_id, display_prefix, label, created_at, revoked_at FROM api_keys WHERE tenant_id = ? ORDER BY created_at",
    )
    .bind(tenantId)
    .all<KeyInfo>();
  return results;
}

/** Revokes a key; with `tenantId`, only if the key is that tenant's (a tenant revoking its own keys). */
export async function revokeKey(
  db: D1Database,
  keyId: string,
  opts: { tenantId?: string; now?: number } = {},
): Promise<boolean> {
  const res = await db
    .prepare(
      "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL AND tenant_id = COALESCE(?, tenant_id)",
    )
    .bind(opts.now ?? Date.now(), keyId, opts.tenantId ?? null)
    .run();
  keyCache.forgetKey(keyId);
  return res.meta.changes > 0;
}

/**
 * Resolves a presented API key to its tenant and the tenant's quotas: index lookup on a hash prefix, then a
 * constant-time compare of the full hash. Accepted keys are remembered for a few seconds (see key-cache.ts).
 */
export async function resolveKey(
  db: D1Database,
  presented: string,
  cache: KeyCache | null = keyCache,
): Promise<KeyIdentity | null> {
  const hash = await sha256Hex(presented);
  const cached = cache?.get(hash);
  if (cached) return cached;
  const { results } = await db
    .prepare(
      `SELECT k.id, k.tenant_id, k.secret_hash, ${TENANT_IDENTITY_COLUMNS}
       FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.lookup = ? AND k.revoked_at IS NULL`,
    )
    .bind(lookupOf(hash))
    .all<{ id: string; secret_hash: string } & TenantIdentityColumns>();
  let found: KeyIdentity | null = null;
  for (const row of results) {
    if (hexEqual(row.secret_hash, hash)) found = identityOf(row.id, row);
  }
  if (found) cache?.set(hash, found);
  return found;
}
