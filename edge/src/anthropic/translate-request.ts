/**
 * Anthropic Messages requests → Ollama chat requests for the shared inference pipeline, block for block as Ollama's
 * anthropic.FromMessagesRequest maps them: `system` (a string or text blocks) becomes a system message; text blocks
 * join into one message's content; image blocks become the message's images (the pipeline then applies the native
 * API's images rule); tool_use blocks become tool calls; tool_result blocks become `tool` messages that carry the
 * id of the call they answer. The Ollama body is validated again by the pipeline (Ollama's own option texts).
 */
import { ApiError } from "@corral/protocol";
import {
  type Body,
  optArray,
  optBoolean,
  optInteger,
  optNumber,
  optObject,
  optString,
  requireObject,
} from "../openai/fields";
import type { OllamaMessage, OllamaToolCall } from "../openai/translate-messages";
import type { OllamaChatBody, OllamaOptions } from "../openai/translate-request";

const invalid = (message: string) => new ApiError(400, message);

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function text(block: Body, where: string): string {
  const value = block.text;
  if (typeof value !== "string") throw invalid(`${where}: text block requires a string 'text'`);
  return value;
}

/** `system`: a string, or text blocks whose texts are joined (Ollama ignores blocks of other types). */
export function systemText(system: unknown): string {
  if (system === undefined || system === null) return "";
  if (typeof system === "string") return system;
  if (!Array.isArray(system)) throw invalid("system: expected a string or an array of content blocks");
  return system
    .map((raw, i) => requireObject(raw, `system.${i}`))
    .filter((block) => block.type === "text")
    .map((block, i) => text(block, `system.${i}`))
    .join("");
}

/** An image block's bytes, kept base64 (Ollama's wire form); URL sources are refused as Ollama refuses them. */
function imageData(block: Body, where: string): string {
  const source = optObject(block, "source", `${where}.source`);
  if (!source) throw invalid("invalid image source");
  if (source.type !== "base64") {
    throw invalid(`invalid image source type: ${String(source.type)}. Only base64 images are supported.`);
  }
  const data = source.data;
  if (typeof data !== "string" || data.length % 4 !== 0 || !BASE64.test(data)) {
    throw invalid("invalid base64 image data");
  }
  return data;
}

/** A tool_result's content: a string, or text and image blocks. */
function toolResult(block: Body, where: string): OllamaMessage {
  const message: OllamaMessage = { role: "tool", content: "" };
  const id = optString(block, "tool_use_id", `${where}.tool_use_id`);
  if (id) message.tool_call_id = id;
  const content = block.content;
  if (typeof content === "string") message.content = content;
  else if (Array.isArray(content)) {
    const images: string[] = [];
    content.forEach((raw, i) => {
      const part = requireObject(raw, `${where}.content.${i}`);
      if (part.type === "text") message.content += text(part, `${where}.content.${i}`);
      else if (part.type === "image") images.push(imageData(part, `${where}.content.${i}`));
    });
    if (images.length) message.images = images;
  } else if (content !== undefined && content !== null) {
    throw invalid(`${where}.content: expected a string or an array of content blocks`);
  }
  return message;
}

function toolUse(block: Body, where: string): OllamaToolCall {
  const id = optString(block, "id", `${where}.id`);
  if (!id) throw invalid("tool_use block missing required 'id' field");
  const name = optString(block, "name", `${where}.name`);
  if (!name) throw invalid("tool_use block missing required 'name' field");
  return { id, function: { name, arguments: optObject(block, "input", `${where}.input`) ?? {} } };
}

/** One Anthropic message → its Ollama messages (a user turn's tool results come before its text, as in Ollama). */
function convertMessage(raw: unknown, index: number): OllamaMessage[] {
  const where = `messages.${index}`;
  const message = requireObject(raw, where);
  const role = optString(message, "role", `${where}.role`);
  if (role !== "user" && role !== "assistant") throw invalid(`${where}.role: expected 'user' or 'assistant'`);
  const blocks =
    typeof message.content === "string"
      ? [{ type: "text", text: message.content }]
      : (optArray(message, "content", `${where}.content`) ?? []);
  const out: OllamaMessage = { role, content: "" };
  const images: string[] = [];
  const toolCalls: OllamaToolCall[] = [];
  const results: OllamaMessage[] = [];
  blocks.forEach((rawBlock, i) => {
    const block = requireObject(rawBlock, `${where}.content.${i}`);
    const at = `${where}.content.${i}`;
    if (block.type === "text") out.content += text(block, at);
    else if (block.type === "image") images.push(imageData(block, at));
    else if (block.type === "tool_use") toolCalls.push(toolUse(block, at));
    else if (block.type === "tool_result") results.push(toolResult(block, at));
    else if (block.type === "thinking") out.thinking = optString(block, "thinking", `${at}.thinking`) ?? "";
  });
  if (images.length) out.images = images;
  if (toolCalls.length) out.tool_calls = toolCalls;
  const hasOwn = out.content !== "" || images.length > 0 || toolCalls.length > 0 || !!out.thinking;
  const own = hasOwn ? [out] : [];
  return role === "user" ? [...results, ...own] : [...own, ...results];
}

interface AnthropicTool {
  type: "function";
  function: { name: string; description?: string; parameters: Record<string, unknown> };
}

