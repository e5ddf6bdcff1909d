import type { Usage } from "../relay/meter";

/** One request's usage row: the metered counts (relay/meter.ts) and who, what and how it ended. */
export interface UsageRecord extends Usage {
  request_id: string;
  tenant_id: string;
  key_id: string | null;
  endpoint: string;
  model: string;
  model_digest: string | null;
  status: "ok" | "error" | "cancelled";
  runner_id: string | null;
  created_at: number;
}

/** Idempotent by request_id: a retried write of the same request never double counts. */
export async function recordUsage(db: D1Database, r: UsageRecord): Promise<void> {
  await db
    .prepare(
      `INSERT INTO usage (request_id, tenant_id, key_id, endpoint, model, model_digest, prompt_tokens,
        prompt_cached_tokens, output_tokens, load_duration, prompt_eval_duration, eval_duration, total_duration, status,
        runner_id, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(request_id) DO NOTHING`,
    )
    .bind(
      r.request_id,
      r.tenant_id,
      r.key_id,
      r.endpoint,
      r.model,
      r.model_digest,
      r.prompt_tokens,
      r.prompt_cached_tokens,
      r.output_tokens,
      r.load_duration,
      r.prompt_eval_duration,
      r.eval_duration,
      r.total_duration,
      r.status,
      r.runner_id,
      r.created_at,
    )
    .run();
}

const DAY_MS = 86_400_000;

/** Usage by UTC day and model, for a tenant's own view and the admin API. */
export async function usageSummary(db: D1Database, tenantId: string, since?: string, until?: string) {
  const from = since ? Date.parse(since) : 0;
  const to = until ? Date.parse(until) : Number.MAX_SAFE_INTEGER;
  const { results } = await db
    .prepare(
      `SELECT (created_at / ${DAY_MS}) AS day, model, COUNT(*) AS requests, SUM(prompt_tokens) AS prompt_tokens,
        SUM(prompt_cached_tokens) AS prompt_cached_tokens, SUM(output_tokens) AS output_tokens,
        SUM(total_duration) AS total_duration
       FROM usage WHERE tenant_id = ? AND created_at >= ? AND created_at < ?
       GROUP BY day, model ORDER BY day, model`,
    )
    .bind(tenantId, Number.isNaN(from) ? 0 : from, Number.isNaN(to) ? Number.MAX_SAFE_INTEGER : to)
    .all<{
      day: number;
      model: string;
      requests: number;
      prompt_tokens: number;
      prompt_cached_tokens: number;
      output_tokens: number;
      total_duration: number;
    }>();
  return {
    usage: results.map((r) => ({ ...r, day: new Date(r.day * DAY_MS).toISOString().slice(0, 10) })),
  };
}

/** A tenant's raw records, oldest first: what billing audits (and the fleet tests) compare request by request. */
export async function listUsageRecords(
  db: D1Database,
  tenantId: string,
  opts: { since?: number; limit?: number } = {},
): Promise<UsageRecord[]> {
  const limit = Math.min(Math.max(1, opts.limit ?? 1000), 10_000);
  const { results } = await db
    .prepare(
      `SELECT request_id, tenant_id, key_id, endpoint, model, model_digest, prompt_tokens, prompt_cached_tokens,
        output_tokens, load_duration, prompt_eval_duration, eval_duration, total_duration, status, runner_id, created_at
       FROM usage WHERE tenant_id = ? AND created_at >= ? ORDER BY created_at, request_id LIMIT ?`,
    )
    .bind(tenantId, opts.since ?? 0, limit)
    .all<UsageRecord>();
  return results;
}

/** When each of a tenant's keys last made a request (its newest usage row): the console's "last used". */
export async function keysLastUsed(db: D1Database, tenantId: string): Promise<Map<string, number>> {
  const { results } = await db
    .prepare(
      "SELECT key_id, MAX(created_at) AS last_used FROM usage WHERE tenant_id = ? AND key_id IS NOT NULL GROUP BY key_id",
    )
    .bind(tenantId)
    .all<{ key_id: string; last_used: number }>();
  return new Map(results.map((r) => [r.key_id, r.last_used]));
}

/** Every tenant's totals over [from, to) epoch ms, for the operator's usage-by-tenant table. */
export async function usageByTenant(db: D1Database, from: number, to: number) {
  const { results } = await db
    .prepare(
      `SELECT tenant_id, COUNT(*) AS requests, SUM(prompt_tokens) AS prompt_tokens, SUM(output_tokens) AS output_tokens
       FROM usage WHERE created_at >= ? AND created_at < ? GROUP BY tenant_id ORDER BY tenant_id`,
    )
    .bind(from, to)
    .all<{ tenant_id: string; requests: number; prompt_tokens: number; output_tokens: number }>();
  return results;
}
