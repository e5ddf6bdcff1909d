/**
 * One generation on one sequence: the shared core of generate and chat. The prompt's tokens go through
 * node-llama-cpp's LlamaCompletion (which reuses the sequence's cached prefix, applies stop strings and
 * grammars, and batches with the instance's other sequences); text streams out through `onText`.
 */
import { ApiError, OllamaError } from "@corral/protocol/errors";
import { LlamaCompletion, type LlamaContextSequence, type LlamaGrammar, type Token } from "node-llama-cpp";
import type { Clock } from "../clock";
import { cancelled } from "../errors";
import type { ModelInstance } from "../model-instance";
import { type Logprob, LogprobRecorder } from "./logprobs";
import type { InferenceSettings } from "./options";

export type DoneReason = "stop" | "length";

export interface CompletionRequest {
  instance: ModelInstance;
  /** The formatted prompt's tokens (special tokens parsed); a leading BOS is added if the model wants one. */
  tokens: Token[];
  settings: InferenceSettings;
  /** Ollama's `truncate` (default true): false makes a prompt longer than the context a 400 instead of cut. */
  truncate: boolean;
  /** Ollama's `shift` (default true): false stops with "length" when the context is full instead of shifting. */
  shift: boolean;
  grammar?: LlamaGrammar;
  signal: AbortSignal;
  clock: Clock;
  /** Ollama's logprobs: how many alternatives per token (0–20); undefined for none. */
  topLogprobs?: number;
  /** A chunk of output text, with the logprobs of the tokens that made it when they were asked for. */
  onText(text: string, logprobs?: Logprob[]): void;
}

export interface CompletionResult {
  text: string;
  doneReason: DoneReason;
  promptEvalCount: number;
  /** Of promptEvalCount, the positions the sequence held already (its cached prefix), not evaluated again. */
  promptCachedCount: number;
  promptEvalDurationNs: number;
  evalCount: number;
  evalDurationNs: number;
}

/** The tokens as the sequence will hold them: BOS first when the model prepends one (LlamaCompletion adds it). */
export function asHeld(instance: ModelInstance, tokens: Token[]): Token[] {
  const { bos, shouldPrependBosToken } = instance.model.tokens;
  return shouldPrependBosToken && bos !== null ? [bos, ...tokens] : tokens;
}

/**
 * How many of `held`'s positions the sequence keeps from its cache: the shared prefix, less the last prompt token,
 * which LlamaCompletion always evaluates again for the first token's logits.
 */
export function cachedPrefix(sequence: LlamaContextSequence, held: Token[]): number {
  return Math.max(0, Math.min(sequence.compareContextTokens(held).firstDifferentIndex, held.length - 1));
}

/** The tokens LlamaCompletion will evaluate: it prepends BOS itself, so a BOS the template wrote is dropped. */
export function withoutLeadingBos(instance: ModelInstance, tokens: Token[]): { tokens: Token[]; evaluated: number } {
  const { bos, shouldPrependBosToken } = instance.model.tokens;
  if (!shouldPrependBosToken || bos === null) return { tokens, evaluated: tokens.length };
  const rest = tokens[0] === bos ? tokens.slice(1) : tokens;
  return { tokens: rest, evaluated: rest.length + 1 };
}

/**
 * Ollama's num_predict is a hard limit: a `length` stop reports exactly num_predict tokens. LlamaCompletion
 * samples one token past maxTokens when the last one ends in the middle of a UTF-8 character (it waits for the
 * character to complete before checking the limit), so the count is capped at the limit the client asked for.
 */
export function reportedEvalCount(generated: number, doneReason: DoneReason, maxTokens: number | undefined): number {
  return doneReason === "length" && maxTokens !== undefined ? Math.min(generated, maxTokens) : generated;
}

/** node-llama-cpp's default: a shift drops a tenth of the context. */
const shiftSize = (contextSize: number) => Math.max(1, Math.floor(contextSize / 10));

/**
 * The prompt as it will be evaluated, measured against the requested num_ctx (llama.cpp may pad the context it
 * allocates). `truncate: false` refuses a prompt that leaves no cell to generate into; by default the oldest tokens
 * are dropped (BOS kept) until a shift's worth of room is left, as node-llama-cpp itself would fit it — done here
 * so that the prompt cache and prompt_eval_count see the tokens actually evaluated.
 */
