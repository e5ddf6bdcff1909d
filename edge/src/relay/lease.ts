import { ApiError } from "@corral/protocol";
import type { ResolvedModel } from "@corral/protocol/runner";
import { schedulerStub } from "../scheduler/client";
import type { AcquireResult, Grant } from "../scheduler/types";
import type { ModelShape } from "../store/gguf";
import { refusalError } from "./failures";
import type { InferenceRun } from "./run";

/** Context and batch a runner uses when the options name none (Ollama's defaults; the runner's NUM_CTX). */
export const DEFAULT_NUM_CTX = 4096;
export const DEFAULT_NUM_BATCH = 512;
/** llama.cpp's KV cache is f16 unless configured otherwise. */
const KV_BYTES_PER_ELEMENT = 2;
/** Compute buffer per batch token and embedding width: a few f32 activations live at once (a rough upper bound). */
const COMPUTE_BYTES_PER_TOKEN_WIDTH = 16;

/**
 * Memory a runner needs to load the model for these options: weights and adapters (a vision model's weights twice,
 * its llama-server holding a copy beside node-llama-cpp's, plus the projector), the KV cache
 * (context × layers × KV heads × (key + value width) × 2 bytes) and the compute buffer (batch × width × 16 bytes).
 * Without the GGUF's shape (a model whose header was never summarised) only the weights are counted, and the
 * runner's own free-memory report absorbs the rest.
 */
export function estimateModelBytes(
  model: ResolvedModel,
  shape: ModelShape | null,
  options: Record<string, unknown>,
): number {
  const vision = model.projector ? model.model_size + model.projector.size : 0;
  const weights = model.adapters.reduce((n, a) => n + a.size, model.model_size + vision);
  if (!shape?.layers || !shape.kv_heads || !shape.kv_head_width) return weights;
  const asked = typeof options.num_ctx === "number" && options.num_ctx > 0 ? options.num_ctx : DEFAULT_NUM_CTX;
  // The runner clamps num_ctx to the trained context, as Ollama does.
  const numCtx = Math.min(asked, shape.context_length ?? asked);
  const numBatch =
    typeof options.num_batch === "number" && options.num_batch > 0 ? options.num_batch : DEFAULT_NUM_BATCH;
  const kvCache = numCtx * shape.layers * shape.kv_heads * shape.kv_head_width * KV_BYTES_PER_ELEMENT;
  const width = shape.embedding ?? shape.kv_heads * shape.kv_head_width;
  const compute = Math.min(numBatch, numCtx) * width * COMPUTE_BYTES_PER_TOKEN_WIDTH;
  return weights + kvCache + compute;
}

/**
 * A runner lease from the scheduler, waiting in its queue if need be. The client going away stops the wait: the
 * scheduler drops the waiter (or the lease it was just given) and the request ends as cancelled.
 */
export async function acquireLease(
  run: InferenceRun,
  model: ResolvedModel,
  estimatedBytes: number,
  exclude: readonly string[],
  signal: AbortSignal,
): Promise<Grant> {
  const scheduler = schedulerStub(run.env);
  const pending = scheduler
    .acquire({
      model_blob: model.model_blob,
      estimated_bytes: estimatedBytes,
      tenant_id: run.info.tenantId,
      request_id: run.requestId,
      exclude: [...exclude],
    })
    .catch((err: unknown): AcquireResult => {
      console.error("relay: scheduler unreachable", err);
      throw new ApiError(503, "scheduler unavailable, please try again");
    });

  const result = await new Promise<AcquireResult>((resolve, reject) => {
    const onAbort = () => {
      run.waitUntil(scheduler.cancel(run.requestId).catch(() => {}));
      resolve({ ok: false, reason: "cancelled" });
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    pending.then(
      (r) => {
        signal.removeEventListener("abort", onAbort);
        resolve(r);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
  if (!result.ok) throw refusalError(result.reason, result.detail);
  return result.grant;
}
