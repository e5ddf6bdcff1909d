/**
 * What operators and the autoscaler read about the scheduler: queue depth, waiting time, busy sequences, per model
 * and overall. `schedulerStats(env)` is the JSON for `GET /admin/scheduler`; `schedulerMetrics(env)` the
 * Prometheus text for the edge's `/metrics`.
 */
import type { Env } from "../env";
import { schedulerStub } from "./client";
import type { FairQueue, Waiting } from "./fair-queue";
import { isReady, LeaseIndex } from "./placement";
import type { Lease, ModelStats, RefusalReason, RunnerState, RunnerStats, SchedulerStats } from "./types";

export interface SchedulerCounters {
  dispatched: number;
  waited_ms: number;
  rejected: Record<RefusalReason, number>;
  evicted_runners: number;
  /** Heartbeat fields rounded and `loaded` entries dropped by the edge's tolerant reading. */
  heartbeat_entries_dropped: number;
}

export const emptyCounters = (): SchedulerCounters => ({
  dispatched: 0,
  waited_ms: 0,
  rejected: { queue_full: 0, no_runner: 0, too_large: 0, cancelled: 0 },
  evicted_runners: 0,
  heartbeat_entries_dropped: 0,
});

export function computeStats(
  runnerStates: Iterable<RunnerState>,
  leaseList: Iterable<Lease>,
  queues: ReadonlyMap<string, FairQueue<Waiting>>,
  counters: SchedulerCounters,
  now: number,
): SchedulerStats {
  const leases = new LeaseIndex(leaseList);
  const models = new Map<string, ModelStats>();
  const modelStats = (model_blob: string): ModelStats => {
    let s = models.get(model_blob);
    if (!s) {
      s = { model_blob, queue_depth: 0, oldest_wait_ms: 0, busy_sequences: 0, sequences: 0, runners: 0 };
      models.set(model_blob, s);
    }
    return s;
  };

  const runners: RunnerStats[] = [];
  for (const r of runnerStates) {
    const loaded = r.loaded.map((m) => {
      const busy = Math.max(m.busy_sequences, leases.count(r.id, m.model_blob));
      const s = modelStats(m.model_blob);
      s.busy_sequences += busy;
      s.sequences += m.sequences;
      s.runners++;
      return { model_blob: m.model_blob, sequences: m.sequences, busy_sequences: busy, expires_at: m.expires_at };
    });
    // Leases on models still loading count as busy too.
    for (const [model_blob, list] of leases.models(r.id)) {
      if (!r.loaded.some((m) => m.model_blob === model_blob)) modelStats(model_blob).busy_sequences += list.length;
    }
    runners.push({
      id: r.id,
      url: r.url,
      state: r.draining_self || r.draining_operator ? "draining" : isReady(r, now) ? "ready" : "unhealthy",
      slots: r.slots,
      busy_sequences: Math.max(r.busy_slots, leases.count(r.id)),
      memory_total: r.memory_total,
      memory_free: r.memory_free,
      last_seen_ms_ago: now - r.last_seen,
      loaded,
    });
  }

  for (const [model_blob, queue] of queues) {
    if (queue.size === 0) continue;
    const s = modelStats(model_blob);
    s.queue_depth = queue.size;
    s.oldest_wait_ms = now - (queue.oldest()?.enqueued_at ?? now);
  }

  const modelList = [...models.values()].sort((a, b) => (a.model_blob < b.model_blob ? -1 : 1));
  return {
    runners: runners.sort((a, b) => (a.id < b.id ? -1 : 1)),
    models: modelList,
    totals: {
      runners: runners.length,
      ready_runners: runners.filter((r) => r.state === "ready").length,
      slots: runners.reduce((n, r) => n + r.slots, 0),
      busy_sequences: runners.reduce((n, r) => n + r.busy_sequences, 0),
      queue_depth: modelList.reduce((n, m) => n + m.queue_depth, 0),
      oldest_wait_ms: modelList.reduce((n, m) => Math.max(n, m.oldest_wait_ms), 0),
      dispatched: counters.dispatched,
      waited_ms: counters.waited_ms,
      rejected: { ...counters.rejected },
      evicted_runners: counters.evicted_runners,
      heartbeat_entries_dropped: counters.heartbeat_entries_dropped,
    },
  };
}

/** JSON for operators (`GET /admin/scheduler`). */
export async function schedulerStats(env: Pick<Env, "SCHEDULER">): Promise<SchedulerStats> {
  return schedulerStub(env).stats();
}

/** Prometheus text exposition of the scheduler's state, for the edge's `/metrics`. */
export async function schedulerMetrics(env: Pick<Env, "SCHEDULER">): Promise<string> {
  return renderSchedulerMetrics(await schedulerStats(env));
}

const label = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

export function renderSchedulerMetrics(stats: SchedulerStats): string {
  const out: string[] = [];
  const family = (name: string, type: "gauge" | "counter", help: string, samples: [string, number][]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) out.push(`${name}${labels} ${value}`);
  };
  const perModel = (pick: (m: ModelStats) => number): [string, number][] =>
    stats.models.map((m) => [`{model="${label(m.model_blob)}"}`, pick(m)]);
  const t = stats.totals;

  family(
    "corral_scheduler_queue_depth",
    "gauge",
    "Requests waiting for a runner, per model blob.",
    perModel((m) => m.queue_depth),
  );
  family(
    "corral_scheduler_oldest_wait_seconds",
    "gauge",
    "Age of the longest-waiting request, per model blob.",
    perModel((m) => m.oldest_wait_ms / 1000),
  );
  family(
    "corral_scheduler_busy_sequences",
    "gauge",
    "Sequences serving a request, per model blob.",
    perModel((m) => m.busy_sequences),
  );
  family(
    "corral_scheduler_sequences",
    "gauge",
    "Sequences of loaded models, per model blob.",
    perModel((m) => m.sequences),
  );
  family(
    "corral_scheduler_runners",
    "gauge",
    "Registered runners by state.",
    (["ready", "draining", "unhealthy"] as const).map((s) => [
      `{state="${s}"}`,
      stats.runners.filter((r) => r.state === s).length,
    ]),
  );
  family("corral_scheduler_slots", "gauge", "Sequences of loaded models over all runners.", [["", t.slots]]);
  // Fleet-wide gauges (present even when no model is loaded); "_total" is reserved for counters.
  family("corral_scheduler_fleet_busy_sequences", "gauge", "Busy sequences over all runners.", [
    ["", t.busy_sequences],
  ]);
  family("corral_scheduler_fleet_queue_depth", "gauge", "Waiting requests over all models.", [["", t.queue_depth]]);
  family("corral_scheduler_dispatched_total", "counter", "Requests given a runner.", [["", t.dispatched]]);
  family("corral_scheduler_wait_seconds_total", "counter", "Time dispatched requests spent waiting.", [
    ["", t.waited_ms / 1000],
  ]);
  family(
    "corral_scheduler_rejected_total",
    "counter",
    "Requests refused, by reason.",
    Object.entries(t.rejected).map(([reason, n]) => [`{reason="${reason}"}`, n]),
  );
  family("corral_scheduler_evicted_runners_total", "counter", "Runners evicted after missed heartbeats.", [
    ["", t.evicted_runners],
  ]);
  family(
    "corral_scheduler_heartbeat_entries_dropped_total",
    "counter",
    "Heartbeat fields rounded down and loaded-model entries dropped as malformed (the runner was kept).",
    [["", t.heartbeat_entries_dropped]],
  );
  return `${out.join("\n")}\n`;
}
