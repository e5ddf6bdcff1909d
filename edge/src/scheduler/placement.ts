/**
 * Which runner serves a request: pure functions over the runners' last heartbeats and the scheduler's leases, so
 * the rules are testable without a Durable Object.
 *
 * Order of preference:
 *   1. a runner holding the model (loaded, or being loaded for an earlier lease) with a free sequence;
 *   2. a runner with free memory to load it;
 *   3. a runner where unloading idle models makes room (the runner unloads them by keep_alive order, within the
 *      same fair-share rule).
 * Ties go to the runner with the most free sequences / memory, then the lowest id, so placement is deterministic.
 *
 * Fairness between tenants (with a FairnessPolicy), for loads only (2 and 3):
 *   - a tenant has at most `maxLoadsPerTenant` loads in progress over the fleet; more wait in the queue;
 *   - in 3, what a tenant's request may count as reclaimable follows protocol's fair-share rule (fairVictims), the
 *     same rule the runner applies when it makes room: its own idle models (or ones whose user is not known), other
 *     tenants' only up to an equal split of the runner's memory; past that it waits for memory to free up
 *     (keep_alive expiry) instead of pushing others out.
 */
import { fairVictims } from "@corral/protocol/fair-share";
import type { LoadedModel } from "@corral/protocol/runner";
import type { Lease, RunnerState } from "./types";

export function isReady(runner: RunnerState, now: number): boolean {
  return !runner.draining_self && !runner.draining_operator && runner.unhealthy_until <= now;
}

/** Sequences a runner gives a model it has not reported yet (the runner's PARALLEL default). */
export const DEFAULT_SEQUENCES = 4;

/** Leases grouped per runner and model, counted once per placement pass. */
export class LeaseIndex {
  private readonly byRunner = new Map<string, Map<string, Lease[]>>();

  constructor(leases: Iterable<Lease>) {
    for (const lease of leases) this.add(lease);
  }

  add(lease: Lease): void {
    let models = this.byRunner.get(lease.runner_id);
    if (!models) {
      models = new Map();
      this.byRunner.set(lease.runner_id, models);
    }
    const list = models.get(lease.model_blob);
    if (list) list.push(lease);
    else models.set(lease.model_blob, [lease]);
  }

  models(runnerId: string): Map<string, Lease[]> {
    return this.byRunner.get(runnerId) ?? new Map();
  }

  count(runnerId: string, modelBlob?: string): number {
    const models = this.models(runnerId);
    if (modelBlob !== undefined) return models.get(modelBlob)?.length ?? 0;
    let total = 0;
    for (const list of models.values()) total += list.length;
    return total;
  }
}

const findLoaded = (runner: RunnerState, modelBlob: string): LoadedModel | undefined =>
  runner.loaded.find((m) => m.model_blob === modelBlob);

/**
 * Sequences a model being loaded will get: what the runner gives its other models, else the default. The runner
 * heartbeats as soon as the load finishes, which replaces the guess with the truth.
 */
function provisionalSequences(runner: RunnerState, fallback: number): number {
  let most = 0;
  for (const m of runner.loaded) most = Math.max(most, m.sequences);
  return most > 0 ? most : fallback;
}

/**
 * Free sequences for `modelBlob` on `runner`, or null when the runner neither holds nor is loading it. (A runner's
 * `slots` is the sum of its loaded models' sequences, not a cap of its own: each model's sequences are the limit.)
 */
export function freeSequences(
  runner: RunnerState,
  modelBlob: string,
  leases: LeaseIndex,
  defaultSequences = DEFAULT_SEQUENCES,
): number | null {
  const mine = leases.count(runner.id, modelBlob);
  const loaded = findLoaded(runner, modelBlob);
  if (!loaded && mine === 0) return null;
  const sequences = loaded && loaded.sequences > 0 ? loaded.sequences : provisionalSequences(runner, defaultSequences);
  return Math.max(0, sequences - mine);
}

export interface MemoryView {
  /** Free memory after reserving what models being loaded for current leases will take. */
  available: number;
  /** Memory held by loaded models nobody uses: the runner frees it when it must load another. */
  reclaimable: number;
}

