/**
 * The runner's HTTP API (node:http), reached only by the edge. Every request carries
 * `Authorization: Bearer <RUNNER_SECRET>`; routes are those of protocol/src/runner.ts:
 *   POST /v1/generate | /v1/chat | /v1/embed | /v1/embeddings   RunnerInferenceRequest → Ollama NDJSON / JSON
 *   GET  /v1/ps                                                  → RunnerStatus
 *   POST /v1/quantize                     QuantizeJobRequest → NDJSON JobEvent lines (quantize-job.ts)
 *   POST /v1/convert                      ConvertJobRequest → NDJSON JobEvent lines (convert-job.ts)
 *   GET  /metrics                                                → Prometheus text
 * Failures answer Ollama's `{"error": "..."}` with the status from toErrorResponse.
 */
import { timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { ApiError } from "@corral/protocol/errors";
import { parseJsonBody } from "@corral/protocol/json-body";
import { RUNNER_HEADER_REQUEST_ID, RunnerInferenceRequestSchema, type RunnerStatus } from "@corral/protocol/runner";
import { parseBody } from "@corral/protocol/schema-helpers";
import type { Llama } from "node-llama-cpp";
import type { BlobCache } from "./blob-cache";
import type { BlobSink } from "./blob-sink";
import type { Clock } from "./clock";
import { type ConvertFn, ConvertJobs, parseConvertJobRequest } from "./convert-job";
import { toErrorResponse } from "./errors";
import type { InferenceCall, InferenceDeps, Usage } from "./inference/call";
import { handleChat } from "./inference/chat";
import { handleEmbed, handleEmbeddings } from "./inference/embed";
import { handleGenerate } from "./inference/generate";
import { type ChunkMerger, createSink, mergeChatChunks, mergeGenerateChunks } from "./inference/respond";
import { JobSlots } from "./job-stream";
import type { RunnerMetrics } from "./metrics";
import type { ModelPool } from "./model-pool";
import { parseQuantizeJobRequest, type QuantizeFn, QuantizeJobs } from "./quantize-job";

/** Largest request body accepted: long chat histories fit, nothing unbounded does. */
export const MAX_BODY_BYTES = 32 * 1024 * 1024;

export interface RunnerIdentity {
  id: string;
  url: string;
  parallel: number;
  memoryBudgetBytes: number;
}

export interface RunnerServerDeps {
  secret: string;
  pool: ModelPool;
  blobs: BlobCache;
  llama: Llama;
  clock: Clock;
  metrics: RunnerMetrics;
  identity: RunnerIdentity;
  log?(message: string): void;
  /** See InferenceDeps.announceModels. */
  announceModels?(): Promise<void>;
  /** Where quantize and convert jobs store their results; absent → POST /v1/quantize and /v1/convert answer 501. */
  sink?: BlobSink;
  /** The quantizer; tests swap it to inject faults. Default: the llama.cpp engine (quantize/quantize.ts). */
  quantize?: QuantizeFn;
  /** The checkpoint converter; tests swap it to inject faults. Default: convert/engine.ts. */
  convert?: ConvertFn;
  /** llama.cpp threads for jobs (the runner's THREADS). Default: the machine's cores. */
  threads?: number;
}

export interface RunnerServer {
  readonly server: Server;
  listen(port: number, host: string): Promise<AddressInfo>;
  /** Current status, as sent in heartbeats. */
  status(): RunnerStatus;
  /** True while it takes no new work: shutting down, or told to drain by the edge. */
  readonly draining: boolean;
  /** The runner's own drain (shutdown); reported in its status. */
  setDraining(draining: boolean): void;
  /**
   * The edge's drain (operator scale-in), from heartbeat replies. Kept apart from the runner's own drain and not
   * echoed in the status: echoing it back would make the edge's undrain impossible.
   */
  setEdgeDraining(draining: boolean): void;
  /** Stops accepting requests and waits for the running ones to finish. */
  close(): Promise<void>;
  /** Requests being served right now. */
  readonly activeRequests: number;
}

type Handler = (deps: InferenceDeps, call: InferenceCall) => Promise<Usage>;

const INFERENCE_ROUTES: Record<string, { handler: Handler; merge: ChunkMerger; name: string }> = {
  "/v1/generate": { handler: handleGenerate, merge: mergeGenerateChunks, name: "generate" },
  "/v1/chat": { handler: handleChat, merge: mergeChatChunks, name: "chat" },
  "/v1/embed": { handler: handleEmbed, merge: mergeGenerateChunks, name: "embed" },
  "/v1/embeddings": { handler: handleEmbeddings, merge: mergeGenerateChunks, name: "embeddings" },
};

function secretMatches(header: string | undefined, secret: string): boolean {
  const presented = Buffer.from(header?.startsWith("Bearer ") ? header.slice(7) : "", "utf8");
  const expected = Buffer.from(secret, "utf8");
  // timingSafeEqual needs equal lengths; comparing against itself keeps the time independent of the guess.
  const same = presented.length === expected.length;
  return timingSafeEqual(same ? presented : expected, expected) && same;
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  if (res.headersSent) return;
  const body = JSON.stringify(value);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > MAX_BODY_BYTES) throw new ApiError(413, "request body too large");
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new ApiError(413, "request body too large");
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** What the route handlers share: the server's deps and its draining state. */
interface RouteContext {
  deps: RunnerServerDeps;
  inferenceDeps: InferenceDeps;
  jobs: QuantizeJobs;
  conversions: ConvertJobs;
  /** True while the runner takes no new work (its own drain or the edge's). */
  draining(): boolean;
  status(): RunnerStatus;
}

type RouteHandler = (
  ctx: RouteContext,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
) => Promise<void> | void;

/** An abort signal for work done for `res`: the edge hanging up (client gone) is the only cancellation signal. */
function abortOnHangUp(res: ServerResponse): AbortController {
  const controller = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) controller.abort();
  });
  return controller;
}

