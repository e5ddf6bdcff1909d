/**
 * POST /v1/embed (Ollama's /api/embed) and POST /v1/embeddings (the legacy /api/embeddings).
 * /api/embed: one vector per input, L2-normalised, then cut to `dimensions` and normalised again; inputs longer
 * than the context are cut to fit unless `truncate: false`, which is a 400. /api/embeddings returns the raw,
 * unnormalised vector of one prompt, as Ollama's legacy handler does.
 */
import { parseKeepAlive } from "@corral/protocol/duration";
import { ApiError, OllamaError } from "@corral/protocol/errors";
import { parseEmbeddingRequest, parseEmbedRequest } from "@corral/protocol/schemas";
import type { LlamaEmbeddingContext, LlamaModel, Token } from "node-llama-cpp";
import type { ModelInstance } from "../model-instance";
import type { ModelLease } from "../model-pool";
import { acquireModel, type InferenceCall, type InferenceDeps, NO_USAGE, nonZero, type Usage } from "./call";
import { mergeModelAndRequestOptions } from "./options";

export function l2Normalize(vector: readonly number[]): number[] {
  let sum = 0;
  for (const value of vector) {
    if (!Number.isFinite(value)) throw new ApiError(500, "embedding contains NaN or Inf values");
    sum += value * value;
  }
  const scale = 1 / Math.max(Math.sqrt(sum), 1e-12);
  return vector.map((value) => value * scale);
}

/** Tokens BOS/EOS add around an input, which also take context cells. */
function specialTokensAdded(model: LlamaModel, tokens: readonly Token[]): number {
  const { bos, eos, shouldPrependBosToken, shouldAppendEosToken } = model.tokens;
  let added = 0;
  if (shouldPrependBosToken && bos !== null && tokens[0] !== bos) added++;
  if (shouldAppendEosToken && eos !== null && tokens.at(-1) !== eos) added++;
  return added;
}

async function embedOne(
  context: LlamaEmbeddingContext,
  instance: ModelInstance,
  text: string,
  truncate: boolean,
): Promise<{ vector: number[]; tokens: number }> {
  const { model, spec } = instance;
  const numCtx = spec.numCtx;
  let tokens = await instance.tokenize(text, false);
  // node-llama-cpp needs the input (with BOS/EOS) to be strictly shorter than the context.
  const limit = numCtx - 1 - specialTokensAdded(model, tokens);
  if (limit <= 0) throw new ApiError(400, "input after truncation exceeds maximum context length");
  if (tokens.length > limit) {
    if (!truncate) throw new ApiError(400, OllamaError.inputTooLong);
    tokens = tokens.slice(0, limit);
  }
  const embedding = await context.getEmbeddingFor(tokens);
  return { vector: [...embedding.vector], tokens: tokens.length + specialTokensAdded(model, tokens) };
}

function leaseFor(deps: InferenceDeps, call: InferenceCall, options: unknown, keepAlive: unknown) {
  const merged = mergeModelAndRequestOptions(call.model.params, options);
  return acquireModel(deps, call, merged, parseKeepAlive(keepAlive));
}

function stats(deps: InferenceDeps, call: InferenceCall, lease: ModelLease, promptTokens: number) {
  return nonZero({
    total_duration: Number(deps.clock.monotonicNs() - call.receivedNs),
    load_duration: lease.loadDurationNs,
    prompt_eval_count: promptTokens,
  });
}

export async function handleEmbed(deps: InferenceDeps, call: InferenceCall): Promise<Usage> {
  const request = parseEmbedRequest(call.body);
  const lease = await leaseFor(deps, call, request.options, request.keep_alive);
  try {
    if (request.input.length === 0) {
      call.sink.json({ model: call.model.name, embeddings: [] });
      return NO_USAGE;
    }
    const { instance } = lease;
    const context = await instance.embeddings();
    const truncate = request.truncate ?? true;
    const embeddings: number[][] = [];
    let promptTokens = 0;
    for (const text of request.input) {
      if (call.signal.aborted) break;
      const { vector, tokens } = await embedOne(context, instance, text, truncate);
      let normalized = l2Normalize(vector);
      const dimensions = request.dimensions ?? 0;
      if (dimensions > 0 && dimensions < normalized.length) normalized = l2Normalize(normalized.slice(0, dimensions));
      embeddings.push(normalized);
      promptTokens += tokens;
    }
    call.sink.json({ model: call.model.name, embeddings, ...stats(deps, call, lease, promptTokens) });
    return { promptTokens, generatedTokens: 0 };
  } finally {
    lease.release();
  }
}

export async function handleEmbeddings(deps: InferenceDeps, call: InferenceCall): Promise<Usage> {
  const request = parseEmbeddingRequest(call.body);
  const lease = await leaseFor(deps, call, request.options, request.keep_alive);
  try {
    if (request.prompt === "") {
      call.sink.json({ embedding: [] });
      return NO_USAGE;
    }
    const { instance } = lease;
    const context = await instance.embeddings();
    const { vector, tokens } = await embedOne(context, instance, request.prompt, true);
    call.sink.json({ embedding: vector });
    return { promptTokens: tokens, generatedTokens: 0 };
  } finally {
    lease.release();
  }
}
