/**
 * OpenAI chat messages → Ollama chat messages, as Ollama's openai.FromChatRequest does it: content parts become
 * one message each (text, or an image from a base64 data URI), tool calls carry their JSON-text arguments as
 * objects, and a tool result is named after the call it answers.
 */

import { type Body, optArray, optString, requireObject } from "./fields";
import { OpenAIRequestError } from "./request-error";

export interface OllamaToolCall {
  id?: string;
  function: { name: string; arguments: Record<string, unknown> };
}

export interface OllamaMessage {
  role: string;
  content: string;
  thinking?: string;
  images?: string[];
  tool_calls?: OllamaToolCall[];
  tool_name?: string;
  tool_call_id?: string;
}

const INVALID_FORMAT = "invalid message format";
const INVALID_IMAGE = "invalid image input";
const IMAGE_PREFIXES = ["data:;base64,", ...["jpeg", "jpg", "png", "webp"].map((t) => `data:image/${t};base64,`)];
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Go's `%T` for a decoded JSON value, which Ollama puts in its content-type error. */
function goTypeName(value: unknown): string {
  if (value === null || value === undefined) return "<nil>";
  if (typeof value === "number") return "float64";
  if (typeof value === "boolean") return "bool";
  return "map[string]interface {}";
}

/** A data URI's image bytes, kept base64 (Ollama's wire form for images). */
export function decodeImageURL(url: string): string {
  if (url.startsWith("http://") || url.startsWith("https://")) {
    throw new OpenAIRequestError("image URLs are not currently supported, please use base64 encoded data instead");
  }
  const prefix = IMAGE_PREFIXES.find((p) => url.startsWith(p));
  if (!prefix) throw new OpenAIRequestError(INVALID_IMAGE);
  const data = url.slice(prefix.length);
  if (data.length % 4 !== 0 || !BASE64.test(data)) throw new OpenAIRequestError(INVALID_IMAGE);
  return data;
}

export function toolCallArguments(text: unknown): Record<string, unknown> {
  // A call without arguments is sometimes sent as "" by clients; it means no arguments.
  if (text === "" || text === undefined || text === null) return {};
  if (typeof text !== "string") throw new OpenAIRequestError("invalid tool call arguments");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new OpenAIRequestError("invalid tool call arguments");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new OpenAIRequestError("invalid tool call arguments");
  }
  return parsed as Record<string, unknown>;
}

function translateToolCalls(calls: unknown[], param: string): OllamaToolCall[] {
  return calls.map((raw, i) => {
    const call = requireObject(raw, `${param}[${i}]`);
    const fn = requireObject(call.function ?? {}, `${param}[${i}].function`);
    const out: OllamaToolCall = {
      function: {
        name: optString(fn, "name", `${param}[${i}].function.name`) ?? "",
        arguments: toolCallArguments(fn.arguments),
      },
    };
    const id = optString(call, "id", `${param}[${i}].id`);
    if (id) out.id = id;
    return out;
  });
}

/** The function name of the call `id` answers; the last call with that id wins (Ollama's nameFromToolCallID). */
function nameFromToolCallID(messages: Body[], id: string): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const calls = messages[i]?.tool_calls;
    if (!Array.isArray(calls)) continue;
    for (const call of calls) {
      if (call && typeof call === "object" && (call as Body).id === id) {
        const fn = (call as Body).function;
        const name = fn && typeof fn === "object" ? (fn as Body).name : undefined;
        return typeof name === "string" ? name : "";
      }
    }
  }
  return "";
}

function contentPart(raw: unknown, role: string): OllamaMessage {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new OpenAIRequestError(INVALID_FORMAT);
  const part = raw as Body;
  switch (part.type) {
    case "text":
      if (typeof part.text !== "string") throw new OpenAIRequestError(INVALID_FORMAT);
      return { role, content: part.text };
    case "image_url": {
      const image = part.image_url;
      const url =
        typeof image === "string" ? image : image && typeof image === "object" ? (image as Body).url : undefined;
      if (typeof url !== "string") throw new OpenAIRequestError(INVALID_FORMAT);
      return { role, content: "", images: [decodeImageURL(url)] };
    }
    default:
      throw new OpenAIRequestError(INVALID_FORMAT);
  }
}

/** Roles OpenAI has that chat templates do not know, renamed to the one they mean. */
export const ROLE_ALIASES: Record<string, string> = { developer: "system" };

export function translateMessages(rawMessages: unknown[]): OllamaMessage[] {
  const bodies = rawMessages.map((m, i) => requireObject(m, `messages[${i}]`));
  const out: OllamaMessage[] = [];
  bodies.forEach((msg, i) => {
    const param = `messages[${i}]`;
    const lowered = (optString(msg, "role", `${param}.role`) ?? "").toLowerCase();
    const role = ROLE_ALIASES[lowered] ?? lowered;
    const reasoning = optString(msg, "reasoning", `${param}.reasoning`);
    const rawCalls = optArray(msg, "tool_calls", `${param}.tool_calls`);
    const toolCalls = rawCalls ? translateToolCalls(rawCalls, `${param}.tool_calls`) : [];
    const toolCallId = optString(msg, "tool_call_id", `${param}.tool_call_id`);
    let toolName = "";
    if (role === "tool") {
      toolName = optString(msg, "name", `${param}.name`) ?? "";
      if (!toolName && toolCallId) toolName = nameFromToolCallID(bodies, toolCallId);
    }

    const content = msg.content;
    let produced: OllamaMessage[];
    if (typeof content === "string") {
      produced = [{ role, content }];
    } else if (Array.isArray(content)) {
      produced = content.map((part) => contentPart(part, role));
      if (produced.length === 0) produced = [{ role, content: "" }];
    } else if ((content === undefined || content === null) && rawCalls) {
      // Content is optional only beside tool calls.
      produced = [{ role, content: "" }];
    } else {
      throw new OpenAIRequestError(`invalid message content type: ${goTypeName(content)}`, `${param}.content`);
    }

    // The message's own fields go on the last message it became.
    const last = produced[produced.length - 1]!;
    if (reasoning) last.thinking = reasoning;
    if (toolCalls.length) last.tool_calls = toolCalls;
    if (toolName) last.tool_name = toolName;
    if (toolCallId) last.tool_call_id = toolCallId;
    out.push(...produced);
  });
  return out;
}