/** Generate, chat, embed: an Ollama answer, streamed or folded; a failure mid-stream ends it with an error line. */
async function serveInference(ctx: RouteContext, req: IncomingMessage, res: ServerResponse, path: string) {
  const route = INFERENCE_ROUTES[path]!;
  const { clock, metrics } = ctx.deps;
  const controller = abortOnHangUp(res);
  const receivedNs = clock.monotonicNs();
  let sink: ReturnType<typeof createSink> | undefined;
  let status = 200;
  try {
    if (ctx.draining()) throw new ApiError(503, "runner is draining");
    const parsed = parseBody(RunnerInferenceRequestSchema, parseJsonBody(await readBody(req)), "runner request");
    const { model, request, request_id, relax_thinking, tenant } = parsed;
    res.setHeader(RUNNER_HEADER_REQUEST_ID, request_id);
    const stream = route.name === "generate" || route.name === "chat" ? request.stream !== false : false;
    sink = createSink(res, stream, route.merge);
    // The client's `model` field names the tenant's model; the runner only needs it to be present.
    const body = { ...request, model: typeof request.model === "string" && request.model ? request.model : model.name };
    const call = {
      model,
      body,
      signal: controller.signal,
      sink,
      receivedNs,
      relaxThinking: relax_thinking === true,
      ...(tenant ? { tenant } : {}),
    };
    const usage = await route.handler(ctx.inferenceDeps, call);
    metrics.recordTokens(route.name, usage.promptTokens, usage.generatedTokens);
  } catch (err) {
    const failure = toErrorResponse(err, controller.signal);
    status = failure.status;
    if (failure.status >= 500) ctx.deps.log?.(`${path}: ${failure.status} ${failure.message}`);
    if (controller.signal.aborted) {
      res.destroy();
    } else if (sink?.started) {
      // The status line is gone; Ollama ends a broken stream with an error line.
      if (!res.writableEnded) res.end(`${JSON.stringify({ error: failure.message })}\n`);
    } else {
      sendJson(res, failure.status, { error: failure.message });
    }
  } finally {
    metrics.recordRequest(route.name, status);
  }
}

/** A runner job (quantize-job.ts, convert-job.ts): NDJSON events; refused before the stream starts with a plain error. */
async function serveJob(ctx: RouteContext, req: IncomingMessage, res: ServerResponse, path: string) {
  const kind = path === "/v1/convert" ? "convert" : "quantize";
  const controller = abortOnHangUp(res);
  try {
    if (ctx.draining()) throw new ApiError(503, "runner is draining");
    const body = parseJsonBody(await readBody(req));
    if (kind === "quantize") await ctx.jobs.serve(parseQuantizeJobRequest(body), res, controller.signal);
    else await ctx.conversions.serve(parseConvertJobRequest(body), res, controller.signal);
  } catch (err) {
    const failure = toErrorResponse(err, controller.signal);
    ctx.deps.metrics.recordJob(kind, failure.status);
    sendJson(res, failure.status, { error: failure.message });
  }
}

