import { describe, expect, it } from "vitest";
import {
  computeFleetMetrics,
  METRIC_NAMESPACE,
  MetricName,
  parseSchedulerTotals,
  type SchedulerTotals,
  toEmfDocument,
} from "./metrics";

const totals = (over: Partial<SchedulerTotals>): SchedulerTotals => ({
  runners: 0,
  ready_runners: 0,
  slots: 0,
  busy_sequences: 0,
  queue_depth: 0,
  oldest_wait_ms: 0,
  ...over,
});

describe("computeFleetMetrics", () => {
  it.each([
    { name: "idle fleet", t: { runners: 2, ready_runners: 2, slots: 8 }, demandPerRunner: 0 },
    { name: "busy, nothing waiting", t: { ready_runners: 2, busy_sequences: 6 }, demandPerRunner: 3 },
    {
      name: "waiting requests add to demand",
      t: { ready_runners: 2, busy_sequences: 8, queue_depth: 4 },
      demandPerRunner: 6,
    },
    {
      name: "no ready runner: all demand on one",
      t: { runners: 1, ready_runners: 0, queue_depth: 5 },
      demandPerRunner: 5,
    },
    { name: "scaled to zero and idle", t: {}, demandPerRunner: 0 },
    { name: "fractional ratios are rounded", t: { ready_runners: 3, busy_sequences: 1 }, demandPerRunner: 0.333 },
  ])("$name", ({ t, demandPerRunner }) => {
    expect(computeFleetMetrics(totals(t)).demandPerRunner).toBe(demandPerRunner);
  });

  it("passes queue depth, busy sequences and ready runners through and converts the wait to seconds", () => {
    const m = computeFleetMetrics(
      totals({ runners: 3, ready_runners: 2, busy_sequences: 7, queue_depth: 3, oldest_wait_ms: 1500 }),
    );
    expect(m).toEqual({ demandPerRunner: 5, queueDepth: 3, busySequences: 7, readyRunners: 2, oldestWaitSeconds: 1.5 });
  });
});

describe("parseSchedulerTotals", () => {
  it("reads the totals of a full /admin/scheduler answer and ignores the rest", () => {
    const body = {
      runners: [{ id: "r1" }],
      models: [],
      totals: { ...totals({ runners: 1, ready_runners: 1, slots: 4, busy_sequences: 2 }), dispatched: 9 },
    };
    expect(parseSchedulerTotals(body)).toEqual(totals({ runners: 1, ready_runners: 1, slots: 4, busy_sequences: 2 }));
  });

  it.each([
    { name: "not an object", body: "nope", message: /missing `totals`/ },
    { name: "null", body: null, message: /missing `totals`/ },
    { name: "no totals", body: { runners: [] }, message: /missing `totals`/ },
    { name: "missing field", body: { totals: { ...totals({}), queue_depth: undefined } }, message: /queue_depth/ },
    { name: "negative", body: { totals: totals({ busy_sequences: -1 }) }, message: /busy_sequences/ },
    { name: "string number", body: { totals: { ...totals({}), ready_runners: "2" } }, message: /ready_runners/ },
    { name: "NaN", body: { totals: totals({ slots: Number.NaN }) }, message: /slots/ },
  ])("rejects $name", ({ body, message }) => {
    expect(() => parseSchedulerTotals(body)).toThrow(message);
  });
});

describe("toEmfDocument", () => {
  const metrics = { demandPerRunner: 2.5, queueDepth: 1, busySequences: 4, readyRunners: 2, oldestWaitSeconds: 0.25 };
  const doc = toEmfDocument(metrics, "corral-prod", 1_700_000_000_000) as {
    _aws: {
      Timestamp: number;
      CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[];
    };
    [key: string]: unknown;
  };

  it("declares every metric under the Fleet dimension in the fleet namespace", () => {
    const [directive] = doc._aws.CloudWatchMetrics;
    expect(doc._aws.Timestamp).toBe(1_700_000_000_000);
    expect(directive?.Namespace).toBe(METRIC_NAMESPACE);
    expect(directive?.Dimensions).toEqual([["Fleet"]]);
    expect(directive?.Metrics.map((m) => m.Name).sort()).toEqual(Object.values(MetricName).sort());
    expect(directive?.Metrics.find((m) => m.Name === MetricName.oldestWaitSeconds)?.Unit).toBe("Seconds");
    expect(directive?.Metrics.find((m) => m.Name === MetricName.queueDepth)?.Unit).toBe("Count");
  });

  it("carries the dimension value and each metric's value at the top level, as EMF requires", () => {
    expect(doc.Fleet).toBe("corral-prod");
    expect(doc[MetricName.demandPerRunner]).toBe(2.5);
    expect(doc[MetricName.queueDepth]).toBe(1);
    expect(doc[MetricName.busySequences]).toBe(4);
    expect(doc[MetricName.readyRunners]).toBe(2);
    expect(doc[MetricName.oldestWaitSeconds]).toBe(0.25);
  });
});
