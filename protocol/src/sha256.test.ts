import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Sha256, sha256Hex } from "./sha256";

const nodeSha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** Splits `bytes` at the given cut points (any order, duplicates allowed) into consecutive chunks. */
function splitAt(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const point of [...points, bytes.length]) {
    chunks.push(bytes.subarray(start, point));
    start = point;
  }
  return chunks;
}

describe("Sha256", () => {
  it.each([
    ["", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
    ["abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"],
    [
      "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    ],
  ])("matches the FIPS 180-4 vector for %j", (text, hex) => {
    expect(sha256Hex(text)).toBe(hex);
  });

  it("hashes a million 'a' fed in odd-sized chunks", () => {
    const hasher = new Sha256();
    const chunk = new Uint8Array(999).fill(0x61);
    let left = 1_000_000;
    while (left > 0) {
      const n = Math.min(left, chunk.length);
      hasher.update(chunk.subarray(0, n));
      left -= n;
    }
    expect(hasher.hexDigest()).toBe("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  });

  it("agrees with node:crypto at every length around the padding boundaries", () => {
    for (let length = 0; length <= 130; length++) {
      const bytes = Uint8Array.from({ length }, (_, i) => (i * 31 + length) & 0xff);
      expect(sha256Hex(bytes), `length ${length}`).toBe(nodeSha256(bytes));
    }
  });

  it("agrees with node:crypto for random inputs split into random chunks", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 700 }), fc.array(fc.nat(), { maxLength: 12 }), (bytes, cuts) => {
        const hasher = new Sha256();
        for (const chunk of splitAt(bytes, cuts)) hasher.update(chunk);
        expect(hasher.hexDigest()).toBe(nodeSha256(bytes));
      }),
      { numRuns: 300 },
    );
  });

  it("reads full blocks from a chunk that is a view into a larger buffer", () => {
    const backing = Uint8Array.from({ length: 400 }, (_, i) => i & 0xff);
    const view = backing.subarray(7, 7 + 256);
    expect(new Sha256().update(view).hexDigest()).toBe(nodeSha256(view));
  });

  it("refuses use after digest()", () => {
    const hasher = new Sha256().update(new Uint8Array([1]));
    hasher.digest();
    expect(() => hasher.update(new Uint8Array([2]))).toThrow(/after digest/);
    expect(() => hasher.digest()).toThrow(/twice/);
  });
});

describe("Sha256 state export", () => {
  it.each([0, 64, 640, 4096 * 3])("resumes after %i bytes to the same digest as one pass", (split) => {
    const data = new Uint8Array(split + 1000).map((_, i) => (i * 31 + 7) & 0xff);
    const first = new Sha256().update(data.subarray(0, split));
    const resumed = Sha256.fromState(first.exportState());
    expect(resumed).not.toBeNull();
    expect(resumed!.bytes).toBe(split);
    expect(resumed!.update(data.subarray(split)).hexDigest()).toBe(new Sha256().update(data).hexDigest());
  });

  it.each(["", "zz", `${"0".repeat(64)}:65`, `${"0".repeat(63)}:64`, `${"A".repeat(64)}:0`])(
    "refuses the malformed state %j",
    (text) => {
      expect(Sha256.fromState(text)).toBeNull();
    },
  );

  it("refuses to export between block boundaries", () => {
    expect(() => new Sha256().update(new Uint8Array(10)).exportState()).toThrow(/boundary/);
  });
});