export function memoryView(runner: RunnerState, leases: LeaseIndex): MemoryView {
  let reserved = 0;
  for (const [modelBlob, list] of leases.models(runner.id)) {
    if (findLoaded(runner, modelBlob)) continue;
    reserved += Math.max(0, ...list.map((l) => l.bytes));
  }
  let reclaimable = 0;
  for (const m of runner.loaded) {
    if (m.busy_sequences === 0 && leases.count(runner.id, m.model_blob) === 0) reclaimable += m.size;
  }
  return { available: runner.memory_free - reserved, reclaimable };
}

export interface PlacementRequest {
  model_blob: string;
  estimated_bytes: number;
  exclude?: readonly string[];
  tenant_id?: string;
}

export interface FairnessPolicy {
  /** The tenant whose request last used `modelBlob` on `runnerId`; undefined when not known. */
  userOf(runnerId: string, modelBlob: string): string | undefined;
  /** Loads one tenant may have in progress over the fleet. */
  maxLoadsPerTenant: number;
}

/** Loads in progress (leases on a model its runner has not reported loaded) in which `tenantId` holds a lease. */
export function loadsInProgress(tenantId: string, runners: Iterable<RunnerState>, leases: LeaseIndex): number {
  let loads = 0;
  for (const runner of runners) {
    for (const [modelBlob, list] of leases.models(runner.id)) {
      if (!findLoaded(runner, modelBlob) && list.some((l) => l.tenant_id === tenantId)) loads++;
    }
  }
  return loads;
}

/** What `req`'s tenant may reclaim on `runner` under the fair-share rule. */
function fairReclaimable(
  runner: RunnerState,
  leases: LeaseIndex,
  req: PlacementRequest,
  policy: FairnessPolicy,
): number {
  const resident = runner.loaded.map((m) => ({
    size: m.size,
    tenant: policy.userOf(runner.id, m.model_blob),
    idle: m.busy_sequences === 0 && leases.count(runner.id, m.model_blob) === 0,
  }));
  const victims = fairVictims(resident, req.tenant_id, runner.memory_total, req.estimated_bytes);
  return victims.reduce((n, m) => n + m.size, 0);
}

/** The runner to serve `req` now, or null when it has to wait. */
export function chooseRunner(
  req: PlacementRequest,
  runners: Iterable<RunnerState>,
  leases: LeaseIndex,
  now: number,
  defaultSequences = DEFAULT_SEQUENCES,
  policy?: FairnessPolicy,
): RunnerState | null {
  const excluded = new Set(req.exclude ?? []);
  const ready = [...runners].filter((r) => isReady(r, now) && !excluded.has(r.id)).sort((a, b) => cmp(a.id, b.id));

  let best: { runner: RunnerState; score: number } | null = null;
  for (const runner of ready) {
    const free = freeSequences(runner, req.model_blob, leases, defaultSequences);
    if (free !== null && free > 0 && (!best || free > best.score)) best = { runner, score: free };
  }
  if (best) return best.runner;

  // Loading somewhere new: only runners without the model (a runner that holds it is full, see above).
  if (policy && req.tenant_id && loadsInProgress(req.tenant_id, ready, leases) >= policy.maxLoadsPerTenant) {
    return null;
  }
  const canStart = ready.filter((r) => freeSequences(r, req.model_blob, leases) === null);
  let roomy: { runner: RunnerState; score: number } | null = null;
  let afterUnload: { runner: RunnerState; score: number } | null = null;
  for (const runner of canStart) {
    // A runner that cannot measure its memory (0 total) is trusted to manage it itself.
    if (runner.memory_total === 0) {
      roomy ??= { runner, score: Number.POSITIVE_INFINITY };
      continue;
    }
    const view = memoryView(runner, leases);
    const { available } = view;
    const reclaimable = policy && req.tenant_id ? fairReclaimable(runner, leases, req, policy) : view.reclaimable;
    if (available >= req.estimated_bytes) {
      if (!roomy || available > roomy.score) roomy = { runner, score: available };
    } else if (available + reclaimable >= req.estimated_bytes) {
      if (!afterUnload || available + reclaimable > afterUnload.score)
        afterUnload = { runner, score: available + reclaimable };
    }
  }
  return roomy?.runner ?? afterUnload?.runner ?? null;
}

/** True when no registered runner could ever hold the model, however idle the fleet gets. */
export function tooLargeForFleet(estimatedBytes: number, runners: Iterable<RunnerState>): boolean {
  let any = false;
  for (const r of runners) {
    any = true;
    if (r.memory_total === 0 || r.memory_total >= estimatedBytes) return false;
  }
  return any;
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
