import { describe, expect, it } from "vitest";
import { type LoadedModel, type RunnerStatus, readRunnerStatus } from "./runner";

const entry = (over: Partial<LoadedModel> = {}): LoadedModel => ({
  model_blob: `sha256:${"a".repeat(64)}`,
  size: 100,
  size_vram: 0,
  context_length: 2048,
  expires_at: "2026-01-01T00:00:00.000Z",
  busy_sequences: 0,
  sequences: 1,
  ...over,
});

const status = (over: Record<string, unknown> = {}): RunnerStatus & Record<string, unknown> => ({
  id: "r1",
  url: "http://r1.test",
  slots: 1,
  busy_slots: 0,
  memory_total: 1000,
  memory_free: 900,
  loaded: [entry()],
  draining: false,
  ...over,
});

describe("readRunnerStatus", () => {
  it("passes a well-formed heartbeat through unchanged", () => {
    expect(readRunnerStatus(status())).toEqual({ ok: true, status: status(), dropped: [] });
  });

  it.each([
    [
      "a fractional memory_free (the issue's 19482724386.6)",
      { memory_free: 19482724386.6 },
      { memory_free: 19482724386 },
    ],
    ["a fractional memory_total", { memory_total: 1000.5 }, { memory_total: 1000 }],
    ["fractional slots", { slots: 2.5, busy_slots: 0.1 }, { slots: 2, busy_slots: 0 }],
  ])("rounds %s down and reports it", (_label, over, expected) => {
    const read = readRunnerStatus(status(over));
    expect(read).toMatchObject({ ok: true, status: expected });
    expect(read.ok && read.dropped.length).toBe(Object.keys(over).length);
  });

  it.each([
    ["a fractional size", { size: 1.5 }, /^loaded\.0\.size: .*entry dropped$/],
    ["a negative context", { context_length: -1 }, /^loaded\.0\.context_length: /],
    ["a context past 2^31", { context_length: 2147483648.5 }, /^loaded\.0\.context_length: /],
    ["a missing digest", { model_blob: undefined }, /^loaded\.0\.model_blob: /],
  ])("drops only the entry with %s and keeps the runner", (_label, over, message) => {
    const good = entry({ model_blob: `sha256:${"b".repeat(64)}` });
    const read = readRunnerStatus(status({ loaded: [{ ...entry(), ...over }, good] }));
    expect(read).toMatchObject({ ok: true, status: { id: "r1", loaded: [good] } });
    expect(read.ok && read.dropped).toEqual([expect.stringMatching(message)]);
  });

  it.each([
    ["no id", { id: "" }, /^invalid heartbeat: id/],
    ["a bad url", { url: "nope" }, /^invalid heartbeat: url/],
    ["a counter that is not a number", { memory_free: null }, /^invalid heartbeat: memory_free/],
    ["a negative counter", { slots: -1 }, /^invalid heartbeat: slots/],
    ["loaded that is not a list", { loaded: {} }, /^invalid heartbeat: loaded/],
  ])("refuses an envelope with %s", (_label, over, message) => {
    const read = readRunnerStatus(status(over));
    expect(read.ok).toBe(false);
    expect(!read.ok && read.error).toMatch(message);
  });
});
