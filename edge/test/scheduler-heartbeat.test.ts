import { describe, expect, it } from "vitest";
import { schedulerStats } from "../src/scheduler/stats";
import { ADMIN, call } from "./helpers";
import { bindings, heartbeat, loaded, RUNNER_SECRET, resetFleet, runnerStatus } from "./relay-fixtures";

describe("POST /internal/runners/heartbeat", () => {
  it("registers the runner with the scheduler and replies {ok, draining}", async () => {
    await resetFleet();
    const blob = `sha256:${"c".repeat(64)}`;
    expect(await heartbeat(runnerStatus("hb-1", { loaded: [loaded(blob, { busy_sequences: 1 })] }))).toEqual({
      ok: true,
      draining: false,
    });
    const stats = await schedulerStats(bindings);
    expect(stats.runners).toEqual([
      expect.objectContaining({ id: "hb-1", url: "http://hb-1.runner.test", state: "ready", slots: 4 }),
    ]);
    expect(stats.models).toEqual([expect.objectContaining({ model_blob: blob, busy_sequences: 1, sequences: 4 })]);
    expect(await heartbeat(runnerStatus("hb-1", { draining: true }))).toEqual({ ok: true, draining: true });
  });

  it.each([
    ["a missing id", { ...runnerStatus("x"), id: "" }, /^invalid heartbeat: id/],
    ["a bad url", { ...runnerStatus("x"), url: "not a url" }, /^invalid heartbeat: url/],
    ["negative slots", { ...runnerStatus("x"), slots: -1 }, /^invalid heartbeat: slots/],
    ["a loaded list that is not a list", { ...runnerStatus("x"), loaded: {} }, /^invalid heartbeat: loaded/],
  ])("refuses %s with 400", async (_label, body, message) => {
    const res = await call("POST", "/internal/runners/heartbeat", { key: RUNNER_SECRET, body });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(message);
  });

  it.each([
    ["a fractional memory_free (issue #9)", { memory_free: 19482724386.6 }, 1],
    ["a malformed loaded entry", { loaded: [{ model_blob: 1 }, loaded(`sha256:${"d".repeat(64)}`)] }, 1],
    ["a loaded entry with a fractional size", { loaded: [loaded(`sha256:${"e".repeat(64)}`, { size: 1.5 })] }, 1],
  ])("keeps a runner whose heartbeat has %s, and counts what it dropped", async (_label, over, dropped) => {
    await resetFleet();
    const before = (await schedulerStats(bindings)).totals.heartbeat_entries_dropped;
    const body = { ...runnerStatus("hb-tolerant"), ...over };
    const res = await call("POST", "/internal/runners/heartbeat", { key: RUNNER_SECRET, body });
    expect(res.status).toBe(200);
    const stats = await schedulerStats(bindings);
    expect(stats.runners).toEqual([expect.objectContaining({ id: "hb-tolerant", state: "ready" })]);
    expect(stats.runners[0]?.loaded.every((m) => typeof m.model_blob === "string")).toBe(true);
    expect(stats.totals.heartbeat_entries_dropped - before).toBe(dropped);
    const metrics = await call("GET", "/metrics", { key: ADMIN });
    expect(await metrics.text()).toMatch(/^corral_scheduler_heartbeat_entries_dropped_total \d+$/m);
  });

  it.each([
    ["no secret", undefined],
    ["a tenant-looking key", "corral-abc"],
  ])("refuses a heartbeat with %s", async (_label, key) => {
    const res = await call("POST", "/internal/runners/heartbeat", { key, body: runnerStatus("intruder") });
    expect(res.status).toBe(401);
  });
});
