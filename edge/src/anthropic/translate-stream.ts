/**
 * Ollama's NDJSON chat stream → Anthropic's server-sent events, in the order Ollama's anthropic.StreamConverter
 * writes them: `message_start` (then a `ping`, as Anthropic sends one), per block `content_block_start`,
 * `content_block_delta`s and `content_block_stop` (thinking, then text, then one block per tool call), and at the
 * final line `message_delta` with the stop reason and usage, then `message_stop`. An `{"error"}` line or a broken
 * upstream becomes an `error` event, which Anthropic's clients raise, and ends the events.
 */
import { ENDED_EARLY_MESSAGE, type StreamTranslator } from "../openai/translate-stream";
import { anthropicErrorBody } from "./errors";
import { asObject, asString, stopReason, toToolUse, usageOf } from "./translate-response";

export const sseEvent = (type: string, data: object): string => `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;

/** Mid-stream failures are the server's (the status is already 200): Anthropic's api_error type. */
export function sseErrorEvent(message: string): string {
  const { type, error } = anthropicErrorBody(500, message);
  return sseEvent("error", { type, error });
}

type OpenBlock = "thinking" | "text" | null;

export class MessagesStreamTranslator implements StreamTranslator {
  done = false;
  private started = false;
  private open: OpenBlock = null;
  private index = 0;
  private toolCalled = false;

  constructor(
    private readonly id: string,
    private readonly model: string,
    private readonly estimatedInputTokens: number,
  ) {}

  push(value: unknown): string[] {
    if (this.done) return [];
    const line = asObject(value);
    if (typeof line.error === "string") return this.fail(line.error);
    const events = this.start(line);
    const message = asObject(line.message);
    const thinking = asString(message.thinking);
    if (thinking) events.push(...this.delta("thinking", { type: "thinking_delta", thinking }));
    const text = asString(message.content);
    if (text) events.push(...this.delta("text", { type: "text_delta", text }));
    if (Array.isArray(message.tool_calls)) for (const call of message.tool_calls) events.push(...this.toolUse(call));
    if (line.done === true) events.push(...this.finish(line));
    return events;
  }

  end(): string[] {
    return this.done ? [] : this.fail(ENDED_EARLY_MESSAGE);
  }

  fail(message: string): string[] {
    if (this.done) return [];
    this.done = true;
    return [sseErrorEvent(message)];
  }

  private start(line: Record<string, unknown>): string[] {
    if (this.started) return [];
    this.started = true;
    const input = usageOf(line).input_tokens || this.estimatedInputTokens;
    const message = {
      id: this.id,
      type: "message",
      role: "assistant",
      model: this.model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: input, output_tokens: 0 },
    };
    return [sseEvent("message_start", { type: "message_start", message }), sseEvent("ping", { type: "ping" })];
  }

  private closeOpen(): string[] {
    if (!this.open) return [];
    this.open = null;
    return [sseEvent("content_block_stop", { type: "content_block_stop", index: this.index++ })];
  }

  /** A delta of `kind`, opening its block first (and closing the other kind's). */
  private delta(kind: "thinking" | "text", delta: object): string[] {
    const events: string[] = [];
    if (this.open !== kind) {
      events.push(...this.closeOpen());
      this.open = kind;
      const block =
        kind === "thinking" ? { type: "thinking", thinking: "", signature: "" } : { type: "text", text: "" };
      events.push(
        sseEvent("content_block_start", { type: "content_block_start", index: this.index, content_block: block }),
      );
    }
    events.push(sseEvent("content_block_delta", { type: "content_block_delta", index: this.index, delta }));
    return events;
  }

  /** A tool call is complete when the runner sends it: one block with its whole input as one JSON delta. */
  private toolUse(raw: unknown): string[] {
    this.toolCalled = true;
    const { id, name, input } = toToolUse(raw);
    const events = this.closeOpen();
    const index = this.index++;
    const start = { type: "tool_use", id, name, input: {} };
    const delta = { type: "input_json_delta", partial_json: JSON.stringify(input) };
    events.push(
      sseEvent("content_block_start", { type: "content_block_start", index, content_block: start }),
      sseEvent("content_block_delta", { type: "content_block_delta", index, delta }),
      sseEvent("content_block_stop", { type: "content_block_stop", index }),
    );
    return events;
  }

  private finish(line: Record<string, unknown>): string[] {
    this.done = true;
    const delta = { stop_reason: stopReason(line.done_reason, this.toolCalled), stop_sequence: null };
    return [
      ...this.closeOpen(),
      sseEvent("message_delta", { type: "message_delta", delta, usage: usageOf(line) }),
      sseEvent("message_stop", { type: "message_stop" }),
    ];
  }
}
