import { describe, expect, it } from "vitest";
import {
  checkBadInputs,
  checkProgress,
  checkRecovery,
  checkReplays,
  checkStorage,
  checkUsage,
  percentile,
  type RequestRecord,
  summarize,
  type UsageRow,
} from "./invariants";

const req = (r: Partial<RequestRecord>): RequestRecord => ({
  tenant: "a",
  endpoint: "/api/generate",
  stream: false,
  startedAt: 0,
  endedAt: 10,
  outcome: "ok",
  ...r,
});
const row = (request_id: string, status = "ok"): UsageRow => ({
  request_id,
  endpoint: "generate",
  status,
  output_tokens: 1,
});

describe("summarize", () => {
  it("counts by outcome and endpoint, latency of completed requests only, tokens", () => {
    const s = summarize([
      req({ endedAt: 100, outputTokens: 5 }),
      req({ endedAt: 300, outputTokens: 7 }),
      req({ endpoint: "/api/chat", outcome: "aborted", endedAt: 9999, outputTokens: 50 }),
    ]);
    expect(s.by_outcome).toEqual({ ok: 2, aborted: 1 });
    expect(s.by_endpoint["/api/chat"]).toEqual({ aborted: 1 });
    expect(s.latency_ms_ok).toEqual({ p50: 100, p99: 300 });
    expect(s.output_tokens).toBe(12);
    expect(s.slowest[0]).toEqual({ tenant: "a", endpoint: "/api/chat", ms: 9999, outcome: "aborted" });
  });

  it.each([
    [[], 50, 0],
    [[1, 2, 3, 4], 50, 2],
    [[1, 2, 3, 4], 99, 4],
    [[5], 1, 5],
  ])("percentile(%j, %i) = %i", (sorted, p, want) => expect(percentile(sorted, p)).toBe(want));
});

describe("checkUsage", () => {
  const cases: [string, RequestRecord[], UsageRow[], boolean, Record<string, number>?][] = [
    [
      "one ok row per completed request",
      [req({ requestId: "1" }), req({ requestId: "2" })],
      [row("1"), row("2")],
      true,
    ],
    [
      "a completed request without a row",
      [req({ requestId: "1" }), req({ requestId: "2" })],
      [row("1")],
      false,
      { missing: 1 },
    ],
    ["a completed request whose row is not ok", [req({ requestId: "1" })], [row("1", "error")], false, { missing: 1 }],
    [
      "an ok row for a refused request",
      [req({ requestId: "1", outcome: "refused" })],
      [row("1")],
      false,
      { billed_but_failed: 1 },
    ],
    [
      "an ok row for an aborted request (the runner finished it)",
      [req({ requestId: "1", outcome: "aborted" })],
      [row("1")],
      true,
    ],
    ["an ok row for a request lost before its headers", [req({ outcome: "network_error" })], [row("x")], true],
    ["an ok row nobody asked for", [req({ requestId: "1" })], [row("1"), row("x")], false, { billed_unknown: 1 }],
    ["model management writes no rows", [req({ endpoint: "/api/create" })], [], true],
  ];
  it.each(cases)("%s", (_, records, rows, ok, detail) => {
    const check = checkUsage(records, rows);
    expect(check.ok).toBe(ok);
    if (detail) expect(check.detail).toMatchObject(detail);
  });
});

describe("checkReplays", () => {
  it.each([
    ["equal", { text: "ab", tokens: 2 }, { text: "ab", tokens: 2 }, true, 0, 0],
    ["a token lost", { text: "a", tokens: 1 }, { text: "ab", tokens: 2 }, false, 1, 0],
    ["a token duplicated", { text: "abb", tokens: 3 }, { text: "ab", tokens: 2 }, false, 0, 1],
    ["same count, other text", { text: "ba", tokens: 2 }, { text: "ab", tokens: 2 }, false, 0, 0],
  ])("%s", (label, streamed, replayed, ok, lost, duplicated) => {
    const check = checkReplays([{ label, streamed, replayed }]);
    expect(check.ok).toBe(ok);
    expect(check.detail).toMatchObject({ lost_tokens: lost, duplicated_tokens: duplicated });
  });
});

describe("checkStorage", () => {
  const blob = { digest: `sha256:${"a".repeat(64)}`, status: 200 };
  it.each([
    ["a model that shows, with its blobs", [{ tenant: "a", model: "m", showStatus: 200, blobs: [blob] }], true],
    ["a listed model that does not show", [{ tenant: "a", model: "m", showStatus: 404, blobs: [] }], false],
    ["a model naming no weights", [{ tenant: "a", model: "m", showStatus: 200, blobs: [] }], false],
    [
      "a model whose blob is gone",
      [{ tenant: "a", model: "m", showStatus: 200, blobs: [{ ...blob, status: 404 }] }],
      false,
    ],
  ])("%s", (_, sweeps, ok) => expect(checkStorage(sweeps).ok).toBe(ok));
});

describe("checkBadInputs", () => {
  it.each([
    ["refused", [req({ badInput: "x", outcome: "refused", status: 400 })], true],
    ["lost to a restarting edge (not the input's fault)", [req({ badInput: "x", outcome: "network_error" })], true],
    ["accepted", [req({ badInput: "x", outcome: "ok", status: 200 })], false],
    ["answered 5xx", [req({ badInput: "x", outcome: "server_error", status: 500 })], false],
  ])("%s", (_, records, ok) => expect(checkBadInputs(records).ok).toBe(ok));
});

describe("checkProgress", () => {
  const window = { start: 0, end: 20, ms: 10 };
  const done = (tenant: string, endedAt: number) => req({ tenant, endedAt });
  it("passes when each tenant completes something in every window", () => {
    const check = checkProgress([done("a", 1), done("b", 2), done("a", 11), done("b", 12)], ["a", "b"], window, 1);
    expect(check.ok).toBe(true);
    expect(check.detail.per_tenant).toEqual({ a: [1, 1], b: [1, 1] });
  });

  it("names a tenant that completed nothing while others did", () => {
    const check = checkProgress([done("a", 1), done("b", 2), done("a", 11), done("a", 12)], ["a", "b"], window, 2);
    expect(check.ok).toBe(false);
    expect(check.detail.starved).toEqual(["b in window 1"]);
  });

  it("a window where nobody completed anything is an outage, not starvation; bad inputs do not count", () => {
    const check = checkProgress(
      [done("a", 1), done("b", 2), req({ tenant: "a", endedAt: 11, badInput: "x" })],
      ["a", "b"],
      window,
      1,
    );
    expect(check.ok).toBe(true);
    expect(check.detail.outages).toEqual([1]);
  });
});

describe("checkRecovery", () => {
  it.each([
    [true, "ok", true],
    [true, "server_error", false],
    [false, undefined, false],
  ] as const)("ready runner %s, probe %s: ok %s", (ready, probe, ok) =>
    expect(checkRecovery(ready, probe).ok).toBe(ok),
  );
});