/** Prometheus text: the pool's sequences and memory, the blob cache, draining. */
function serveMetrics(ctx: RouteContext, _req: IncomingMessage, res: ServerResponse) {
  const { pool, blobs, metrics } = ctx.deps;
  const loaded = pool.loadedInstances;
  const body = metrics.render({
    busySequences: loaded.reduce((sum, i) => sum + i.busySequences, 0),
    totalSequences: loaded.reduce((sum, i) => sum + i.totalSequences, 0),
    loadedModels: loaded.length,
    cacheBytes: blobs.totalBytes,
    memoryUsedBytes: pool.memoryUsed,
    draining: ctx.draining(),
  });
  res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
  res.end(body);
}

/** The route table: path → method and handler. */
const ROUTES: Record<string, { method: "GET" | "POST"; handle: RouteHandler }> = {
  ...Object.fromEntries(
    Object.keys(INFERENCE_ROUTES).map((path) => [path, { method: "POST", handle: serveInference }]),
  ),
  "/v1/quantize": { method: "POST", handle: serveJob },
  "/v1/convert": { method: "POST", handle: serveJob },
  "/v1/ps": { method: "GET", handle: (ctx, _req, res) => sendJson(res, 200, ctx.status()) },
  "/metrics": { method: "GET", handle: serveMetrics },
};

async function route(ctx: RouteContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (!secretMatches(req.headers.authorization, ctx.deps.secret)) return sendJson(res, 401, { error: "unauthorized" });
  const path = new URL(req.url ?? "/", "http://runner").pathname;
  const found = Object.hasOwn(ROUTES, path) ? ROUTES[path] : undefined;
  if (!found) return sendJson(res, 404, { error: "not found" });
  if (req.method !== found.method) return sendJson(res, 405, { error: "method not allowed" });
  return found.handle(ctx, req, res, path);
}

export function createRunnerServer(deps: RunnerServerDeps): RunnerServer {
  const { pool, identity } = deps;
  const inferenceDeps: InferenceDeps = {
    pool,
    llama: deps.llama,
    clock: deps.clock,
    metrics: deps.metrics,
    announceModels: deps.announceModels,
  };
  const slots = new JobSlots();
  const jobs = new QuantizeJobs({
    blobs: deps.blobs,
    sink: deps.sink,
    quantize: deps.quantize,
    threads: deps.threads,
    clock: deps.clock,
    metrics: deps.metrics,
    log: deps.log,
    slots,
  });
  const conversions = new ConvertJobs({
    blobs: deps.blobs,
    sink: deps.sink,
    convert: deps.convert,
    clock: deps.clock,
    metrics: deps.metrics,
    log: deps.log,
    slots,
  });
  let draining = false;
  let edgeDraining = false;
  let active = 0;
  let idle: (() => void) | undefined;

  const status = (): RunnerStatus => {
    const loaded = pool.ps();
    const used = pool.memoryUsed;
    return {
      id: identity.id,
      url: identity.url,
      slots: loaded.reduce((sum, m) => sum + m.sequences, 0),
      busy_slots: loaded.reduce((sum, m) => sum + m.busy_sequences, 0),
      memory_total: identity.memoryBudgetBytes,
      memory_free: Math.max(0, identity.memoryBudgetBytes - used),
      loaded,
      draining,
    };
  };
  const ctx: RouteContext = {
    deps,
    inferenceDeps,
    jobs,
    conversions,
    draining: () => draining || edgeDraining,
    status,
  };

  const server = createServer((req, res) => {
    active++;
    res.on("close", () => {
      active--;
      if (active === 0) idle?.();
    });
    route(ctx, req, res).catch((err) => {
      const failure = toErrorResponse(err);
      sendJson(res, failure.status, { error: failure.message });
    });
  });
  // Generations stream for minutes; Node's default request timeout (5 min) would cut long ones.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  // Idle kept-alive connections are the client's to close (the edge's workerd, cloudflared in production, both pool
  // them). Closing them here (Node's default: after 5 s) races the client's reuse: a request sent on a socket the
  // runner is closing fails before its first byte, and the edge takes the runner out of service for its cooldown.
  server.keepAliveTimeout = 0;

  return {
    server,
    status,
    get draining() {
      return draining || edgeDraining;
    },
    get activeRequests() {
      return active;
    },
    setDraining(value) {
      draining = value;
    },
    setEdgeDraining(value) {
      edgeDraining = value;
    },
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          resolve(server.address() as AddressInfo);
        });
      });
    },
    async close() {
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      if (active > 0) await new Promise<void>((resolve) => (idle = resolve));
      server.closeAllConnections();
      await closed;
    },
  };
}
