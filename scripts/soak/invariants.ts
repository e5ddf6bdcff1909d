/**
 * The soak suite's invariants, as pure functions over what the run recorded, so each has unit tests of its own
 * (invariants.test.ts). They count outcomes and never time anything: a loaded 2-core machine changes how many
 * requests complete, not whether an invariant holds.
 */

/** How one client request ended, from the client's side. */
export type Outcome =
  | "ok" // 2xx and the whole body read (a stream to its `done`)
  | "refused" // 4xx (including a bad input refused, as it must be)
  | "server_error" // 5xx (503 while a runner or the edge is down is expected under chaos; counted, not an invariant)
  | "aborted" // the client gave up on purpose (random aborts)
  | "timed_out" // no answer within the client's limit (60 s): a request lost somewhere, reported per endpoint
  | "network_error"; // the connection failed (the edge restarting)

export interface RequestRecord {
  tenant: string;
  /** The route, e.g. `/api/generate`, `/v1/chat/completions`. */
  endpoint: string;
  stream: boolean;
  /** A generated bad input: must be refused with a 4xx (or, where `badInputMayPass`, at least never a 5xx). */
  badInput?: string;
  badInputMayPass?: boolean;
  startedAt: number;
  endedAt: number;
  outcome: Outcome;
  status?: number;
  /** The edge's request id (x-corral-request-id) where the response headers arrived. */
  requestId?: string;
  /** Output tokens the response reported (eval_count / usage.completion_tokens). */
  outputTokens?: number;
}

/** Inference endpoints write one usage row per request; model management does not. */
export const INFERENCE_ENDPOINTS = new Set([
  "/api/generate",
  "/api/chat",
  "/api/embed",
  "/api/embeddings",
  "/v1/chat/completions",
  "/v1/completions",
  "/v1/embeddings",
]);

