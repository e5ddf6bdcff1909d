/**
 * Ollama's NDJSON stream → OpenAI's server-sent events, as Ollama's ChatWriter / CompleteWriter write them:
 * one `data: {chunk}` event per Ollama line, the final line's chunk carrying `finish_reason`, then (with
 * `stream_options.include_usage`) a chunk with no choices and the usage, then `data: [DONE]`. An `{"error"}` line
 * becomes `data: {"error": {...}}`, which OpenAI clients raise as an error, and ends the events.
 */
import { errorText, NdjsonDecoder } from "@corral/protocol";
import { openAIErrorBody } from "../errors";
import {
  chatLogprobs,
  completionLogprobs,
  finishReason,
  SYSTEM_FINGERPRINT,
  toToolCalls,
  toUsage,
} from "./translate-response";
import type { ChatChunkChoice, ChatCompletionChunk, Completion } from "./types";

export const SSE_DONE = "data: [DONE]\n\n";
export const sseData = (value: unknown): string => `data: ${JSON.stringify(value)}\n\n`;

/** Mid-stream failures are the server's (the status is already 200): OpenAI's api_error type. */
export const sseError = (message: string): string => sseData(openAIErrorBody(500, message));

export const ENDED_EARLY_MESSAGE = "the stream ended before its final chunk";

export interface StreamContext {
  /** The completion's id, the same in every chunk. */
  id: string;
  /** Unix seconds, the same in every chunk (one logical response). */
  created: number;
  includeUsage: boolean;
}

/** Turns decoded Ollama lines into SSE text. `done` once the events are complete: later lines are ignored. */
export interface StreamTranslator {
  push(line: unknown): string[];
  /** The input ended; returns what is still owed (an error event if the final line never came). */
  end(): string[];
  /** The upstream broke: the error event in the translator's dialect, or nothing once the events are complete. */
  fail(message: string): string[];
  readonly done: boolean;
}

type Json = Record<string, unknown>;
const asObject = (v: unknown): Json => (v && typeof v === "object" && !Array.isArray(v) ? (v as Json) : {});
const asString = (v: unknown): string => (typeof v === "string" ? v : "");

abstract class BaseTranslator implements StreamTranslator {
  done = false;

  constructor(protected readonly ctx: StreamContext) {}

  push(value: unknown): string[] {
    if (this.done) return [];
    const line = asObject(value);
    if (typeof line.error === "string") {
      this.done = true;
      return [sseError(line.error)];
    }
    const events = this.translate(line).map(sseData);
    if (line.done === true) {
      this.done = true;
      if (this.ctx.includeUsage) events.push(sseData(this.usageChunk(line)));
      events.push(SSE_DONE);
    }
    return events;
  }

  end(): string[] {
    return this.fail(ENDED_EARLY_MESSAGE);
  }

  fail(message: string): string[] {
    if (this.done) return [];
    this.done = true;
    return [sseError(message)];
  }

  /** With include_usage, OpenAI sends `usage: null` on every chunk but the usage one. */
  protected usageField(): { usage?: null } {
    return this.ctx.includeUsage ? { usage: null } : {};
  }

  protected abstract translate(line: Json): object[];
  protected abstract usageChunk(line: Json): object;
}

export class ChatStreamTranslator extends BaseTranslator {
  private toolCallSent = false;
  private toolCallCount = 0;

  private chunk(line: Json, choice: ChatChunkChoice): ChatCompletionChunk {
    return {
      id: this.ctx.id,
      object: "chat.completion.chunk",
      created: this.ctx.created,
      model: asString(line.model),
      system_fingerprint: SYSTEM_FINGERPRINT,
      choices: [choice],
      ...this.usageField(),
    };
  }

  protected translate(line: Json): ChatCompletionChunk[] {
    const message = asObject(line.message);
    const content = asString(message.content);
    const reasoning = asString(message.thinking);
    const toolCalls = toToolCalls(message.tool_calls, this.toolCallCount);
    this.toolCallCount += toolCalls.length;
    // Once a call went out, the turn ends as tool_calls even if the last line carries none.
    this.toolCallSent ||= toolCalls.length > 0;
    const finish = finishReason(line.done_reason, this.toolCallSent);
    const logprobs = chatLogprobs(line.logprobs);

    const main: ChatChunkChoice = { index: 0, delta: { role: "assistant", content }, finish_reason: finish };
    if (toolCalls.length) main.delta.tool_calls = toolCalls;
    if (logprobs) main.logprobs = logprobs;
    if (!reasoning) return [this.chunk(line, main)];
    if (!content && toolCalls.length === 0) {
      main.delta.reasoning = reasoning;
      return [this.chunk(line, main)];
    }
    // Reasoning and answer in one line go out as two chunks, reasoning first (Ollama's ToChunks).
    const thinking: ChatChunkChoice = {
      index: 0,
      delta: { role: "assistant", content: "", reasoning },
      finish_reason: null,
    };
    return [this.chunk(line, thinking), this.chunk(line, main)];
  }

  protected usageChunk(line: Json): ChatCompletionChunk {
    return {
      ...this.chunk(line, { index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }),
      choices: [],
      usage: toUsage(line),
    };
  }
}

export class CompletionStreamTranslator extends BaseTranslator {
  private textOffset = 0;

  private chunk(line: Json, choices: Completion["choices"]): Completion {
    return {
      id: this.ctx.id,
      object: "text_completion",
      created: this.ctx.created,
      model: asString(line.model),
      system_fingerprint: SYSTEM_FINGERPRINT,
      choices,
      ...this.usageField(),
    };
  }

  protected translate(line: Json): Completion[] {
    const text = asString(line.response);
    const choice: Completion["choices"][number] = {
      text,
      index: 0,
      finish_reason: finishReason(line.done_reason, false),
    };
    const logprobs = completionLogprobs(line.logprobs, this.textOffset);
    if (logprobs) choice.logprobs = logprobs;
    this.textOffset += text.length;
    return [this.chunk(line, [choice])];
  }

  protected usageChunk(line: Json): Completion {
    return { ...this.chunk(line, []), usage: toUsage(line) };
  }
}

/**
 * The SSE body for an Ollama NDJSON body. Pull-driven, so the client's pace is the upstream's pace. The upstream is
 * always read to its end, even after `[DONE]`: the pipeline meters and records usage when its stream completes,
 * and cancelling it early would record the request as cancelled. A client going away cancels the upstream.
 */
export function sseFromNdjson(
  ndjson: ReadableStream<Uint8Array>,
  translator: StreamTranslator,
): ReadableStream<Uint8Array> {
  const reader = ndjson.getReader();
  const decoder = new NdjsonDecoder();
  const encoder = new TextEncoder();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        let events: string[];
        let ended = false;
        try {
          const read = await reader.read();
          if (read.done) {
            ended = true;
            events = [...decoder.end().flatMap((v) => translator.push(v)), ...translator.end()];
          } else {
            events = decoder.push(read.value).flatMap((v) => translator.push(v));
          }
        } catch (err) {
          // Upstream broke or sent a line that is not JSON: tell the client, stop reading.
          const owed = translator.fail(errorText(err));
          if (owed.length) controller.enqueue(encoder.encode(owed.join("")));
          reader.cancel().catch(() => {});
          controller.close();
          return;
        }
        if (events.length) controller.enqueue(encoder.encode(events.join("")));
        if (ended) {
          controller.close();
          return;
        }
        if (events.length) return;
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}

export const SSE_HEADERS = {
  "content-type": "text/event-stream",
  "cache-control": "no-cache",
} as const;
