/**
 * Incremental SHA-256 (FIPS 180-4) in plain TypeScript.
 *
 * WebCrypto's `digest` needs the whole message at once, so it cannot verify an upload while the bytes stream
 * into the bucket. This hasher takes chunks of any size and runs in Node and workerd alike. The block function is
 * pluggable (Sha256Core): the edge hashes blob bytes with a WebAssembly one (edge/src/store/sha256-wasm.ts),
 * several times faster, with the same exportable state.
 */

// First 32 bits of the fractional parts of the cube roots of the first 64 primes.
export const SHA256_K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
]);

export const SHA256_INITIAL_STATE = [
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

const BLOCK_BYTES = 64;
const STATE_PATTERN = /^([0-9a-f]{64}):(\d{1,16})$/;

/** The block function of SHA-256 over chaining words the hasher reads and writes around it. */
export interface Sha256Core {
  /** H0..H7. */
  readonly state: Int32Array;
  /** Folds `length` bytes (a multiple of 64) of `bytes`, from `offset`, into `state`. */
  compress(bytes: Uint8Array, offset: number, length: number): void;
}

export class Sha256 {
  private readonly state: Int32Array;
  private readonly pending = new Uint8Array(BLOCK_BYTES);
  private pendingLength = 0;
  private totalBytes = 0;
  private finished = false;

  constructor(private readonly core: Sha256Core = new JsSha256Core()) {
    this.state = core.state;
    this.state.set(SHA256_INITIAL_STATE);
  }

  /**
   * Restores a hasher from {@link exportState}; null when the text is not a state. Resumable uploads carry the
   * running hash between requests (each part is a separate Worker invocation) this way.
   */
  static fromState(text: string, core?: Sha256Core): Sha256 | null {
    const match = STATE_PATTERN.exec(text);
    if (!match) return null;
    const total = Number(match[2]);
    if (!Number.isSafeInteger(total) || total % BLOCK_BYTES !== 0) return null;
    const hasher = new Sha256(core);
    for (let i = 0; i < 8; i++) hasher.state[i] = Number.parseInt(match[1]!.slice(i * 8, i * 8 + 8), 16) | 0;
    hasher.totalBytes = total;
    return hasher;
  }

  /** Message bytes fed so far. */
  get bytes(): number {
    return this.totalBytes;
  }

  /**
   * The running state as text: the eight chaining words and the byte count. Only at a block boundary (callers feed
   * multiples of 64 bytes between saves), so no pending bytes need saving.
   */
  exportState(): string {
    if (this.finished) throw new Error("Sha256: exportState() after digest()");
    if (this.pendingLength !== 0) throw new Error("Sha256: exportState() needs a 64-byte block boundary");
    let words = "";
    for (let i = 0; i < 8; i++) words += (this.state[i]! >>> 0).toString(16).padStart(8, "0");
    return `${words}:${this.totalBytes}`;
  }

  /** Feeds more message bytes; chunks may have any length, including zero. */
  update(chunk: Uint8Array): this {
    if (this.finished) throw new Error("Sha256: update() after digest()");
    this.totalBytes += chunk.length;
    let offset = 0;
    if (this.pendingLength > 0) {
      const take = Math.min(BLOCK_BYTES - this.pendingLength, chunk.length);
      this.pending.set(chunk.subarray(0, take), this.pendingLength);
      this.pendingLength += take;
      offset = take;
      if (this.pendingLength < BLOCK_BYTES) return this;
      this.core.compress(this.pending, 0, BLOCK_BYTES);
      this.pendingLength = 0;
    }
    const whole = (chunk.length - offset) & ~(BLOCK_BYTES - 1);
    if (whole > 0) {
      this.core.compress(chunk, offset, whole);
      offset += whole;
    }
    if (offset < chunk.length) {
      this.pending.set(chunk.subarray(offset), 0);
      this.pendingLength = chunk.length - offset;
    }
    return this;
  }

  /** Finishes the hash and returns the 32-byte digest. The hasher cannot be reused afterwards. */
  digest(): Uint8Array {
    if (this.finished) throw new Error("Sha256: digest() called twice");
    this.finished = true;
    const pending = this.pending;
    let length = this.pendingLength;
    pending[length++] = 0x80;
    if (length > BLOCK_BYTES - 8) {
      pending.fill(0, length);
      this.core.compress(pending, 0, BLOCK_BYTES);
      length = 0;
    }
    pending.fill(0, length);
    // Message length in bits as a big-endian 64-bit integer; totalBytes stays below 2^53.
    const bitsHigh = Math.floor(this.totalBytes / 0x20000000);
    const bitsLow = (this.totalBytes * 8) >>> 0;
    writeUint32BE(pending, 56, bitsHigh);
    writeUint32BE(pending, 60, bitsLow);
    this.core.compress(pending, 0, BLOCK_BYTES);

    const out = new Uint8Array(32);
    for (let i = 0; i < 8; i++) writeUint32BE(out, i * 4, this.state[i]!);
    return out;
  }

  /** Finishes the hash and returns it as 64 lowercase hex characters. */
  hexDigest(): string {
    return bytesToHex(this.digest());
  }
}

/** The block function in plain TypeScript: full blocks are read straight from the caller's bytes, no copy. */
export class JsSha256Core implements Sha256Core {
  readonly state = new Int32Array(8);
  private readonly words = new Int32Array(64);

  compress(bytes: Uint8Array, offset: number, length: number): void {
    for (let at = offset; at < offset + length; at += BLOCK_BYTES) this.compressBlock(bytes, at);
  }

  private compressBlock(bytes: Uint8Array, offset: number): void {
    const w = this.words;
    for (let i = 0; i < 16; i++) {
      const j = offset + i * 4;
      w[i] = (bytes[j]! << 24) | (bytes[j + 1]! << 16) | (bytes[j + 2]! << 8) | bytes[j + 3]!;
    }
    for (let i = 16; i < 64; i++) {
      const w15 = w[i - 15]!;
      const w2 = w[i - 2]!;
      const s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
      const s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
      w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) | 0;
    }

    const s = this.state;
    let a = s[0]!;
    let b = s[1]!;
    let c = s[2]!;
    let d = s[3]!;
    let e = s[4]!;
    let f = s[5]!;
    let g = s[6]!;
    let h = s[7]!;
    for (let i = 0; i < 64; i++) {
      const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (h + s1 + ch + SHA256_K[i]! + w[i]!) | 0;
      const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (s0 + maj) | 0;
      h = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    s[0] = (s[0]! + a) | 0;
    s[1] = (s[1]! + b) | 0;
    s[2] = (s[2]! + c) | 0;
    s[3] = (s[3]! + d) | 0;
    s[4] = (s[4]! + e) | 0;
    s[5] = (s[5]! + f) | 0;
    s[6] = (s[6]! + g) | 0;
    s[7] = (s[7]! + h) | 0;
  }
}

function writeUint32BE(out: Uint8Array, offset: number, value: number): void {
  out[offset] = value >>> 24;
  out[offset + 1] = value >>> 16;
  out[offset + 2] = value >>> 8;
  out[offset + 3] = value;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

export function bytesToHex(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += HEX[byte];
  return out;
}

/** One-shot SHA-256 of a byte array (or of a string's UTF-8 bytes), as lowercase hex. */
export function sha256Hex(data: Uint8Array | string): string {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  return new Sha256().update(bytes).hexDigest();
}
