/**
 * Finds tool calls in model output as it streams, the way Ollama's tools.Parser does: text before the model's
 * tool-call tag is content; from the tag on, output is held back and each complete JSON object that names a
 * known tool becomes a call. Formats: Hermes/Qwen `<tool_call>{"name", "arguments"}</tool_call>`, llama3 bare
 * `{"name", "parameters"}`, Mistral `[TOOL_CALLS] [{...}]` — anything whose calls are JSON after a tag.
 */
import { randomInt } from "node:crypto";

export interface ToolCall {
  id: string;
  function: { index: number; name: string; arguments: Record<string, unknown> };
}

export interface ParsedOutput {
  content: string;
  calls: ToolCall[];
}

const ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

/** Ollama's id shape: `call_` and 8 lowercase letters or digits. */
export function toolCallId(): string {
  let id = "call_";
  for (let i = 0; i < 8; i++) id += ID_ALPHABET[randomInt(ID_ALPHABET.length)];
  return id;
}

/**
 * The tag a Go template writes before tool calls: the first non-blank text after the `if .ToolCalls` action,
 * cut before any `{`; "{" when there is none (calls are bare JSON objects).
 */
export function toolCallTagFromTemplate(template: string | undefined): string {
  if (!template) return "{";
  const parts = template.split(/(\{\{[\s\S]*?\}\})/);
  const start = parts.findIndex((part) => part.startsWith("{{") && /\bif\b/.test(part) && part.includes(".ToolCalls"));
  if (start < 0) return "{";
  for (const part of parts.slice(start + 1)) {
    if (part.startsWith("{{") || part.trim() === "") continue;
    const tag = part.replace(/\r\n/g, "\n").split("{")[0]!.trim();
    return tag === "" ? "{" : tag;
  }
  return "{";
}

/** The tag for a GGUF Jinja chat template (the fallback when a model has no template layer). */
export function toolCallTagFromJinja(chatTemplate: string | undefined): string {
  if (!chatTemplate) return "{";
  for (const tag of ["<tool_call>", "[TOOL_CALLS]", "<|python_tag|>", "<function_call>"]) {
    if (chatTemplate.includes(tag)) return tag;
  }
  return "{";
}

/** End index (exclusive) of the balanced JSON object or array starting at `start`, or -1 if incomplete. */
function balancedEnd(text: string, start: number): number {
  const open = text[start]!;
  const close = open === "{" ? "}" : "]";
  let depth = 0;
  let inString = false;
  let escaped = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (escaped) {
      escaped = false;
    } else if (c === "\\") {
      escaped = inString;
    } else if (c === '"') {
      inString = !inString;
    } else if (!inString && (c === "{" || c === "[")) {
      depth++;
    } else if (!inString && (c === "}" || c === "]")) {
      depth--;
      if (depth === 0) return c === close ? i + 1 : -1;
    }
  }
  return -1;
}

function asArguments(value: unknown): Record<string, unknown> | undefined {
  if (typeof value === "string") {
    try {
      return asArguments(JSON.parse(value));
    } catch {
      return undefined;
    }
  }
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

export class ToolCallParser {
  private buffer = "";
  private state: "looking" | "calling" | "done" = "looking";
  private count = 0;
  private readonly bareJson: boolean;

  constructor(
    private readonly tag: string,
    private readonly toolNames: readonly string[],
    private readonly newId: () => string = toolCallId,
  ) {
    this.bareJson = tag === "{" || tag === "[";
  }

  /** Feeds generated text; returns the content that can be shown now and any calls completed by it. */
  add(text: string): ParsedOutput {
    if (this.state === "done") return { content: text, calls: [] };
    this.buffer += text;
    let content = "";
    if (this.state === "looking") {
      const at = this.buffer.indexOf(this.tag);
      if (at < 0) {
        const held = this.partialTagSuffix();
        content = this.buffer.slice(0, this.buffer.length - held);
        this.buffer = this.buffer.slice(this.buffer.length - held);
        // Bare-JSON calls must come first: once real content appears the output is plain text.
        if (this.bareJson && content.trim() !== "") return this.giveUp(content);
        return { content, calls: [] };
      }
      content = this.buffer.slice(0, at);
      if (this.bareJson && content.trim() !== "") {
        this.buffer = this.buffer.slice(at);
        return this.giveUp(content);
      }
      this.buffer = this.bareJson ? this.buffer.slice(at) : this.buffer.slice(at + this.tag.length);
      this.state = "calling";
    }
    const calls = this.takeCalls();
    // takeCalls may have decided the output is not a tool call after all.
    if ((this.state as string) === "done") {
      content += this.buffer;
      this.buffer = "";
    }
    return { content, calls };
  }

  /** End of output: held-back text that never became a call is returned as content. */
  finish(): ParsedOutput {
    const rest = this.buffer;
    this.buffer = "";
    const state = this.state;
    this.state = "done";
    if (state === "looking") return { content: rest, calls: [] };
    if (state === "calling" && this.count === 0) return { content: (this.bareJson ? "" : this.tag) + rest, calls: [] };
    return { content: "", calls: [] };
  }

  private giveUp(content: string): ParsedOutput {
    this.state = "done";
    const rest = this.buffer;
    this.buffer = "";
    return { content: content + rest, calls: [] };
  }

  private partialTagSuffix(): number {
    for (let n = Math.min(this.tag.length - 1, this.buffer.length); n > 0; n--) {
      if (this.buffer.endsWith(this.tag.slice(0, n))) return n;
    }
    return 0;
  }

  private takeCalls(): ToolCall[] {
    const calls: ToolCall[] = [];
    for (;;) {
      const start = this.buffer.search(/[{[]/);
      if (start < 0) return calls;
      const end = balancedEnd(this.buffer, start);
      if (end < 0) return calls;
      const json = this.buffer.slice(start, end);
      this.buffer = this.buffer.slice(end);
      let value: unknown;
      try {
        value = JSON.parse(json);
      } catch {
        continue;
      }
      const found = (Array.isArray(value) ? value : [value]).flatMap((item) => this.toCall(item) ?? []);
      if (found.length === 0 && this.bareJson && this.count === 0) {
        // A JSON answer that is not a tool call is the answer: from here on everything is content.
        this.buffer = json + this.buffer;
        this.state = "done";
        return calls;
      }
      calls.push(...found);
    }
  }

  private toCall(item: unknown): ToolCall | undefined {
    if (typeof item !== "object" || item === null) return undefined;
    const record = item as Record<string, unknown>;
    const inner = asArguments(record.function);
    const source = inner && typeof inner.name === "string" ? inner : record;
    const name = source.name;
    if (typeof name !== "string" || (this.toolNames.length > 0 && !this.toolNames.includes(name))) return undefined;
    const args = asArguments(source.arguments) ?? asArguments(source.parameters) ?? {};
    return { id: this.newId(), function: { index: this.count++, name, arguments: args } };
  }
}

/** Whole-text convenience (tests, non-streaming callers). */
export function parseToolCalls(text: string, tag: string, toolNames: readonly string[]): ParsedOutput {
  const parser = new ToolCallParser(tag, toolNames);
  const first = parser.add(text);
  const last = parser.finish();
  return { content: first.content + last.content, calls: [...first.calls, ...last.calls] };
}