function convertTool(raw: unknown, index: number): AnthropicTool {
  const where = `tools.${index}`;
  const tool = requireObject(raw, where);
  const name = optString(tool, "name", `${where}.name`);
  if (!name) throw invalid(`${where}.name: Field required`);
  const description = optString(tool, "description", `${where}.description`);
  const parameters = optObject(tool, "input_schema", `${where}.input_schema`) ?? { type: "object", properties: {} };
  return { type: "function", function: { name, ...(description ? { description } : {}), parameters } };
}

/**
 * `tool_choice`: "none" sends no tools; "tool" narrows them to the one named; "auto" and "any" send them all (a
 * model cannot be forced to call one, as in Ollama, which ignores the field).
 */
function chooseTools(body: Body, tools: AnthropicTool[]): AnthropicTool[] {
  const choice = optObject(body, "tool_choice");
  if (!choice) return tools;
  switch (choice.type) {
    case "auto":
    case "any":
      return tools;
    case "none":
      return [];
    case "tool": {
      const name = optString(choice, "name", "tool_choice.name");
      const chosen = tools.filter((t) => t.function.name === name);
      if (!chosen.length) throw invalid(`tool_choice.name: no tool named ${JSON.stringify(name ?? "")}`);
      return chosen;
    }
    default:
      throw invalid("tool_choice.type: expected 'auto', 'any', 'tool' or 'none'");
  }
}

/** `thinking: {type: "enabled"|"disabled"}` → Ollama's `think`; `output_config.effort` gives a level, as in Ollama. */
function think(body: Body): boolean | string | undefined {
  const thinking = optObject(body, "thinking");
  if (thinking?.type === "enabled") return true;
  if (thinking?.type === "disabled") return false;
  if (thinking) throw invalid("thinking.type: expected 'enabled' or 'disabled'");
  const effort = optString(optObject(body, "output_config") ?? {}, "effort", "output_config.effort");
  const level = effort?.trim().toLowerCase() === "xhigh" ? "high" : effort?.trim().toLowerCase();
  return level && ["low", "medium", "high", "max"].includes(level) ? level : undefined;
}

function options(body: Body, maxTokens: number): OllamaOptions {
  const out: OllamaOptions = { num_predict: maxTokens };
  const temperature = optNumber(body, "temperature");
  if (temperature !== undefined) out.temperature = temperature;
  const topP = optNumber(body, "top_p");
  if (topP !== undefined) out.top_p = topP;
  const topK = optInteger(body, "top_k");
  if (topK !== undefined) out.top_k = topK;
  const stop = optArray(body, "stop_sequences");
  if (stop?.length) {
    if (stop.some((s) => typeof s !== "string")) throw invalid("stop_sequences: expected an array of strings");
    out.stop = stop as string[];
  }
  return out;
}

export interface MessagesRequest {
  ollama: OllamaChatBody;
  /** Anthropic's model name as the client wrote it, echoed in the answer. */
  model: string;
  /** Ollama's estimate of the prompt's tokens, for `message_start` (the real count comes with the final line). */
  estimatedInputTokens: number;
}

/** Model and messages, checked with Ollama's texts; shared by /v1/messages and /v1/messages/count_tokens. */
function modelAndMessages(body: Body): { model: string; messages: OllamaMessage[] } {
  const model = optString(body, "model");
  if (!model) throw invalid("model is required");
  const raw = optArray(body, "messages");
  if (!raw?.length) throw invalid("messages is required");
  const system = systemText(body.system);
  const messages = raw.flatMap(convertMessage);
  return { model, messages: system ? [{ role: "system", content: system }, ...messages] : messages };
}

export function translateMessagesRequest(raw: unknown): MessagesRequest {
  const body = requireObject(raw);
  const maxTokens = optInteger(body, "max_tokens");
  const { model, messages } = modelAndMessages(body);
  if (maxTokens === undefined || maxTokens <= 0) throw invalid("max_tokens is required and must be positive");
  const tools = chooseTools(body, (optArray(body, "tools") ?? []).map(convertTool));
  const thinkValue = think(body);
  const ollama: OllamaChatBody = {
    model,
    messages,
    stream: optBoolean(body, "stream") ?? false,
    options: options(body, maxTokens),
    ...(tools.length ? { tools } : {}),
    ...(thinkValue !== undefined ? { think: thinkValue } : {}),
  };
  return { ollama, model, estimatedInputTokens: estimateInputTokens(body) };
}

/**
 * Ollama's count: about four bytes of request text (system, roles, blocks, tool definitions) per token, at least
 * one. The model's own tokenizer lives on the runners; counting through one would cost a scheduled slot.
 */
export function estimateInputTokens(raw: unknown): number {
  const body = requireObject(raw);
  const { messages } = modelAndMessages(body);
  let length = 0;
  for (const m of messages) {
    if (m.role === "system") continue;
    length += m.role.length + m.content.length + (m.thinking?.length ?? 0);
    for (const call of m.tool_calls ?? []) length += JSON.stringify(call).length;
  }
  length += systemText(body.system).length;
  for (const tool of (optArray(body, "tools") ?? []).map(convertTool)) {
    length += tool.function.name.length + (tool.function.description?.length ?? 0);
    length += JSON.stringify(tool.function.parameters).length;
  }
  return Math.max(1, Math.floor(length / 4));
}
