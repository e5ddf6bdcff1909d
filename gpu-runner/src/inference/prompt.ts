/**
 * Turns a request into the prompt text and tokens, like Ollama: the model's Go template when it has one (or
 * the request's `template` override), else the GGUF's own Jinja chat template, else the bare prompt. Also says
 * what the format supports (insert / tools / thinking), which decides Ollama's capability errors.
 */
import { ApiError } from "@corral/protocol/errors";
import type { Message, Tool } from "@corral/protocol/schema-fields";
import type { Token } from "node-llama-cpp";
import type { ModelInstance } from "../model-instance";
import type { OllamaTemplate, TruncateOptions } from "../template/go-prompt";
import type { InferenceCall } from "./call";
import { goTemplateCapabilities, loadTemplate, renderGoChat, renderGoGenerate } from "./go-template";
import { renderJinjaChat } from "./jinja";
import { inferThinkingTags, ThinkingParser, type ThinkingTags } from "./thinking";
import { toolCallTagFromJinja, toolCallTagFromTemplate } from "./tools";

export interface PromptFormat {
  kind: "template" | "jinja" | "plain";
  template?: OllamaTemplate;
  /** The template came in the request (`template` field), not from the model. */
  templateFromRequest: boolean;
  chatTemplate?: string;
  capabilities: { insert: boolean; tools: boolean; thinking: boolean };
  thinkingTags?: ThinkingTags;
  toolCallTag: string;
  /** Suffix requests go through the model's fill-in-the-middle tokens rather than a template. */
  infill: boolean;
}

export interface FormattedPrompt {
  text: string;
  tokens: Token[];
}

export type ThinkValue = boolean | string;

export interface ThinkSetting {
  enabled: boolean;
  /** What the template sees as .Think / .ThinkLevel (undefined when the client did not say). */
  value?: ThinkValue;
}

function hasInfillTokens(instance: ModelInstance): boolean {
  const { prefix, suffix } = instance.model.tokens.infill;
  return prefix !== null && suffix !== null;
}

function ggufChatTemplate(instance: ModelInstance): string | undefined {
  const template = instance.model.fileInfo.metadata?.tokenizer?.chat_template;
  return typeof template === "string" && template.trim() !== "" ? template : undefined;
}

/**
 * How prompts for this model are written: `template` is the request's override or the model's template layer.
 * `raw` requests pass no template; they still learn the model's capabilities for the error checks.
 */
export function promptFormat(instance: ModelInstance, template: string | undefined, fromRequest = false): PromptFormat {
  if (template) {
    const parsed = loadTemplate(template, fromRequest);
    const caps = goTemplateCapabilities(parsed);
    return {
      kind: "template",
      template: parsed,
      templateFromRequest: fromRequest,
      capabilities: { insert: caps.insert, tools: caps.tools, thinking: caps.thinking },
      thinkingTags: caps.thinkingTags,
      toolCallTag: toolCallTagFromTemplate(template),
      infill: false,
    };
  }
  const chatTemplate = ggufChatTemplate(instance);
  const infill = hasInfillTokens(instance);
  if (chatTemplate) {
    const thinkingTags = inferThinkingTags(chatTemplate);
    return {
      kind: "jinja",
      chatTemplate,
      templateFromRequest: false,
      capabilities: { insert: infill, tools: /\btools\b/.test(chatTemplate), thinking: thinkingTags !== undefined },
      thinkingTags,
      toolCallTag: toolCallTagFromJinja(chatTemplate),
      infill,
    };
  }
  return {
    kind: "plain",
    templateFromRequest: false,
    capabilities: { insert: infill, tools: false, thinking: false },
    toolCallTag: "{",
    infill,
  };
}

/**
 * Ollama: thinking models think unless told not to; asking a model without thinking to think is a 400, unless the
 * endpoint relaxes it (Anthropic's), when the request's `think` is dropped.
 */
export function resolveThink(call: InferenceCall, format: PromptFormat, think: ThinkValue | undefined): ThinkSetting {
  const asked = think !== undefined && think !== false;
  if (!format.capabilities.thinking) {
    if (asked && !call.relaxThinking)
      throw new ApiError(400, `${JSON.stringify(call.model.name)} does not support thinking`);
    return { enabled: false, value: call.relaxThinking ? undefined : think };
  }
  return { enabled: think === undefined || asked, value: think ?? true };
}

/** Splits the output when thinking is on; it starts inside the block when the prompt already opened it. */
export function thinkingParserFor(
  think: ThinkSetting,
  format: PromptFormat,
  prompt: FormattedPrompt,
): ThinkingParser | undefined {
  const tags = format.thinkingTags;
  if (!think.enabled || !tags) return undefined;
  return new ThinkingParser(tags, prompt.text.trimEnd().endsWith(tags.open));
}

function tokenize(instance: ModelInstance, text: string): Promise<Token[]> {
  return instance.tokenize(text, true);
}

/**
 * The prompt `render` gives, fitted to num_ctx. Rendered whole and tokenised off the event loop first; only when it
 * does not fit is it rendered again with Ollama's truncation, whose candidate measurements run synchronously inside
 * the template engine (rare, and bounded by the edge's prompt-size limit).
 */
async function fitted(
  instance: ModelInstance,
  truncate: boolean,
  render: (truncate?: TruncateOptions) => string,
): Promise<FormattedPrompt> {
  const text = render();
  const tokens = await tokenize(instance, text);
  if (!truncate || tokens.length <= instance.spec.numCtx) return { text, tokens };
  const shorter = render(truncation(instance));
  return { text: shorter, tokens: await tokenize(instance, shorter) };
}

