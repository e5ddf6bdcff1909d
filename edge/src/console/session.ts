/**
 * The console's session cookie: the browser holds a random token (HttpOnly, Secure, SameSite=Strict, `__Host-`
 * so no subdomain can set or scope it); D1 holds its hash (db/sessions.ts). Cross-site requests never carry it
 * (SameSite=Strict), and every state-changing request must also present the session's CSRF token: a form field
 * for console forms, the `x-csrf-token` header for the API calls the console's script makes.
 */
import { ApiError } from "@corral/protocol";
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { hexEqual, sha256Hex } from "../crypto";
import { type OpenedSession, resolveSession, type SessionIdentity } from "../db/sessions";
import { getTenant, type KeyIdentity } from "../db/tenants";
import type { AppBindings, Env } from "../env";

/** Sent as `__Host-corral_session` (hono/cookie adds the prefix). */
export const SESSION_COOKIE = "corral_session";
export const CSRF_HEADER = "x-csrf-token";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
export const isSafeMethod = (method: string) => SAFE_METHODS.has(method.toUpperCase());

export const adminKeyHash = async (adminKey: string | undefined) => (adminKey ? sha256Hex(adminKey) : null);

/** The live session the request's cookie names, or null. */
export async function readSession<B extends { Bindings: Env }>(c: Context<B>): Promise<SessionIdentity | null> {
  const token = getCookie(c, SESSION_COOKIE, "host");
  if (!token || token.length > 100) return null;
  return resolveSession(c.env.DB, token, await adminKeyHash(c.env.ADMIN_KEY));
}

export function setSessionCookie(c: Context, session: OpenedSession): void {
  setCookie(c, SESSION_COOKIE, session.token, {
    path: "/",
    httpOnly: true,
    secure: true,
    sameSite: "Strict",
    maxAge: Math.floor((session.expiresAt - Date.now()) / 1000),
    prefix: "host",
  });
}

export function clearSessionCookie(c: Context): void {
  deleteCookie(c, SESSION_COOKIE, { path: "/", secure: true, prefix: "host" });
}

/** Both tokens are random strings of the same alphabet; hashing first keeps the comparison constant-time. */
export async function csrfMatches(session: SessionIdentity, presented: string | undefined | null): Promise<boolean> {
  if (!presented || presented.length > 100) return false;
  const [a, b] = await Promise.all([sha256Hex(presented), sha256Hex(session.csrfToken)]);
  return hexEqual(a, b);
}

/**
 * For the API's auth middleware: a request without an Authorization header may speak for a tenant through a
 * console session, the way the playground streams `/api/chat`. An unsafe method must carry the CSRF header.
 */
export async function tenantFromSession(c: Context<AppBindings>): Promise<KeyIdentity | null> {
  const session = await readSession(c);
  if (session?.kind !== "tenant") return null;
  if (!isSafeMethod(c.req.method) && !(await csrfMatches(session, c.req.header(CSRF_HEADER)))) {
    throw new ApiError(403, "missing or invalid CSRF token");
  }
  const tenant = await getTenant(c.env.DB, session.tenantId);
  return tenant ? { tenantId: tenant.id, keyId: session.keyId, quotas: tenant.quotas, limits: tenant.limits } : null;
}

/** For the admin API's auth middleware: an operator's console session (live fleet view, drain). */
export async function operatorFromSession(c: Context<AppBindings>): Promise<boolean> {
  const session = await readSession(c);
  if (session?.kind !== "operator") return false;
  if (!isSafeMethod(c.req.method) && !(await csrfMatches(session, c.req.header(CSRF_HEADER)))) {
    throw new ApiError(403, "missing or invalid CSRF token");
  }
  return true;
}
