/**
 * What every inference handler gets and the small pieces they share: the chunk envelope, final stats in
 * Ollama's field order (zero values left out, as Go's omitempty does), and the model spec for the pool.
 */
import type { Options } from "@corral/protocol/options";
import type { ResolvedModel } from "@corral/protocol/runner";
import type { Metrics } from "@corral/protocol/types";
import type { Llama } from "node-llama-cpp";
import type { Clock } from "../clock";
import type { RunnerMetrics } from "../metrics";
import type { ModelLease, ModelPool, ModelSpec } from "../model-pool";
import type { CompletionResult } from "./completion";
import { requestedNumBatch, requestedNumCtx } from "./options";
import type { ResponseSink } from "./respond";

export interface InferenceDeps {
  pool: ModelPool;
  llama: Llama;
  clock: Clock;
  metrics?: RunnerMetrics;
  /**
   * Tells the edge the loaded set now and waits (bounded) for its answer, so /api/ps right after a load/unload
   * answer shows it. Never rejects. Absent for a runner without an edge.
   */
  announceModels?(): Promise<void>;
}

export interface InferenceCall {
  model: ResolvedModel;
  /** The client's request body as the edge validated it; handlers parse it again with protocol's schemas. */
  body: Record<string, unknown>;
  signal: AbortSignal;
  sink: ResponseSink;
  /** When the runner received the request (for total_duration). */
  receivedNs: bigint;
  /** `think` on a model without thinking is dropped instead of refused (RunnerInferenceRequest.relax_thinking). */
  relaxThinking?: boolean;
  /** The edge's tenant id (RunnerInferenceRequest.tenant): whose share a load counts against when it makes room. */
  tenant?: string;
}

export interface Usage {
  promptTokens: number;
  generatedTokens: number;
}

export const NO_USAGE: Usage = { promptTokens: 0, generatedTokens: 0 };

function modelSpec(model: ResolvedModel, numBatch: number | undefined): ModelSpec {
  const spec: ModelSpec = {
    modelBlob: model.model_blob,
    modelSize: model.model_size,
    adapters: model.adapters,
    numBatch,
  };
  if (model.projector) spec.projector = model.projector;
  return spec;
}

/** The call's model from the pool, sized by the merged options (num_batch for the load, num_ctx for the context). */
export function acquireModel(
  deps: InferenceDeps,
  call: InferenceCall,
  options: Options,
  keepAliveMs: number | null,
): Promise<ModelLease> {
  const spec = modelSpec(call.model, requestedNumBatch(options));
  return deps.pool.acquire(spec, requestedNumCtx(options), keepAliveMs, call.tenant);
}

export function envelope(call: InferenceCall, clock: Clock): { model: string; created_at: string } {
  return { model: call.model.name, created_at: new Date(clock.now()).toISOString() };
}

/** Go's omitempty drops zero durations and counts; clients treat a missing field as 0. */
export function nonZero<T extends Record<string, number>>(fields: T): Partial<T> {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value > 0)) as Partial<T>;
}

export function finalStats(
  call: InferenceCall,
  clock: Clock,
  loadDurationNs: number,
  result: Pick<
    CompletionResult,
    "promptEvalCount" | "promptCachedCount" | "promptEvalDurationNs" | "evalCount" | "evalDurationNs"
  >,
): Metrics {
  return nonZero({
    total_duration: Number(clock.monotonicNs() - call.receivedNs),
    load_duration: loadDurationNs,
    prompt_eval_count: result.promptEvalCount,
    prompt_cached_count: result.promptCachedCount,
    prompt_eval_duration: result.promptEvalDurationNs,
    eval_count: result.evalCount,
    eval_duration: result.evalDurationNs,
  });
}

export function quoteName(call: InferenceCall): string {
  return JSON.stringify(call.model.name);
}

export type { Llama };
