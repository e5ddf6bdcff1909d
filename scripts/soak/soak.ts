/**
 * The soak run: starts the stack as `npm start` does (test/harness.ts) with RUNNERS runners and a real OCI registry
 * (test/registry-server.ts), creates tenants through the admin API, runs clients for SOAK_SECONDS under faults
 * (chaos.ts), then checks the invariants (invariants.ts) and returns one JSON report.
 */
import { TINY_MODEL_DEFAULT_SEED, writeTinyModel } from "../../gpu-runner/src/tiny-model/index";
import { type RunningStack, startStack } from "../../test/harness";
import { startDockerRegistry } from "../../test/registry-server";
import { builtInModels } from "../stack/built-in-models";
import { EdgeClient, ensureModel } from "../stack/provision";
import { type ChaosEvent, runChaos } from "./chaos";
import { send } from "./client";
import {
  type Check,
  checkBadInputs,
  checkProgress,
  checkRecovery,
  checkReplays,
  checkStorage,
  checkUsage,
  type ModelSweep,
  type ReplayPair,
  type RequestRecord,
  summarize,
  type UsageRow,
} from "./invariants";
import { clientLoop, type ReplaySample, type Tenant, type WorkloadContext } from "./workload";

export interface SoakOptions {
  seconds: number;
  runners: number;
  tenants: number;
  clientsPerTenant: number;
  seed: number;
  log: (line: string) => void;
}

export interface SoakReport {
  config: Omit<SoakOptions, "log">;
  requests: ReturnType<typeof summarize>;
  evictions: number;
  chaos: ChaosEvent[];
  invariants: Record<string, Check>;
  ok: boolean;
}

const adminGet = async <T>(edge: EdgeClient, path: string): Promise<T | undefined> => {
  try {
    return await edge.admin<T>("GET", path);
  } catch {
    return undefined;
  }
};

/** Evicted runners, summed over the run: the scheduler's counter restarts from 0 with the edge. */
function evictionCounter(edge: EdgeClient) {
  let last = 0;
  let total = 0;
  return async () => {
    const stats = await adminGet<{ totals: { evicted_runners: number } }>(edge, "/scheduler");
    if (!stats) return total;
    const now = stats.totals.evicted_runners;
    total += now >= last ? now - last : now;
    last = now;
    return total;
  };
}

async function createTenants(
  edge: EdgeClient,
  baseUrl: string,
  count: number,
  tag: string,
): Promise<(Tenant & { id: string })[]> {
  const models = builtInModels().filter((m) => m.name === "tiny");
  const tenants: (Tenant & { id: string })[] = [];
  for (let i = 0; i < count; i++) {
    const { id } = await edge.admin<{ id: string }>("POST", "/tenants", { name: `soak-${tag}-${i}` });
    const { key } = await edge.admin<{ key: string }>("POST", `/tenants/${id}/keys`, { label: "soak" });
    for (const m of models) await ensureModel(baseUrl, key, m.name, m.gguf);
    tenants.push({ id, name: `tenant-${i}`, key });
  }
  return tenants;
}

async function waitForReadyRunner(edge: EdgeClient, deadlineMs: number): Promise<boolean> {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    const stats = await adminGet<{ totals: { ready_runners: number } }>(edge, "/scheduler");
    if ((stats?.totals.ready_runners ?? 0) > 0) return true;
    await new Promise((r) => setTimeout(r, 500));
  }
  return false;
}

/** Each kept streamed answer, asked again alone and not streamed; the replays are recorded too (they are billed). */
async function replay(baseUrl: string, samples: ReplaySample[], records: RequestRecord[]): Promise<ReplayPair[]> {
  const pairs: ReplayPair[] = [];
  let failuresInARow = 0;
  for (const s of samples) {
    // A fleet that stopped serving fails every replay: the recovery check already says so.
    if (failuresInARow >= 3) break;
    const { stream_options: _, ...body }: Record<string, unknown> = { ...s.body, stream: false };
    const again = await send(baseUrl, {
      tenant: s.tenant,
      key: s.key,
      endpoint: s.endpoint,
      body,
      stream: false,
      timeoutMs: 60_000,
    });
    records.push(again.record);
    failuresInARow = again.record.outcome === "ok" ? 0 : failuresInARow + 1;
    if (again.record.outcome !== "ok") continue;
    pairs.push({
      label: s.label,
      streamed: { text: s.text, tokens: s.tokens },
      replayed: { text: again.text, tokens: again.record.outputTokens ?? -1 },
    });
  }
  return pairs;
}

