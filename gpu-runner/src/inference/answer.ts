/**
 * The model's answer to a formatted prompt, for generate and chat: node-llama-cpp's completion, or the model's
 * supervised llama-server when images came with the prompt (vision/). Both stream text through `onText` and end
 * with the same counts.
 */
import type { LlamaGrammar } from "node-llama-cpp";
import type { Clock } from "../clock";
import type { ModelInstance } from "../model-instance";
import { runVisionCompletion } from "../vision/vision-completion";
import { type CompletionResult, runCompletion } from "./completion";
import { type Logprob, requestedLogprobs } from "./logprobs";
import type { InferenceSettings } from "./options";
import type { FormattedPrompt } from "./prompt";

export interface AnswerRequest {
  instance: ModelInstance;
  prompt: FormattedPrompt;
  /** Checked image bytes; empty for a text-only prompt. */
  images: readonly Buffer[];
  settings: InferenceSettings;
  /** The client's request fields that shape the answer (Ollama's `truncate`, `shift`, `logprobs`). */
  request: { truncate?: boolean; shift?: boolean; logprobs?: boolean; top_logprobs?: number };
  grammar?: LlamaGrammar;
  signal: AbortSignal;
  clock: Clock;
  onText(text: string, logprobs?: Logprob[]): void;
}

export function answer(input: AnswerRequest): Promise<CompletionResult> {
  const { instance, prompt, images, settings, grammar, signal, clock, onText, request } = input;
  if (images.length) {
    return runVisionCompletion({
      instance,
      prompt: prompt.text,
      images: [...images],
      settings,
      grammar,
      signal,
      clock,
      onText,
    });
  }
  return runCompletion({
    instance,
    tokens: prompt.tokens,
    settings,
    truncate: request.truncate !== false,
    shift: request.shift !== false,
    topLogprobs: requestedLogprobs(request),
    grammar,
    signal,
    clock,
    onText,
  });
}
