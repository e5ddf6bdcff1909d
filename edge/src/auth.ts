import { ApiError } from "@corral/protocol";
import { createMiddleware } from "hono/factory";
import { operatorFromSession, tenantFromSession } from "./console/session";
import { secretsEqual } from "./crypto";
import { resolveKey } from "./db/tenants";
import type { AppBindings } from "./env";

const unauthorized = () => new ApiError(401, "unauthorized");

export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1] ?? null;
}

/**
 * Tenant API keys: `Authorization: Bearer <key>` → tenant id, key id and the tenant's quotas on the context, else
 * 401. Accepted keys are cached in the isolate for a few seconds (db/key-cache.ts bounds revocation).
 */
export const requireTenant = createMiddleware<AppBindings>(async (c, next) => {
  const header = c.req.header("authorization");
  const token = bearerToken(header);
  // No Authorization header at all: the browser console's session cookie may stand in for the key.
  const identity = token ? await resolveKey(c.env.DB, token) : header ? null : await tenantFromSession(c);
  if (!identity) throw unauthorized();
  c.set("tenantId", identity.tenantId);
  c.set("keyId", identity.keyId);
  c.set("quotas", identity.quotas);
  await next();
});

/** Operators: the admin secret, a Worker secret distinct from every tenant key. */
export const requireAdmin = createMiddleware<AppBindings>(async (c, next) => {
  const header = c.req.header("authorization");
  const token = bearerToken(header);
  const adminKey = c.env.ADMIN_KEY;
  if (!header && (await operatorFromSession(c))) {
    await next();
    return;
  }
  if (!token || !adminKey || !(await secretsEqual(token, adminKey))) throw unauthorized();
  await next();
});

/** Runners: the edge↔runner shared secret. */
export const requireRunner = createMiddleware<AppBindings>(async (c, next) => {
  const token = bearerToken(c.req.header("authorization"));
  const secret = c.env.RUNNER_SECRET;
  if (!token || !secret || !(await secretsEqual(token, secret))) throw unauthorized();
  await next();
});