export interface Check {
  ok: boolean;
  detail: Record<string, unknown>;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function summarize(records: RequestRecord[]) {
  const byOutcome: Record<string, number> = {};
  const byEndpoint: Record<string, Record<string, number>> = {};
  for (const r of records) {
    byOutcome[r.outcome] = (byOutcome[r.outcome] ?? 0) + 1;
    const e = byEndpoint[r.endpoint] ?? {};
    e[r.outcome] = (e[r.outcome] ?? 0) + 1;
    byEndpoint[r.endpoint] = e;
  }
  const okLatencies = records
    .filter((r) => r.outcome === "ok")
    .map((r) => r.endedAt - r.startedAt)
    .sort((a, b) => a - b);
  return {
    total: records.length,
    by_outcome: byOutcome,
    by_endpoint: byEndpoint,
    latency_ms_ok: { p50: percentile(okLatencies, 50), p99: percentile(okLatencies, 99) },
    output_tokens: records.reduce((n, r) => n + (r.outcome === "ok" ? (r.outputTokens ?? 0) : 0), 0),
    // Where a tenant's time went when it made no progress: its clients waiting on a few long requests.
    slowest: [...records]
      .sort((a, b) => b.endedAt - b.startedAt - (a.endedAt - a.startedAt))
      .slice(0, 5)
      .map((r) => ({ tenant: r.tenant, endpoint: r.endpoint, ms: r.endedAt - r.startedAt, outcome: r.outcome })),
  };
}

export interface UsageRow {
  request_id: string;
  endpoint: string;
  status: string;
  output_tokens: number;
}

/**
 * Every completed inference request has exactly one `ok` usage row (its request id), and every `ok` row belongs to
 * a request that completed or that the client stopped waiting for (an abort, a dropped connection: the runner may
 * have finished it). An `ok` row for a request the client saw refused or failed, or more `ok` rows without a known
 * request than requests the client lost before their headers, is a billing error.
 */
export function checkUsage(records: RequestRecord[], rows: UsageRow[]): Check {
  const inference = records.filter((r) => INFERENCE_ENDPOINTS.has(r.endpoint));
  const completed = inference.filter((r) => r.outcome === "ok");
  const okRows = new Map<string, number>();
  for (const row of rows) if (row.status === "ok") okRows.set(row.request_id, (okRows.get(row.request_id) ?? 0) + 1);
  const byId = new Map(inference.filter((r) => r.requestId).map((r) => [r.requestId!, r]));
  const missing = completed.filter((r) => !r.requestId || okRows.get(r.requestId) !== 1).length;
  const duplicated = [...okRows.values()].filter((n) => n > 1).length;
  let billedButFailed = 0;
  let billedUnknown = 0;
  for (const id of okRows.keys()) {
    const r = byId.get(id);
    if (!r) billedUnknown++;
    else if (r.outcome === "refused" || r.outcome === "server_error") billedButFailed++;
  }
  const lostBeforeHeaders = inference.filter(
    (r) => !r.requestId && (r.outcome === "aborted" || r.outcome === "timed_out" || r.outcome === "network_error"),
  ).length;
  const detail = {
    completed_inference: completed.length,
    usage_ok_rows_for_completed: completed.length - missing,
    usage_ok_rows: okRows.size,
    missing,
    duplicated,
    billed_but_failed: billedButFailed,
    billed_unknown: billedUnknown,
  };
  const ok = missing === 0 && duplicated === 0 && billedButFailed === 0 && billedUnknown <= lostBeforeHeaders;
  return { ok, detail };
}

/** A completed streamed answer and the same request replayed alone (fixed seed, temperature 0). */
export interface ReplayPair {
  label: string;
  streamed: { text: string; tokens: number };
  replayed: { text: string; tokens: number };
}

export function checkReplays(pairs: ReplayPair[]): Check {
  let lost = 0;
  let duplicated = 0;
  const differing: string[] = [];
  for (const p of pairs) {
    lost += Math.max(0, p.replayed.tokens - p.streamed.tokens);
    duplicated += Math.max(0, p.streamed.tokens - p.replayed.tokens);
    if (p.streamed.text !== p.replayed.text) differing.push(p.label);
  }
  const detail = {
    samples: pairs.length,
    equal: pairs.length - differing.length,
    lost_tokens: lost,
    duplicated_tokens: duplicated,
    differing: differing.slice(0, 10),
  };
  return { ok: lost === 0 && duplicated === 0 && differing.length === 0, detail };
}

/** What the end-of-run sweep saw of one listed model: its show status and each referenced blob's HEAD status. */
export interface ModelSweep {
  tenant: string;
  model: string;
  showStatus: number;
  blobs: { digest: string; status: number }[];
}

export function checkStorage(models: ModelSweep[]): Check {
  const halfWritten = models.filter((m) => m.showStatus !== 200 || m.blobs.length === 0);
  const missingBlobs = models.flatMap((m) =>
    m.blobs.filter((b) => b.status !== 200).map((b) => `${m.model} ${b.digest}`),
  );
  const detail = {
    models_checked: models.length,
    blobs_checked: models.reduce((n, m) => n + m.blobs.length, 0),
    half_written_models: halfWritten.map((m) => `${m.tenant}/${m.model} (show ${m.showStatus})`),
    missing_blobs: missingBlobs,
  };
  return { ok: halfWritten.length === 0 && missingBlobs.length === 0, detail };
}

/** Bad inputs are refused with a 4xx: never accepted, never a 5xx (a 503 says the service broke, not the input). */
export function checkBadInputs(records: RequestRecord[]): Check {
  const bad = records.filter((r) => r.badInput);
  const accepted = new Set(bad.filter((r) => r.outcome === "ok" && !r.badInputMayPass).map((r) => r.badInput!));
  const serverErrors = new Set(
    bad.filter((r) => r.outcome === "server_error").map((r) => `${r.badInput} (${r.status})`),
  );
  const byKind: Record<string, Record<string, number>> = {};
  for (const r of bad) {
    const kind = byKind[r.badInput!] ?? {};
    const key = r.status ? String(r.status) : r.outcome;
    kind[key] = (kind[key] ?? 0) + 1;
    byKind[r.badInput!] = kind;
  }
  const detail = {
    sent: bad.length,
    refused: bad.filter((r) => r.outcome === "refused").length,
    kinds: Object.keys(byKind).length,
    by_kind: byKind,
    accepted: [...accepted],
    server_errors: [...serverErrors],
  };
  return { ok: accepted.size === 0 && serverErrors.size === 0, detail };
}

/**
 * Per tenant, completed requests in each window. A tenant is starved in a window where it completed nothing while
 * the others completed at least `busyThreshold` between them (ten: a tenant whose two clients sit in one slow pull
 * while the others finish a few short requests is not starved); a window where nobody completed anything (the edge
 * restarting) is an outage, not unfairness, and is reported as such.
 */
export function checkProgress(
  records: RequestRecord[],
  tenants: string[],
  window: { start: number; end: number; ms: number },
  busyThreshold = 10,
): Check {
  const windows = Math.max(1, Math.ceil((window.end - window.start) / window.ms));
  const perTenant: Record<string, number[]> = Object.fromEntries(tenants.map((t) => [t, Array(windows).fill(0)]));
  for (const r of records) {
    if (r.outcome !== "ok" || r.badInput) continue;
    const i = Math.floor((r.endedAt - window.start) / window.ms);
    const row = perTenant[r.tenant];
    if (row && i >= 0 && i < windows) row[i]!++;
  }
  const starved: string[] = [];
  const outages: number[] = [];
  for (let i = 0; i < windows; i++) {
    const total = tenants.reduce((n, t) => n + perTenant[t]![i]!, 0);
    if (total === 0) outages.push(i);
    for (const t of tenants) {
      if (perTenant[t]![i] === 0 && total - perTenant[t]![i]! >= busyThreshold) starved.push(`${t} in window ${i}`);
    }
  }
  return { ok: starved.length === 0, detail: { window_s: window.ms / 1000, per_tenant: perTenant, starved, outages } };
}

/**
 * After the faults stop, the fleet serves again: a runner is ready within the deadline and a plain request completes.
 * A fleet that stays down (runners evicted and never taken back) fails every tenant at once.
 */
export function checkRecovery(readyRunner: boolean, probe: Outcome | undefined): Check {
  return { ok: readyRunner && probe === "ok", detail: { ready_runner: readyRunner, probe: probe ?? "not sent" } };
}