function specialTokenText(instance: ModelInstance, which: "bos" | "eos"): string {
  const tokens = instance.model.tokens;
  return (which === "bos" ? tokens.bosString : tokens.eosString) ?? "";
}

export interface GenerateInput {
  instance: ModelInstance;
  format: PromptFormat;
  raw: boolean;
  /** The request's system prompt; `modelSystem` applies when it is empty. */
  system?: string;
  modelSystem?: string;
  /** The model's messages layer (left out when continuing from a context, as Ollama does). */
  modelMessages: readonly Message[];
  prompt: string;
  suffix?: string;
  context?: Token[];
  think: ThinkSetting;
}

export async function formatGeneratePrompt(input: GenerateInput): Promise<FormattedPrompt> {
  const { instance, format } = input;
  if (input.raw) return { text: input.prompt, tokens: await tokenize(instance, input.prompt) };

  if (input.suffix && format.kind !== "template" && format.infill) {
    // Fill-in-the-middle with the model's own tokens, in llama.cpp's order: PRE prefix SUF suffix MID.
    const { prefix, suffix, middle } = instance.model.tokens.infill;
    const tokens: Token[] = [
      prefix as Token,
      ...(await instance.tokenize(input.prompt, false)),
      suffix as Token,
      ...(await instance.tokenize(input.suffix, false)),
      ...(middle !== null ? [middle] : []),
    ];
    return { text: instance.model.detokenize(tokens, true), tokens };
  }

  // Ollama continues a context by detokenizing it in front of the newly formatted prompt.
  const context = input.context?.length ? instance.model.detokenize(input.context, true) : undefined;
  let text: string;
  switch (format.kind) {
    case "template":
      return fitted(instance, true, (truncate) =>
        renderGoGenerate(format.template!, {
          prompt: input.prompt,
          system: input.system,
          modelSystem: input.modelSystem,
          modelMessages: input.modelMessages,
          suffix: input.suffix,
          context,
          think: input.think.value,
          templateFromRequest: format.templateFromRequest,
          truncate,
        }),
      );
    case "jinja": {
      const system = input.system || input.modelSystem;
      const messages: Message[] = [
        ...(system ? [{ role: "system", content: system }] : []),
        ...(context === undefined ? input.modelMessages : []),
        { role: "user", content: input.prompt },
      ];
      text =
        (context ?? "") +
        renderJinjaChat({
          chatTemplate: format.chatTemplate!,
          messages,
          bosToken: specialTokenText(instance, "bos"),
          eosToken: specialTokenText(instance, "eos"),
          think: input.think.enabled,
        });
      break;
    }
    case "plain":
      text = (context ?? "") + input.prompt;
      break;
  }
  return { text, tokens: await tokenize(instance, text) };
}

/** Ollama's history truncation measures rendered prompts in tokens against num_ctx. */
function truncation(instance: ModelInstance): TruncateOptions {
  return { numCtx: instance.spec.numCtx, countTokens: (text: string) => instance.model.tokenize(text, true).length };
}

export interface ChatInput {
  instance: ModelInstance;
  format: PromptFormat;
  /** The whole history: the model's messages layer and system prompt already in front. */
  messages: readonly Message[];
  /** undefined when the client sent none. */
  tools?: readonly Tool[];
  think: ThinkSetting;
  /** Drop the oldest messages (keeping system ones and the last) until the prompt fits num_ctx. Default on. */
  truncate?: boolean;
}

export async function formatChatPrompt(input: ChatInput): Promise<FormattedPrompt> {
  const { instance, format } = input;
  const truncate = input.truncate !== false;
  if (format.kind === "template") {
    return fitted(instance, truncate, (truncation) =>
      renderGoChat(format.template!, {
        messages: input.messages,
        tools: input.tools,
        think: input.think.value,
        truncate: truncation,
      }),
    );
  }
  const render = (messages: readonly Message[]): string =>
    format.kind === "jinja"
      ? renderJinjaChat({
          chatTemplate: format.chatTemplate!,
          messages,
          tools: input.tools,
          bosToken: specialTokenText(instance, "bos"),
          eosToken: specialTokenText(instance, "eos"),
          think: input.think.enabled,
        })
      : messages.map((message) => message.content).join("\n");
  return fitHistory(
    input.messages,
    render,
    (text) => tokenize(instance, text),
    truncate ? instance.spec.numCtx : undefined,
  );
}

/**
 * Ollama's chatPrompt truncation: start from the whole history and drop messages from the front until the
 * rendered prompt fits, carrying the dropped system messages along and always keeping the last message.
 */
export async function fitHistory(
  messages: readonly Message[],
  render: (messages: readonly Message[]) => string,
  tokenizeText: (text: string) => Promise<Token[]>,
  numCtx: number | undefined,
): Promise<FormattedPrompt> {
  const last = messages.length - 1;
  for (let start = 0; start <= last; start++) {
    const system = messages.slice(0, start).filter((message) => message.role === "system");
    const text = render([...system, ...messages.slice(start)]);
    const tokens = await tokenizeText(text);
    if (numCtx === undefined || tokens.length <= numCtx || start === last) return { text, tokens };
  }
  const text = render(messages);
  return { text, tokens: await tokenizeText(text) };
}
