import { DurableObject } from "cloudflare:workers";
import type { RunnerStatus } from "@corral/protocol/runner";
import type { Env } from "../env";
import { FairQueue, type Waiting } from "./fair-queue";
import { chooseRunner, isReady, LeaseIndex, tooLargeForFleet } from "./placement";
import { computeStats, emptyCounters, type SchedulerCounters } from "./stats";
import {
  type AcquireRequest,
  type AcquireResult,
  DEFAULT_SCHEDULER_CONFIG,
  type FleetLoadedModel,
  type Grant,
  type HeartbeatReply,
  type Lease,
  type RefusalReason,
  type ReleaseOutcome,
  type RunnerState,
  type SchedulerConfig,
  type SchedulerStats,
} from "./types";

interface Waiter extends Waiting {
  request: AcquireRequest;
  settle(result: AcquireResult): void;
}

/**
 * Knows the runners and decides which one serves a request. Runners and leases live in the object's SQLite
 * storage (they survive a restart); waiting requests are live RPC calls, so they live in memory only.
 */
export class Scheduler extends DurableObject<Env> {
  /** Injectable for tests (through runInDurableObject); production reads the wall clock. */
  clock: () => number = () => Date.now();
  private config: SchedulerConfig = { ...DEFAULT_SCHEDULER_CONFIG };
  private readonly runners = new Map<string, RunnerState>();
  private readonly leases = new Map<string, Lease>();
  private readonly queues = new Map<string, FairQueue<Waiter>>();
  private counters: SchedulerCounters = emptyCounters();
  /**
   * The tenant that last used each model on each runner (`runner\nblob`), for the fair-share rule of placement.ts,
   * as placed here: newer than the runner's own report (its heartbeat's `tenant` per loaded model), which is what
   * is known after a restart.
   */
  private readonly lastUser = new Map<string, string>();
  private readonly fairness = {
    userOf: (runnerId: string, modelBlob: string) =>
      this.lastUser.get(`${runnerId}\n${modelBlob}`) ??
      this.runners.get(runnerId)?.loaded.find((m) => m.model_blob === modelBlob)?.tenant,
    maxLoadsPerTenant: 0,
  };

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const sql = ctx.storage.sql;
    sql.exec("CREATE TABLE IF NOT EXISTS runners (id TEXT PRIMARY KEY, state TEXT NOT NULL)");
    sql.exec("CREATE TABLE IF NOT EXISTS leases (id TEXT PRIMARY KEY, state TEXT NOT NULL)");
    sql.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    for (const row of sql.exec<{ state: string }>("SELECT state FROM runners")) {
      const runner = JSON.parse(row.state) as RunnerState;
      this.runners.set(runner.id, runner);
    }
    for (const row of sql.exec<{ state: string }>("SELECT state FROM leases")) {
      const lease = JSON.parse(row.state) as Lease;
      this.leases.set(lease.id, lease);
    }
    const saved = sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'config'").toArray()[0];
    if (saved) this.config = { ...this.config, ...(JSON.parse(saved.value) as Partial<SchedulerConfig>) };
  }

  /**
   * A runner's heartbeat (already read by the route): refresh what it holds, hand out what it freed.
   * `droppedEntries`: what the route had to round or drop from it (counted for /metrics).
   */
  async heartbeat(status: RunnerStatus, droppedEntries = 0): Promise<HeartbeatReply> {
    const now = this.clock();
    this.counters.heartbeat_entries_dropped += droppedEntries;
    const previous = this.runners.get(status.id);
    const runner: RunnerState = {
      id: status.id,
      url: status.url,
      slots: status.slots,
      busy_slots: status.busy_slots,
      memory_total: status.memory_total,
      memory_free: status.memory_free,
      loaded: status.loaded,
      draining_self: status.draining,
      draining_operator: previous?.draining_operator ?? false,
      last_seen: now,
      unhealthy_until: previous?.unhealthy_until ?? 0,
      registered_at: previous?.registered_at ?? now,
    };
    this.saveRunner(runner);
    this.reconcileLeases(runner, now);
    this.forgetUsers(runner.id, new Set(runner.loaded.map((m) => m.model_blob)));
    this.dispatch();
    await this.scheduleAlarm();
    return { ok: true, draining: runner.draining_self || runner.draining_operator };
  }

  /** A lease on a runner for one request, now or after waiting in the model's queue. */
  async acquire(request: AcquireRequest): Promise<AcquireResult> {
    const now = this.clock();
    const grant = this.tryPlace(request, now, now);
    if (grant) return { ok: true, grant };
    if (tooLargeForFleet(request.estimated_bytes, this.runners.values())) {
      const largest = Math.max(...[...this.runners.values()].map((r) => r.memory_total));
      return this.refuse("too_large", `${request.estimated_bytes} bytes needed, largest runner has ${largest}`);
    }
    if (this.runners.size === 0 && this.config.noRunnerWaitMs <= 0) return this.refuse("no_runner");
    // A retry that has tried every runner there is would wait for nothing.
    const excluded = new Set(request.exclude ?? []);
    if (excluded.size > 0 && [...this.runners.keys()].every((id) => excluded.has(id))) return this.refuse("no_runner");

    let queue = this.queues.get(request.model_blob);
    if (!queue) {
      queue = new FairQueue<Waiter>();
      this.queues.set(request.model_blob, queue);
    }
    if (queue.size >= this.config.maxQueuePerModel) {
      // Full: make room only by shedding a tenant that holds clearly more places than this one.
      const victim = queue.newestOfLargestTenant();
      if (!victim || queue.countFor(victim.tenant_id) <= queue.countFor(request.tenant_id) + 1) {
        return this.refuse("queue_full");
      }
      queue.remove(victim);
      victim.settle(this.refuse("queue_full"));
    }
    const result = new Promise<AcquireResult>((settle) => {
      queue.push({ tenant_id: request.tenant_id, enqueued_at: now, request, settle });
    });
    await this.scheduleAlarm();
    return result;
  }

  /** Ends a lease; a failure keeps new work off the runner for the cooldown. Unknown ids are a no-op. */
  async release(leaseId: string, outcome: ReleaseOutcome): Promise<boolean> {
    const lease = this.leases.get(leaseId);
    if (!lease) return false;
    this.dropLease(lease);
    if (outcome === "failed_before_first_byte" || outcome === "failed_after_first_byte") {
      const runner = this.runners.get(lease.runner_id);
      if (runner) this.saveRunner({ ...runner, unhealthy_until: this.clock() + this.config.unhealthyCooldownMs });
    }
    this.dispatch();
    await this.scheduleAlarm();
    return true;
  }

  /** The client went away: stop waiting for it and free whatever it was given. */
  async cancel(requestId: string): Promise<void> {
    for (const queue of this.queues.values()) {
      for (const waiter of [...queue]) {
        if (waiter.request.request_id !== requestId) continue;
        queue.remove(waiter);
        waiter.settle({ ok: false, reason: "cancelled" });
      }
    }
    for (const lease of [...this.leases.values()]) if (lease.request_id === requestId) this.dropLease(lease);
    this.dispatch();
    await this.scheduleAlarm();
  }

  /** Operators: a draining runner finishes its streams and takes no new work; its heartbeat reply says so. */
  async drain(runnerId: string, draining = true): Promise<boolean> {
    const runner = this.runners.get(runnerId);
    if (!runner) return false;
    this.saveRunner({ ...runner, draining_operator: draining });
    if (!draining) this.dispatch();
    return true;
  }

  /**
   * A runner for a background job (quantize): ready, not excluded, the fewest busy sequences. Jobs hold no lease:
   * they use the runner's CPU and disk, not a sequence, and a runner refuses them itself while draining.
   */
  async jobRunner(exclude: string[] = []): Promise<{ id: string; url: string } | null> {
    const now = this.clock();
    let best: RunnerState | undefined;
    for (const runner of this.runners.values()) {
      if (!isReady(runner, now) || exclude.includes(runner.id)) continue;
      if (!best || runner.busy_slots < best.busy_slots) best = runner;
    }
    return best ? { id: best.id, url: best.url } : null;
  }

  /** Models loaded anywhere in the fleet, merged per weights blob (latest expiry wins). */
  async loadedModels(): Promise<FleetLoadedModel[]> {
    const merged = new Map<string, FleetLoadedModel>();
    for (const runner of this.runners.values()) {
      for (const m of runner.loaded) {
        const seen = merged.get(m.model_blob);
        if (!seen) {
          const { model_blob, size, size_vram, context_length, expires_at } = m;
          merged.set(m.model_blob, { model_blob, size, size_vram, context_length, expires_at, runners: [runner.id] });
          continue;
        }
        seen.runners.push(runner.id);
        if (Date.parse(m.expires_at) > Date.parse(seen.expires_at)) seen.expires_at = m.expires_at;
      }
    }
    return [...merged.values()];
  }

  async stats(): Promise<SchedulerStats> {
    return computeStats(this.runners.values(), this.leases.values(), this.queues, this.counters, this.clock());
  }

  async configure(patch: Partial<SchedulerConfig>): Promise<SchedulerConfig> {
    this.config = { ...this.config, ...patch };
    this.ctx.storage.sql.exec(
      "INSERT INTO meta (key, value) VALUES ('config', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
      JSON.stringify(this.config),
    );
    this.dispatch();
    await this.scheduleAlarm();
    return this.config;
  }

  override async alarm(): Promise<void> {
    await this.sweep();
  }

  /** Evicts silent runners, times out waiters, retries placement (cooldowns may have ended). */
  async sweep(): Promise<void> {
    const now = this.clock();
    const silentAfter = this.config.heartbeatIntervalMs * this.config.missedHeartbeats;
    for (const runner of [...this.runners.values()]) {
      if (now - runner.last_seen < silentAfter) continue;
      this.runners.delete(runner.id);
      this.ctx.storage.sql.exec("DELETE FROM runners WHERE id = ?", runner.id);
      for (const lease of [...this.leases.values()]) if (lease.runner_id === runner.id) this.dropLease(lease);
      this.forgetUsers(runner.id, new Set());
      this.counters.evicted_runners++;
    }
    this.dispatch();
    for (const queue of this.queues.values()) {
      for (const waiter of [...queue]) {
        const reason = this.expiredReason(waiter, now);
        if (!reason) continue;
        queue.remove(waiter);
        waiter.settle(this.refuse(reason));
      }
    }
    await this.scheduleAlarm();
  }

  private expiredReason(waiter: Waiter, now: number): RefusalReason | null {
    const waited = now - waiter.enqueued_at;
    if (this.runners.size === 0 && waited >= this.config.noRunnerWaitMs) return "no_runner";
    if (waited >= this.config.maxQueueWaitMs) return "queue_full";
    return null;
  }

  /** Hands queued requests to runners with room, round robin over tenants within each model's queue. */
  private dispatch(): void {
    if (this.queues.size === 0) return;
    const now = this.clock();
    const index = new LeaseIndex(this.leases.values());
    for (const [model, queue] of this.queues) {
      let progress = true;
      while (progress && queue.size > 0) {
        progress = false;
        for (const head of queue.heads()) {
          const grant = this.tryPlace(head.request, now, head.enqueued_at, index);
          if (!grant) continue;
          queue.remove(head);
          head.settle({ ok: true, grant });
          progress = true;
        }
      }
      if (queue.size === 0) this.queues.delete(model);
    }
  }

  private tryPlace(
    request: AcquireRequest,
    now: number,
    enqueuedAt: number,
    index = new LeaseIndex(this.leases.values()),
  ): Grant | null {
    this.fairness.maxLoadsPerTenant = this.config.maxLoadsPerTenant;
    const runner = chooseRunner(
      request,
      this.runners.values(),
      index,
      now,
      this.config.defaultSequences,
      this.fairness,
    );
    if (!runner) return null;
    this.lastUser.set(`${runner.id}\n${request.model_blob}`, request.tenant_id);
    const lease: Lease = {
      id: crypto.randomUUID(),
      runner_id: runner.id,
      model_blob: request.model_blob,
      tenant_id: request.tenant_id,
      request_id: request.request_id,
      bytes: request.estimated_bytes,
      created_at: now,
    };
    this.leases.set(lease.id, lease);
    index.add(lease);
    this.ctx.storage.sql.exec("INSERT INTO leases (id, state) VALUES (?, ?)", lease.id, JSON.stringify(lease));
    const waited = now - enqueuedAt;
    this.counters.dispatched++;
    this.counters.waited_ms += waited;
    return { lease_id: lease.id, runner_id: runner.id, url: runner.url, waited_ms: waited };
  }

  /**
   * Leases whose request never reached the runner (the edge isolate died between acquire and release) would hold
   * a sequence forever. The runner's busy count is the truth: leases beyond it, once old enough to have reached the
   * runner, are dropped. Leases are interchangeable counters, so dropping the oldest is as good as the right one.
   */
  private reconcileLeases(runner: RunnerState, now: number): void {
    const byModel = new LeaseIndex(this.leases.values()).models(runner.id);
    for (const [modelBlob, list] of byModel) {
      const loaded = runner.loaded.find((m) => m.model_blob === modelBlob);
      const grace = loaded ? this.config.leaseGraceMs : this.config.loadGraceMs;
      const excess = list.length - (loaded?.busy_sequences ?? 0);
      const old = list.filter((l) => now - l.created_at >= grace).sort((a, b) => a.created_at - b.created_at);
      for (const lease of old.slice(0, Math.max(0, excess))) this.dropLease(lease);
    }
  }

  /** Drops the last users of models a runner no longer holds or is loading. */
  private forgetUsers(runnerId: string, loaded: ReadonlySet<string>): void {
    const leased = new LeaseIndex(this.leases.values()).models(runnerId);
    for (const key of this.lastUser.keys()) {
      const [id, blob = ""] = key.split("\n");
      if (id === runnerId && !loaded.has(blob) && !leased.has(blob)) this.lastUser.delete(key);
    }
  }

  private refuse(reason: RefusalReason, detail?: string): AcquireResult {
    this.counters.rejected[reason]++;
    return detail === undefined ? { ok: false, reason } : { ok: false, reason, detail };
  }

  private saveRunner(runner: RunnerState): void {
    this.runners.set(runner.id, runner);
    this.ctx.storage.sql.exec(
      "INSERT INTO runners (id, state) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET state = excluded.state",
      runner.id,
      JSON.stringify(runner),
    );
  }

  private dropLease(lease: Lease): void {
    this.leases.delete(lease.id);
    this.ctx.storage.sql.exec("DELETE FROM leases WHERE id = ?", lease.id);
  }

  /** One alarm at the earliest of: a runner going silent, a cooldown ending with requests waiting, a wait expiring. */
  private async scheduleAlarm(): Promise<void> {
    const now = this.clock();
    const silentAfter = this.config.heartbeatIntervalMs * this.config.missedHeartbeats;
    let next = Number.POSITIVE_INFINITY;
    for (const runner of this.runners.values()) next = Math.min(next, runner.last_seen + silentAfter);
    let oldestWaiter = Number.POSITIVE_INFINITY;
    for (const queue of this.queues.values())
      oldestWaiter = Math.min(oldestWaiter, queue.oldest()?.enqueued_at ?? oldestWaiter);
    if (oldestWaiter < Number.POSITIVE_INFINITY) {
      const wait = this.runners.size === 0 ? this.config.noRunnerWaitMs : this.config.maxQueueWaitMs;
      next = Math.min(next, oldestWaiter + wait);
      for (const runner of this.runners.values()) {
        if (runner.unhealthy_until > now) next = Math.min(next, runner.unhealthy_until);
      }
    }
    if (next === Number.POSITIVE_INFINITY) {
      await this.ctx.storage.deleteAlarm();
      return;
    }
    // Alarms run on the wall clock: schedule the same delay from it, whatever clock the scheduler reads.
    await this.ctx.storage.setAlarm(Date.now() + Math.max(0, next - now));
  }
}
