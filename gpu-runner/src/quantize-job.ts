/**
 * `POST /v1/quantize`: a quantize job for the edge's `/api/create` with `quantize`. The runner leases the source
 * blob from its cache (fetching it on a miss), rewrites it with llama.cpp's quantizer into a temp file inside the
 * cache directory, hashes the result, hands it to the blob sink (the store checks the hash again) and reports
 * `{digest, size}`. The answer is NDJSON QuantizeJobEvent lines (protocol/src/runner.ts): progress, then exactly one
 * `done` or `error` line. The edge hanging up cancels the job: the quantizer and the upload both see the signal.
 * Nothing from the request names a file: the output's name is made here, the source's comes from its digest.
 */
import { createHash, randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { rm } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { parseDigest } from "@corral/protocol/digest";
import { ApiError } from "@corral/protocol/errors";
import {
  type QuantizeJobEvent,
  type QuantizeJobRequest,
  QuantizeJobRequestSchema,
  RUNNER_HEADER_REQUEST_ID,
} from "@corral/protocol/runner";
import { parseBody } from "@corral/protocol/schema-helpers";
import type { BlobCache, BlobLease } from "./blob-cache";
import type { BlobSink } from "./blob-sink";
import type { Clock } from "./clock";
import { busy, toErrorResponse } from "./errors";
import type { RunnerMetrics } from "./metrics";
import type { quantizeGguf } from "./quantize/quantize";

export type QuantizeFn = typeof quantizeGguf;

/**
 * The real engine, loaded on the first job: its native bindings stay off the runner's start and out of the
 * inference-only tests, and a failure to load them fails the job (an error line), not the runner.
 */
export const loadedQuantizeEngine: QuantizeFn = async (options) =>
  (await import("./quantize/quantize")).quantizeGguf(options);

/** At most this many progress lines a second per phase (the last one of a phase always goes out). */
const PROGRESS_INTERVAL_MS = 100;
/**
 * The last line is sent again after this long without one: downloading the source and hashing the result report no
 * progress of their own, and the edge extends its blob pins (and the client sees the job alive) on each line.
 */
const KEEPALIVE_MS = 2_000;
/** The cache removes `*.partial` files at start, so a crash mid-job leaves nothing behind for long. */
const OUTPUT_SUFFIX = ".partial";

export interface QuantizeJobDeps {
  blobs: BlobCache;
  /** Where results are stored; absent → jobs are refused with 501. */
  sink?: BlobSink;
  quantize?: QuantizeFn;
  /** llama.cpp threads for the quantizer (the runner's THREADS). Default: the machine's cores. */
  threads?: number;
  clock: Clock;
  metrics: RunnerMetrics;
  log?(message: string): void;
  /** Jobs running at once; one more is refused with 503 so the edge tries another runner. Default 1. */
  maxJobs?: number;
}

/** Validates a job body: the schema, and a source digest in corral's `sha256:<hex>` form (canonicalised). */
export function parseQuantizeJobRequest(body: unknown): QuantizeJobRequest {
  const parsed = parseBody(QuantizeJobRequestSchema, body, "quantize job");
  const digest = parseDigest(parsed.source.digest);
  if (digest === null) throw new ApiError(400, "invalid quantize job: source.digest: invalid digest format");
  return { ...parsed, source: { ...parsed.source, digest } };
}

/** Resolves with `work`, or rejects once `signal` aborts; a result that arrives after that goes to `discard`. */
function unlessAborted<T>(work: Promise<T>, signal: AbortSignal, discard: (value: T) => void): Promise<T> {
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

async function sha256File(path: string, signal: AbortSignal): Promise<{ digest: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of createReadStream(path, { signal })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: `sha256:${hash.digest("hex")}`, size };
}

export class QuantizeJobs {
  private running = 0;
  private readonly quantize: QuantizeFn;
  private readonly threads: number;
  private readonly maxJobs: number;

  constructor(private readonly deps: QuantizeJobDeps) {
    this.quantize = deps.quantize ?? loadedQuantizeEngine;
    this.threads = Math.max(1, deps.threads ?? availableParallelism());
    this.maxJobs = Math.max(1, deps.maxJobs ?? 1);
  }

  /** Jobs running right now. */
  get active(): number {
    return this.running;
  }

  /**
   * Runs a validated job and streams its events to `res`. Throws (an ApiError, before anything is written) only
   * when the job is refused; once the stream starts, every failure becomes its `error` line.
   */
  async serve(request: QuantizeJobRequest, res: ServerResponse, signal: AbortSignal): Promise<void> {
    const sink = this.deps.sink;
    if (!sink) throw new ApiError(501, "this runner has no blob store to write quantized blobs to");
    if (this.running >= this.maxJobs) throw busy("runner is busy with another quantize job");
    this.running++;
    let status = 200;
    try {
      res.writeHead(200, { "content-type": "application/x-ndjson", [RUNNER_HEADER_REQUEST_ID]: request.request_id });
      let lastLine: QuantizeJobEvent | undefined;
      let lastAt = this.deps.clock.now();
      const emit = (event: QuantizeJobEvent) => {
        lastLine = event;
        lastAt = this.deps.clock.now();
        if (!res.writableEnded && !res.destroyed) res.write(`${JSON.stringify(event)}\n`);
      };
      const keepalive = setInterval(() => {
        if (lastLine && this.deps.clock.now() - lastAt >= KEEPALIVE_MS) emit(lastLine);
      }, KEEPALIVE_MS / 2);
      try {
        const result = await this.run(request, sink, signal, emit).finally(() => clearInterval(keepalive));
        res.end(`${JSON.stringify({ event: "done", ...result } satisfies QuantizeJobEvent)}\n`);
      } catch (err) {
        const failure = toErrorResponse(err, signal);
        status = failure.status;
        if (signal.aborted) {
          res.destroy();
        } else {
          if (status >= 500) this.deps.log?.(`/v1/quantize ${request.request_id}: ${status} ${failure.message}`);
          const line: QuantizeJobEvent = { event: "error", error: failure.message, status };
          res.end(`${JSON.stringify(line)}\n`);
        }
      }
    } finally {
      this.running--;
      this.deps.metrics.recordJob("quantize", status);
    }
  }

  /** The job itself; the source lease and the temp output are gone by the time it settles. */
  private async run(
    request: QuantizeJobRequest,
    sink: BlobSink,
    signal: AbortSignal,
    emit: (event: QuantizeJobEvent) => void,
  ): Promise<{ digest: string; size: number }> {
    const source = request.source;
    const fetchProgress = this.progress("fetch", emit);
    fetchProgress(0, source.size);
    // A download already under way for another job or a model load is shared; cancelling ours leaves it running.
    let lease: BlobLease | undefined = await unlessAborted(
      this.deps.blobs.acquire(source.digest, source.size),
      signal,
      (late) => late.release(),
    );
    let output: string | undefined;
    let unreserve: (() => void) | undefined;
    try {
      if (lease.size !== source.size) {
        throw new ApiError(400, `source blob ${source.digest} has ${lease.size} bytes, not ${source.size}`);
      }
      fetchProgress(source.size, source.size);
      signal.throwIfAborted();
      // The output grows beside the cached blobs: its room is held in the cache's budget (F32 doubles an F16).
      unreserve = await this.deps.blobs.reserve(request.file_type === "F32" ? 2 * source.size : source.size);
      output = join(dirname(lease.path), `quantize-${randomUUID()}${OUTPUT_SUFFIX}`);
      await this.quantize({
        input: lease.path,
        output,
        fileType: request.file_type,
        threads: this.threads,
        signal,
        onProgress: this.progress("quantize", emit),
      });
      lease.release();
      lease = undefined;
      signal.throwIfAborted();
      const result = await sha256File(output, signal);
      const uploadProgress = this.progress("upload", emit);
      uploadProgress(0, result.size);
      await sink.put(result.digest, result.size, output, signal, (sent) => uploadProgress(sent, result.size));
      uploadProgress(result.size, result.size);
      unreserve();
      // The model made from it will most likely load here next: keep the verified bytes instead of fetching them.
      await this.deps.blobs.adopt(result.digest, output, result.size).catch(() => false);
      return result;
    } finally {
      lease?.release();
      unreserve?.();
      if (output) await rm(output, { force: true });
    }
  }

  /** Progress lines of one phase: the first, then at most one per PROGRESS_INTERVAL_MS, and the completing one. */
  private progress(
    phase: "fetch" | "quantize" | "upload",
    emit: (event: QuantizeJobEvent) => void,
  ): (completed: number, total: number) => void {
    let last = Number.NEGATIVE_INFINITY;
    let finished = false;
    return (completed, total) => {
      const now = this.deps.clock.now();
      const complete = completed >= total;
      if (finished || (!complete && now - last < PROGRESS_INTERVAL_MS)) return;
      last = now;
      finished = complete;
      emit({ event: "progress", phase, completed, total });
    };
  }
}