/** Usage rows are written after the response (waitUntil): read until every completed request has its row. */
async function readUsage(edge: EdgeClient, tenants: { id: string }[], completedIds: Set<string>, deadlineMs: number) {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const rows: UsageRow[] = [];
    for (const t of tenants) {
      const page = await adminGet<{ records: UsageRow[] }>(edge, `/tenants/${t.id}/usage/records?limit=10000`);
      rows.push(...(page?.records ?? []));
    }
    const have = new Set(rows.map((r) => r.request_id));
    if ([...completedIds].every((id) => have.has(id)) || Date.now() > deadline) return rows;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Every listed model shows, and every blob its Modelfile names (FROM/ADAPTER digests) exists. */
async function sweepModels(baseUrl: string, tenants: Tenant[]): Promise<ModelSweep[]> {
  const sweeps: ModelSweep[] = [];
  for (const t of tenants) {
    const auth = { authorization: `Bearer ${t.key}` };
    const tags = (await (await fetch(`${baseUrl}/api/tags`, { headers: auth })).json()) as {
      models: { name: string }[];
    };
    for (const { name } of tags.models) {
      const show = await fetch(`${baseUrl}/api/show`, {
        method: "POST",
        headers: auth,
        body: JSON.stringify({ model: name }),
      });
      const modelfile = show.ok ? String(((await show.json()) as { modelfile?: string }).modelfile ?? "") : "";
      const digests = [...modelfile.matchAll(/^(?:FROM|ADAPTER) (sha256:[0-9a-f]{64})$/gm)].map((m) => m[1]!);
      const blobs = [];
      for (const digest of digests) {
        blobs.push({
          digest,
          status: (await fetch(`${baseUrl}/api/blobs/${digest}`, { method: "HEAD", headers: auth })).status,
        });
      }
      sweeps.push({ tenant: t.name, model: name, showStatus: show.status, blobs });
    }
  }
  return sweeps;
}

interface LoadResult {
  records: RequestRecord[];
  samples: ReplaySample[];
  chaos: ChaosEvent[];
  /** When the clients started and were told to stop (requests in flight then may finish later). */
  window: { start: number; end: number };
  evictions: () => Promise<number>;
}

/** The clients of every tenant for `opts.seconds`, with the faults running beside them. */
async function runLoad(
  stack: RunningStack,
  registryHost: string,
  tenants: Tenant[],
  opts: SoakOptions,
): Promise<LoadResult> {
  const edge = new EdgeClient(stack.url, stack.adminKey);
  const start = Date.now();
  const ctx: WorkloadContext = {
    baseUrl: stack.url,
    registryHost,
    tinyGguf: writeTinyModel({ seed: TINY_MODEL_DEFAULT_SEED }),
    records: [],
    samples: [],
    quantizeBusy: { value: false },
    timeoutMs: 60_000,
    stopAt: start + opts.seconds * 1000,
  };
  const evictions = evictionCounter(edge);
  const sampler = setInterval(() => void evictions(), 1000);
  const chaosDone = new AbortController();
  const edgeRestarts = () => stack.output().split("edge restarted").length - 1;
  const chaos = runChaos(
    { stateDir: stack.stateDir, launcherPid: stack.pid, edgeRestarts },
    opts.seconds,
    chaosDone.signal,
  );
  try {
    await Promise.all(
      tenants.flatMap((t, i) =>
        Array.from({ length: opts.clientsPerTenant }, (_, c) => clientLoop(ctx, t, opts.seed * 100 + i * 10 + c)),
      ),
    );
  } finally {
    chaosDone.abort();
    clearInterval(sampler);
  }
  return {
    records: ctx.records,
    samples: ctx.samples,
    chaos: await chaos,
    window: { start, end: ctx.stopAt },
    evictions,
  };
}

/** After the load, on a quiet stack: replays, usage rows, the model sweep, and every invariant over them. */
async function checkInvariants(
  stack: RunningStack,
  tenants: (Tenant & { id: string })[],
  load: LoadResult,
  opts: SoakOptions,
): Promise<Record<string, Check>> {
  const edge = new EdgeClient(stack.url, stack.adminKey);
  const ready = await waitForReadyRunner(edge, 120_000);
  const tenant = tenants[0]!;
  const probe = ready
    ? await send(stack.url, {
        tenant: tenant.name,
        key: tenant.key,
        endpoint: "/api/generate",
        body: { model: "tiny", prompt: "probe", stream: false, options: { num_predict: 2 } },
        stream: false,
        timeoutMs: 60_000,
      })
    : undefined;
  const replays: RequestRecord[] = probe ? [probe.record] : [];
  const pairs = probe?.record.outcome === "ok" ? await replay(stack.url, load.samples, replays) : [];
  const billed = [...load.records, ...replays];
  const completedIds = new Set(billed.filter((r) => r.outcome === "ok" && r.requestId).map((r) => r.requestId!));
  const usage = await readUsage(edge, tenants, completedIds, 30_000);
  const windowMs = Math.max(5000, (opts.seconds * 1000) / 8);
  return {
    fleet_serves_after_faults: checkRecovery(ready, probe?.record.outcome),
    usage_rows_match_completed_requests: checkUsage(billed, usage),
    no_lost_or_duplicated_tokens: checkReplays(pairs),
    no_half_written_models_or_blobs: checkStorage(await sweepModels(stack.url, tenants)),
    bad_inputs_refused_with_4xx: checkBadInputs(load.records),
    no_tenant_starved: checkProgress(
      load.records,
      tenants.map((t) => t.name),
      { ...load.window, ms: windowMs },
    ),
  };
}

export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  const registry = await startDockerRegistry();
  const stack = await startStack({ runners: opts.runners, env: { ALLOW_PRIVATE_REGISTRIES: "true" } });
  // The stack runs in process groups of its own: Ctrl-C (or a kill) on the soak must stop it too.
  const interrupted = () => void Promise.all([stack.stop(), registry.stop()]).finally(() => process.exit(130));
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);
  try {
    const edge = new EdgeClient(stack.url, stack.adminKey);
    const tenants = await createTenants(edge, stack.url, opts.tenants, String(opts.seed));
    opts.log(
      `soak: ${opts.tenants} tenants × ${opts.clientsPerTenant} clients, ${opts.runners} runners, ${opts.seconds} s`,
    );
    const load = await runLoad(stack, registry.host, tenants, opts);
    opts.log(`soak: ${load.records.length} requests; checking`);
    const invariants = await checkInvariants(stack, tenants, load, opts);
    const { log: _, ...config } = opts;
    return {
      config,
      requests: summarize(load.records),
      evictions: await load.evictions(),
      chaos: load.chaos,
      invariants,
      ok: Object.values(invariants).every((c) => c.ok) && load.chaos.every((e) => e.ok),
    };
  } finally {
    process.off("SIGINT", interrupted);
    process.off("SIGTERM", interrupted);
    await stack.stop();
    await registry.stop();
  }
}
