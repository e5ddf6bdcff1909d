/**
 * Adapter to the Go text/template engine and Ollama's prompt logic in ../template: the only place that knows
 * its API. Parsed templates are cached by source (a model's template is parsed once, not per request).
 */
import { ApiError, errorText } from "@corral/protocol/errors";
import type { Message, Tool } from "@corral/protocol/schema-fields";
import {
  buildChatPrompt,
  buildGeneratePrompt,
  type OllamaTemplate,
  parseOllamaTemplate,
  type TruncateOptions,
  templateCapabilities,
} from "../template/go-prompt";
import type { ThinkingTags } from "./thinking";

export interface TemplateCapabilities {
  insert: boolean;
  tools: boolean;
  thinking: boolean;
  thinkingTags?: ThinkingTags;
}

const MAX_CACHED = 64;
const parsed = new Map<string, OllamaTemplate>();

/**
 * Parses (or reuses) a template. A model's own template that does not parse is the runner's problem (500);
 * a `template` the client sent is the client's (400).
 */
export function loadTemplate(source: string, fromRequest = false): OllamaTemplate {
  let template = parsed.get(source);
  if (template) return template;
  try {
    template = parseOllamaTemplate(source);
  } catch (err) {
    const detail = errorText(err);
    throw new ApiError(fromRequest ? 400 : 500, `template: ${detail}`);
  }
  if (parsed.size >= MAX_CACHED) parsed.delete(parsed.keys().next().value as string);
  parsed.set(source, template);
  return template;
}

export function goTemplateCapabilities(template: OllamaTemplate): TemplateCapabilities {
  const caps = templateCapabilities(template);
  return {
    insert: caps.insert,
    tools: caps.tools,
    thinking: caps.thinking,
    thinkingTags: caps.thinking ? { open: caps.thinkingTags.opening, close: caps.thinkingTags.closing } : undefined,
  };
}

/** Execution failures (a template calling something on a missing value) surface as 500 like Ollama's. */
function rendering<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ApiError) throw err;
    throw new ApiError(500, errorText(err));
  }
}

export interface GenerateValues {
  prompt: string;
  system?: string;
  modelSystem?: string;
  modelMessages: readonly Message[];
  suffix?: string;
  /** Detokenized `context`; the new prompt follows it. */
  context?: string;
  think?: boolean | string;
  templateFromRequest: boolean;
  truncate?: TruncateOptions;
}

export function renderGoGenerate(template: OllamaTemplate, values: GenerateValues): string {
  return rendering(
    () =>
      buildGeneratePrompt({
        template,
        prompt: values.prompt,
        system: values.system,
        modelSystem: values.modelSystem,
        modelMessages: values.modelMessages,
        suffix: values.suffix,
        context: values.context,
        think: values.think,
        templateFromRequest: values.templateFromRequest,
        truncate: values.truncate,
      }).prompt,
  );
}

export interface ChatValues {
  /** The whole history, the model's messages layer and system prompt already in front. */
  messages: readonly Message[];
  /** undefined: the client sent no tools (Go's nil), which templates can tell from an empty list. */
  tools?: readonly Tool[];
  think?: boolean | string;
  truncate?: TruncateOptions;
}

export function renderGoChat(template: OllamaTemplate, values: ChatValues): string {
  return rendering(
    () =>
      buildChatPrompt({
        template,
        messages: values.messages,
        tools: values.tools ?? null,
        think: values.think,
        truncate: values.truncate,
      }).prompt,
  );
}
