import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";

/** The limits a permit is checked against (the tenant's quotas; null = unlimited). */
export interface LimitQuotas {
  requests_per_minute: number | null;
  concurrent_requests: number | null;
}

export type PermitResult =
  | { ok: true }
  | { ok: false; limit: "requests_per_minute" | "concurrent_requests"; retry_after_s: number; message: string };

/**
 * An active request that was never released (its isolate died mid-stream) stops counting after this long, so a
 * crash cannot lock a tenant out for good. Longer than any reasonable generation.
 */
export const STALE_PERMIT_MS = 15 * 60_000;

const MINUTE_MS = 60_000;

/**
 * Per-tenant rate and concurrency limits, one instance per tenant (`idFromName(tenantId)`), so they hold across
 * every edge isolate. Requests per minute is a token bucket (a full minute's allowance may come as one burst, then
 * refills evenly); concurrency counts permits between `acquire` and `release`.
 */
export class TenantLimiter extends DurableObject<Env> {
  /** Injectable for tests (through runInDurableObject). */
  clock: () => number = () => Date.now();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const sql = ctx.storage.sql;
    sql.exec("CREATE TABLE IF NOT EXISTS active (request_id TEXT PRIMARY KEY, started_at INTEGER NOT NULL)");
    sql.exec(
      "CREATE TABLE IF NOT EXISTS bucket (id INTEGER PRIMARY KEY CHECK (id = 1), tokens REAL, updated_at INTEGER)",
    );
  }

  async acquire(requestId: string, quotas: LimitQuotas): Promise<PermitResult> {
    const sql = this.ctx.storage.sql;
    const now = this.clock();
    sql.exec("DELETE FROM active WHERE started_at <= ?", now - STALE_PERMIT_MS);

    const concurrent = quotas.concurrent_requests;
    if (concurrent !== null) {
      const active = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM active").one().n;
      if (active >= concurrent) {
        return {
          ok: false,
          limit: "concurrent_requests",
          // Nobody knows when a stream ends; one second is a polite poll interval.
          retry_after_s: 1,
          message: `too many concurrent requests: this tenant may run ${concurrent} at a time`,
        };
      }
    }

    const rpm = quotas.requests_per_minute;
    if (rpm !== null) {
      const perMs = rpm / MINUTE_MS;
      const row = sql
        .exec<{ tokens: number; updated_at: number }>("SELECT tokens, updated_at FROM bucket")
        .toArray()[0];
      // A lowered quota caps the saved allowance; a new tenant starts with a full minute's worth.
      const saved = row ? Math.min(rpm, row.tokens + (now - row.updated_at) * perMs) : rpm;
      if (saved < 1) {
        return {
          ok: false,
          limit: "requests_per_minute",
          retry_after_s: perMs > 0 ? Math.max(1, Math.ceil((1 - saved) / perMs / 1000)) : 60,
          message: `rate limit exceeded: this tenant may send ${rpm} requests per minute`,
        };
      }
      sql.exec(
        "INSERT INTO bucket (id, tokens, updated_at) VALUES (1, ?, ?) ON CONFLICT(id) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at",
        saved - 1,
        now,
      );
    }

    if (concurrent !== null) {
      sql.exec("INSERT INTO active (request_id, started_at) VALUES (?, ?) ON CONFLICT DO NOTHING", requestId, now);
    }
    return { ok: true };
  }

  async release(requestId: string): Promise<void> {
    this.ctx.storage.sql.exec("DELETE FROM active WHERE request_id = ?", requestId);
  }

  async activeCount(): Promise<number> {
    return this.ctx.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM active").one().n;
  }
}

export const limiterStub = (env: Pick<Env, "LIMITER">, tenantId: string) =>
  env.LIMITER.get(env.LIMITER.idFromName(tenantId));
