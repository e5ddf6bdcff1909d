/**
 * Metering a runner's response while its bytes pass through unchanged. Streams are NDJSON: only the final
 * `"done":true` line carries the counts, so lines are split cheaply and only that one (or an `"error"` line) is
 * parsed — nothing is decoded into objects or re-encoded per token.
 */
import { ollamaErrorOf } from "../errors";

export interface Usage {
  prompt_tokens: number;
  /** Of prompt_tokens, the ones the runner took from its prompt cache instead of evaluating them. */
  prompt_cached_tokens: number;
  output_tokens: number;
  load_duration: number;
  prompt_eval_duration: number;
  eval_duration: number;
  total_duration: number;
}

export const zeroUsage = (): Usage => ({
  prompt_tokens: 0,
  prompt_cached_tokens: 0,
  output_tokens: 0,
  load_duration: 0,
  prompt_eval_duration: 0,
  eval_duration: 0,
  total_duration: 0,
});

const METRIC_FIELDS = [
  "prompt_eval_count",
  "prompt_cached_count",
  "eval_count",
  "load_duration",
  "prompt_eval_duration",
  "eval_duration",
  "total_duration",
] as const;
type MetricField = (typeof METRIC_FIELDS)[number];

function usageFrom(metrics: Partial<Record<MetricField, unknown>>): Usage {
  const n = (v: unknown) => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? Math.round(v) : 0);
  return {
    prompt_tokens: n(metrics.prompt_eval_count),
    prompt_cached_tokens: Math.min(n(metrics.prompt_cached_count), n(metrics.prompt_eval_count)),
    output_tokens: n(metrics.eval_count),
    load_duration: n(metrics.load_duration),
    prompt_eval_duration: n(metrics.prompt_eval_duration),
    eval_duration: n(metrics.eval_duration),
    total_duration: n(metrics.total_duration),
  };
}

/**
 * Top-level metric fields read straight from JSON text, for objects too large to parse (an over-long final line,
 * a huge embed response). Keys inside JSON strings have their quotes escaped (`\"eval_count\"`), so the lookbehind
 * keeps generated text from posing as a metric.
 */
export function scanUsage(text: string): Usage {
  const found: Partial<Record<MetricField, number>> = {};
  for (const field of METRIC_FIELDS) {
    const re = new RegExp(`(?<!\\\\)"${field}"\\s*:\\s*(\\d+)`, "g");
    let last: RegExpExecArray | null = null;
    for (let m = re.exec(text); m; m = re.exec(text)) last = m;
    if (last?.[1]) found[field] = Number(last[1]);
  }
  return usageFrom(found);
}

/** Usage of a whole (non-streamed) JSON body; `error` when the body is Ollama's `{"error": ...}`. */
export function usageOfJson(text: string): { usage: Usage; error?: string } {
  if (text.length > PARSE_LIMIT) return { usage: scanUsage(text.slice(-TAIL_KEEP)) };
  try {
    const value = JSON.parse(text) as Record<string, unknown>;
    if (typeof value.error === "string") return { usage: zeroUsage(), error: value.error };
    return { usage: usageFrom(value) };
  } catch {
    return { usage: scanUsage(text) };
  }
}

/** Lines longer than this are not parsed; their tail is scanned instead. */
const PARSE_LIMIT = 1 << 20;
/** How much of an over-long line is kept: the metrics sit at its end. */
const TAIL_KEEP = 64 << 10;

const DONE_PATTERN = /"done"\s*:\s*true/;
const ERROR_PATTERN = /^\s*\{\s*"error"\s*:/;

/** Watches an NDJSON stream chunk by chunk. */
export class StreamMeter {
  private readonly decoder = new TextDecoder();
  private partial = "";
  private truncated = false;
  private droppedDone = false;
  /** Complete non-final lines seen: the output estimate for a stream cut short (about one token per line). */
  lines = 0;
  done = false;
  usage: Usage = zeroUsage();
  /** The runner's own `{"error": ...}` line, if it sent one. */
  error: string | undefined;

  observe(chunk: Uint8Array): void {
    const text = this.decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n", start)) {
      this.line(this.take(text.slice(start, nl)));
      start = nl + 1;
    }
    if (start < text.length) this.keep(start === 0 ? text : text.slice(start));
  }

  /** Flushes an unterminated last line. */
  end(): void {
    const rest = this.decoder.decode();
    if (rest) this.keep(rest);
    if (this.partial.trim() !== "") this.line(this.take(""));
  }

  /** What to bill when the stream never reached its final line. */
  partialUsage(): Usage {
    return this.done ? this.usage : { ...zeroUsage(), output_tokens: this.lines };
  }

  private keep(piece: string): void {
    this.partial += piece;
    if (this.partial.length > PARSE_LIMIT) {
      // Only the tail is kept; remember whether the dropped head marked the line final.
      if (DONE_PATTERN.test(this.partial.slice(0, -TAIL_KEEP))) this.droppedDone = true;
      this.partial = this.partial.slice(-TAIL_KEEP);
      this.truncated = true;
    }
  }

  private take(tail: string): string {
    const line = this.partial + tail;
    this.partial = "";
    return line;
  }

  private line(line: string): void {
    const truncated = this.truncated;
    const droppedDone = this.droppedDone;
    this.truncated = false;
    this.droppedDone = false;
    if (line.trim() === "") return;
    if (!truncated && ERROR_PATTERN.test(line)) {
      this.error = ollamaErrorOf(line) ?? "runner error";
      return;
    }
    if (!droppedDone && !DONE_PATTERN.test(line)) {
      this.lines++;
      return;
    }
    this.done = true;
    this.usage = truncated ? scanUsage(line) : usageOfJson(line).usage;
  }
}
