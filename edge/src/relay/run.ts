/**
 * One inference request's bookkeeping from admission to its single usage record: the tenant's permit, the current
 * runner lease, and the one `finish` that releases both and writes the record — in `waitUntil`, so a client that
 * goes away cannot lose it. The request id is generated here and reused across retries: one request, one record.
 */

import { recordUsage, type UsageRecord } from "../db/usage";
import type { Env } from "../env";
import { schedulerStub } from "../scheduler/client";
import { type LimitQuotas, limiterStub, type PermitResult } from "../scheduler/limiter";
import type { Grant, ReleaseOutcome } from "../scheduler/types";
import type { Usage } from "./meter";

export type Endpoint = "generate" | "chat" | "embed" | "embeddings";

export interface RunScope {
  env: Env;
  waitUntil(promise: Promise<unknown>): void;
}

export interface RunInfo {
  tenantId: string;
  keyId: string | null;
  endpoint: Endpoint;
  /** The model name as the client wrote it. */
  model: string;
  /** The tenant's limits, as authentication read them (no D1 read on the inference path). */
  quotas: LimitQuotas;
}

/** The record is what billing reads: a transient D1 error must not lose it (the write is idempotent by id). */
async function withRetries(write: () => Promise<void>, attempts = 3): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (err) {
      if (attempt >= attempts) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
    }
  }
}

const logFailure = (what: string) => (err: unknown) => console.error(`relay: ${what} failed`, err);

export class InferenceRun {
  readonly requestId = crypto.randomUUID();
  modelDigest: string | null = null;
  private lease: Grant | null = null;
  private lastRunner: string | null = null;
  private permitHeld = false;
  private finished = false;
  private recorded: Promise<void> = Promise.resolve();
  private settle!: () => void;
  /**
   * Resolves once the request has ended (finished or abandoned). Held in `waitUntil` from the start: a Worker's
   * request context is torn down when its client disconnects, and only work it waits on survives to end the run.
   */
  readonly settled = new Promise<void>((resolve) => {
    this.settle = resolve;
  });

  constructor(
    private readonly scope: RunScope,
    readonly info: RunInfo,
  ) {}

  get env(): Env {
    return this.scope.env;
  }

  waitUntil(promise: Promise<unknown>): void {
    this.scope.waitUntil(promise);
  }

  /** Checks the tenant's quotas; unlimited tenants never touch the limiter object (no I/O at all). */
  async admit(): Promise<PermitResult> {
    const { requests_per_minute, concurrent_requests } = this.info.quotas;
    const quotas = { requests_per_minute, concurrent_requests };
    if (quotas.requests_per_minute === null && quotas.concurrent_requests === null) return { ok: true };
    const result = await limiterStub(this.env, this.info.tenantId).acquire(this.requestId, quotas);
    this.permitHeld = result.ok && quotas.concurrent_requests !== null;
    return result;
  }

  hold(grant: Grant): void {
    this.lease = grant;
    this.lastRunner = grant.runner_id;
  }

  /** Ends the current lease (a retry takes another); failures keep new work off that runner for a while. */
  releaseLease(outcome: ReleaseOutcome): void {
    const lease = this.lease;
    this.lease = null;
    if (lease) this.waitUntil(schedulerStub(this.env).release(lease.lease_id, outcome).catch(logFailure("release")));
  }

  /**
   * Ends the request: releases what it holds and writes its one usage record. Later calls do nothing. Resolves once
   * the record is written (or its write gave up, logged): a completed answer's last bytes wait for it, so a Worker
   * that dies right after the client got its answer cannot leave it unbilled.
   */
  finish(status: UsageRecord["status"], usage: Usage, outcome?: ReleaseOutcome): Promise<void> {
    if (this.finished) return this.recorded;
    this.finished = true;
    this.releaseLease(outcome ?? (status === "ok" ? "ok" : status === "cancelled" ? "cancelled" : "error"));
    if (this.permitHeld) {
      this.permitHeld = false;
      this.waitUntil(
        limiterStub(this.env, this.info.tenantId).release(this.requestId).catch(logFailure("permit release")),
      );
    }
    const record: UsageRecord = {
      request_id: this.requestId,
      tenant_id: this.info.tenantId,
      key_id: this.info.keyId,
      endpoint: this.info.endpoint,
      model: this.info.model,
      model_digest: this.modelDigest,
      ...usage,
      status,
      runner_id: this.lastRunner,
      created_at: Date.now(),
    };
    this.recorded = withRetries(() => recordUsage(this.env.DB, record)).catch(logFailure("usage record"));
    this.waitUntil(this.recorded);
    this.settle();
    return this.recorded;
  }

  /** For requests refused before a model was resolved: nothing was used, so nothing is recorded. */
  abandon(): void {
    if (this.finished) return;
    this.finished = true;
    this.settle();
    this.releaseLease("cancelled");
    if (this.permitHeld) {
      this.permitHeld = false;
      this.waitUntil(
        limiterStub(this.env, this.info.tenantId).release(this.requestId).catch(logFailure("permit release")),
      );
    }
  }
}
