/**
 * Ollama chat answers → Anthropic Messages answers, as Ollama's anthropic.ToMessagesResponse builds them: a
 * thinking block, a text block, then one tool_use block per call; `stop_reason` from `done_reason`.
 */
import { randomId } from "../openai/translate-response";

type Json = Record<string, unknown>;
export const asObject = (v: unknown): Json => (v && typeof v === "object" && !Array.isArray(v) ? (v as Json) : {});
export const asString = (v: unknown): string => (typeof v === "string" ? v : "");
const asCount = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);

export interface ToolUseBlock {
  type: "tool_use";
  id: string;
  name: string;
  input: Record<string, unknown>;
}

export type ContentBlock =
  | { type: "thinking"; thinking: string; signature: string }
  | { type: "text"; text: string }
  | ToolUseBlock;

export interface MessagesResponse {
  id: string;
  type: "message";
  role: "assistant";
  model: string;
  content: ContentBlock[];
  stop_reason: string | null;
  stop_sequence: string | null;
  usage: { input_tokens: number; output_tokens: number; cache_read_input_tokens?: number };
}

/** A call the runner gave no id gets one in Anthropic's form, so a tool_result can answer it. */
export function toToolUse(raw: unknown): ToolUseBlock {
  const call = asObject(raw);
  const fn = asObject(call.function);
  return {
    type: "tool_use",
    id: asString(call.id) || randomId("toolu_"),
    name: asString(fn.name),
    input: asObject(fn.arguments),
  };
}

/** Ollama's mapping: any call → tool_use, "stop" → end_turn, "length" → max_tokens. */
export function stopReason(doneReason: unknown, toolCalled: boolean): string | null {
  if (toolCalled) return "tool_use";
  const reason = asString(doneReason);
  if (reason === "stop") return "end_turn";
  if (reason === "length") return "max_tokens";
  return reason ? "stop_sequence" : null;
}

/** Anthropic counts cache reads apart: input_tokens is the part of the prompt that was evaluated. */
export function usageOf(line: Json): MessagesResponse["usage"] {
  const prompt = asCount(line.prompt_eval_count);
  const cached = Math.min(asCount(line.prompt_cached_count), prompt);
  const usage: MessagesResponse["usage"] = { input_tokens: prompt - cached, output_tokens: asCount(line.eval_count) };
  if (cached > 0) usage.cache_read_input_tokens = cached;
  return usage;
}

export function toMessagesResponse(id: string, model: string, json: Json): MessagesResponse {
  const message = asObject(json.message);
  const content: ContentBlock[] = [];
  const thinking = asString(message.thinking);
  if (thinking) content.push({ type: "thinking", thinking, signature: "" });
  const text = asString(message.content);
  if (text) content.push({ type: "text", text });
  const calls = Array.isArray(message.tool_calls) ? message.tool_calls.map(toToolUse) : [];
  content.push(...calls);
  return {
    id,
    type: "message",
    role: "assistant",
    model,
    content,
    stop_reason: stopReason(json.done_reason, calls.length > 0),
    stop_sequence: null,
    usage: usageOf(json),
  };
}
