import { ApiError } from "@corral/protocol";
import type { ResolvedModel } from "@corral/protocol/runner";
import { schedulerStub } from "../scheduler/client";
import type { AcquireResult, Grant } from "../scheduler/types";
import { refusalError } from "./failures";
import type { InferenceRun } from "./run";

/**
 * Memory a runner needs to load the model: weights and adapters; a vision model's weights twice (its
 * llama-server holds a copy beside node-llama-cpp's) plus the projector. The KV cache comes on top and depends on
 * the runner's context settings, so the runner's own free-memory report (and its keep_alive unloading) absorbs it.
 */
export function estimateModelBytes(model: ResolvedModel): number {
  const vision = model.projector ? model.model_size + model.projector.size : 0;
  return model.adapters.reduce((n, a) => n + a.size, model.model_size + vision);
}

/**
 * A runner lease from the scheduler, waiting in its queue if need be. The client going away stops the wait: the
 * scheduler drops the waiter (or the lease it was just given) and the request ends as cancelled.
 */
export async function acquireLease(
  run: InferenceRun,
  model: ResolvedModel,
  exclude: readonly string[],
  signal: AbortSignal,
): Promise<Grant> {
  const scheduler = schedulerStub(run.env);
  const pending = scheduler
    .acquire({
      model_blob: model.model_blob,
      estimated_bytes: estimateModelBytes(model),
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
