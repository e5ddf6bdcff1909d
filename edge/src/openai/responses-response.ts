/**
 * Ollama chat answers → OpenAI Responses objects, as Ollama's openai.ToResponse builds them: a reasoning item when
 * the model thought, then either the function calls or one assistant message with one output_text part. The
 * envelope echoes the request's settings, the same in the non-streamed answer and in every streamed event.
 * Past Ollama, an answer cut by `max_output_tokens` is `incomplete` with OpenAI's reason, as OpenAI reports it.
 */
import type { Body } from "./fields";
import { toToolCalls } from "./translate-response";

type Json = Record<string, unknown>;
const asObject = (v: unknown): Json => (v && typeof v === "object" && !Array.isArray(v) ? (v as Json) : {});
const asString = (v: unknown): string => (typeof v === "string" ? v : "");
const asCount = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);

export interface ResponseIds {
  /** `resp_…`, the response's id. */
  response: string;
  /** `msg_…`, the id of its one message item. */
  message: string;
  /** Unix seconds, fixed when the request arrived. */
  createdAt: number;
}

export const outputText = (text: string) => ({ type: "output_text", text, annotations: [], logprobs: [] });

export function messageItem(id: string, text: string, status: "in_progress" | "completed") {
  return { id, type: "message", status, role: "assistant", content: status === "completed" ? [outputText(text)] : [] };
}

export function reasoningItem(id: string, thinking: string) {
  return { id, type: "reasoning", summary: [{ type: "summary_text", text: thinking }], encrypted_content: thinking };
}

export function functionCallItems(responseId: string, calls: unknown, first = 0) {
  return toToolCalls(calls).map((call, i) => ({
    id: `fc_${responseId}_${first + i}`,
    type: "function_call",
    status: "completed",
    call_id: call.id,
    name: call.function.name,
    arguments: call.function.arguments,
  }));
}

export function responsesUsage(line: Json) {
  const input = asCount(line.prompt_eval_count);
  const output = asCount(line.eval_count);
  return {
    input_tokens: input,
    output_tokens: output,
    total_tokens: input + output,
    input_tokens_details: { cached_tokens: Math.min(asCount(line.prompt_cached_count), input) },
    output_tokens_details: { reasoning_tokens: 0 },
  };
}

export type ResponseStatus = "in_progress" | "completed" | "incomplete";

/** The response object with the request's settings echoed; `output` and `usage` as far as they are known. */
export function responseObject(
  ids: ResponseIds,
  request: Body,
  status: ResponseStatus,
  output: object[],
  usage: object | null,
) {
  const effort = asObject(request.reasoning).effort;
  const summary = asObject(request.reasoning).summary;
  const format = asObject(asObject(request.text).format);
  return {
    id: ids.response,
    object: "response",
    created_at: ids.createdAt,
    completed_at: status === "in_progress" ? null : Math.floor(Date.now() / 1000),
    status,
    incomplete_details: status === "incomplete" ? { reason: "max_output_tokens" } : null,
    model: request.model,
    previous_response_id: null,
    instructions: asString(request.instructions) || null,
    output,
    error: null,
    tools: Array.isArray(request.tools) ? request.tools : [],
    tool_choice: request.tool_choice ?? "auto",
    truncation: asString(request.truncation) || "disabled",
    parallel_tool_calls: true,
    text: { format: format.type ? format : { type: "text" } },
    top_p: typeof request.top_p === "number" ? request.top_p : 1,
    presence_penalty: 0,
    frequency_penalty: 0,
    top_logprobs: 0,
    temperature: typeof request.temperature === "number" ? request.temperature : 1,
    reasoning: effort || summary ? { effort: effort ?? null, summary: summary ?? null } : null,
    usage,
    max_output_tokens: typeof request.max_output_tokens === "number" ? request.max_output_tokens : null,
    max_tool_calls: null,
    store: false,
    background: false,
    service_tier: "default",
    metadata: {},
    safety_identifier: null,
    prompt_cache_key: null,
  };
}

export const finalStatus = (line: Json): ResponseStatus =>
  asString(line.done_reason) === "length" ? "incomplete" : "completed";

export function toResponse(ids: ResponseIds, request: Body, json: Json) {
  const message = asObject(json.message);
  const output: object[] = [];
  const thinking = asString(message.thinking);
  if (thinking) output.push(reasoningItem(`rs_${ids.response}`, thinking));
  const calls = functionCallItems(ids.response, message.tool_calls);
  if (calls.length) output.push(...calls);
  else output.push(messageItem(ids.message, asString(message.content), "completed"));
  return responseObject(ids, request, finalStatus(json), output, responsesUsage(json));
}
