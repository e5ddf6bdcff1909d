/**
 * SHA-256 whose running state can be saved between requests. A multipart upload sends its parts in separate
 * requests (each a separate Worker invocation), so the hash of parts 1..n-1 must survive in D1 until part n
 * arrives. protocol's Sha256 keeps its state private, hence this small local twin with export/import.
 *
 * State is saved only at 64-byte block boundaries (parts are multiples of 64 bytes), so it is exactly the eight
 * chaining words plus the byte count: `<16 hex × 8 words>:<bytes>`.
 */

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
]);
const INITIAL = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
const STATE_PATTERN = /^([0-9a-f]{64}):(\d{1,16})$/;

export class ResumableSha256 {
  private readonly h = new Int32Array(INITIAL);
  private readonly w = new Int32Array(64);
  private readonly pending = new Uint8Array(64);
  private pendingLength = 0;
  private total = 0;

  /** Restores a state from {@link exportState}; null when the text is not one. */
  static fromState(text: string): ResumableSha256 | null {
    const match = STATE_PATTERN.exec(text);
    if (!match) return null;
    const total = Number(match[2]);
    if (total % 64 !== 0 || !Number.isSafeInteger(total)) return null;
    const hasher = new ResumableSha256();
    for (let i = 0; i < 8; i++) hasher.h[i] = Number.parseInt(match[1]!.slice(i * 8, i * 8 + 8), 16) | 0;
    hasher.total = total;
    return hasher;
  }

  get bytes(): number {
    return this.total;
  }

  update(chunk: Uint8Array): this {
    this.total += chunk.length;
    let offset = 0;
    if (this.pendingLength > 0) {
      const take = Math.min(64 - this.pendingLength, chunk.length);
      this.pending.set(chunk.subarray(0, take), this.pendingLength);
      this.pendingLength += take;
      offset = take;
      if (this.pendingLength < 64) return this;
      this.compress(this.pending, 0);
      this.pendingLength = 0;
    }
    for (; chunk.length - offset >= 64; offset += 64) this.compress(chunk, offset);
    if (offset < chunk.length) {
      this.pending.set(chunk.subarray(offset));
      this.pendingLength = chunk.length - offset;
    }
    return this;
  }

  /** The state after a whole number of blocks; throws if bytes are buffered mid-block (a caller bug). */
  exportState(): string {
    if (this.pendingLength !== 0) throw new Error("ResumableSha256: state saved mid-block");
    let hex = "";
    for (const word of this.h) hex += (word >>> 0).toString(16).padStart(8, "0");
    return `${hex}:${this.total}`;
  }

  /** Finishes (the hasher is spent afterwards) and returns lowercase hex. */
  hexDigest(): string {
    const p = this.pending;
    let n = this.pendingLength;
    p[n++] = 0x80;
    if (n > 56) {
      p.fill(0, n);
      this.compress(p, 0);
      n = 0;
    }
    p.fill(0, n);
    const view = new DataView(p.buffer);
    view.setUint32(56, Math.floor(this.total / 0x20000000));
    view.setUint32(60, (this.total * 8) >>> 0);
    this.compress(p, 0);
    let hex = "";
    for (const word of this.h) hex += (word >>> 0).toString(16).padStart(8, "0");
    return hex;
  }

  private compress(b: Uint8Array, o: number): void {
    const w = this.w;
    for (let i = 0; i < 16; i++) {
      const j = o + i * 4;
      w[i] = (b[j]! << 24) | (b[j + 1]! << 16) | (b[j + 2]! << 8) | b[j + 3]!;
    }
    for (let i = 16; i < 64; i++) {
      const x = w[i - 15]!;
      const y = w[i - 2]!;
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) | 0;
    }
    const h = this.h;
    let [a, bb, c, d, e, f, g, hh] = [h[0]!, h[1]!, h[2]!, h[3]!, h[4]!, h[5]!, h[6]!, h[7]!];
    for (let i = 0; i < 64; i++) {
      const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (hh + s1 + ((e & f) ^ (~e & g)) + K[i]! + w[i]!) | 0;
      const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (s0 + ((a & bb) ^ (a & c) ^ (bb & c))) | 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = bb;
      bb = a;
      a = (t1 + t2) | 0;
    }
    h[0] = (h[0]! + a) | 0;
    h[1] = (h[1]! + bb) | 0;
    h[2] = (h[2]! + c) | 0;
    h[3] = (h[3]! + d) | 0;
    h[4] = (h[4]! + e) | 0;
    h[5] = (h[5]! + f) | 0;
    h[6] = (h[6]! + g) | 0;
    h[7] = (h[7]! + hh) | 0;
  }
}
