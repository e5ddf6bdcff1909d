/**
 * `POST /v1/quantize`: a quantize job for the edge's `/api/create` with `quantize`. The runner leases the source
 * blob from its cache (fetching it on a miss), rewrites it with llama.cpp's quantizer into a temp file inside the
 * cache directory, hashes the result, hands it to the blob sink (the store checks the hash again) and reports
 * `{digest, size}`. The answer is NDJSON JobEvent lines (protocol/src/runner.ts): progress, then exactly one
 * `done` or `error` line. The edge hanging up cancels the job: the quantizer and the upload both see the signal.
 * Nothing from the request names a file: the output's name is made here, the source's comes from its digest.
 */
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { parseDigest } from "@corral/protocol/digest";
import { ApiError } from "@corral/protocol/errors";
import { type QuantizeJobRequest, QuantizeJobRequestSchema } from "@corral/protocol/runner";
import { parseBody } from "@corral/protocol/schema-helpers";
import type { BlobCache, BlobLease } from "./blob-cache";
import type { BlobSink } from "./blob-sink";
import type { Clock } from "./clock";
import { type Emit, JobSlots, phaseProgress, runJobInSlot, storeJobOutput, unlessAborted } from "./job-stream";
import type { RunnerMetrics } from "./metrics";
import type { quantizeGguf } from "./quantize/quantize";

export type QuantizeFn = typeof quantizeGguf;

/**
 * The real engine, loaded on the first job: its native bindings stay off the runner's start and out of the
 * inference-only tests, and a failure to load them fails the job (an error line), not the runner.
 */
export const loadedQuantizeEngine: QuantizeFn = async (options) =>
  (await import("./quantize/quantize")).quantizeGguf(options);

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
  /** The runner's job slots, shared with convert jobs. Default: one slot of its own. */
  slots?: JobSlots;
}

/** Validates a job body: the schema, and a source digest in corral's `sha256:<hex>` form (canonicalised). */
export function parseQuantizeJobRequest(body: unknown): QuantizeJobRequest {
  const parsed = parseBody(QuantizeJobRequestSchema, body, "quantize job");
  const digest = parseDigest(parsed.source.digest);
  if (digest === null) throw new ApiError(400, "invalid quantize job: source.digest: invalid digest format");
  return { ...parsed, source: { ...parsed.source, digest } };
}

export class QuantizeJobs {
  private readonly quantize: QuantizeFn;
  private readonly threads: number;
  private readonly slots: JobSlots;

  constructor(private readonly deps: QuantizeJobDeps) {
    this.quantize = deps.quantize ?? loadedQuantizeEngine;
    this.threads = Math.max(1, deps.threads ?? availableParallelism());
    this.slots = deps.slots ?? new JobSlots();
  }

  /**
   * Runs a validated job and streams its events to `res`. Throws (an ApiError, before anything is written) only
   * when the job is refused; once the stream starts, every failure becomes its `error` line.
   */
  async serve(request: QuantizeJobRequest, res: ServerResponse, signal: AbortSignal): Promise<void> {
    const job = { kind: "quantize", what: "quantized", requestId: request.request_id } as const;
    await runJobInSlot(this.deps, this.slots, job, res, signal, (sink, emit) => this.run(request, sink, signal, emit));
  }

  /** The job itself; the source lease and the temp output are gone by the time it settles. */
  private async run(
    request: QuantizeJobRequest,
    sink: BlobSink,
    signal: AbortSignal,
    emit: Emit,
  ): Promise<{ digest: string; size: number }> {
    const source = request.source;
    const fetchProgress = phaseProgress(this.deps.clock, "fetch", emit);
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
        onProgress: phaseProgress(this.deps.clock, "quantize", emit),
      });
      lease.release();
      lease = undefined;
      signal.throwIfAborted();
      return await storeJobOutput(this.deps, sink, { path: output, unreserve }, signal, emit);
    } finally {
      lease?.release();
      unreserve?.();
      if (output) await rm(output, { force: true });
    }
  }
}
