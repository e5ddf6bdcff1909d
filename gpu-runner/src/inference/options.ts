/**
 * Ollama's `options` → node-llama-cpp settings. Model parameters are defaults, request options override them,
 * unknown keys are ignored and a wrongly typed known key is a 400 with Ollama's text (protocol's
 * validateOptions). Defaults are Ollama's (api.DefaultOptions), not node-llama-cpp's.
 *
 * Mapped:      num_ctx → context size per sequence (clamped to the model's training context), num_batch → batch
 *              size, num_predict → maxTokens (-1 or 0 unlimited, -2 fill the context), temperature, top_k, top_p,
 *              min_p, seed (-1 or absent → random), stop → stop strings, repeat_penalty / repeat_last_n /
 *              presence_penalty / frequency_penalty / penalize_newline → repeatPenalty.
 * Not applied: typical_p, mirostat*, tfs_z (node-llama-cpp 3.22 exposes no such samplers); num_keep
 *              (node-llama-cpp's context shift keeps the BOS token and drops the oldest tokens itself);
 *              num_thread (threads are a runner-wide setting, THREADS, so one request cannot oversubscribe a
 *              shared machine); num_gpu, main_gpu, use_mmap, use_mlock, numa, low_vram, f16_kv, vocab_only,
 *              logits_all, embedding_only, draft_num_predict (the runner decides placement and loading).
 * Repeat penalties apply to generated tokens only (node-llama-cpp), where llama.cpp also counts the prompt.
 */
import { ApiError } from "@corral/protocol/errors";
import { mergeOptions, type Options, validateOptions } from "@corral/protocol/options";

export interface RepeatPenaltySettings {
  lastTokens: number;
  penalty: number;
  frequencyPenalty: number;
  presencePenalty: number;
  penalizeNewLine: boolean;
}

export interface InferenceSettings {
  /** Per-sequence context length; part of the instance identity. */
  numCtx: number;
  numBatch?: number;
  /** undefined: generate until a stop (with context shift); a number: at most that many tokens. */
  maxTokens?: number;
  /** num_predict -2: generate until the context is full, without shifting it. */
  fillContext: boolean;
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  seed?: number;
  repeatPenalty: RepeatPenaltySettings | false;
  stop: string[];
  /** Options that were given but have no effect here (for logs and tests). */
  ignored: string[];
}

export const OLLAMA_DEFAULTS = {
  temperature: 0.8,
  top_k: 40,
  top_p: 0.9,
  min_p: 0,
  repeat_last_n: 64,
  repeat_penalty: 1.0,
  presence_penalty: 0,
  frequency_penalty: 0,
} as const;

const IGNORED: readonly (keyof Options)[] = [
  "typical_p",
  "mirostat",
  "mirostat_tau",
  "mirostat_eta",
  "tfs_z",
  "num_keep",
  "num_thread",
  "num_gpu",
  "main_gpu",
  "use_mmap",
  "use_mlock",
  "numa",
  "low_vram",
  "f16_kv",
  "vocab_only",
  "logits_all",
  "embedding_only",
  "draft_num_predict",
];

/** Validates and merges model params with request options (request wins) into typed Options. */
export function mergeModelAndRequestOptions(params: Record<string, unknown>, request: unknown): Options {
  if (request !== undefined && request !== null && (typeof request !== "object" || Array.isArray(request))) {
    throw new ApiError(400, "json: cannot unmarshal into Go struct field .options of type map[string]interface {}");
  }
  return mergeOptions(validateOptions(params), validateOptions((request ?? {}) as Record<string, unknown>));
}

/** num_ctx the options ask for, if any; the pool clamps it to the model's training context. */
export function requestedNumCtx(options: Options): number | undefined {
  return options.num_ctx !== undefined && options.num_ctx > 0 ? options.num_ctx : undefined;
}

export function requestedNumBatch(options: Options): number | undefined {
  return options.num_batch !== undefined && options.num_batch > 0 ? options.num_batch : undefined;
}

/** Per-request settings; `numCtx` is the loaded instance's context length. */
export function resolveSettings(options: Options, numCtx: number): InferenceSettings {
  const numPredict = options.num_predict ?? -1;
  const repeatLastN = options.repeat_last_n ?? OLLAMA_DEFAULTS.repeat_last_n;
  const penalty = options.repeat_penalty ?? OLLAMA_DEFAULTS.repeat_penalty;
  const presencePenalty = options.presence_penalty ?? OLLAMA_DEFAULTS.presence_penalty;
  const frequencyPenalty = options.frequency_penalty ?? OLLAMA_DEFAULTS.frequency_penalty;
  // repeat_last_n: -1 means the whole context, 0 disables.
  const lastTokens = repeatLastN < 0 ? numCtx : repeatLastN;
  const penaltyActive = lastTokens > 0 && (penalty !== 1 || presencePenalty !== 0 || frequencyPenalty !== 0);
  const seed = options.seed;
  return {
    numCtx,
    numBatch: requestedNumBatch(options),
    maxTokens: numPredict > 0 ? numPredict : undefined,
    fillContext: numPredict === -2,
    temperature: Math.max(0, options.temperature ?? OLLAMA_DEFAULTS.temperature),
    topK: Math.max(0, options.top_k ?? OLLAMA_DEFAULTS.top_k),
    topP: options.top_p ?? OLLAMA_DEFAULTS.top_p,
    minP: options.min_p ?? OLLAMA_DEFAULTS.min_p,
    seed: seed !== undefined && seed >= 0 ? seed : undefined,
    repeatPenalty: penaltyActive
      ? {
          lastTokens,
          penalty,
          presencePenalty,
          frequencyPenalty,
          // llama.cpp's penalties treat the newline like any token; penalize_newline (legacy) can opt out.
          penalizeNewLine: options.penalize_newline ?? true,
        }
      : false,
    stop: (options.stop ?? []).filter((s) => s !== ""),
    ignored: IGNORED.filter((name) => options[name] !== undefined),
  };
}
