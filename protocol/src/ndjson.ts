/**
 * Newline-delimited JSON, the framing of every streaming Ollama response: one JSON object per line.
 */
import { ApiError } from "./errors";

/** One NDJSON line: compact JSON plus `\n`. */
export function encodeNdjson(value: unknown): string {
  return `${JSON.stringify(value)}\n`;
}

export interface NdjsonDecoderOptions {
  /** Longest line (in UTF-16 units, newline excluded) accepted before the stream is refused. Default 16 MiB. */
  maxLineLength?: number;
  /**
   * Status of the ApiError thrown for a bad line or an over-long one. Default 502: the decoder mostly reads an
   * upstream (runner, registry), whose malformed output is a gateway failure rather than the client's fault.
   */
  errorStatus?: number;
}

export const DEFAULT_MAX_NDJSON_LINE = 16 * 1024 * 1024;

/**
 * Turns chunks (bytes or text, split anywhere — inside a line or inside a multibyte character) into parsed
 * values, one per non-blank line. Call `push` per chunk and `end` once at the end of input.
 */
export class NdjsonDecoder {
  private readonly textDecoder = new TextDecoder("utf-8");
  private readonly maxLineLength: number;
  private readonly errorStatus: number;
  // The unterminated tail of the input, kept as pieces so a long line arriving in many chunks is joined once.
  private pieces: string[] = [];
  private pendingLength = 0;
  private ended = false;

  constructor(options: NdjsonDecoderOptions = {}) {
    this.maxLineLength = options.maxLineLength ?? DEFAULT_MAX_NDJSON_LINE;
    this.errorStatus = options.errorStatus ?? 502;
  }

  /** Feeds one chunk; returns the values of the lines it completed (possibly none). */
  push(chunk: Uint8Array | string): unknown[] {
    if (this.ended) throw new Error("NdjsonDecoder: push() after end()");
    const text = typeof chunk === "string" ? chunk : this.textDecoder.decode(chunk, { stream: true });
    return this.consume(text);
  }

  /** Flushes the last line if the input did not end with a newline. */
  end(): unknown[] {
    if (this.ended) return [];
    this.ended = true;
    const values = this.consume(this.textDecoder.decode());
    this.parseLine(this.takePending(""), values);
    return values;
  }

  private consume(text: string): unknown[] {
    const values: unknown[] = [];
    let start = 0;
    for (let newline = text.indexOf("\n"); newline >= 0; newline = text.indexOf("\n", start)) {
      this.parseLine(this.takePending(text.slice(start, newline)), values);
      start = newline + 1;
    }
    if (start < text.length) {
      const rest = start === 0 ? text : text.slice(start);
      this.pendingLength += rest.length;
      if (this.pendingLength > this.maxLineLength) this.tooLong();
      this.pieces.push(rest);
    }
    return values;
  }

  /** Joins the buffered pieces with `tail` into one complete line. */
  private takePending(tail: string): string {
    if (this.pieces.length === 0) {
      if (tail.length > this.maxLineLength) this.tooLong();
      return tail;
    }
    if (this.pendingLength + tail.length > this.maxLineLength) this.tooLong();
    this.pieces.push(tail);
    const line = this.pieces.join("");
    this.pieces = [];
    this.pendingLength = 0;
    return line;
  }

  private parseLine(line: string, into: unknown[]): void {
    if (line.trim() === "") return;
    try {
      into.push(JSON.parse(line));
    } catch {
      const preview = line.length > 80 ? `${line.slice(0, 80)}…` : line;
      throw new ApiError(this.errorStatus, `invalid NDJSON line: ${JSON.stringify(preview)}`);
    }
  }

  private tooLong(): never {
    throw new ApiError(this.errorStatus, `NDJSON line longer than ${this.maxLineLength} characters`);
  }
}

/**
 * Reads a byte stream as NDJSON, yielding each value as soon as its line is complete. Stopping early (break,
 * return, throw in the loop body) cancels the stream so the producer stops too.
 */
export async function* readNdjson(
  stream: ReadableStream<Uint8Array>,
  options?: NdjsonDecoderOptions,
): AsyncGenerator<unknown, void, undefined> {
  const decoder = new NdjsonDecoder(options);
  const reader = stream.getReader();
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      yield* decoder.push(value);
    }
    finished = true;
    yield* decoder.end();
  } finally {
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

/** Encodes values from an (async) iterable as an NDJSON byte stream; cancelling the stream stops the iterable. */
export function ndjsonStream(values: AsyncIterable<unknown> | Iterable<unknown>): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const iterator =
    Symbol.asyncIterator in values
      ? (values as AsyncIterable<unknown>)[Symbol.asyncIterator]()
      : (values as Iterable<unknown>)[Symbol.iterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await iterator.next();
      if (next.done) {
        controller.close();
        return;
      }
      controller.enqueue(encoder.encode(encodeNdjson(next.value)));
    },
    async cancel() {
      await iterator.return?.();
    },
  });
}
