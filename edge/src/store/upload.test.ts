/**
 * The blob upload's hashing runs in bounded turns whatever sizes the body's chunks come in (a pull's part is streamed
 * from one 16 MiB buffer; a fast client's body arrives already buffered): no single synchronous step hashes more
 * than BYTES_PER_TURN, so other requests on the isolate are served in between.
 */
import { describe, expect, it } from "vitest";
import { BYTES_PER_TURN, nextMacrotask, TurnBudget } from "../turns";
import { ResumableSha256 } from "./resumable-sha256";
import { hashedFixedLength } from "./upload";

const MiB = 1024 * 1024;

function bodyOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
}

async function hexSha256(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

describe("hashedFixedLength", () => {
  it("hashes at most BYTES_PER_TURN per turn, and the digest and the bytes stay whole", async () => {
    const sizes = [5 * MiB + 7, ...Array<number>(300).fill(4096), 3 * MiB, 1];
    const length = sizes.reduce((a, b) => a + b, 0);
    const whole = new Uint8Array(length).map((_, i) => (i * 31) & 0xff);
    const chunks: Uint8Array[] = [];
    for (let offset = 0, i = 0; i < sizes.length; offset += sizes[i]!, i++) {
      chunks.push(whole.slice(offset, offset + sizes[i]!));
    }
    const turns = [0];
    const budget = new TurnBudget(BYTES_PER_TURN, async () => {
      turns.push(0);
      await nextMacrotask();
    });
    const hasher = new ResumableSha256();
    const update = hasher.update.bind(hasher);
    hasher.update = (bytes) => {
      turns[turns.length - 1]! += bytes.length;
      return update(bytes);
    };

    const { stream, done } = hashedFixedLength(bodyOf(chunks), hasher, length, budget);
    const stored = new Uint8Array(await new Response(stream).arrayBuffer());
    await done;

    expect(Math.max(...turns)).toBeLessThanOrEqual(BYTES_PER_TURN);
    expect(turns.reduce((a, b) => a + b, 0)).toBe(length);
    expect(stored.length).toBe(length);
    expect(await hexSha256(stored)).toBe(await hexSha256(whole));
    expect(hasher.hexDigest()).toBe(await hexSha256(whole));
  });
});
