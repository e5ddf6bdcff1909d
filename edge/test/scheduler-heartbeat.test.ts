import { describe, expect, it } from "vitest";
import { schedulerStats } from "../src/scheduler/stats";
import { call } from "./helpers";
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
    ["a malformed loaded list", { ...runnerStatus("x"), loaded: [{ model_blob: 1 }] }, /^invalid heartbeat: loaded/],
  ])("refuses %s with 400", async (_label, body, message) => {
    const res = await call("POST", "/internal/runners/heartbeat", { key: RUNNER_SECRET, body });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(message);
  });

  it.each([
    ["no secret", undefined],
    ["a tenant-looking key", "corral-abc"],
  ])("refuses a heartbeat with %s", async (_label, key) => {
    const res = await call("POST", "/internal/runners/heartbeat", { key, body: runnerStatus("intruder") });
    expect(res.status).toBe(401);
  });
});
