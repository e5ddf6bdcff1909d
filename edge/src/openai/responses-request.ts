/**
 * OpenAI Responses requests → Ollama chat requests, stateless as Ollama's openai.FromResponsesRequest: `input` is a
 * string (one user message) or a list of items (messages, function calls, function call outputs, reasoning);
 * `instructions` becomes a system message; `max_output_tokens` is `num_predict`; function tools are flattened
 * into Ollama's nested form; `reasoning.effort` is `think`; a `json_schema` text format is `format`. The Ollama body
 * is validated again by the pipeline (Ollama's own option texts).
 */

import { type Body, optArray, optBoolean, optInteger, optNumber, optObject, optString, requireObject } from "./fields";
import { OpenAIRequestError } from "./request-error";
import { decodeImageURL, type OllamaMessage, ROLE_ALIASES, toolCallArguments } from "./translate-messages";
import type { OllamaChatBody, OllamaOptions } from "./translate-request";

/** A content list's text and images (input_text and output_text join; files are refused, as in Ollama). */
function contentOf(raw: unknown, param: string): { content: string; images: string[] } {
  if (typeof raw === "string") return { content: raw, images: [] };
  if (raw === undefined || raw === null) return { content: "", images: [] };
  if (!Array.isArray(raw)) throw new OpenAIRequestError("content must be a string or array", param);
  let content = "";
  const images: string[] = [];
  raw.forEach((item, i) => {
    const part = requireObject(item, `${param}[${i}]`);
    switch (part.type) {
      case "input_text":
      case "output_text":
        content += optString(part, "text", `${param}[${i}].text`) ?? "";
        break;
      case "input_image": {
        const url = optString(part, "image_url", `${param}[${i}].image_url`);
        if (url) images.push(decodeImageURL(url));
        break;
      }
      case "input_file":
        throw new OpenAIRequestError("file inputs are not currently supported", `${param}[${i}]`);
      default:
        throw new OpenAIRequestError(`unknown content type: ${String(part.type)}`, `${param}[${i}].type`);
    }
  });
  return { content, images };
}

function withImages(message: OllamaMessage, images: string[]): OllamaMessage {
  return images.length ? { ...message, images } : message;
}

/** Input items in order; reasoning is carried to the next assistant message, as Ollama merges it. */
function inputMessages(items: unknown[]): OllamaMessage[] {
  const out: OllamaMessage[] = [];
  let thinking = "";
  const lastAssistant = () => {
    const last = out.at(-1);
    return last?.role === "assistant" ? last : undefined;
  };
  items.forEach((raw, i) => {
    const param = `input[${i}]`;
    const item = requireObject(raw, param);
    const type = optString(item, "type", `${param}.type`) ?? (item.role !== undefined ? "message" : "");
    if (type === "reasoning") {
      thinking = optString(item, "encrypted_content", `${param}.encrypted_content`) ?? "";
    } else if (type === "message") {
      const lowered = (optString(item, "role", `${param}.role`) ?? "").toLowerCase();
      const { content, images } = contentOf(item.content, `${param}.content`);
      const message = withImages({ role: ROLE_ALIASES[lowered] ?? lowered, content }, images);
      if (message.role === "assistant" && thinking) message.thinking = thinking;
      if (message.role === "assistant") thinking = "";
      out.push(message);
    } else if (type === "function_call") {
      const call = {
        id: optString(item, "call_id", `${param}.call_id`) ?? "",
        function: {
          name: optString(item, "name", `${param}.name`) ?? "",
          arguments: toolCallArguments(item.arguments),
        },
      };
      let target = lastAssistant();
      if (!target) {
        target = { role: "assistant", content: "" };
        out.push(target);
      }
      target.tool_calls = [...(target.tool_calls ?? []), call];
      if (thinking) target.thinking = thinking;
      thinking = "";
    } else if (type === "function_call_output") {
      const { content, images } = contentOf(item.output, `${param}.output`);
      const id = optString(item, "call_id", `${param}.call_id`);
      out.push(withImages({ role: "tool", content, ...(id ? { tool_call_id: id } : {}) }, images));
    } else if (type === "") {
      throw new OpenAIRequestError(`input[${i}]: input item missing required 'type' field`, param);
    } else {
      throw new OpenAIRequestError(`input[${i}]: unknown input item type: ${JSON.stringify(type)}`, `${param}.type`);
    }
  });
  if (thinking) out.push({ role: "assistant", content: "", thinking });
  return out;
}

