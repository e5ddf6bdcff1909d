import { ApiError } from "@corral/protocol";
import { createMiddleware } from "hono/factory";
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
  const token = bearerToken(c.req.header("authorization"));
  if (!token) throw unauthorized();
  const identity = await resolveKey(c.env.DB, token);
  if (!identity) throw unauthorized();
  c.set("tenantId", identity.tenantId);
  c.set("keyId", identity.keyId);
  c.set("quotas", identity.quotas);
  c.set("limits", identity.limits);
  await next();
});

/** Operators: the admin secret, a Worker secret distinct from every tenant key. */
export const requireAdmin = createMiddleware<AppBindings>(async (c, next) => {
  const token = bearerToken(c.req.header("authorization"));
  const adminKey = c.env.ADMIN_KEY;
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
