/**
 * What the runner's jobs (quantize, convert) share: one pool of job slots (a runner runs so many heavy jobs at once,
 * whatever their kind), the NDJSON answer (progress lines, a keepalive, then exactly one `done` or `error` line), the
 * progress throttle, and the steps around a result (waiting for a lease unless the job is cancelled; hashing, storing
 * and caching the output).
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import type { ServerResponse } from "node:http";
import { ApiError } from "@corral/protocol/errors";
import { type JobEvent, RUNNER_HEADER_REQUEST_ID } from "@corral/protocol/runner";
import type { BlobCache } from "./blob-cache";
import type { BlobSink } from "./blob-sink";
import type { Clock } from "./clock";
import { busy, toErrorResponse } from "./errors";
import type { RunnerMetrics } from "./metrics";

/** At most this many progress lines a second per phase (the last one of a phase always goes out). */
const PROGRESS_INTERVAL_MS = 100;
/**
 * The last line is sent again after this long without one: downloading sources and hashing results report no
 * progress of their own, and the edge extends its blob pins (and the client sees the job alive) on each line.
 */
const KEEPALIVE_MS = 2_000;

export type JobPhase = Extract<JobEvent, { event: "progress" }>["phase"];
export type Emit = (event: JobEvent) => void;

/** Jobs running at once on this runner, all kinds together; one more is refused with 503 (the edge tries another). */
export class JobSlots {
  private running = 0;
  constructor(readonly max = 1) {}
  get active(): number {
    return this.running;
  }
  /** Takes a slot or throws the 503; the returned function gives it back. */
  take(): () => void {
    if (this.running >= this.max) throw busy("runner is busy with another job");
    this.running++;
    let released = false;
    return () => {
      if (!released) this.running--;
      released = true;
    };
  }
}

export interface JobStreamDeps {
  clock: Clock;
  metrics: RunnerMetrics;
  log?(message: string): void;
}

/**
 * A job's whole answer while it holds one of `slots`: refused (thrown before any output) when the runner has no blob
 * store to write `what` blobs to, or no free slot; else streamed by streamJob.
 */
export async function runJobInSlot(
  deps: JobStreamDeps & { sink?: BlobSink },
  slots: JobSlots,
  job: { kind: "quantize" | "convert"; what: string; requestId: string },
  res: ServerResponse,
  signal: AbortSignal,
  work: (sink: BlobSink, emit: Emit) => Promise<{ digest: string; size: number }>,
): Promise<void> {
  const sink = deps.sink;
  if (!sink) throw new ApiError(501, `this runner has no blob store to write ${job.what} blobs to`);
  const release = slots.take();
  try {
    await streamJob(deps, job.kind, job.requestId, res, signal, (emit) => work(sink, emit));
  } finally {
    release();
  }
}

/**
 * Answers a job with its NDJSON stream: `work` emits progress, its result becomes the `done` line, its failure the
 * `error` line (or, when the edge hung up, a destroyed response).
 */
export async function streamJob(
  deps: JobStreamDeps,
  kind: string,
  requestId: string,
  res: ServerResponse,
  signal: AbortSignal,
  work: (emit: Emit) => Promise<{ digest: string; size: number }>,
): Promise<void> {
  let status = 200;
  try {
    res.writeHead(200, { "content-type": "application/x-ndjson", [RUNNER_HEADER_REQUEST_ID]: requestId });
    let lastLine: JobEvent | undefined;
    let lastAt = deps.clock.now();
    const emit: Emit = (event) => {
      lastLine = event;
      lastAt = deps.clock.now();
      if (!res.writableEnded && !res.destroyed) res.write(`${JSON.stringify(event)}\n`);
    };
    const keepalive = setInterval(() => {
      if (lastLine && deps.clock.now() - lastAt >= KEEPALIVE_MS) emit(lastLine);
    }, KEEPALIVE_MS / 2);
    try {
      const result = await work(emit).finally(() => clearInterval(keepalive));
      res.end(`${JSON.stringify({ event: "done", ...result } satisfies JobEvent)}\n`);
    } catch (err) {
      const failure = toErrorResponse(err, signal);
      status = failure.status;
      if (signal.aborted) {
        res.destroy();
      } else {
        if (status >= 500) deps.log?.(`/v1/${kind} ${requestId}: ${status} ${failure.message}`);
        res.end(`${JSON.stringify({ event: "error", error: failure.message, status } satisfies JobEvent)}\n`);
      }
    }
  } finally {
    deps.metrics.recordJob(kind, status);
  }
}

/** Progress lines of one phase: the first, then at most one per PROGRESS_INTERVAL_MS, and the completing one. */
export function phaseProgress(clock: Clock, phase: JobPhase, emit: Emit): (completed: number, total: number) => void {
  let last = Number.NEGATIVE_INFINITY;
  let finished = false;
  return (completed, total) => {
    const now = clock.now();
    const complete = completed >= total;
    if (finished || (!complete && now - last < PROGRESS_INTERVAL_MS)) return;
    last = now;
    finished = complete;
    emit({ event: "progress", phase, completed, total });
  };
}

/** Resolves with `work`, or rejects once `signal` aborts; a result that arrives after that goes to `discard`. */
export function unlessAborted<T>(work: Promise<T>, signal: AbortSignal, discard: (value: T) => void): Promise<T> {
  if (signal.aborted) {
    work.then(discard, () => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      work.then(discard, () => {});
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        if (signal.aborted) discard(value);
        else resolve(value);
      },
      (err) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}

/**
 * A job's result from its finished temp file: hashed, handed to the sink (with upload progress), its reserved room
 * given back (the cache then counts the file as a blob) and adopted by the cache: the model made from it will most
 * likely load (or be quantized) here next, so the verified bytes stay rather than being fetched again.
 */
export async function storeJobOutput(
  deps: { blobs: BlobCache; clock: Clock },
  sink: BlobSink,
  output: { path: string; unreserve: () => void },
  signal: AbortSignal,
  emit: Emit,
): Promise<{ digest: string; size: number }> {
  const result = await sha256File(output.path, signal);
  const uploadProgress = phaseProgress(deps.clock, "upload", emit);
  uploadProgress(0, result.size);
  await sink.put(result.digest, result.size, output.path, signal, (sent) => uploadProgress(sent, result.size));
  uploadProgress(result.size, result.size);
  output.unreserve();
  await deps.blobs.adopt(result.digest, output.path, result.size).catch(() => false);
  return result;
}

async function sha256File(path: string, signal: AbortSignal): Promise<{ digest: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of createReadStream(path, { signal })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: `sha256:${hash.digest("hex")}`, size };
}
