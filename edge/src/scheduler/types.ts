/**
 * What the Scheduler Durable Object keeps and answers. Everything here crosses the DO RPC boundary, so it is plain
 * data (structured-clonable): no classes, no functions.
 */
import type { LoadedModel } from "@corral/protocol/runner";

/** One runner as the scheduler knows it: its last heartbeat plus the scheduler's own marks. */
export interface RunnerState {
  id: string;
  url: string;
  slots: number;
  busy_slots: number;
  memory_total: number;
  memory_free: number;
  loaded: LoadedModel[];
  /** The runner said it is draining (being scaled in). */
  draining_self: boolean;
  /** An operator asked it to drain; the heartbeat reply tells the runner. */
  draining_operator: boolean;
  last_seen: number;
  /** A request failed on it; no new work until then (ms epoch, 0 = healthy). */
  unhealthy_until: number;
  registered_at: number;
}

/** A request's hold on one sequence of one runner, from acquire until release. */
export interface Lease {
  id: string;
  runner_id: string;
  model_blob: string;
  tenant_id: string;
  request_id: string;
  /** Memory the model needs when the runner has to load it. */
  bytes: number;
  created_at: number;
}

export interface AcquireRequest {
  /** GGUF blob digest: the identity of the weights (shared between tenants using the same blob). */
  model_blob: string;
  /** Memory estimate for loading the model (weights, adapters, cache). */
  estimated_bytes: number;
  tenant_id: string;
  /** The edge's request id, reused across retries; `cancel(request_id)` drops its wait or lease. */
  request_id: string;
  /** Runners already tried by this request (retry after a failure before the first byte). */
  exclude?: string[];
}

export interface Grant {
  lease_id: string;
  runner_id: string;
  url: string;
  waited_ms: number;
}

/** Why no runner was given; the relay maps each reason to a status and Ollama's text (relay/failures.ts). */
export type RefusalReason = "queue_full" | "no_runner" | "too_large" | "cancelled";

export type AcquireResult = { ok: true; grant: Grant } | { ok: false; reason: RefusalReason; detail?: string };

/**
 * How a lease ended. A failure marks the runner unhealthy for a while: before the first byte the relay retries on
 * another runner; after it the client already got an error line.
 */
export type ReleaseOutcome = "ok" | "cancelled" | "error" | "failed_before_first_byte" | "failed_after_first_byte";

export interface HeartbeatReply {
  ok: true;
  draining: boolean;
}

/** A model loaded somewhere in the fleet, merged over runners (for /api/ps). */
export interface FleetLoadedModel {
  model_blob: string;
  size: number;
  size_vram: number;
  context_length: number;
  expires_at: string;
  runners: string[];
}

export interface ModelStats {
  model_blob: string;
  queue_depth: number;
  /** Age of the longest-waiting request, ms (0 when nobody waits). */
  oldest_wait_ms: number;
  busy_sequences: number;
  sequences: number;
  runners: number;
}

export interface RunnerStats {
  id: string;
  url: string;
  state: "ready" | "draining" | "unhealthy";
  slots: number;
  busy_sequences: number;
  memory_total: number;
  memory_free: number;
  last_seen_ms_ago: number;
  loaded: { model_blob: string; sequences: number; busy_sequences: number; expires_at: string }[];
}

export interface SchedulerStats {
  runners: RunnerStats[];
  models: ModelStats[];
  totals: {
    runners: number;
    ready_runners: number;
    slots: number;
    busy_sequences: number;
    queue_depth: number;
    oldest_wait_ms: number;
    /** Counters since the scheduler instance started (Prometheus counters tolerate resets). */
    dispatched: number;
    waited_ms: number;
    rejected: Record<RefusalReason, number>;
    evicted_runners: number;
    heartbeat_entries_dropped: number;
  };
}

/** Tunables, with defaults; tests shrink them through `configure`. */
export interface SchedulerConfig {
  /** How often runners heartbeat; a runner silent for `missedHeartbeats` intervals is evicted. */
  heartbeatIntervalMs: number;
  missedHeartbeats: number;
  /** Waiting requests per model (Ollama's OLLAMA_MAX_QUEUE default). */
  maxQueuePerModel: number;
  /** A request waits at most this long while no runner at all is registered. */
  noRunnerWaitMs: number;
  /** A request waits at most this long in a queue, then gets the queue-full answer. */
  maxQueueWaitMs: number;
  /** A runner a request failed on takes no new work for this long. */
  unhealthyCooldownMs: number;
  /** Leases younger than this are never reconciled away (the request may not have reached the runner yet). */
  leaseGraceMs: number;
  /** A model being loaded may take this long before the runner must report it. */
  loadGraceMs: number;
  /** Sequences assumed for a model a runner is loading, until its heartbeat reports the real number. */
  defaultSequences: number;
  /** Loads one tenant may have in progress over the fleet (placement.ts, fairness). */
  maxLoadsPerTenant: number;
}

export const DEFAULT_SCHEDULER_CONFIG: SchedulerConfig = {
  // The runner's HEARTBEAT_INTERVAL_MS default: a dead runner is evicted after about 6 s.
  heartbeatIntervalMs: 2_000,
  missedHeartbeats: 3,
  maxQueuePerModel: 512,
  noRunnerWaitMs: 30_000,
  maxQueueWaitMs: 10 * 60_000,
  unhealthyCooldownMs: 30_000,
  leaseGraceMs: 30_000,
  loadGraceMs: 5 * 60_000,
  defaultSequences: 4,
  maxLoadsPerTenant: 2,
};
