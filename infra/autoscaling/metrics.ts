/**
 * Turns the edge's scheduler stats (`GET /admin/scheduler`) into the numbers the GPU fleet scales on, and renders them
 * as a CloudWatch Embedded Metric Format (EMF) log line. EMF needs neither the AWS SDK nor `cloudwatch:PutMetricData`:
 * Lambda's log pipeline extracts the metrics from stdout.
 *
 * Pure (no AWS, no globals) so it is unit tested; `publisher.ts` is the Lambda around it.
 */

export const METRIC_NAMESPACE = "Corral/GpuFleet";

/** Names of the metrics this module publishes; the fleet's scaling policies refer to them. */
export const MetricName = {
  /** (busy sequences + waiting requests) / ready runners: the target-tracking metric. */
  demandPerRunner: "DemandPerRunner",
  /** Waiting requests over all models: wakes a fleet scaled to zero. */
  queueDepth: "QueueDepth",
  busySequences: "BusySequences",
  readyRunners: "ReadyRunners",
  oldestWaitSeconds: "OldestWaitSeconds",
} as const;

/** The subset of the edge's SchedulerStats (edge/src/scheduler/types.ts) the autoscaler reads. */
export interface SchedulerTotals {
  runners: number;
  ready_runners: number;
  slots: number;
  busy_sequences: number;
  queue_depth: number;
  oldest_wait_ms: number;
}

export interface FleetMetrics {
  demandPerRunner: number;
  queueDepth: number;
  busySequences: number;
  readyRunners: number;
  oldestWaitSeconds: number;
}

const nonNegative = (value: unknown, name: string): number => {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new Error(`scheduler stats: totals.${name} must be a non-negative number, got ${JSON.stringify(value)}`);
  }
  return value;
};

/** Checks the JSON the edge answered; a changed shape must fail loudly rather than scale the fleet on garbage. */
export function parseSchedulerTotals(body: unknown): SchedulerTotals {
  const totals = (body as { totals?: unknown } | null)?.totals;
  if (typeof totals !== "object" || totals === null) throw new Error("scheduler stats: missing `totals` object");
  const t = totals as Record<string, unknown>;
  return {
    runners: nonNegative(t.runners, "runners"),
    ready_runners: nonNegative(t.ready_runners, "ready_runners"),
    slots: nonNegative(t.slots, "slots"),
    busy_sequences: nonNegative(t.busy_sequences, "busy_sequences"),
    queue_depth: nonNegative(t.queue_depth, "queue_depth"),
    oldest_wait_ms: nonNegative(t.oldest_wait_ms, "oldest_wait_ms"),
  };
}

/**
 * Demand is what the fleet is asked to do right now: sequences generating plus requests waiting for one. Divided by
 * the runners able to take work, it is the "backlog per instance" target tracking wants: it falls as runners are added.
 * With no ready runner the whole demand counts against one, so any demand reads as above target and scales out
 * (draining and unhealthy runners take no new work, so they don't count as capacity).
 */
export function computeFleetMetrics(totals: SchedulerTotals): FleetMetrics {
  const demand = totals.busy_sequences + totals.queue_depth;
  const capacity = Math.max(1, totals.ready_runners);
  return {
    demandPerRunner: round(demand / capacity),
    queueDepth: totals.queue_depth,
    busySequences: totals.busy_sequences,
    readyRunners: totals.ready_runners,
    oldestWaitSeconds: round(totals.oldest_wait_ms / 1000),
  };
}

const round = (n: number) => Math.round(n * 1000) / 1000;

/**
 * One EMF document (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html)
 * with every fleet metric under the single dimension `Fleet`, which the scaling policies select on.
 */
export function toEmfDocument(metrics: FleetMetrics, fleet: string, timestampMs: number): Record<string, unknown> {
  const values: Record<string, number> = {
    [MetricName.demandPerRunner]: metrics.demandPerRunner,
    [MetricName.queueDepth]: metrics.queueDepth,
    [MetricName.busySequences]: metrics.busySequences,
    [MetricName.readyRunners]: metrics.readyRunners,
    [MetricName.oldestWaitSeconds]: metrics.oldestWaitSeconds,
  };
  return {
    _aws: {
      Timestamp: timestampMs,
      CloudWatchMetrics: [
        {
          Namespace: METRIC_NAMESPACE,
          Dimensions: [["Fleet"]],
          Metrics: Object.keys(values).map((Name) => ({
            Name,
            Unit: Name === MetricName.oldestWaitSeconds ? "Seconds" : "Count",
          })),
        },
      ],
    },
    Fleet: fleet,
    ...values,
  };
}
