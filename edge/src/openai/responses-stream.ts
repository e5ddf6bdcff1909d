/**
 * Ollama's NDJSON chat stream → the Responses API's server-sent events, in the order Ollama's
 * ResponsesStreamConverter writes them: `response.created` and `response.in_progress` first; a reasoning item
 * (`output_item.added`, `reasoning_summary_text.delta`s, `.done`, `output_item.done`) while the model thinks; then
 * either each function call as one finished item, or one message item (`output_item.added`, `content_part.added`,
 * `output_text.delta`s, then the `.done` events); and `response.completed` (or `incomplete`) with the usage. Every
 * event carries its `sequence_number`. An `{"error"}` line or a broken upstream becomes an `error` event.
 */
import { openAIErrorBody } from "../errors";
import {
  finalStatus,
  functionCallItems,
  messageItem,
  outputText,
  type ResponseIds,
  reasoningItem,
  responseObject,
  responsesUsage,
} from "./responses-response";
import { ENDED_EARLY_MESSAGE, type StreamTranslator } from "./translate-stream";

type Json = Record<string, unknown>;
const asObject = (v: unknown): Json => (v && typeof v === "object" && !Array.isArray(v) ? (v as Json) : {});
const asString = (v: unknown): string => (typeof v === "string" ? v : "");

export class ResponsesStreamTranslator implements StreamTranslator {
  done = false;
  private sequence = 0;
  private outputIndex = 0;
  private reasoning: { id: string; text: string } | null = null;
  private reasoningDone = false;
  private text: string | null = null;
  private readonly calls: object[] = [];

  constructor(
    private readonly ids: ResponseIds,
    private readonly request: Json,
  ) {}

  push(value: unknown): string[] {
    if (this.done) return [];
    const line = asObject(value);
    if (typeof line.error === "string") return this.fail(line.error);
    const events: string[] = [];
    if (this.sequence === 0) {
      const response = responseObject(this.ids, this.request, "in_progress", [], null);
      events.push(this.event("response.created", { response }), this.event("response.in_progress", { response }));
    }
    const message = asObject(line.message);
    const thinking = asString(message.thinking);
    if (thinking) events.push(...this.think(thinking));
    if (Array.isArray(message.tool_calls) && message.tool_calls.length) events.push(...this.call(message.tool_calls));
    const content = asString(message.content);
    if (content && !this.calls.length) events.push(...this.say(content));
    if (line.done === true) events.push(...this.complete(line));
    return events;
  }

  end(): string[] {
    return this.fail(ENDED_EARLY_MESSAGE);
  }

  fail(message: string): string[] {
    if (this.done) return [];
    this.done = true;
    const { error } = openAIErrorBody(500, message);
    return [this.event("error", { code: error.type, message, param: null, error })];
  }

  private event(type: string, data: object): string {
    const payload = { type, sequence_number: this.sequence++, ...data };
    return `event: ${type}\ndata: ${JSON.stringify(payload)}\n\n`;
  }

  private think(delta: string): string[] {
    const events: string[] = [];
    if (!this.reasoning) {
      this.reasoning = { id: `rs_${this.ids.response}`, text: "" };
      const item = { id: this.reasoning.id, type: "reasoning", summary: [] };
      events.push(this.event("response.output_item.added", { output_index: this.outputIndex, item }));
    }
    this.reasoning.text += delta;
    const at = { item_id: this.reasoning.id, output_index: this.outputIndex, summary_index: 0 };
    events.push(this.event("response.reasoning_summary_text.delta", { ...at, delta }));
    return events;
  }

  private finishReasoning(): string[] {
    if (!this.reasoning || this.reasoningDone) return [];
    this.reasoningDone = true;
    const { id, text } = this.reasoning;
    const at = { item_id: id, output_index: this.outputIndex, summary_index: 0 };
    const events = [
      this.event("response.reasoning_summary_text.done", { ...at, text }),
      this.event("response.output_item.done", { output_index: this.outputIndex, item: reasoningItem(id, text) }),
    ];
    this.outputIndex++;
    return events;
  }

  /** Calls come whole from the runner: each is added, its arguments given in one delta, and done. */
  private call(toolCalls: unknown[]): string[] {
    const events = this.finishReasoning();
    for (const item of functionCallItems(this.ids.response, toolCalls, this.calls.length)) {
      const at = { item_id: item.id, output_index: this.outputIndex };
      const added = { ...item, status: "in_progress", arguments: "" };
      events.push(
        this.event("response.output_item.added", { output_index: this.outputIndex, item: added }),
        this.event("response.function_call_arguments.delta", { ...at, delta: item.arguments }),
        this.event("response.function_call_arguments.done", { ...at, arguments: item.arguments }),
        this.event("response.output_item.done", { output_index: this.outputIndex, item }),
      );
      this.calls.push(item);
      this.outputIndex++;
    }
    return events;
  }

  private say(delta: string): string[] {
    const events = this.finishReasoning();
    const at = { item_id: this.ids.message, output_index: this.outputIndex, content_index: 0 };
    if (this.text === null) {
      this.text = "";
      const item = messageItem(this.ids.message, "", "in_progress");
      events.push(
        this.event("response.output_item.added", { output_index: this.outputIndex, item }),
        this.event("response.content_part.added", { ...at, part: outputText("") }),
      );
    }
    this.text += delta;
    events.push(this.event("response.output_text.delta", { ...at, delta, logprobs: [] }));
    return events;
  }

  private complete(line: Json): string[] {
    this.done = true;
    const events = this.finishReasoning();
    const output: object[] = this.reasoning ? [reasoningItem(this.reasoning.id, this.reasoning.text)] : [];
    if (this.calls.length) output.push(...this.calls);
    else if (this.text !== null) {
      const text = this.text;
      const at = { item_id: this.ids.message, output_index: this.outputIndex, content_index: 0 };
      const item = messageItem(this.ids.message, text, "completed");
      events.push(
        this.event("response.output_text.done", { ...at, text, logprobs: [] }),
        this.event("response.content_part.done", { ...at, part: outputText(text) }),
        this.event("response.output_item.done", { output_index: this.outputIndex, item }),
      );
      output.push(item);
    }
    const status = finalStatus(line);
    const response = responseObject(this.ids, this.request, status, output, responsesUsage(line));
    events.push(this.event(`response.${status}`, { response }));
    return events;
  }
}
