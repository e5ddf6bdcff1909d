/**
 * Helpers for the fleet tests (test/fleet-*.e2e.test.ts): a stack with several runners, the admin API, runner
 * processes to kill or freeze (scripts/start.ts writes their pids to <state dir>/runners.json), raw NDJSON streams
 * with the request id the edge returns, usage records and Prometheus scrapes.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { TINY_MODEL_DEFAULT_SEED, writeTinyModel } from "../gpu-runner/src/tiny-model/index";
import { ensureModel } from "../scripts/stack/provision";
import type { RunningStack } from "./harness";
import { type MetricFamily, parsePrometheusText } from "./prometheus";

export const REQUEST_ID_HEADER = "x-corral-request-id";
/** Ollama's ErrMaxQueue text, two spaces included. */
export const QUEUE_FULL_TEXT = "server busy, please try again.  maximum pending requests exceeded";

export interface RunnerProcess {
  id: string;
  port: number;
  pid: number;
}

export interface UsageRecord {
  request_id: string;
  tenant_id: string;
  key_id: string | null;
  endpoint: string;
  model: string;
  model_digest: string | null;
  prompt_tokens: number;
  output_tokens: number;
  status: "ok" | "error" | "cancelled";
  runner_id: string | null;
}

export interface RunnerView {
  id: string;
  state: "ready" | "draining" | "unhealthy";
  busy_sequences: number;
  last_seen_ms_ago: number;
  loaded: { model_blob: string; sequences: number; busy_sequences: number }[];
}

/** A runner's own /v1/ps. */
export interface RunnerStatusView {
  busy_slots: number;
  draining: boolean;
  loaded: { model_blob: string }[];
}

export interface SchedulerView {
  runners: RunnerView[];
  models: { model_blob: string; queue_depth: number; busy_sequences: number }[];
  totals: { queue_depth: number; dispatched: number; busy_sequences: number; evicted_runners: number };
}

/** The built-in tiny model's GGUF, as the stack writes it (same bytes, same blob). */
let tinyGguf: Uint8Array | undefined;

export class Fleet {
  readonly runnerSecret: string;

  constructor(readonly stack: RunningStack) {
    const dev = JSON.parse(readFileSync(join(stack.stateDir, "dev.json"), "utf8")) as { runner_secret: string };
    this.runnerSecret = dev.runner_secret;
  }

  get url(): string {
    return this.stack.url;
  }

  runners(): RunnerProcess[] {
    const file = join(this.stack.stateDir, "runners.json");
    return (JSON.parse(readFileSync(file, "utf8")) as { runners: RunnerProcess[] }).runners;
  }

  runner(id: string): RunnerProcess {
    const found = this.runners().find((r) => r.id === id);
    if (!found) throw new Error(`no runner ${id} in runners.json`);
    return found;
  }

  /** Signals a runner's whole process group (tsx and its node child). */
  signal(id: string, signal: "SIGKILL" | "SIGSTOP" | "SIGCONT"): void {
    process.kill(-this.runner(id).pid, signal);
  }

