/**
 * OpenAI request bodies → Ollama request bodies for the shared inference pipeline, field for field as Ollama's
 * openai.FromChatRequest / FromCompleteRequest and its embeddings middleware map them. The Ollama body is then
 * validated again by the pipeline (Ollama's own option texts), so this layer checks only OpenAI-level shapes.
 */

import {
  type Body,
  invalidType,
  optArray,
  optBoolean,
  optInteger,
  optNumber,
  optObject,
  optStop,
  optString,
  requireObject,
} from "./fields";
import { OpenAIRequestError } from "./request-error";
import { type OllamaMessage, translateMessages } from "./translate-messages";

export type OllamaOptions = Record<string, number | string[]>;

export interface OllamaChatBody {
  model: string;
  messages: OllamaMessage[];
  stream: boolean;
  options: OllamaOptions;
  format?: "json" | Record<string, unknown>;
  tools?: unknown[];
  think?: boolean | string;
  logprobs?: boolean;
  top_logprobs?: number;
}

export interface OllamaGenerateBody {
  model: string;
  prompt: string;
  suffix?: string;
  stream: boolean;
  options: OllamaOptions;
  logprobs?: boolean;
  top_logprobs?: number;
}

export interface OllamaEmbedBody {
  model: string;
  input: string[];
  dimensions?: number;
}

/** What the response side needs to know about the request besides the Ollama body. */
export interface StreamSettings {
  stream: boolean;
  includeUsage: boolean;
}

export type EncodingFormat = "float" | "base64";

function streamSettings(body: Body): StreamSettings {
  const stream = optBoolean(body, "stream") ?? false;
  const options = optObject(body, "stream_options");
  const includeUsage = options
    ? (optBoolean(options, "include_usage", "stream_options.include_usage") ?? false)
    : false;
  return { stream, includeUsage };
}

/** `max_completion_tokens` is the current name, `max_tokens` the deprecated one; the current one wins. */
function maxTokens(body: Body): number | undefined {
  return optInteger(body, "max_completion_tokens") ?? optInteger(body, "max_tokens");
}

/** OpenAI's sampling defaults (temperature 1, top_p 1) replace the model's, as in Ollama. */
function samplingOptions(body: Body, topPZeroIsUnset: boolean): OllamaOptions {
  const options: OllamaOptions = {};
  const stop = optStop(body);
  if (stop) options.stop = stop;
  const numPredict = maxTokens(body);
  if (numPredict !== undefined) options.num_predict = numPredict;
  options.temperature = optNumber(body, "temperature") ?? 1.0;
  const seed = optInteger(body, "seed");
  if (seed !== undefined) options.seed = seed;
  const frequency = optNumber(body, "frequency_penalty");
  if (frequency !== undefined) options.frequency_penalty = frequency;
  const presence = optNumber(body, "presence_penalty");
  if (presence !== undefined) options.presence_penalty = presence;
  const topP = optNumber(body, "top_p");
  // The completions request of Ollama reads top_p as a plain float: 0 is indistinguishable from unset.
  options.top_p = topP === undefined || (topPZeroIsUnset && topP === 0) ? 1.0 : topP;
  return options;
}

/** Only one choice is generated per request; asking for more must not silently return fewer. */
function checkSingleChoice(body: Body): void {
  const n = optInteger(body, "n");
  if (n !== undefined && n !== 1) throw new OpenAIRequestError("n must be 1: only one choice is supported", "n");
}

function responseFormat(body: Body): OllamaChatBody["format"] {
  const format = optObject(body, "response_format");
  if (!format) return undefined;
  const type = (optString(format, "type", "response_format.type") ?? "").trim().toLowerCase();
  if (type === "json_object") return "json";
  if (type === "json_schema") {
    const spec = optObject(format, "json_schema", "response_format.json_schema");
    return spec ? optObject(spec, "schema", "response_format.json_schema.schema") : undefined;
  }
  return undefined;
}

const REASONING_EFFORTS = ["high", "medium", "low", "none"];

function think(body: Body): boolean | string | undefined {
  const reasoning = optObject(body, "reasoning");
  const effort = reasoning ? optString(reasoning, "effort", "reasoning.effort") : optString(body, "reasoning_effort");
  if (!effort) return undefined;
  if (!REASONING_EFFORTS.includes(effort)) {
    throw new OpenAIRequestError(
      `invalid reasoning value: '${effort}' (must be "high", "medium", "low", or "none")`,
      reasoning ? "reasoning.effort" : "reasoning_effort",
    );
  }
  return effort === "none" ? false : effort;
}