const EFFORTS = ["low", "medium", "high", "max"];

function think(body: Body): boolean | string | undefined {
  const effort = optString(optObject(body, "reasoning") ?? {}, "effort", "reasoning.effort");
  if (!effort) return undefined;
  if (effort === "none") return false;
  if (EFFORTS.includes(effort)) return effort;
  throw new OpenAIRequestError(
    `invalid reasoning value: "${effort}" (must be "high", "medium", "low", "max", or "none")`,
    "reasoning.effort",
  );
}

/** Responses tools are flat (`{type, name, parameters}`); Ollama's nest under `function`. Only functions run here. */
function tools(body: Body): unknown[] | undefined {
  const list = optArray(body, "tools");
  if (!list?.length || body.tool_choice === "none") return undefined;
  return list.map((raw, i) => {
    const tool = requireObject(raw, `tools[${i}]`);
    if (tool.type !== "function") {
      throw new OpenAIRequestError(`tools[${i}].type: only function tools are supported`, `tools[${i}].type`);
    }
    const name = optString(tool, "name", `tools[${i}].name`);
    if (!name) throw new OpenAIRequestError("Missing required parameter: 'tools[0].name'.", `tools[${i}].name`);
    const description = optString(tool, "description", `tools[${i}].description`);
    const parameters = optObject(tool, "parameters", `tools[${i}].parameters`);
    return {
      type: "function",
      function: { name, ...(description ? { description } : {}), ...(parameters ? { parameters } : {}) },
    };
  });
}

function format(body: Body): OllamaChatBody["format"] {
  const spec = optObject(optObject(body, "text") ?? {}, "format", "text.format");
  if (spec?.type !== "json_schema") return undefined;
  return optObject(spec, "schema", "text.format.schema");
}

export interface ResponsesRequest {
  ollama: OllamaChatBody;
  /** The request's own fields that the response object echoes. */
  echo: Body;
}

export function translateResponsesRequest(raw: unknown): ResponsesRequest {
  const body = requireObject(raw);
  if (optString(body, "previous_response_id")) {
    throw new OpenAIRequestError(
      "previous_response_id is not supported: responses are not stored",
      "previous_response_id",
    );
  }
  const messages: OllamaMessage[] = [];
  const instructions = optString(body, "instructions");
  if (instructions) messages.push({ role: "system", content: instructions });
  const input = body.input;
  if (typeof input === "string") messages.push({ role: "user", content: input });
  else if (Array.isArray(input)) messages.push(...inputMessages(input));
  else throw new OpenAIRequestError("input must be a string or array", "input");
  const options: OllamaOptions = { temperature: optNumber(body, "temperature") ?? 1.0 };
  const topP = optNumber(body, "top_p");
  if (topP !== undefined) options.top_p = topP;
  const maxOutput = optInteger(body, "max_output_tokens");
  if (maxOutput !== undefined) options.num_predict = maxOutput;
  const ollama: OllamaChatBody = {
    model: optString(body, "model") ?? "",
    messages,
    stream: optBoolean(body, "stream") ?? false,
    options,
  };
  const toolList = tools(body);
  if (toolList) ollama.tools = toolList;
  const thinkValue = think(body);
  if (thinkValue !== undefined) ollama.think = thinkValue;
  const schema = format(body);
  if (schema) ollama.format = schema;
  return { ollama, echo: body };
}
