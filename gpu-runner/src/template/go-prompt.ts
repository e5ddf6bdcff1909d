// Ollama's prompt building on top of the Go template engine: template.Parse/Execute (template/template.go),
// chatPrompt's truncation and image tags (server/prompt.go) and the /api/generate message assembly
// (server/routes.go GenerateHandler).

import type { ActionNode } from "./ast";
import { GoTemplate } from "./gotemplate";
import {
  ollamaFuncs,
  type TemplateMessageInput,
  type TemplateToolInput,
  templateMessage,
  templateTools,
} from "./ollama-values";
import { cutAfterResponse, inferThinkingTags, templateVars } from "./tree-walk";
import { goNilSlice, withMeta } from "./values";

export type { TemplateMessageInput, TemplateToolCallInput, TemplateToolInput } from "./ollama-values";

/** api.ThinkValue: a boolean or a level ("high" | "medium" | "low" | "max"). */
export type ThinkValue = boolean | string;

export const DEFAULT_TEMPLATE = "{{ .Prompt }}";

export interface OllamaTemplate {
  readonly raw: string;
  readonly template: GoTemplate;
  /** template.Vars(): lower-cased identifiers. */
  readonly vars: readonly string[];
}

export interface ParseOptions {
  /** Clock behind currentDate/yesterdayDate. */
  readonly now?: () => Date;
}

const RESPONSE_ACTION: ActionNode = {
  type: "action",
  pos: { offset: 0, line: 1 },
  pipe: {
    type: "pipe",
    pos: { offset: 0, line: 1 },
    isAssign: false,
    decl: [],
    cmds: [
      {
        type: "command",
        pos: { offset: 0, line: 1 },
        args: [{ type: "field", pos: { offset: 0, line: 1 }, ident: ["Response"] }],
      },
    ],
  },
};

/** template.Parse: missingkey=zero, Ollama's functions, and `{{ .Response }}` appended to legacy prompt templates. */
export function parseOllamaTemplate(source: string, options: ParseOptions = {}): OllamaTemplate {
  let template = GoTemplate.parse(source, { name: "", funcs: ollamaFuncs(options.now), missingKey: "zero" });
  let vars = templateVars(template.trees.values());
  if (!vars.includes("messages") && !vars.includes("response")) {
    template = template.withRoot({ ...template.root, nodes: [...template.root.nodes, RESPONSE_ACTION] });
    vars = templateVars(template.trees.values());
  }
  return { raw: source, template, vars };
}

const asTemplate = (t: string | OllamaTemplate, options?: ParseOptions): OllamaTemplate =>
  typeof t === "string" ? parseOllamaTemplate(t, options) : t;

export interface TemplateCapabilities {
  /** Uses .Tools. */
  readonly tools: boolean;
  /** Uses .Suffix (fill-in-the-middle). */
  readonly insert: boolean;
  /** Thinking tags can be inferred (a .Thinking inside a range over .Messages). */
  readonly thinking: boolean;
  readonly thinkingTags: { readonly opening: string; readonly closing: string };
}

/** Ollama's goTemplateCapabilities (server/images.go). Throws TemplateError when the template does not parse. */
export function templateCapabilities(template: string | OllamaTemplate): TemplateCapabilities {
  const t = asTemplate(template);
  const tags = inferThinkingTags(t.template.root);
  return {
    tools: t.vars.includes("tools"),
    insert: t.vars.includes("suffix"),
    thinking: tags.opening !== "" && tags.closing !== "",
    thinkingTags: tags,
  };
}

/** The think fields of template.Values, from api.ThinkValue (absent = not set). */
function thinkFields(think: ThinkValue | null | undefined): {
  Think: boolean;
  ThinkLevel: string;
  IsThinkSet: boolean;
} {
  const levels = ["high", "medium", "low", "max"];
  if (think === undefined || think === null) return { Think: false, ThinkLevel: "", IsThinkSet: false };
  if (typeof think === "boolean") return { Think: think, ThinkLevel: think ? "medium" : "", IsThinkSet: true };
  return { Think: levels.includes(think), ThinkLevel: think, IsThinkSet: true };
}

export interface ExecuteValues {
  readonly messages?: readonly TemplateMessageInput[];
  /** undefined/null: no tools (nil); []: an empty tool list. */
  readonly tools?: readonly TemplateToolInput[] | null;
  readonly prompt?: string;
  readonly suffix?: string;
  readonly think?: ThinkValue | null;
  /** Test hook of Ollama's: run the legacy System/Prompt/Response path even for .Messages templates. */
  readonly forceLegacy?: boolean;
}