function tools(body: Body): unknown[] | undefined {
  const list = optArray(body, "tools");
  if (!list || list.length === 0) return undefined;
  // `tool_choice: "none"` forbids calls: the model is not shown the tools at all.
  if (body.tool_choice === "none") return undefined;
  return list.map((tool, i) => requireObject(tool, `tools[${i}]`));
}

export function translateChatRequest(raw: unknown): { ollama: OllamaChatBody } & StreamSettings {
  const body = requireObject(raw);
  const messages = optArray(body, "messages") ?? [];
  if (messages.length === 0) throw new OpenAIRequestError("[] is too short - 'messages'", "messages");
  checkSingleChoice(body);
  const settings = streamSettings(body);
  const ollama: OllamaChatBody = {
    model: optString(body, "model") ?? "",
    messages: translateMessages(messages),
    stream: settings.stream,
    options: samplingOptions(body, false),
  };
  const format = responseFormat(body);
  if (format !== undefined) ollama.format = format;
  const toolList = tools(body);
  if (toolList) ollama.tools = toolList;
  const thinkValue = think(body);
  if (thinkValue !== undefined) ollama.think = thinkValue;
  if (optBoolean(body, "logprobs")) {
    ollama.logprobs = true;
    const top = optInteger(body, "top_logprobs");
    if (top !== undefined) ollama.top_logprobs = top;
  }
  return { ollama, ...settings };
}

/** Ollama takes one prompt per request: a list is accepted only when it holds exactly one string. */
function singlePrompt(body: Body): string {
  const prompt = body.prompt;
  if (prompt === undefined || prompt === null) return "";
  if (typeof prompt === "string") return prompt;
  if (Array.isArray(prompt) && prompt.length === 1 && typeof prompt[0] === "string") return prompt[0];
  if (Array.isArray(prompt)) {
    throw new OpenAIRequestError("prompt must be a single string: lists of prompts are not supported", "prompt");
  }
  throw invalidType("prompt", "a string", prompt);
}

export function translateCompletionRequest(raw: unknown): { ollama: OllamaGenerateBody } & StreamSettings {
  const body = requireObject(raw);
  checkSingleChoice(body);
  const settings = streamSettings(body);
  const options = samplingOptions(body, true);
  // Ollama's completions request always sends the penalties, 0 when unset (OpenAI's default).
  options.frequency_penalty ??= 0;
  options.presence_penalty ??= 0;
  const ollama: OllamaGenerateBody = {
    model: optString(body, "model") ?? "",
    prompt: singlePrompt(body),
    stream: settings.stream,
    options,
  };
  const suffix = optString(body, "suffix");
  if (suffix) ollama.suffix = suffix;
  // Completions' `logprobs` is a count of alternatives per token, not a flag.
  const logprobs = optInteger(body, "logprobs");
  if (logprobs !== undefined && logprobs > 0) {
    ollama.logprobs = true;
    ollama.top_logprobs = logprobs;
  }
  return { ollama, ...settings };
}

function embeddingInput(body: Body): string[] {
  const input = body.input;
  // An empty string is one empty input, as in Ollama's embeddings middleware.
  if (typeof input === "string") return [input];
  if (input === undefined || input === null || (Array.isArray(input) && input.length === 0)) {
    throw new OpenAIRequestError("invalid input", "input");
  }
  if (Array.isArray(input) && input.every((item) => typeof item === "string")) return input as string[];
  throw new OpenAIRequestError("invalid input type: expected a string or an array of strings", "input");
}

export function translateEmbeddingRequest(raw: unknown): { ollama: OllamaEmbedBody; encodingFormat: EncodingFormat } {
  const body = requireObject(raw);
  const format = optString(body, "encoding_format") ?? "";
  const lowered = format.toLowerCase();
  if (format !== "" && lowered !== "float" && lowered !== "base64") {
    throw new OpenAIRequestError(
      `Invalid value for 'encoding_format' = ${format}. Supported values: ['float', 'base64'].`,
      "encoding_format",
    );
  }
  const ollama: OllamaEmbedBody = { model: optString(body, "model") ?? "", input: embeddingInput(body) };
  const dimensions = optInteger(body, "dimensions");
  if (dimensions) ollama.dimensions = dimensions;
  return { ollama, encodingFormat: lowered === "base64" ? "base64" : "float" };
}
