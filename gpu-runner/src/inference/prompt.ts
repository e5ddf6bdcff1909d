/**
 * Turns a request into the prompt text and tokens, like Ollama: the model's Go template when it has one (or
 * the request's `template` override), else the GGUF's own Jinja chat template, else the bare prompt. Also says
 * what the format supports (insert / tools / thinking), which decides Ollama's capability errors.
 */
import { ApiError } from "@corral/protocol/errors";
import type { Message, Tool } from "@corral/protocol/schema-fields";
import type { Token } from "node-llama-cpp";
import type { ModelInstance } from "../model-instance";
import type { InferenceCall } from "./call";
import { goTemplateCapabilities, renderGoChat, renderGoGenerate } from "./go-template";
import { renderJinjaChat } from "./jinja";
import { inferThinkingTags, type ThinkingTags } from "./thinking";
import { toolCallTagFromJinja, toolCallTagFromTemplate } from "./tools";

export interface PromptFormat {
  kind: "template" | "jinja" | "plain";
  template?: string;
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

export function promptFormat(instance: ModelInstance, template: string | undefined): PromptFormat {
  if (template) {
    const caps = goTemplateCapabilities(template);
    return {
      kind: "template",
      template,
      capabilities: caps,
      thinkingTags: caps.thinking ? (inferThinkingTags(template) ?? { open: "<think>", close: "</think>" }) : undefined,
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
      capabilities: { insert: infill, tools: /\btools\b/.test(chatTemplate), thinking: thinkingTags !== undefined },
      thinkingTags,
      toolCallTag: toolCallTagFromJinja(chatTemplate),
      infill,
    };
  }
  return { kind: "plain", capabilities: { insert: infill, tools: false, thinking: false }, toolCallTag: "{", infill };
}

/** Ollama: thinking models think unless told not to; asking a model without thinking to think is a 400. */
export function resolveThink(call: InferenceCall, format: PromptFormat, think: ThinkValue | undefined): ThinkSetting {
  const asked = think !== undefined && think !== false;
  if (!format.capabilities.thinking) {
    if (asked) throw new ApiError(400, `${JSON.stringify(call.model.name)} does not support thinking`);
    return { enabled: false, value: think };
  }
  return { enabled: think === undefined || asked, value: think ?? true };
}

function tokenize(instance: ModelInstance, text: string): Token[] {
  return instance.model.tokenize(text, true);
}

function specialTokenText(instance: ModelInstance, which: "bos" | "eos"): string {
  const tokens = instance.model.tokens;
  return (which === "bos" ? tokens.bosString : tokens.eosString) ?? "";
}

export interface GenerateInput {
  instance: ModelInstance;
  format: PromptFormat;
  raw: boolean;
  template?: string;
  system?: string;
  messages: readonly Message[];
  prompt: string;
  suffix?: string;
  context?: Token[];
  think: ThinkSetting;
}

export function formatGeneratePrompt(input: GenerateInput): FormattedPrompt {
  const { instance, format } = input;
  if (input.raw) return { text: input.prompt, tokens: tokenize(instance, input.prompt) };

  if (input.suffix && format.kind !== "template" && format.infill) {
    // Fill-in-the-middle with the model's own tokens, in llama.cpp's order: PRE prefix SUF suffix MID.
    const { prefix, suffix, middle } = instance.model.tokens.infill;
    const tokens: Token[] = [
      prefix as Token,
      ...instance.model.tokenize(input.prompt, false),
      suffix as Token,
      ...instance.model.tokenize(input.suffix, false),
      ...(middle !== null ? [middle] : []),
    ];
    return { text: instance.model.detokenize(tokens, true), tokens };
  }

  // Ollama continues a context by detokenizing it in front of the newly formatted prompt.
  const before = input.context?.length ? instance.model.detokenize(input.context, true) : "";
  const messages: Message[] = [
    ...(input.system ? [{ role: "system", content: input.system }] : []),
    ...input.messages,
    { role: "user", content: input.prompt },
  ];
  let text: string;
  switch (format.kind) {
    case "template":
      text = renderGoGenerate(format.template!, {
        messages,
        prompt: input.prompt,
        system: input.system,
        suffix: input.suffix,
        think: input.think.value,
      });
      break;
    case "jinja":
      text = renderJinjaChat({
        chatTemplate: format.chatTemplate!,
        messages,
        bosToken: specialTokenText(instance, "bos"),
        eosToken: specialTokenText(instance, "eos"),
        think: input.think.enabled,
      });
      break;
    case "plain":
      text = input.prompt;
      break;
  }
  text = before + text;
  return { text, tokens: tokenize(instance, text) };
}

export interface ChatInput {
  instance: ModelInstance;
  format: PromptFormat;
  template?: string;
  messages: readonly Message[];
  tools: readonly Tool[];
  think: ThinkSetting;
  /** Drop the oldest messages (keeping system ones and the last) until the prompt fits num_ctx. */
  truncate?: boolean;
}

export function formatChatPrompt(input: ChatInput): FormattedPrompt {
  const { instance, format } = input;
  const render = (messages: readonly Message[]): string => {
    switch (format.kind) {
      case "template":
        return renderGoChat(format.template!, { messages, tools: input.tools, think: input.think.value });
      case "jinja":
        return renderJinjaChat({
          chatTemplate: format.chatTemplate!,
          messages,
          tools: input.tools,
          bosToken: specialTokenText(instance, "bos"),
          eosToken: specialTokenText(instance, "eos"),
          think: input.think.enabled,
        });
      case "plain":
        return messages.map((message) => message.content).join("\n");
    }
  };
  return fitHistory(input.messages, render, (text) => tokenize(instance, text), input.truncate === false ? undefined : instance.spec.numCtx);
}

/**
 * Ollama's chatPrompt truncation: start from the whole history and drop messages from the front until the
 * rendered prompt fits, carrying the dropped system messages along and always keeping the last message.
 */
export function fitHistory(
  messages: readonly Message[],
  render: (messages: readonly Message[]) => string,
  tokenizeText: (text: string) => Token[],
  numCtx: number | undefined,
): FormattedPrompt {
  const last = messages.length - 1;
  for (let start = 0; start <= last; start++) {
    const system = messages.slice(0, start).filter((message) => message.role === "system");
    const text = render([...system, ...messages.slice(start)]);
    const tokens = tokenizeText(text);
    if (numCtx === undefined || tokens.length <= numCtx || start === last) return { text, tokens };
  }
  const text = render(messages);
  return { text, tokens: tokenizeText(text) };
}
