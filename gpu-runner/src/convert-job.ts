/**
 * `POST /v1/convert`: a convert job for the edge's `/api/create` from a safetensors checkpoint. The runner leases
 * every file of the checkpoint from its cache (fetching misses), converts them in a child process (convert/engine.ts)
 * into a temp file inside the cache directory, hashes it, hands it to the blob sink and reports `{digest, size}`, as
 * quantize jobs do (quantize-job.ts), in the same NDJSON JobEvent lines and the same job slots. The edge hanging up
 * cancels it: the child is killed, the leases and the room held for the output are released, the temp file removed.
 */
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import { dirname, join } from "node:path";
import { parseDigest } from "@corral/protocol/digest";
import { ApiError } from "@corral/protocol/errors";
import { type ConvertJobRequest, ConvertJobRequestSchema } from "@corral/protocol/runner";
import { parseBody } from "@corral/protocol/schema-helpers";
import type { BlobCache, BlobLease } from "./blob-cache";
import type { BlobSink } from "./blob-sink";
import type { Clock } from "./clock";
import type { convertInChild } from "./convert/engine";
import { type Emit, JobSlots, phaseProgress, runJobInSlot, storeJobOutput, unlessAborted } from "./job-stream";
import type { RunnerMetrics } from "./metrics";

export type ConvertFn = typeof convertInChild;

/** The real engine, loaded on the first job, as quantize's is. */
export const loadedConvertEngine: ConvertFn = async (options) =>
  (await import("./convert/engine")).convertInChild(options);

export interface ConvertJobDeps {
  blobs: BlobCache;
  /** Where results are stored; absent → jobs are refused with 501. */
  sink?: BlobSink;
  convert?: ConvertFn;
  clock: Clock;
  metrics: RunnerMetrics;
  log?(message: string): void;
  /** The runner's job slots, shared with quantize jobs. Default: one slot of its own. */
  slots?: JobSlots;
}

/** Validates a job body: the schema, distinct names, digests in corral's `sha256:<hex>` form (canonicalised). */
export function parseConvertJobRequest(body: unknown): ConvertJobRequest {
  const request = parseBody(ConvertJobRequestSchema, body, "convert job");
  const names = new Set<string>();
  const files = request.files.map((f) => {
    const digest = parseDigest(f.digest);
    if (digest === null) throw new ApiError(400, `invalid convert job: ${f.name}: invalid digest format`);
    if (names.has(f.name)) throw new ApiError(400, `invalid convert job: ${f.name} appears twice`);
    names.add(f.name);
    return { ...f, digest };
  });
  return { ...request, files };
}

export class ConvertJobs {
  private readonly convert: ConvertFn;
  private readonly slots: JobSlots;

  constructor(private readonly deps: ConvertJobDeps) {
    this.convert = deps.convert ?? loadedConvertEngine;
    this.slots = deps.slots ?? new JobSlots();
  }

  /** As QuantizeJobs.serve: throws only when refused; once streaming, failures become the `error` line. */
  async serve(request: ConvertJobRequest, res: ServerResponse, signal: AbortSignal): Promise<void> {
    const job = { kind: "convert", what: "converted", requestId: request.request_id } as const;
    await runJobInSlot(this.deps, this.slots, job, res, signal, (sink, emit) => this.run(request, sink, signal, emit));
  }

  private async run(
    request: ConvertJobRequest,
    sink: BlobSink,
    signal: AbortSignal,
    emit: Emit,
  ): Promise<{ digest: string; size: number }> {
    const total = request.files.reduce((sum, f) => sum + f.size, 0);
    const fetchProgress = phaseProgress(this.deps.clock, "fetch", emit);
    fetchProgress(0, total);
    const leases: BlobLease[] = [];
    let output: string | undefined;
    let unreserve: (() => void) | undefined;
    try {
      const paths = new Map<string, string>();
      let fetched = 0;
      for (const file of request.files) {
        const lease = await unlessAborted(this.deps.blobs.acquire(file.digest, file.size), signal, (late) =>
          late.release(),
        );
        leases.push(lease);
        if (lease.size !== file.size) {
          throw new ApiError(400, `blob ${file.digest} has ${lease.size} bytes, not ${file.size}`);
        }
        paths.set(file.name, lease.path);
        fetched += file.size;
        fetchProgress(fetched, total);
      }
      signal.throwIfAborted();
      // F16/BF16 weights convert to their own size, F32 to half: the checkpoint's size bounds the output. An adapter
      // is written in F32: twice its size at most.
      unreserve = await this.deps.blobs.reserve(request.adapter_base ? 2 * total : total);
      output = join(dirname(leases[0]!.path), `convert-${randomUUID()}.partial`);
      await this.convert({
        files: paths,
        output,
        signal,
        onProgress: phaseProgress(this.deps.clock, "convert", emit),
        ...(request.adapter_base ? { adapterBase: request.adapter_base } : {}),
      });
      for (const lease of leases.splice(0)) lease.release();
      signal.throwIfAborted();
      return await storeJobOutput(this.deps, sink, { path: output, unreserve }, signal, emit);
    } finally {
      for (const lease of leases) lease.release();
      unreserve?.();
      if (output) await rm(output, { force: true });
    }
  }
}
