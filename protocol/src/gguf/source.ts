import { ApiError } from "../errors";

/**
 * Random access to a file that may live far away (an R2 object read with ranged GETs). `read` may return fewer
 * bytes than asked only when the range reaches the end of the file.
 */
export interface ByteSource {
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
}

export function bytesSource(u8: Uint8Array): ByteSource {
  return {
    size: u8.length,
    read: async (offset, length) => u8.subarray(offset, offset + length),
  };
}

/**
 * The only error the GGUF reader throws. Its message is short and safe to show a client; it is an ApiError with
 * status 400 because a bad header is always the uploader's input.
 */
export class GgufError extends ApiError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super(400, `invalid GGUF: ${detail}`);
    this.name = "GgufError";
    if (options && "cause" in options) (this as { cause?: unknown }).cause = options.cause;
  }
}

export const isGgufError = (err: unknown): err is GgufError => err instanceof GgufError;

const FIRST_WINDOW_BYTES = 64 * 1024;
const MAX_WINDOW_BYTES = 16 * 1024 * 1024;
const textDecoder = new TextDecoder("utf-8");

/**
 * A forward-only cursor over a ByteSource that fetches growing windows and never re-reads a byte: when a window
 * runs out, its unconsumed tail is kept and only the bytes after it are requested. So the total requested is at
 * most the file size, and no buffer is ever larger than the bytes the file really has left.
 */
export class SourceCursor {
  private buf = new Uint8Array(0);
  private view = new DataView(this.buf.buffer);
  /** File offset of buf[0]. */
  private bufStart = 0;
  private window = FIRST_WINDOW_BYTES;
  /** File offset of the next byte to consume. */
  pos = 0;

  constructor(
    private readonly src: ByteSource,
    /** No byte at or past this offset is ever read. */
    private readonly limit: number,
  ) {}

  /** Bytes left in the file after the cursor. */
  get remaining(): number {
    return this.src.size - this.pos;
  }

  /** Makes the next `n` bytes available to the synchronous getters, or throws why they cannot be. */
  async need(n: number, what: string): Promise<void> {
    if (n > this.src.size - this.pos) throw new GgufError(`truncated ${what}`);
    if (this.pos + n > this.limit) throw new GgufError(`header larger than ${this.limit} bytes`);
    const bufEnd = this.bufStart + this.buf.length;
    if (this.pos + n <= bufEnd) return;

    const end = Math.min(this.src.size, this.limit, Math.max(this.pos + n, this.pos + this.window));
    const fetchFrom = Math.max(bufEnd, this.pos);
    const fresh = await this.readExact(fetchFrom, end - fetchFrom);
    const tail = bufEnd > this.pos ? this.buf.subarray(this.pos - this.bufStart) : new Uint8Array(0);
    const next = new Uint8Array(tail.length + fresh.length);
    next.set(tail);
    next.set(fresh, tail.length);
    this.buf = next;
    this.view = new DataView(next.buffer);
    this.bufStart = this.pos;
    this.window = Math.min(this.window * 2, MAX_WINDOW_BYTES);
  }

  private async readExact(offset: number, length: number): Promise<Uint8Array> {
    let got: unknown;
    try {
      got = await this.src.read(offset, length);
    } catch (cause) {
      throw new GgufError("could not read the file", { cause });
    }
    if (!(got instanceof Uint8Array)) throw new GgufError("could not read the file");
    // The range never passes the declared size, so a short answer means the file is shorter than it claims.
    if (got.length < length) throw new GgufError("truncated file");
    return got.length === length ? got : got.subarray(0, length);
  }

  /** Whether the next `n` bytes are already in the window, so they can be read without awaiting. */
  buffered(n: number): boolean {
    return this.pos >= this.bufStart && this.pos + n <= this.bufStart + this.buf.length;
  }

  /**
   * Reads a GGUF string synchronously when it is entirely in the window and within `maxBytes`; otherwise consumes
   * nothing and returns undefined, leaving the caller to take the awaiting path (which also reports errors).
   */
  stringIfBuffered(maxBytes: number): string | undefined {
    if (!this.buffered(8)) return undefined;
    const at = this.pos - this.bufStart;
    const high = this.view.getUint32(at + 4, true);
    const len = this.view.getUint32(at, true);
    if (high !== 0 || len > maxBytes || !this.buffered(8 + len)) return undefined;
    this.pos += 8;
    return this.utf8(len);
  }

  private take(n: number): number {
    const at = this.pos - this.bufStart;
    if (at < 0 || at + n > this.buf.length) throw new GgufError("internal read past window");
    this.pos += n;
    return at;
  }

  u8(): number {
    return this.view.getUint8(this.take(1));
  }
  i8(): number {
    return this.view.getInt8(this.take(1));
  }
  u16(): number {
    return this.view.getUint16(this.take(2), true);
  }
  i16(): number {
    return this.view.getInt16(this.take(2), true);
  }
  u32(): number {
    return this.view.getUint32(this.take(4), true);
  }
  i32(): number {
    return this.view.getInt32(this.take(4), true);
  }
  u64(): bigint {
    return this.view.getBigUint64(this.take(8), true);
  }
  i64(): bigint {
    return this.view.getBigInt64(this.take(8), true);
  }
  f32(): number {
    return this.view.getFloat32(this.take(4), true);
  }
  f64(): number {
    return this.view.getFloat64(this.take(8), true);
  }
  /** Invalid UTF-8 becomes U+FFFD, as Go's JSON encoding of the same string would. */
  utf8(n: number): string {
    const at = this.take(n);
    // Short ASCII strings (most tokens and keys) are far cheaper to build directly than through TextDecoder.
    if (n <= 32) {
      let ascii = "";
      for (let i = at; i < at + n; i++) {
        const byte = this.buf[i]!;
        if (byte >= 0x80) return textDecoder.decode(this.buf.subarray(at, at + n));
        ascii += String.fromCharCode(byte);
      }
      return ascii;
    }
    return textDecoder.decode(this.buf.subarray(at, at + n));
  }
}