export function fitPrompt(
  instance: ModelInstance,
  tokens: Token[],
  numCtx: number,
  truncate: boolean,
): { tokens: Token[]; evaluated: number } {
  const whole = withoutLeadingBos(instance, tokens);
  if (!truncate) {
    if (whole.evaluated >= numCtx) throw new ApiError(400, OllamaError.inputTooLong);
    return whole;
  }
  const excess = whole.evaluated - (numCtx - shiftSize(numCtx));
  if (excess <= 0) return whole;
  return { tokens: whole.tokens.slice(excess), evaluated: whole.evaluated - excess };
}

/**
 * node-llama-cpp fits the prompt into the context less one shift's room before it starts. The prompt was fitted
 * already (fitPrompt), so that first fit must keep it whole; shifts during generation take the usual tenth.
 */
function shiftSizes() {
  let first = true;
  return (sequence: LlamaContextSequence) => {
    if (!first) return shiftSize(sequence.context.contextSize);
    first = false;
    return 1;
  };
}

/** With `shift: false` generation ends where the requested context is full. */
export function tokenLimit(settings: InferenceSettings, evaluated: number, shift: boolean): number | undefined {
  if (shift && !settings.fillContext) return settings.maxTokens;
  const room = Math.max(1, settings.numCtx - evaluated);
  return Math.min(settings.maxTokens ?? room, room);
}

export async function runCompletion(request: CompletionRequest): Promise<CompletionResult> {
  const { instance, settings, signal, clock } = request;
  // Checked before a sequence is taken: a refused prompt evaluates nothing.
  const { tokens, evaluated } = fitPrompt(instance, request.tokens, settings.numCtx, request.truncate);
  const maxTokens = tokenLimit(settings, evaluated, request.shift);
  // Compared as the sequence holds them (BOS included), or a BOS model would never find its cached prefix.
  const held = asHeld(instance, tokens);
  const lease = await instance.acquireSequence(held, signal);
  const sequence = lease.sequence;
  const promptCachedCount = cachedPrefix(sequence, held);
  const recorder =
    request.topLogprobs === undefined ? undefined : new LogprobRecorder(instance.model, request.topLogprobs);
  const completion = new LlamaCompletion({ contextSequence: recorder ? recorder.tap(sequence) : sequence });
  const meterBefore = sequence.tokenMeter.getState();
  const started = clock.monotonicNs();
  let firstToken: bigint | undefined;
  let failed = false;
  try {
    const { response, metadata } = await completion.generateCompletionWithMeta(tokens, {
      signal,
      // A client that goes away ends the loop at the next token instead of throwing from deep inside it.
      stopOnAbortSignal: true,
      maxTokens,
      disableContextShift: settings.fillContext || !request.shift,
      contextShiftSize: shiftSizes(),
      temperature: settings.temperature,
      topK: settings.topK,
      topP: settings.topP,
      minP: settings.minP,
      seed: settings.seed,
      repeatPenalty: settings.repeatPenalty,
      grammar: request.grammar,
      customStopTriggers: settings.stop.length ? settings.stop : undefined,
      onToken: (released) => {
        firstToken ??= clock.monotonicNs();
        recorder?.release(released);
      },
      onTextChunk: (text) => {
        const logprobs = recorder?.drain();
        if (text !== "" && !signal.aborted) request.onText(text, logprobs);
      },
    });
    if (metadata.stopReason === "abort" || signal.aborted) throw cancelled();
    const ended = clock.monotonicNs();
    const promptEnd = firstToken ?? ended;
    const doneReason = metadata.stopReason === "maxTokens" ? "length" : "stop";
    return {
      text: response,
      doneReason,
      promptEvalCount: evaluated,
      promptCachedCount,
      promptEvalDurationNs: Number(promptEnd - started),
      evalCount: reportedEvalCount(sequence.tokenMeter.diff(meterBefore).usedOutputTokens, doneReason, maxTokens),
      evalDurationNs: Number(ended - promptEnd),
    };
  } catch (err) {
    failed = !signal.aborted;
    throw signal.aborted ? cancelled() : err;
  } finally {
    completion.dispose();
    // After a failure mid-evaluation the KV cache may not match the sequence's tokens; start it clean.
    lease.release({ reset: failed });
  }
}
