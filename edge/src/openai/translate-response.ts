/**
 * Ollama answers → OpenAI objects (Ollama's openai.ToChatCompletion, ToCompletion, ToEmbeddingList,
 * ToListCompletion, ToModel). Inputs are the pipeline's answers, typed as protocol's wire types but read
 * defensively (they arrive as JSON from a runner): a field of the wrong type is treated as absent rather than trusted.
 */
import { parseModelName } from "@corral/protocol/names";
import type { ChatResponse, EmbedResponse, GenerateResponse, Metrics } from "@corral/protocol/types";
import type {
  ChatCompletion,
  ChatLogprobs,
  Completion,
  CompletionLogprobs,
  EmbeddingList,
  ModelList,
  OpenAIModel,
  OpenAIToolCall,
  OpenAIUsage,
} from "./types";

export const SYSTEM_FINGERPRINT = "fp_ollama";

type Json = Record<string, unknown>;

const asObject = (v: unknown): Json => (v && typeof v === "object" && !Array.isArray(v) ? (v as Json) : {});
const asString = (v: unknown): string => (typeof v === "string" ? v : "");
const asCount = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) && v > 0 ? Math.floor(v) : 0);

/** A random id in OpenAI's style (`chatcmpl-…`, `cmpl-…`, `call_…`). */
export function randomId(prefix: string, length = 24): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  let out = prefix;
  for (const b of bytes) out += alphabet[b % alphabet.length];
  return out;
}

/** Unix seconds of an RFC 3339 timestamp; now when it is missing or unreadable. */
export function unixSeconds(timestamp: unknown, now = Date.now()): number {
  const ms = typeof timestamp === "string" ? Date.parse(timestamp) : Number.NaN;
  return Math.floor((Number.isNaN(ms) ? now : ms) / 1000);
}

export function toUsage(response: Metrics): OpenAIUsage {
  const prompt = asCount(response.prompt_eval_count);
  const completion = asCount(response.eval_count);
  const cached = Math.min(asCount(response.prompt_cached_count), prompt);
  const usage: OpenAIUsage = {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
  };
  if (cached > 0) usage.prompt_tokens_details = { cached_tokens: cached };
  return usage;
}

/**
 * Ollama tool calls → OpenAI's, arguments as JSON text. A call without an id gets one (clients answer calls by
 * id); `firstIndex` numbers calls across a stream so a client merging deltas by index keeps them apart.
 */
export function toToolCalls(calls: unknown, firstIndex = 0): OpenAIToolCall[] {
  if (!Array.isArray(calls)) return [];
  return calls.map((raw, i) => {
    const call = asObject(raw);
    const fn = asObject(call.function);
    const index = typeof fn.index === "number" && Number.isInteger(fn.index) ? fn.index : firstIndex + i;
    return {
      id: asString(call.id) || randomId("call_", 8),
      index,
      type: "function",
      function: { name: asString(fn.name), arguments: JSON.stringify(fn.arguments ?? {}) },
    };
  });
}

export function finishReason(doneReason: unknown, toolCalled: boolean): string | null {
  const reason = asString(doneReason);
  if (!reason) return null;
  return toolCalled ? "tool_calls" : reason;
}

export function chatLogprobs(logprobs: unknown): ChatLogprobs | undefined {
  return Array.isArray(logprobs) && logprobs.length > 0 ? { content: logprobs } : undefined;
}

export function toChatCompletion(id: string, response: ChatResponse): ChatCompletion {
  const message: Json = asObject(response.message);
  const toolCalls = toToolCalls(message.tool_calls);
  const out: ChatCompletion = {
    id,
    object: "chat.completion",
    created: unixSeconds(response.created_at),
    model: asString(response.model),
    system_fingerprint: SYSTEM_FINGERPRINT,
    choices: [
      {
        index: 0,
        message: { role: asString(message.role) || "assistant", content: asString(message.content) },
        // A tool call ends the turn as tool_calls whatever stopped the generation.
        finish_reason: toolCalls.length ? "tool_calls" : finishReason(response.done_reason, false),
      },
    ],
    usage: toUsage(response),
  };
  const choice = out.choices[0]!;
  const reasoning = asString(message.thinking);
  if (reasoning) choice.message.reasoning = reasoning;
  if (toolCalls.length) choice.message.tool_calls = toolCalls;
  const logprobs = chatLogprobs(response.logprobs);
  if (logprobs) choice.logprobs = logprobs;
  return out;
}

/**
 * Ollama's per-token logprobs in the legacy completions shape; `offset` is where this text starts in the whole
 * completion (streams call this once per chunk).
 */
export function completionLogprobs(logprobs: unknown, offset = 0): CompletionLogprobs | undefined {
  if (!Array.isArray(logprobs) || logprobs.length === 0) return undefined;
  const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let at = offset;
  for (const raw of logprobs) {
    const entry = asObject(raw);
    const token = asString(entry.token);
    out.tokens.push(token);
    out.token_logprobs.push(typeof entry.logprob === "number" ? entry.logprob : 0);
    const top: Record<string, number> = {};
    for (const alt of Array.isArray(entry.top_logprobs) ? entry.top_logprobs : []) {
      const a = asObject(alt);
      if (typeof a.logprob === "number") top[asString(a.token)] = a.logprob;
    }
    out.top_logprobs.push(top);
    out.text_offset.push(at);
    at += token.length;
  }
  return out;
}

export function toCompletion(id: string, response: GenerateResponse): Completion {
  const out: Completion = {
    id,
    object: "text_completion",
    created: unixSeconds(response.created_at),
    model: asString(response.model),
    system_fingerprint: SYSTEM_FINGERPRINT,
    choices: [
      { text: asString(response.response), index: 0, finish_reason: finishReason(response.done_reason, false) },
    ],
    usage: toUsage(response),
  };
  const logprobs = completionLogprobs(response.logprobs);
  if (logprobs) out.choices[0]!.logprobs = logprobs;
  return out;
}

/** Little-endian float32 bytes in standard base64: OpenAI's `encoding_format: "base64"`. */
export function floatsToBase64(values: readonly number[]): string {
  const bytes = new Uint8Array(Float32Array.from(values).buffer);
  let binary = "";
  // Chunked so a long vector never hits the argument-count limit of fromCharCode.
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

export function toEmbeddingList(model: string, response: EmbedResponse, format: "float" | "base64"): EmbeddingList {
  const vectors = Array.isArray(response.embeddings) ? (response.embeddings as unknown[]) : [];
  const prompt = asCount(response.prompt_eval_count);
  return {
    object: "list",
    data: vectors.map((raw, index) => {
      const vector = Array.isArray(raw) ? (raw as number[]) : [];
      return { object: "embedding", embedding: format === "base64" ? floatsToBase64(vector) : vector, index };
    }),
    model,
    usage: { prompt_tokens: prompt, total_tokens: prompt },
  };
}

/** Who a model name belongs to, as Ollama reports it: the namespace (`library` for plain names). */
export function ownerOf(name: string): string {
  return parseModelName(name)?.namespace ?? "";
}

export function toModel(id: string, modifiedAtMs: number): OpenAIModel {
  return { id, object: "model", created: Math.floor(modifiedAtMs / 1000), owned_by: ownerOf(id) };
}

export function toModelList(models: readonly { display_name: string; modified_at: number }[]): ModelList {
  return { object: "list", data: models.map((m) => toModel(m.display_name, m.modified_at)) };
}
