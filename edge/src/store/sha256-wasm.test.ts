/**
 * The WebAssembly block function inside workerd (imported as the Worker imports it): the FIPS vectors, agreement
 * with the TypeScript core on random messages cut at random points, and state handed over between the two cores
 * mid-message in both directions (old upload rows keep resuming).
 */
import { Sha256 } from "@corral/protocol/sha256";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ResumableSha256 } from "./resumable-sha256";

const hashWith = (hasher: Sha256, chunks: Uint8Array[]) => {
  for (const c of chunks) hasher.update(c);
  return hasher.hexDigest();
};

describe("ResumableSha256 (WebAssembly core)", () => {
  it.each([
    ["", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
    ["abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"],
    [
      "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    ],
  ])("matches the FIPS 180-4 vector for %j", (text, hex) => {
    expect(new ResumableSha256().update(new TextEncoder().encode(text)).hexDigest()).toBe(hex);
  });

  it("hashes a million 'a's (longer than its 64 KiB input buffer) like FIPS says", () => {
    const bytes = new Uint8Array(1_000_000).fill(0x61);
    expect(new ResumableSha256().update(bytes).hexDigest()).toBe(
      "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
    );
  });

  it("agrees with the TypeScript core on random messages and chunkings", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 70_000 }), fc.array(fc.nat(), { maxLength: 6 }), (bytes, cuts) => {
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const chunks = [...points, bytes.length].map((end, i, all) => bytes.subarray(i === 0 ? 0 : all[i - 1]!, end));
        expect(hashWith(new ResumableSha256(), chunks)).toBe(new Sha256().update(bytes).hexDigest());
      }),
      { numRuns: 60 },
    );
  });

  it("resumes a state exported by the other core, both ways", () => {
    const bytes = Uint8Array.from({ length: 5 * 64 * 1024 + 17 }, (_, i) => (i * 7 + (i >> 9)) & 0xff);
    const cut = 3 * 64 * 1024;
    const expected = new Sha256().update(bytes).hexDigest();
    const fromJs = ResumableSha256.fromState(new Sha256().update(bytes.subarray(0, cut)).exportState());
    expect(fromJs?.update(bytes.subarray(cut)).hexDigest()).toBe(expected);
    const fromWasm = Sha256.fromState(new ResumableSha256().update(bytes.subarray(0, cut)).exportState());
    expect(fromWasm?.update(bytes.subarray(cut)).hexDigest()).toBe(expected);
  });
});