/** template.collate: joins system contents; merges consecutive same-role messages except tool results. */
function collate(msgs: readonly TemplateMessageInput[]): { system: string; messages: TemplateMessageInput[] } {
  const system: string[] = [];
  const collated: TemplateMessageInput[] = [];
  for (const m of msgs) {
    if (m.role === "system") system.push(m.content ?? "");
    const last = collated[collated.length - 1];
    if (last && last.role === m.role && m.role !== "tool") {
      collated[collated.length - 1] = { ...last, content: `${last.content ?? ""}\n\n${m.content ?? ""}` };
    } else {
      collated.push(m);
    }
  }
  return { system: system.join("\n\n"), messages: collated };
}

/** template.Template.Execute. */
export function executeTemplate(template: string | OllamaTemplate, values: ExecuteValues): string {
  const t = asTemplate(template);
  const { system, messages } = collate(values.messages ?? []);
  const think = thinkFields(values.think);
  const prompt = values.prompt ?? "";
  const suffix = values.suffix ?? "";
  if (prompt !== "" && suffix !== "") {
    return t.template.execute({ Prompt: prompt, Suffix: suffix, Response: "", ...think });
  }
  if (!values.forceLegacy && t.vars.includes("messages")) {
    const converted =
      messages.length > 0
        ? withMeta(messages.map(templateMessage), { typeName: "[]*template.templateMessage" })
        : goNilSlice("[]*template.templateMessage");
    return t.template.execute({
      System: system,
      Messages: converted,
      Tools: templateTools(values.tools),
      Response: "",
      ...think,
    });
  }
  return executeLegacy(t, messages, think);
}

/** Renders a .Messages-less template once per system/user/assistant turn, the last one cut after .Response. */
function executeLegacy(
  t: OllamaTemplate,
  messages: readonly TemplateMessageInput[],
  think: ReturnType<typeof thinkFields>,
): string {
  let out = "";
  let system = "";
  let prompt = "";
  let response = "";
  const execute = () => {
    out += t.template.execute({ System: system, Prompt: prompt, Response: response, ...think });
    system = "";
    prompt = "";
    response = "";
  };
  for (const m of messages) {
    if (m.role === "system") {
      if (prompt !== "" || response !== "") execute();
      system = m.content ?? "";
    } else if (m.role === "user") {
      if (response !== "") execute();
      prompt = m.content ?? "";
    } else if (m.role === "assistant") {
      response = m.content ?? "";
    }
  }
  // Go runs the cut tree as a fresh template: no extra functions, no {{define}}s, default missingkey.
  const last = t.template.withRoot(cutAfterResponse(t.template.root), true);
  return out + last.execute({ System: system, Prompt: prompt, Response: response, ...think });
}

export interface TruncateOptions {
  /** Context length the prompt must fit in (num_ctx, capped at the runner's context length). */
  readonly numCtx: number;
  /** Tokens of a rendered prompt. */
  readonly countTokens: (prompt: string) => number;
  /** Tokens charged per image when the model has a vision projector (Ollama: 768); 0 or absent otherwise. */
  readonly imageTokens?: number;
}

export interface ChatPromptOptions extends ParseOptions {
  readonly template: string | OllamaTemplate;
  readonly messages: readonly TemplateMessageInput[];
  readonly tools?: readonly TemplateToolInput[] | null;
  readonly think?: ThinkValue | null;
  /** The model's SYSTEM: prepended when the first request message is not a system message. */
  readonly modelSystem?: string;
  /** The model's MESSAGE history, placed before the request's messages. */
  readonly modelMessages?: readonly TemplateMessageInput[];
  /** Drop the oldest non-system messages until the prompt fits; absent = no truncation. */
  readonly truncate?: TruncateOptions;
}

export interface ChatPrompt {
  readonly prompt: string;
  /** Images in prompt order; "[img-N]" in the prompt refers to images[N]. */
  readonly images: readonly string[];
  /** Index (into the full message list) of the first message kept after truncation. */
  readonly firstMessage: number;
}

/** Ollama's ChatHandler message assembly followed by chatPrompt. */
export function buildChatPrompt(options: ChatPromptOptions): ChatPrompt {
  const t = asTemplate(options.template, options);
  let msgs: TemplateMessageInput[] = [...(options.modelMessages ?? []), ...options.messages];
  if (options.messages.length > 0 && options.messages[0]!.role !== "system" && options.modelSystem) {
    msgs = [{ role: "system", content: options.modelSystem }, ...msgs];
  }
  return chatPrompt(t, msgs, options.tools, options.think, options.truncate);
}

