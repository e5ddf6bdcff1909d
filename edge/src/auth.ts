import { ApiError } from "@corral/protocol";
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { operatorFromSession, tenantFromSession } from "./console/session";
import { secretsEqual } from "./crypto";
import { type KeyIdentity, resolveKey } from "./db/tenants";
import type { AppBindings } from "./env";
import { parseSignedAuthorization, verifySignedRequest } from "./signed-requests";

const unauthorized = () => new ApiError(401, "unauthorized");

export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1] ?? null;
}

function setIdentity(c: Context<AppBindings>, identity: KeyIdentity): void {
  c.set("tenantId", identity.tenantId);
  c.set("keyId", identity.keyId);
  c.set("quotas", identity.quotas);
  c.set("limits", identity.limits);
}

async function authenticateTenant(c: Context<AppBindings>, token: string | null): Promise<void> {
  if (!token) throw unauthorized();
  const identity = await resolveKey(c.env.DB, token);
  if (!identity) throw unauthorized();
  setIdentity(c, identity);
}

/**
 * Tenant API keys: `Authorization: Bearer <key>`, or a request signed by the stock Ollama client with a registered
 * key (signed-requests.ts), or — with no Authorization header at all — the browser console's session cookie →
 * tenant id, key id and the tenant's quotas on the context, else 401. Accepted keys are cached in the isolate for a
 * few seconds (db/key-cache.ts bounds revocation).
 */
export const requireTenant = createMiddleware<AppBindings>(async (c, next) => {
  const header = c.req.header("authorization");
  const signed = parseSignedAuthorization(header);
  if (signed) setIdentity(c, await verifySignedRequest(c.env.DB, c.req.raw, signed));
  else if (header) await authenticateTenant(c, bearerToken(header));
  else {
    const identity = await tenantFromSession(c);
    if (!identity) throw unauthorized();
    setIdentity(c, identity);
  }
  await next();
});

/** The same keys as Anthropic's clients send them, in `x-api-key`; a Bearer token is taken too. */
export const requireTenantApiKey = createMiddleware<AppBindings>(async (c, next) => {
  await authenticateTenant(c, c.req.header("x-api-key")?.trim() || bearerToken(c.req.header("authorization")));
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
