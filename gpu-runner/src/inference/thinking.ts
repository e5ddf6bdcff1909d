/**
 * Splits a thinking model's output into `thinking` and content, as Ollama's thinking.Parser does: output that
 * opens with the model's opening tag (e.g. `<think>`) is thinking until the closing tag; anything else is
 * content. A tag split across chunks is held back until it is decided.
 */
export interface ThinkingTags {
  open: string;
  close: string;
}

export interface ThinkingSplit {
  thinking: string;
  content: string;
}

/** Tags a template mentions, Ollama-style (`<think>` / `</think>` and similar pairs). */
export function inferThinkingTags(template: string | undefined): ThinkingTags | undefined {
  if (!template) return undefined;
  for (const [open, close] of [
    ["<think>", "</think>"],
    ["<thinking>", "</thinking>"],
    ["<|channel|>analysis<|message|>", "<|end|>"],
  ] as const) {
    if (template.includes(open) && template.includes(close)) return { open, close };
  }
  return undefined;
}

export class ThinkingParser {
  private state: "start" | "thinking" | "afterThinking" | "content";
  private buffer = "";

  /** `startsInside`: the prompt already ended with the opening tag, so output begins as thinking. */
  constructor(
    private readonly tags: ThinkingTags,
    startsInside = false,
  ) {
    this.state = startsInside ? "thinking" : "start";
  }

  add(text: string): ThinkingSplit {
    this.buffer += text;
    const out: ThinkingSplit = { thinking: "", content: "" };
    for (;;) {
      switch (this.state) {
        case "start": {
          const trimmed = this.buffer.trimStart();
          if (trimmed === "") return out;
          if (trimmed.startsWith(this.tags.open)) {
            this.buffer = trimmed.slice(this.tags.open.length);
            this.state = "thinking";
            continue;
          }
          if (this.tags.open.startsWith(trimmed)) return out;
          this.state = "content";
          continue;
        }
        case "thinking": {
          const at = this.buffer.indexOf(this.tags.close);
          if (at >= 0) {
            out.thinking += this.buffer.slice(0, at);
            this.buffer = this.buffer.slice(at + this.tags.close.length);
            this.state = "afterThinking";
            continue;
          }
          const held = partialSuffix(this.buffer, this.tags.close);
          out.thinking += this.buffer.slice(0, this.buffer.length - held);
          this.buffer = this.buffer.slice(this.buffer.length - held);
          return out;
        }
        case "afterThinking": {
          // Whitespace between the closing tag and the answer is dropped.
          this.buffer = this.buffer.trimStart();
          if (this.buffer === "") return out;
          this.state = "content";
          continue;
        }
        case "content":
          out.content += this.buffer;
          this.buffer = "";
          return out;
      }
    }
  }

  /** End of output: whatever is held back goes where it was heading. */
  finish(): ThinkingSplit {
    const rest = this.buffer;
    this.buffer = "";
    if (this.state === "thinking") return { thinking: rest, content: "" };
    return { thinking: "", content: this.state === "afterThinking" ? rest.trimStart() : rest };
  }
}

function partialSuffix(text: string, tag: string): number {
  for (let n = Math.min(tag.length - 1, text.length); n > 0; n--) {
    if (text.endsWith(tag.slice(0, n))) return n;
  }
  return 0;
}
