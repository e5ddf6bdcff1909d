import { randomToken, sha256Hex } from "../crypto";

/** How long a console session lives from sign-in; there is no sliding renewal, so a stolen cookie ages out. */
export const SESSION_TTL_MS = 2 * 60 * 60 * 1000;

/** Live sessions one key may hold; signing in beyond it ends the oldest. */
export const MAX_SESSIONS_PER_KEY = 20;

/** Who a console session speaks for: a tenant through one of its keys, or the operator. */
export type SessionIdentity =
  | { kind: "tenant"; tenantId: string; keyId: string; csrfToken: string; expiresAt: number }
  | { kind: "operator"; csrfToken: string; expiresAt: number };

export interface OpenedSession {
  /** The cookie value: shown to the browser once, stored only as its hash. */
  token: string;
  csrfToken: string;
  expiresAt: number;
}

type Subject = { kind: "tenant"; tenantId: string; keyId: string } | { kind: "operator"; adminKeyHash: string };

export async function openSession(db: D1Database, subject: Subject, now = Date.now()): Promise<OpenedSession> {
  const token = randomToken(32);
  const csrfToken = randomToken(24);
  const expiresAt = now + SESSION_TTL_MS;
  await db.batch([
    // Sign-in is the natural moment to drop expired rows; sessions are few, so this stays cheap.
    db.prepare("DELETE FROM console_sessions WHERE expires_at <= ?").bind(now),
    db
      .prepare(
        `INSERT INTO console_sessions (token_hash, tenant_id, key_id, admin_key_hash, csrf_token, created_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .bind(
        await sha256Hex(token),
        subject.kind === "tenant" ? subject.tenantId : null,
        subject.kind === "tenant" ? subject.keyId : null,
        subject.kind === "operator" ? subject.adminKeyHash : null,
        csrfToken,
        now,
        expiresAt,
      ),
    // Signing in again and again keeps only the newest sessions of a key (or of the admin key).
    db
      .prepare(
        `DELETE FROM console_sessions WHERE (key_id = ?1 OR admin_key_hash = ?2) AND token_hash NOT IN (
           SELECT token_hash FROM console_sessions WHERE key_id = ?1 OR admin_key_hash = ?2
           ORDER BY created_at DESC, token_hash LIMIT ?3)`,
      )
      .bind(
        subject.kind === "tenant" ? subject.keyId : null,
        subject.kind === "operator" ? subject.adminKeyHash : null,
        MAX_SESSIONS_PER_KEY,
      ),
  ]);
  return { token, csrfToken, expiresAt };
}

/**
 * The live session a cookie names, or null: expired, signed out, its key revoked, or (for an operator) opened with
 * an admin secret other than the current one. Never cached, so each of those takes effect on the next request.
 */
export async function resolveSession(
  db: D1Database,
  token: string,
  currentAdminKeyHash: string | null,
  now = Date.now(),
): Promise<SessionIdentity | null> {
  const row = await db
    .prepare(
      `SELECT s.tenant_id, s.key_id, s.admin_key_hash, s.csrf_token, s.expires_at, k.revoked_at, k.id AS live_key
       FROM console_sessions s LEFT JOIN api_keys k ON k.id = s.key_id AND k.tenant_id = s.tenant_id
       WHERE s.token_hash = ? AND s.expires_at > ?`,
    )
    .bind(await sha256Hex(token), now)
    .first<{
      tenant_id: string | null;
      key_id: string | null;
      admin_key_hash: string | null;
      csrf_token: string;
      expires_at: number;
      revoked_at: number | null;
      live_key: string | null;
    }>();
  if (!row) return null;
  const base = { csrfToken: row.csrf_token, expiresAt: row.expires_at };
  if (row.key_id && row.tenant_id) {
    if (!row.live_key || row.revoked_at !== null) return null;
    return { kind: "tenant", tenantId: row.tenant_id, keyId: row.key_id, ...base };
  }
  if (row.admin_key_hash && currentAdminKeyHash && row.admin_key_hash === currentAdminKeyHash) {
    return { kind: "operator", ...base };
  }
  return null;
}

/** Sign out: the cookie's session ends everywhere at once. */
export async function closeSession(db: D1Database, token: string): Promise<void> {
  await db
    .prepare("DELETE FROM console_sessions WHERE token_hash = ?")
    .bind(await sha256Hex(token))
    .run();
}