export function renderChat(options: ChatPromptOptions): string {
  return buildChatPrompt(options).prompt;
}

function chatPrompt(
  t: OllamaTemplate,
  msgs: readonly TemplateMessageInput[],
  tools: readonly TemplateToolInput[] | null | undefined,
  think: ThinkValue | null | undefined,
  truncate: TruncateOptions | undefined,
): ChatPrompt {
  const render = (list: readonly TemplateMessageInput[]) => executeTemplate(t, { messages: list, tools, think });
  let system: TemplateMessageInput[] = [];
  let current = 0;
  const last = msgs.length - 1;
  if (truncate) {
    for (let i = 0; i <= last; i++) {
      system = msgs.slice(0, i).filter((m) => m.role === "system");
      let length = truncate.countTokens(render([...system, ...msgs.slice(i)]));
      if (truncate.imageTokens) {
        for (const m of msgs.slice(i)) length += truncate.imageTokens * (m.images?.length ?? 0);
      }
      if (length <= truncate.numCtx || i === last) {
        current = i;
        break;
      }
    }
  }
  const { messages: tagged, images } = imageTaggedMessages(msgs, current);
  return { prompt: render([...system, ...tagged.slice(current)]), images, firstMessage: current };
}

/** server.imageTaggedMessages: "[img-N]" replaces the first "[img]" per image, or prefixes the content. */
function imageTaggedMessages(
  msgs: readonly TemplateMessageInput[],
  start: number,
): { messages: TemplateMessageInput[]; images: string[] } {
  const images: string[] = [];
  const messages = msgs.map((m, i) => {
    if (i < start) return m;
    let prefix = "";
    let content = m.content ?? "";
    for (const image of m.images ?? []) {
      const tag = `[img-${images.length}]`;
      images.push(image);
      if (content.includes("[img]")) content = content.replace("[img]", tag);
      else prefix += tag;
    }
    return { ...m, content: prefix + content };
  });
  return { messages, images };
}

export interface GeneratePromptOptions extends ParseOptions {
  readonly template: string | OllamaTemplate;
  readonly prompt: string;
  /** Request system prompt; falls back to modelSystem. */
  readonly system?: string;
  readonly modelSystem?: string;
  /** The model's MESSAGE history (ignored when `context` is given, as in Ollama). */
  readonly modelMessages?: readonly TemplateMessageInput[];
  readonly suffix?: string;
  readonly images?: readonly string[];
  /** Detokenized text of the deprecated `context` field; the prompt is appended to it. */
  readonly context?: string;
  readonly think?: ThinkValue | null;
  /** The request carried its own `template`: Ollama executes it directly (no truncation, no image tags). */
  readonly templateFromRequest?: boolean;
  readonly raw?: boolean;
  readonly truncate?: TruncateOptions;
}

/** Ollama's GenerateHandler prompt assembly; returns the prompt and its images in "[img-N]" order. */
export function buildGeneratePrompt(options: GeneratePromptOptions): ChatPrompt {
  const images = [...(options.images ?? [])];
  if (options.raw) return { prompt: options.prompt, images, firstMessage: 0 };
  const t = asTemplate(options.template, options);
  const suffix = options.suffix ?? "";
  let messages: TemplateMessageInput[] | undefined;
  if (suffix === "") {
    messages = [];
    const system = options.system || options.modelSystem;
    if (system) messages.push({ role: "system", content: system });
    if (options.context === undefined) messages.push(...(options.modelMessages ?? []));
    messages.push({ role: "user", content: options.prompt, ...(images.length > 0 ? { images } : {}) });
  }
  const prefix = options.context ?? "";
  if (messages && !options.templateFromRequest) {
    // Ollama passes an empty (non-nil) tool list here.
    const chat = chatPrompt(t, messages, [], options.think, options.truncate);
    return { ...chat, prompt: prefix + chat.prompt };
  }
  const prompt = executeTemplate(t, {
    messages,
    prompt: suffix !== "" ? options.prompt : undefined,
    suffix,
    think: options.think,
  });
  return { prompt: prefix + prompt, images, firstMessage: 0 };
}

export function renderGenerate(options: GeneratePromptOptions): string {
  return buildGeneratePrompt(options).prompt;
}
