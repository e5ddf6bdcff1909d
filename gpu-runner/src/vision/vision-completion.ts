/**
 * One generation with images, on the instance's llama-server: the counterpart of runCompletion for prompts
 * that carry media markers. A sequence of the instance is held for the duration, so image requests share the
 * instance's concurrency limit and wait queue with its text requests; the server runs as many slots.
 */
import { ApiError } from "@corral/protocol/errors";
import type { LlamaGrammar } from "node-llama-cpp";
import type { Clock } from "../clock";
import { cancelled } from "../errors";
import type { CompletionResult } from "../inference/completion";
import type { InferenceSettings } from "../inference/options";
import type { ModelInstance } from "../model-instance";
import { MEDIA_MARKER } from "./llama-server";

export interface VisionCompletionRequest {
  instance: ModelInstance;
  /** The formatted prompt, with one MEDIA_MARKER where each image goes. */
  prompt: string;
  /** The images' bytes, in marker order, already checked (checkImages). */
  images: readonly Buffer[];
  settings: InferenceSettings;
  /** `format`'s grammar; its GBNF text goes to llama-server, which constrains sampling the same way. */
  grammar?: LlamaGrammar;
  signal: AbortSignal;
  clock: Clock;
  onText(text: string): void;
}

/**
 * Images `first` … `first + count - 1` of a request go where the text has Ollama's `[img-N]` tag, else in front
 * of the text, as the server's markers.
 */
export function withImageMarkers(text: string, first: number, count: number): string {
  let prefix = "";
  let out = text;
  for (let i = first; i < first + count; i++) {
    const tag = `[img-${i}]`;
    if (out.includes(tag)) out = out.replace(tag, MEDIA_MARKER);
    else prefix += MEDIA_MARKER;
  }
  return prefix + out;
}

/** llama-server's sampling fields for the request's settings (the same Ollama options the text path maps). */
function samplingFields(settings: InferenceSettings): Record<string, unknown> {
  const fields: Record<string, unknown> = {
    n_predict: settings.maxTokens ?? -1,
    temperature: settings.temperature,
    top_k: settings.topK,
    top_p: settings.topP,
    min_p: settings.minP,
    stop: settings.stop,
    cache_prompt: true,
  };
  if (settings.seed !== undefined) fields.seed = settings.seed;
  if (settings.repeatPenalty) {
    fields.repeat_penalty = settings.repeatPenalty.penalty;
    fields.repeat_last_n = settings.repeatPenalty.lastTokens;
    fields.presence_penalty = settings.repeatPenalty.presencePenalty;
    fields.frequency_penalty = settings.repeatPenalty.frequencyPenalty;
  }
  return fields;
}

const msToNs = (ms: unknown) => (typeof ms === "number" && ms > 0 ? Math.round(ms * 1e6) : 0);

export async function runVisionCompletion(request: VisionCompletionRequest): Promise<CompletionResult> {
  const { instance, signal, clock } = request;
  const server = instance.vision?.server;
  if (!server?.alive) throw new ApiError(500, "the model's vision server is not running");
  const markers = request.prompt.split(MEDIA_MARKER).length - 1;
  if (markers !== request.images.length) {
    throw new ApiError(400, `the prompt has ${markers} image markers for ${request.images.length} images`);
  }
  const lease = await instance.acquireSequence(undefined, signal);
  const started = clock.monotonicNs();
  try {
    const body = {
      prompt: { prompt_string: request.prompt, multimodal_data: request.images.map((b) => b.toString("base64")) },
      ...samplingFields(request.settings),
      ...(request.grammar ? { grammar: request.grammar.grammar } : {}),
    };
    let text = "";
    for await (const event of server.completion(body, signal)) {
      const content = typeof event.content === "string" ? event.content : "";
      if (content !== "" && !signal.aborted) {
        text += content;
        request.onText(content);
      }
      if (event.stop !== true) continue;
      const timings = (event.timings ?? {}) as Record<string, unknown>;
      const evalCount = Number(timings.predicted_n ?? event.tokens_predicted ?? 0);
      const doneReason = event.stop_type === "limit" ? "length" : "stop";
      return {
        text,
        doneReason,
        // Every prompt position, image embeddings included (what the context holds), as Ollama counts it.
        promptEvalCount: Number(event.tokens_evaluated ?? timings.prompt_n ?? 0),
        // llama-server's own prompt cache: the positions its slot held already.
        promptCachedCount: Number(timings.cache_n ?? 0),
        promptEvalDurationNs: msToNs(timings.prompt_ms),
        evalCount,
        evalDurationNs: msToNs(timings.predicted_ms),
      };
    }
    if (signal.aborted) throw cancelled();
    throw new ApiError(
      500,
      `llama-server ended the stream without a final event after ${Number(clock.monotonicNs() - started)} ns`,
    );
  } catch (err) {
    throw signal.aborted ? cancelled() : err;
  } finally {
    lease.release();
  }
}