  /** SIGKILL, then waits until nothing listens on the runner's port any more. */
  async kill(id: string): Promise<void> {
    const { port } = this.runner(id);
    this.signal(id, "SIGKILL");
    const gone = await eventually(async () => {
      try {
        await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) });
        return false;
      } catch {
        return true;
      }
    }, 10_000);
    if (!gone) throw new Error(`runner ${id} still answers after SIGKILL`);
  }

  /**
   * Runs `body` with every runner frozen (SIGSTOP): they accept connections and answer nothing, so what the scheduler
   * leases them stays leased and the rest waits in its queue. Their heartbeats stop meanwhile, so eviction is held
   * off; afterwards they thaw and are heard from again before it is back to normal.
   */
  async frozen<T>(body: () => Promise<T>): Promise<T> {
    await this.adminOk("PATCH", "/scheduler/config", { missedHeartbeats: 100 });
    const ids = this.runners().map((r) => r.id);
    for (const id of ids) this.signal(id, "SIGSTOP");
    try {
      return await body();
    } finally {
      for (const id of ids) this.signal(id, "SIGCONT");
      // Eviction comes back only once every runner is heard from again (late on a loaded machine).
      await eventually(async () => (await this.scheduler()).runners.every((r) => r.last_seen_ms_ago < 1500), 60_000);
      await this.adminOk("PATCH", "/scheduler/config", { missedHeartbeats: 3 });
    }
  }

  /** Requests given a runner plus requests waiting, since `base` (a scheduler snapshot). */
  async placedSince(base: SchedulerView): Promise<number> {
    const t = (await this.scheduler()).totals;
    return t.dispatched - base.totals.dispatched + t.queue_depth - base.totals.queue_depth;
  }

  async admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const res = await fetch(`${this.url}/admin${path}`, {
      method,
      headers: { authorization: `Bearer ${this.stack.adminKey}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  }

  async adminOk<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.admin(method, path, body);
    if (res.status >= 300) throw new Error(`admin ${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body as T;
  }

  scheduler(): Promise<SchedulerView> {
    return this.adminOk<SchedulerView>("GET", "/scheduler");
  }

  async tenantId(name: string): Promise<string> {
    const { tenants } = await this.adminOk<{ tenants: { id: string; name: string }[] }>("GET", "/tenants");
    const tenant = tenants.find((t) => t.name === name);
    if (!tenant) throw new Error(`no tenant ${name}`);
    return tenant.id;
  }

  /** A fresh tenant with its own key and its own `tiny` model (the same weights blob as everyone's). */
  async newTenant(name: string, quotas?: Record<string, number | null>): Promise<{ id: string; key: string }> {
    const { id } = await this.adminOk<{ id: string }>("POST", "/tenants", { name });
    const { key } = await this.adminOk<{ key: string }>("POST", `/tenants/${id}/keys`, { label: "fleet test" });
    tinyGguf ??= writeTinyModel({ seed: TINY_MODEL_DEFAULT_SEED });
    await ensureModel(this.url, key, "tiny", tinyGguf);
    if (quotas) await this.adminOk("PUT", `/tenants/${id}/quotas`, quotas);
    return { id, key };
  }

  async usageRecords(tenantId: string): Promise<UsageRecord[]> {
    const { records } = await this.adminOk<{ records: UsageRecord[] }>("GET", `/tenants/${tenantId}/usage/records`);
    return records;
  }

  /** Waits until the tenant has `count` usage records (they are written just after the response ends). */
  async settledUsage(tenantId: string, count: number): Promise<UsageRecord[]> {
    let records: UsageRecord[] = [];
    await eventually(async () => {
      records = await this.usageRecords(tenantId);
      return records.length >= count;
    }, 60_000);
    return records;
  }

  async edgeMetrics(): Promise<Map<string, MetricFamily>> {
    return scrape(`${this.url}/metrics`, this.stack.adminKey);
  }

  async runnerMetrics(id: string): Promise<Map<string, MetricFamily>> {
    return scrape(`http://127.0.0.1:${this.runner(id).port}/metrics`, this.runnerSecret);
  }

  async runnerStatus(id: string): Promise<RunnerStatusView> {
    const res = await fetch(`http://127.0.0.1:${this.runner(id).port}/v1/ps`, {
      headers: { authorization: `Bearer ${this.runnerSecret}` },
    });
    if (!res.ok) throw new Error(`runner ${id} /v1/ps: ${res.status}`);
    return (await res.json()) as RunnerStatusView;
  }
}

async function scrape(url: string, secret: string): Promise<Map<string, MetricFamily>> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${secret}` } });
  if (res.status !== 200) throw new Error(`${url}: ${res.status}`);
  const type = res.headers.get("content-type") ?? "";
  if (!type.startsWith("text/plain") || !type.includes("version=0.0.4")) {
    throw new Error(`${url} answered content-type "${type}", not Prometheus text 0.0.4`);
  }
  return parsePrometheusText(await res.text());
}

/** An inference request sent raw, so the status, headers and every NDJSON line are visible. */
export class RawStream {
  readonly lines: Record<string, unknown>[] = [];
  private buffer = "";
  private readonly decoder = new TextDecoder();
  private reader?: ReadableStreamDefaultReader<Uint8Array>;

  private constructor(
    readonly response: Response,
    private readonly controller: AbortController,
  ) {
    this.reader = response.body?.getReader();
  }

  static async open(
    url: string,
    key: string,
    path: string,
    body: Record<string, unknown>,
    controller = new AbortController(),
  ): Promise<RawStream> {
    const response = await fetch(`${url}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    return new RawStream(response, controller);
  }

  get status(): number {
    return this.response.status;
  }

  get requestId(): string | null {
    return this.response.headers.get(REQUEST_ID_HEADER);
  }

  /** Reads until at least `count` lines have arrived (or the stream ends); answers whether they did. */
  async readLines(count: number): Promise<boolean> {
    while (this.lines.length < count) {
      if (!(await this.readChunk())) return false;
    }
    return true;
  }

  /** Reads to the end; the last line. */
  async readAll(): Promise<Record<string, unknown> | undefined> {
    while (await this.readChunk()) {}
    return this.lines.at(-1);
  }

  abort(): void {
    this.controller.abort();
  }

  /** Lines that are neither the final chunk nor an error line: the tokens the client saw. */
  get tokenLines(): number {
    return this.lines.filter((l) => l.done !== true && l.error === undefined).length;
  }

  private async readChunk(): Promise<boolean> {
    if (!this.reader) return false;
    const { done, value } = await this.reader.read();
    if (done) {
      this.buffer += this.decoder.decode();
      if (this.buffer.trim() !== "") this.lines.push(JSON.parse(this.buffer) as Record<string, unknown>);
      this.buffer = "";
      this.reader = undefined;
      return false;
    }
    this.buffer += this.decoder.decode(value, { stream: true });
    let nl = this.buffer.indexOf("\n");
    while (nl >= 0) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      if (line.trim() !== "") this.lines.push(JSON.parse(line) as Record<string, unknown>);
      nl = this.buffer.indexOf("\n");
    }
    return true;
  }
}

/** A non-streamed generate; the parsed body, the status, and the request id of its usage record. */
export async function generateOnce(
  url: string,
  key: string,
  body: Record<string, unknown>,
): Promise<{ status: number; requestId: string | null; body: Record<string, unknown>; retryAfter: string | null }> {
  const res = await fetch(`${url}/api/generate`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ stream: false, ...body }),
  });
  const text = await res.text();
  return {
    status: res.status,
    requestId: res.headers.get(REQUEST_ID_HEADER),
    body: JSON.parse(text) as Record<string, unknown>,
    retryAfter: res.headers.get("retry-after"),
  };
}

/** Polls `probe` until it returns true or the deadline passes; answers whether it did. */
export async function eventually(probe: () => Promise<boolean>, deadlineMs: number, everyMs = 200): Promise<boolean> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * A prompt whose greedy continuation on the built-in `tiny` model runs for over a thousand tokens before its EOS:
 * long enough that a runner killed right after the first chunk is still generating.
 */
export const LONG_GREEDY = { prompt: "story 44", options: { temperature: 0, num_predict: 20_000 } };
