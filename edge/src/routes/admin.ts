import { ApiError } from "@corral/protocol";
import { Hono } from "hono";
import { z } from "zod";
import { requireAdmin } from "../auth";
import { readJson } from "../body";
import { RequestLimitsPatchSchema } from "../bounds";
import { listSigningKeys, registerSigningKey, revokeSigningKey } from "../db/signing-keys";
import {
  createTenant,
  getTenant,
  issueKey,
  listKeys,
  listTenants,
  revokeKey,
  setLimits,
  setQuotas,
} from "../db/tenants";
import { listUsageRecords, usageSummary } from "../db/usage";
import type { AppBindings } from "../env";
import { drainRunner, schedulerStub } from "../scheduler/client";
import { schedulerStats } from "../scheduler/stats";
import { canonicalPublicKey } from "../signed-requests";

const CreateTenant = z.object({
  name: z
    .string()
    .min(1)
    .max(100)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/),
});
const IssueKey = z.object({
  label: z.string().max(200).optional(),
  // Only for operators who bring their own secret (the local stack's CORRAL_DEV_KEY).
  key: z.string().min(8).max(512).regex(/^\S+$/).optional(),
});
const RegisterSigningKey = z.object({
  // The `.pub` line of the user's key (~/.ollama/id_ed25519.pub) or its base64 blob.
  public_key: z.string().min(1).max(1000),
  label: z.string().max(200).optional(),
});
const millis = z.number().int().nonnegative().max(86_400_000).optional();
/** Scheduler tunables operators (and the fleet tests) may change at run time; see SchedulerConfig. */
const SchedulerConfigPatch = z
  .object({
    heartbeatIntervalMs: millis,
    missedHeartbeats: z.number().int().min(1).max(100).optional(),
    maxQueuePerModel: z.number().int().nonnegative().max(1_000_000).optional(),
    noRunnerWaitMs: millis,
    maxQueueWaitMs: millis,
    unhealthyCooldownMs: millis,
    leaseGraceMs: millis,
    loadGraceMs: millis,
    defaultSequences: z.number().int().min(1).max(1024).optional(),
    maxLoadsPerTenant: z.number().int().min(1).max(1024).optional(),
  })
  .strict();
const quota = z.number().int().nonnegative().nullable().optional();
const Quotas = z.object({ storage_bytes: quota, requests_per_minute: quota, concurrent_requests: quota });

async function tenantOr404(db: D1Database, id: string) {
  const tenant = await getTenant(db, id);
  if (!tenant) throw new ApiError(404, "tenant not found");
  return tenant;
}

export const adminRoutes = new Hono<AppBindings>()
  .use("*", requireAdmin)
  .get("/tenants", async (c) => c.json({ tenants: await listTenants(c.env.DB) }))
  .post("/tenants", async (c) => {
    const { name } = await readJson(c, CreateTenant);
    return c.json(await createTenant(c.env.DB, name), 201);
  })
  .get("/tenants/:tenant", async (c) => c.json(await tenantOr404(c.env.DB, c.req.param("tenant"))))
  .put("/tenants/:tenant/quotas", async (c) => {
    const tenant = await tenantOr404(c.env.DB, c.req.param("tenant"));
    const quotas = await readJson(c, Quotas);
    return c.json(await setQuotas(c.env.DB, tenant.id, quotas));
  })
  // Request bounds (edge/src/bounds.ts): a positive whole number each, null for the default again.
  .put("/tenants/:tenant/limits", async (c) => {
    const tenant = await tenantOr404(c.env.DB, c.req.param("tenant"));
    const patch = await readJson(c, RequestLimitsPatchSchema);
    return c.json(await setLimits(c.env.DB, tenant.id, patch));
  })
  .get("/tenants/:tenant/keys", async (c) => {
    const tenant = await tenantOr404(c.env.DB, c.req.param("tenant"));
    return c.json({ keys: await listKeys(c.env.DB, tenant.id) });
  })
  .post("/tenants/:tenant/keys", async (c) => {
    const tenant = await tenantOr404(c.env.DB, c.req.param("tenant"));
    const { label, key } = await readJson(c, IssueKey);
    return c.json(await issueKey(c.env.DB, tenant.id, label ?? null, key), 201);
  })
  .delete("/keys/:key", async (c) => {
    if (!(await revokeKey(c.env.DB, c.req.param("key")))) throw new ApiError(404, "key not found");
    return c.json({ revoked: true });
  })
  // Ed25519 keys of the stock Ollama client (OLLAMA_AUTH=1): registered, listed and revoked like API keys.
  .get("/tenants/:tenant/signing-keys", async (c) => {
    const tenant = await tenantOr404(c.env.DB, c.req.param("tenant"));
    return c.json({ signing_keys: await listSigningKeys(c.env.DB, tenant.id) });
  })
  .post("/tenants/:tenant/signing-keys", async (c) => {
    const tenant = await tenantOr404(c.env.DB, c.req.param("tenant"));
    const { public_key, label } = await readJson(c, RegisterSigningKey);
    const key = canonicalPublicKey(public_key);
    return c.json(await registerSigningKey(c.env.DB, tenant.id, key, label ?? null), 201);
  })
  .delete("/signing-keys/:key", async (c) => {
    if (!(await revokeSigningKey(c.env.DB, c.req.param("key")))) throw new ApiError(404, "signing key not found");
    return c.json({ revoked: true });
  })
  // What autoscaling and operators need: queue depth, waiting time, busy sequences, runners.
  .get("/scheduler", async (c) => c.json(await schedulerStats(c.env)))
  .patch("/scheduler/config", async (c) => {
    const patch = await readJson(c, SchedulerConfigPatch);
    const defined = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
    return c.json(await schedulerStub(c.env).configure(defined));
  })
  .post("/runners/:runner/drain", async (c) => {
    if (!(await drainRunner(c.env, c.req.param("runner"), true))) throw new ApiError(404, "runner not found");
    return c.json({ draining: true });
  })
  .post("/runners/:runner/undrain", async (c) => {
    if (!(await drainRunner(c.env, c.req.param("runner"), false))) throw new ApiError(404, "runner not found");
    return c.json({ draining: false });
  })
  .get("/tenants/:tenant/usage", async (c) => {
    const tenant = await tenantOr404(c.env.DB, c.req.param("tenant"));
    return c.json(await usageSummary(c.env.DB, tenant.id, c.req.query("since"), c.req.query("until")));
  })
  // One row per request, for audits: `since` is epoch ms, `limit` at most 10000.
  .get("/tenants/:tenant/usage/records", async (c) => {
    const tenant = await tenantOr404(c.env.DB, c.req.param("tenant"));
    const since = Number(c.req.query("since") ?? 0);
    const limit = Number(c.req.query("limit") ?? 1000);
    if (!Number.isSafeInteger(since) || !Number.isSafeInteger(limit) || since < 0 || limit < 1) {
      throw new ApiError(400, "since and limit must be non-negative integers");
    }
    return c.json({ records: await listUsageRecords(c.env.DB, tenant.id, { since, limit }) });
  });
